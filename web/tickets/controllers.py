""""Bilety" and "Pokaż bilet do kontroli": the passenger's tickets, binding a mobile ticket to this phone,
and the page that draws the device-signed Aztec code offline (R-5P1-8, docs/ticket-record.md)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from litestar import Request, Router, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Response, Template

from domain import ticket_phones
from domain import ticket_record as tr
from web.platform import clock
from web.platform.http import (RowId, client_ip, flash, form_of, in_transaction, offline_headers, page, redirect, requires_role,
                      safe_next, settings_of, signed_in_user)
from web.platform.i18n import _
from web.tickets import service

passenger = [requires_role("passenger")]


def problem_text(code: str) -> str:
    texts = {
        "ticket.not_found": _("Nie ma takiego biletu na Twoim koncie."),
        "ticket.not_mobile": _("Ten bilet jest na karcie plastikowej: kontroler sprawdza go po numerze karty."),
        "ticket.ended": _("Ten bilet już nie obowiązuje."),
        "ticket.device_limit": _("Bilet jest już przypisany do 2 telefonów. Odłącz jeden z nich, aby przypisać ten."),
        "ticket.change_limit": _("Telefon można zmienić najwyżej 2 razy w ciągu 30 dni."),
        "ticket.bad_key": _("Telefon wysłał nieprawidłowy klucz. Odśwież stronę i spróbuj ponownie."),
        "ticket.bad_request": _("Nieprawidłowe żądanie."),
        "ticket.unbound": _("Ten telefon nie jest już przypisany do biletu."),
    }
    return texts.get(code, _("Nie udało się."))


def state_text(state: str) -> str:
    return {"valid": _("ważny"), "upcoming": _("jeszcze nie obowiązuje"), "expired": _("wygasł"),
            "revoked": _("unieważniony")}.get(state, state)


def product_name(code: str) -> str:
    return {"5P1-N": _("Bilet 5plus1 normalny"), "5P1-U": _("Bilet 5plus1 ulgowy")}.get(code, code)


def change_limit_text(next_change_at: datetime | None) -> str:
    """The refusal of a change of phone over the limit (R-TKT-1), with the moment it opens again."""
    text = problem_text("ticket.change_limit")
    if next_change_at is None:
        return text
    when = clock.to_local(next_change_at).strftime("%d.%m.%Y %H:%M")
    return text + " " + _("Następna zmiana będzie możliwa od %(when)s.", when=when)


def _problem(code: str, status: int, next_change_at: datetime | None = None) -> Response:
    message = change_limit_text(next_change_at) if code == "ticket.change_limit" else problem_text(code)
    body: dict[str, object] = {"error": code, "message": message}
    if code == "ticket.change_limit":
        body["next_change_at"] = next_change_at.isoformat() if next_change_at else None
    return Response(body, status_code=status)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _key_from(body: bytes) -> tuple[bytes, str] | None:
    try:
        data = json.loads(body or b"null")
        text = data["public_key"]
        label = data.get("label", "")
        if not isinstance(text, str) or not isinstance(label, str) or len(text) > 200:
            return None
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        return None
    return raw, label


def _device_json(device: Any, ticket_id: int) -> dict[str, object]:
    return {"device_id": device.id, "ticket_id": ticket_id, "issuer_key_id": device.issuer_key_id,
            "record": _b64(device.static_record)}


@get("/tickets", guards=passenger)
async def tickets_page(request: Request) -> Template:
    user = await signed_in_user(request)
    views = await in_transaction(request, service.my_tickets, user.id, clock.today())
    return await page(request, "tickets/list.html", tickets=views, state_text=state_text, product_name=product_name,
                      max_devices=service.MAX_DEVICES, change_days=ticket_phones.PHONE_CHANGE_DAYS, rename_errors={})


@get("/tickets/{ticket_id:int}/show", guards=passenger)
async def show_ticket(request: Request, ticket_id: RowId) -> Template:
    user = await signed_in_user(request)
    view = await in_transaction(request, service.my_ticket, user.id, ticket_id, clock.today())
    if view is None:
        raise NotFoundException()
    response = await page(request, "tickets/show.html", view=view, state_text=state_text, product_name=product_name,
                          refresh_seconds=tr.REFRESH_SECONDS, freshness_seconds=tr.DEFAULT_FRESHNESS_SECONDS,
                          max_devices=service.MAX_DEVICES, change_days=ticket_phones.PHONE_CHANGE_DAYS,
                          rename_errors={})
    if view.is_mobile:
        response.headers.update(offline_headers(request, user))
    return response


@get("/tickets/current", guards=passenger)
async def current_ticket(request: Request) -> Response:
    """The manifest's "Pokaż bilet do kontroli" shortcut: the valid mobile ticket, else the ticket list
    (offline, the service worker answers with the ticket page it kept)."""
    user = await signed_in_user(request)
    ticket_id = await in_transaction(request, service.current_mobile_ticket, user.id, clock.today())
    return redirect(f"/tickets/{ticket_id}/show" if ticket_id else "/tickets")


@get("/tickets/{ticket_id:int}/devices", guards=passenger)
async def devices_box(request: Request, ticket_id: RowId) -> Template:
    """The phones holding a ticket (htmx/fetch after binding: the count and names as they are now)."""
    user = await signed_in_user(request)
    view = await in_transaction(request, service.my_ticket, user.id, ticket_id, clock.today())
    if view is None:
        raise NotFoundException()
    return Template(template_name="tickets/_devices_box.html", context={
        "view": view, "max_devices": service.MAX_DEVICES, "change_days": ticket_phones.PHONE_CHANGE_DAYS,
        "next": f"/tickets/{ticket_id}/show", "rename_errors": {}})


@post("/tickets/devices/{device_id:int}/rename", guards=passenger)
async def rename_device(request: Request, device_id: RowId) -> Template | Response:
    """A name the passenger recognises a phone by (bounded, no control characters; escaped when shown)."""
    user = await signed_in_user(request)
    form = await form_of(request)
    name = ticket_phones.clean_phone_name(form.get("label", ""))
    if name is None:
        views = await in_transaction(request, service.my_tickets, user.id, clock.today())
        if not any(d.id == device_id for v in views for d in v.devices):
            raise NotFoundException()
        error = _("Podaj nazwę telefonu: od 1 do %(n)s znaków, bez znaków sterujących.", n=ticket_phones.PHONE_NAME_MAX)
        return await page(request, "tickets/list.html", status_code=422, tickets=views, state_text=state_text,
                          product_name=product_name, max_devices=service.MAX_DEVICES,
                          change_days=ticket_phones.PHONE_CHANGE_DAYS, rename_errors={device_id: error})
    device = await in_transaction(request, service.rename_device, user.id, device_id, name)
    if device is None:
        raise NotFoundException()
    flash(request, _("Zmieniono nazwę telefonu."), "success")
    return redirect(safe_next(form.get("next"), "/tickets"))


@post("/tickets/{ticket_id:int}/devices", guards=passenger, status_code=201)
async def bind_device(request: Request, ticket_id: RowId) -> Response:
    """JSON {public_key: base64 of the 33- or 65-byte P-256 point, label} -> the signed static record."""
    user = await signed_in_user(request)
    parsed = _key_from(await request.body())
    if parsed is None:
        return _problem("ticket.bad_request", 400)
    # The phone's name: the one the page sent if usable, else its browser and system ("Chrome · Android").
    label = ticket_phones.clean_phone_name(parsed[1]) or ticket_phones.phone_name(request.headers.get("user-agent"))
    keys = service.issuer_keys_for(settings_of(request))
    result = await in_transaction(request, service.bind_device, user.id, ticket_id, parsed[0], label, keys,
                                  clock.today(), client_ip(request))
    if result.problem:
        status = {"ticket.not_found": 404, "ticket.bad_key": 400, "ticket.device_limit": 409}.get(result.problem, 409)
        return _problem(result.problem, status, result.next_change_at)
    return Response(_device_json(result.device, ticket_id), status_code=201)


@post("/tickets/{ticket_id:int}/devices/refresh", guards=passenger, status_code=200)
async def refresh_record(request: Request, ticket_id: RowId) -> Response:
    """A bound phone, when online, fetches a freshly signed record; 410 when it was unbound meanwhile."""
    user = await signed_in_user(request)
    parsed = _key_from(await request.body())
    if parsed is None:
        return _problem("ticket.bad_request", 400)
    try:
        key_hex = tr.compressed_device_key(parsed[0]).hex()
    except ValueError:
        return _problem("ticket.bad_key", 400)
    view = await in_transaction(request, service.my_ticket, user.id, ticket_id, clock.today())
    if view is None:
        return _problem("ticket.not_found", 404)
    if not any(d.public_key == key_hex for d in view.devices):
        return _problem("ticket.unbound", 410)
    keys = service.issuer_keys_for(settings_of(request))
    result = await in_transaction(request, service.bind_device, user.id, ticket_id, parsed[0], "", keys,
                                  clock.today(), client_ip(request))
    if result.problem:
        return _problem(result.problem, 410 if result.problem == "ticket.ended" else 409)
    return Response(_device_json(result.device, ticket_id), status_code=200)


@post("/tickets/devices/{device_id:int}/unbind", guards=passenger)
async def unbind_device(request: Request, device_id: RowId) -> Response:
    user = await signed_in_user(request)
    form = await form_of(request)
    device = await in_transaction(request, service.unbind_device, user.id, device_id, client_ip(request))
    if device is None:
        raise NotFoundException()
    flash(request, _("Telefon został odłączony od biletu."), "success")
    return redirect(safe_next(form.get("next"), "/tickets"))


router = Router(path="/", route_handlers=[tickets_page, show_ticket, current_ticket, devices_box, rename_device, bind_device,
                                          refresh_record, unbind_device])
