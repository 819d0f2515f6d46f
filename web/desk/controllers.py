"""The customer-service desk for staff (BOK/POK): e-purse cards and linking cards after an ID check."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from litestar import Request, Router, get, post
from litestar.params import PathParameter
from litestar.response import Response, Template

from domain.cards import LinkOutcome
from domain.carriers import carrier_choices
from domain.money import MoneyFormatError, format_pln, parse_pln
from web.cards.interface import card_fields
from web.platform.http import (checked, client_ip, flash, form_of, in_transaction, page, redirect, requires_role, settings_of,
                      signed_in_user)
from web.platform.i18n import _
from web.platform.messages import message
from web.desk import service
from web.payment_records import interface as payment_records

staff = [requires_role("staff")]
MAX_CARD_NUMBER = 20
# An e-purse card number in a URL path: letters and digits only, bounded (else 400 before any database call).
CardNumber = Annotated[str, PathParameter(min_length=1, max_length=MAX_CARD_NUMBER, pattern=r"^[0-9A-Za-z]+$")]


async def _desk(request: Request, status: int = 200, **context: object) -> Template:
    context.setdefault("errors", {})
    context.setdefault("values", {})
    queue = await in_transaction(request, payment_records.staff_queue)
    return await page(request, "desk/index.html", status_code=status, carriers=carrier_choices(), payment_queue=queue,
                      **context)


async def _card_page(request: Request, number: str, status: int = 200, **context: object) -> Template:
    compact = "".join(number.split())
    plausible = 0 < len(compact) <= MAX_CARD_NUMBER and compact.isascii() and compact.isalnum()
    card = await in_transaction(request, service.find_purse_card, number) if plausible else None
    if card is None:
        return await _desk(request, 404, errors={"number": [message("desk.no_such_card")]}, values={"number": number})
    context.setdefault("errors", {})
    context.setdefault("values", {})
    return await page(request, "desk/purse.html", status_code=status, card=card,
                      minimum=settings_of(request).purse_tariff.top_up.service_point_minimum,
                      limits=service.desk_limits(settings_of(request)), **context)


@get("/desk", guards=staff)
async def desk(request: Request) -> Template | Response:
    number = request.query_params.get("number", "").strip()[:100]
    if number:
        return await _card_page(request, number)
    return await _desk(request)


@get("/desk/purse/{number:str}", guards=staff)
async def purse_card(request: Request, number: CardNumber) -> Template:
    return await _card_page(request, number)


def _confirmed_amount(form: dict[str, str]) -> int | None:
    """The amount the second confirmation names (R-TOP-5), or None."""
    try:
        return parse_pln(form.get("confirmed_amount", "")[:40])
    except MoneyFormatError:
        return None


@post("/desk/purse/{number:str}/top-up", guards=staff)
async def top_up(request: Request, number: CardNumber) -> Template:
    """R-TOP-5: a plain amount in złoty, at most the ceiling; above the threshold a second submit confirms it."""
    user = await signed_in_user(request)
    form = await form_of(request)
    raw = form.get("amount", "")[:40]
    values = {"amount": raw}
    try:
        amount = parse_pln(raw)
    except MoneyFormatError:
        return await _card_page(request, number, 422, errors={"amount": [message("desk.amount_format")]}, values=values)
    limits = service.desk_limits(settings_of(request))
    try:
        receipt = await in_transaction(request, partial(service.cash_top_up, limits=limits,
                                                        confirmed_amount=_confirmed_amount(form),
                                                        tariff=settings_of(request).purse_tariff),
                                       user.id, number, amount, client_ip(request))
    except service.DeskProblem as exc:
        if exc.code == "purse.confirmation_needed":
            confirm = {"amount": amount, "text": format_pln(amount, symbol=False), "threshold": limits.confirm_above}
            return await _card_page(request, number, values=values, confirm=confirm)
        if exc.code == "purse.desk_maximum":
            text = message("desk.amount_above_maximum", max=format_pln(limits.maximum))
        else:
            text = message(exc.code)
        return await _card_page(request, number, 404 if exc.code == "desk.no_such_card" else 422,
                                errors={"amount": [text]}, values=values)
    return await _card_page(request, number, receipt=receipt)


@post("/desk/purse/{number:str}/loss", guards=staff)
async def report_loss(request: Request, number: CardNumber) -> Template | Response:
    user = await signed_in_user(request)
    form = await form_of(request)
    if not checked(form, "identity_checked"):
        return await _card_page(request, number, 422, errors={"identity_checked": [message("desk.identity_required")]})
    try:
        blocked_from = await in_transaction(request, service.report_loss, user.id, number, client_ip(request))
    except service.DeskProblem as exc:
        return await _card_page(request, number, 422, errors={"loss": [message(exc.code)]})
    flash(request, _("Zgłoszono utratę karty. Karta zostanie zablokowana %(at)s.", at=blocked_from.strftime("%d.%m.%Y %H:%M")), "success")
    return redirect(f"/desk/purse/{number}")


@post("/desk/purse/{number:str}/replace", guards=staff)
async def replace(request: Request, number: CardNumber) -> Template | Response:
    user = await signed_in_user(request)
    form = await form_of(request)
    new_number = form.get("new_number", "")
    try:
        new_card = await in_transaction(request, service.replace_card, user.id, number, new_number, client_ip(request))
    except service.DeskProblem as exc:
        return await _card_page(request, number, 422, errors={"new_number": [message(exc.code)]},
                                values={"new_number": new_number})
    flash(request, _("Wydano nową kartę %(number)s; przeniesiono saldo.", number=new_card.number), "success")
    return redirect(f"/desk/purse/{new_card.number}")


@post("/desk/link-card", guards=staff)
async def link_card(request: Request) -> Template | Response:
    user = await signed_in_user(request)
    form = await form_of(request)
    values = {k: form.get(k, "").strip() for k in ("email", "carrier_type", "client_code")}
    carrier_type, errors = card_fields(values)
    if not values["email"]:
        errors["email"] = [message("email.required")]
    if not checked(form, "identity_checked"):
        errors["identity_checked"] = [message("desk.identity_required")]
    if errors or carrier_type is None:
        return await _desk(request, 422, errors=errors, values=values)
    try:
        outcome, _account, card = await in_transaction(request, service.link_card_for, settings_of(request).profile,
                                                       user.id, values["email"],
                                                       carrier_type, values["client_code"], client_ip(request))
    except service.DeskProblem as exc:
        return await _desk(request, 422, errors={"form": [message(exc.code)]}, values=values)
    if outcome is not LinkOutcome.MATCH:
        return await _desk(request, 409, errors={"form": [message(f"desk.{outcome.value}")]}, values=values)
    flash(request, _("Karta %(code)s została przypisana do konta %(email)s.", code=card.client_code, email=values["email"]), "success")
    return redirect("/desk")


router = Router(path="/", route_handlers=[desk, purse_card, top_up, report_loss, replace, link_card])
