"""Card applications over HTTP: the passenger's form, deposit payment, status page with its timeline and giving
up (/card-applications); the desk's queue and steps (/desk/card-applications)."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from litestar.di import NamedDependency
from litestar import Request, Router, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Response, Template

from domain.money import format_pln
from domain.operator import OperatorProfile
from web.card_applications import photos
from web.card_applications import service
from web.card_applications.texts import fare_text, status_text, text
from payments import PaymentGateway
from web.payment_records.interface import PaymentPurposes, send_to_payment_page
from web.platform.http import (RowId, checked, clean_text, client_ip, flash, form_of, in_transaction, page, redirect,
                      requires_role, settings_of)
from web.accounts.interface import signed_in_account
from web.platform.i18n import _
from web.accounts.interface import User

log = logging.getLogger("ekp.card_applications")
passenger = [requires_role("passenger")]
staff = [requires_role("staff")]

# The whole form: two files of at most photos.MAX_UPLOAD and a few short fields. A larger Content-Length is
# refused before the body is read; a body without one is cut off by Litestar at the same size (413).
MAX_BODY = 2 * photos.MAX_UPLOAD + 64 * 1024
FIELDS = ("fare", "service_point", "entitlement_document", "entitlement_until")


def _helpers() -> dict[str, Any]:
    return {"status_text": status_text, "fare_text": fare_text, "pln": format_pln,
            "service_points": service.SERVICE_POINTS, "fares": service.FARES}


async def _form_page(request: Request, status: int = 200, **context: Any) -> Template:
    user = await signed_in_account(request)
    context.setdefault("errors", {})
    context.setdefault("values", {})
    return await page(request, "card_applications/new.html", status_code=status, applicant=user,
                      deposit=format_pln(service.rules.CARD_DEPOSIT), **_helpers(), **context)


@get("/card-applications", guards=passenger)
async def index(request: Request) -> Template:
    user = await signed_in_account(request)
    applications = await in_transaction(request, service.my_applications, user.id)
    return await page(request, "card_applications/index.html", applications=applications, **_helpers())


@get("/card-applications/new", guards=passenger)
async def new(request: Request) -> Template:
    if request.query_params.get("too_big"):
        return await _form_page(request, 413, errors={"photo": [text("card_applications.too_big")]})
    return await _form_page(request)


def _too_big(request: Request, exc: Exception) -> Response:
    """A body past MAX_BODY (refused by Litestar while the CSRF check reads it, before anything is stored):
    back to the form, which says so next to the photo field."""
    return redirect("/card-applications/new?too_big=1")


async def _upload_form(request: Request) -> tuple[User, Any] | Response:
    """The signed-in passenger and the form of an upload; a body declared past MAX_BODY is not read: back to
    the form, which says so next to the photo field."""
    user = await signed_in_account(request)
    declared = _declared_length(request)
    if declared is not None and declared > MAX_BODY:
        return redirect("/card-applications/new?too_big=1")
    return user, await request.form()


async def _upload(value: Any) -> service.Upload | None:
    if not isinstance(value, UploadFile):
        return None
    data = await value.read(photos.MAX_UPLOAD + 1)
    return service.Upload(data=b"" if len(data) > photos.MAX_UPLOAD else data, too_big=len(data) > photos.MAX_UPLOAD)


def _declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length", "")
    return int(raw) if raw.isdigit() and len(raw) < 20 else None


@post("/card-applications/new", guards=passenger, request_max_body_size=MAX_BODY,
      exception_handlers={413: _too_big})
async def apply(request: Request, purposes: NamedDependency[PaymentPurposes],
                gateway: NamedDependency[PaymentGateway]) -> Template | Response:
    """R-KKM-1, R-KKM-3: check and save; then the deposit on the payment page (R-KKM-2), none for free rides."""
    read = await _upload_form(request)
    if isinstance(read, Response):
        return read
    user, raw = read
    form = {key: clean_text(value)[:100] for key, value in raw.items() if isinstance(value, str) and key in FIELDS}
    photo = await _upload(raw.get("photo"))
    scan = await _upload(raw.get("scan"))
    try:
        row = await in_transaction(request, service.apply, settings_of(request), user.id, form, photo, scan,
                                   client_ip(request))
    except service.ApplicationProblems as exc:
        errors = {name: [text(code) for code in codes] for name, codes in exc.errors.items()}
        return await _form_page(request, 422, errors=errors, values=form)
    if row.deposit > 0:
        return await _pay(request, gateway, purposes, user.id, row.id)  # type: ignore[arg-type]
    flash(request, _("Wniosek został złożony."), "success")
    return redirect(f"/card-applications/{row.id}")


async def _pay(request: Request, gateway: PaymentGateway, purposes: PaymentPurposes, user_id: int, application_id: int) -> Response:
    try:
        to_pay = await in_transaction(request, service.start_deposit_payment, user_id, application_id)
    except service.Refused as exc:
        flash(request, text(exc.code), "error")
        return redirect(f"/card-applications/{application_id}")
    return await send_to_payment_page(request, gateway, purposes, to_pay, back=f"/card-applications/{application_id}",
                                      save_card=False,
                                      unavailable_message=text("card_applications.gateway_unavailable"))


@post("/card-applications/{application_id:int}/pay", guards=passenger)
async def pay(request: Request, application_id: RowId, purposes: NamedDependency[PaymentPurposes],
              gateway: NamedDependency[PaymentGateway]) -> Response:
    user = await signed_in_account(request)
    return await _pay(request, gateway, purposes, user.id, application_id)


async def _status_page(request: Request, application_id: int, status: int = 200, **context: Any) -> Template:
    user = await signed_in_account(request)
    found = await in_transaction(request, service.my_application_view, user.id, application_id)
    if found is None:
        raise NotFoundException()
    context.setdefault("errors", {})
    return await page(request, "card_applications/show.html", status_code=status, application=found, **_helpers(),
                      **context)


@get("/card-applications/{application_id:int}", guards=passenger)
async def show(request: Request, application_id: RowId) -> Template:
    return await _status_page(request, application_id)


def _image(found: tuple[bytes, str] | None, name: str) -> Response:
    if found is None:
        raise NotFoundException()
    data, media_type = found
    extension = "pdf" if media_type == "application/pdf" else "jpg"
    return Response(content=data, media_type=media_type, headers={
        "cache-control": "private, no-store", "content-disposition": f'inline; filename="{name}.{extension}"'})


@get("/card-applications/{application_id:int}/photo", guards=passenger)
async def my_photo(request: Request, application_id: RowId) -> Response:
    user = await signed_in_account(request)
    found = await in_transaction(
        request, lambda s: service.photo_of(s, settings_of(request), application_id, "photo", user_id=user.id))
    return _image(found, "zdjecie")


def _move_to(raw: str) -> int | None | str:
    """The card chosen for the balance: a row id, None for none, or an error code."""
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        return "card_applications.give_up.target_not_yours"
    return int(raw)


def _given_up_message(given_up: service.GivenUp) -> str:
    if given_up.card_number is None:
        if given_up.refund:
            return _("Zrezygnowano z karty. Kaucję %(amount)s zwrócimy na Twój rachunek.", amount=format_pln(given_up.refund))
        return _("Zrezygnowano z karty.")
    parts = [_("Karta %(number)s jest zablokowana i odłączona od konta.", number=given_up.card_number)]
    if given_up.refund:
        parts.append(_("Kaucję %(amount)s zwrócimy na rachunek, z którego ją zapłacono.", amount=format_pln(given_up.refund)))
    elif given_up.deposit_kept is not None and given_up.deposit_kept.value != "nothing_paid":
        parts.append(_("Kaucja nie podlega zwrotowi (karta utracona, uszkodzona przez posiadacza albo nieużywana przez 3 lata)."))
    if given_up.balance is service.rules.BalanceHandling.MOVED:
        parts.append(_("Saldo %(amount)s przeniesiono na kartę %(number)s.", amount=format_pln(given_up.amount),
                       number=given_up.moved_to or ""))
    elif given_up.balance is service.rules.BalanceHandling.PAID_OUT:
        parts.append(_("Saldo %(amount)s wypłacono gotówką.", amount=format_pln(given_up.amount)))
    elif given_up.balance is service.rules.BalanceHandling.FORFEITED:
        parts.append(_("Saldo %(amount)s przepadło (3 lata bez użycia).", amount=format_pln(given_up.amount)))
    return " ".join(parts)


@post("/card-applications/{application_id:int}/give-up", guards=passenger)
async def give_up(request: Request, application_id: RowId, gateway: NamedDependency[PaymentGateway]) -> Template | Response:
    """R-KKM-2: giving up before collection, or a collected card; the deposit goes back to the payer (except
    for a lost, damaged or 3-years-unused card) and the card's balance moves to another of the account's cards."""
    user = await signed_in_account(request)
    form = await form_of(request)
    if not checked(form, "confirm"):
        return await _status_page(request, application_id, 422,
                                  errors={"confirm": [text("card_applications.confirm_required")]})
    move_to = _move_to(form.get("move_to", ""))
    if isinstance(move_to, str):
        return await _status_page(request, application_id, 422, errors={"move_to": [text(move_to)]})
    try:
        given_up = await in_transaction(request, partial(service.give_up, operator=settings_of(request).profile),
                                        user.id, application_id, client_ip(request), move_to)
    except service.Refused as exc:
        field = "move_to" if exc.code.startswith("card_applications.give_up.") and \
            exc.code != "card_applications.give_up.not_possible" else "confirm"
        return await _status_page(request, application_id, 409 if field == "confirm" else 422,
                                  errors={field: [text(exc.code)]})
    if given_up.refund:
        await service.give_back_deposit(request.app.state.engine, gateway, given_up)
    flash(request, _given_up_message(given_up), "success")
    return redirect(f"/card-applications/{application_id}")


@post("/card-applications/{application_id:int}/complete", guards=passenger, request_max_body_size=MAX_BODY,
      exception_handlers={413: _too_big})
async def complete(request: Request, application_id: RowId) -> Template | Response:
    """R-KKM-3: a returned application completed (new photo or scan) goes back to the desk; no second deposit."""
    read = await _upload_form(request)
    if isinstance(read, Response):
        return read
    user, raw = read
    photo = await _upload(raw.get("photo"))
    scan = await _upload(raw.get("scan"))
    try:
        await in_transaction(request, service.complete_returned, settings_of(request), user.id, application_id,
                             photo, scan, client_ip(request))
    except service.ApplicationProblems as exc:
        errors = {name: [text(code) for code in codes] for name, codes in exc.errors.items()}
        return await _status_page(request, application_id, 422, errors=errors)
    except service.Refused as exc:
        return await _status_page(request, application_id, 409, errors={"photo": [text(exc.code)]})
    flash(request, _("Wniosek uzupełniony i przekazany ponownie do punktu obsługi."), "success")
    return redirect(f"/card-applications/{application_id}")


# --------------------------------------------------------------------------- R-KKM-8 data changes


async def _change_page(request: Request, application_id: int, status: int = 200, **context: Any) -> Template:
    user = await signed_in_account(request)
    found = await in_transaction(request, service.my_application_view, user.id, application_id)
    if found is None or found.row.status != service.COLLECTED or found.row.kind != "personal":
        raise NotFoundException()
    context.setdefault("errors", {})
    context.setdefault("values", {"fare": found.row.registered_fare})
    return await page(request, "card_applications/change.html", status_code=status, application=found,
                      applicant=user, change_fares=service.CHANGE_FARES, deposit=format_pln(service.rules.CARD_DEPOSIT),
                      **_helpers(), **context)


@get("/card-applications/{application_id:int}/change", guards=passenger)
async def change_form(request: Request, application_id: RowId) -> Template:
    return await _change_page(request, application_id)


@post("/card-applications/{application_id:int}/change", guards=passenger, request_max_body_size=MAX_BODY,
      exception_handlers={413: _too_big})
async def change(request: Request, application_id: RowId,
                 purposes: NamedDependency[PaymentPurposes], gateway: NamedDependency[PaymentGateway]) -> Template | Response:
    """R-KKM-8: free when the printed card stays as it is; otherwise a new card and a new deposit."""
    read = await _upload_form(request)
    if isinstance(read, Response):
        return read
    user, raw = read
    form = {key: clean_text(value)[:100] for key, value in raw.items()
            if isinstance(value, str) and key in ("fare", "entitlement_until", "name")}
    photo = await _upload(raw.get("photo"))
    try:
        row = await in_transaction(request, service.request_change, settings_of(request), user.id, application_id,
                                   form, photo, client_ip(request))
    except service.ApplicationProblems as exc:
        errors = {name: [text(code) for code in codes] for name, codes in exc.errors.items()}
        return await _change_page(request, application_id, 422, errors=errors, values=form)
    except service.Refused as exc:
        return await _change_page(request, application_id, 409, errors={"fare": [text(exc.code)]}, values=form)
    if row.deposit > 0:
        return await _pay(request, gateway, purposes, user.id, row.id)  # type: ignore[arg-type]
    flash(request, _("Wniosek o zmianę danych został złożony."), "success")
    return redirect(f"/card-applications/{row.id}")


# --------------------------------------------------------------------------- the desk


async def _queue(request: Request, status: int = 200, **context: Any) -> Template:
    which = request.query_params.get("filter", "new")
    which = which if which in service.FILTERS else "new"
    rows, replaced = await in_transaction(request, service.desk_queue_page, which)
    return await page(request, "card_applications/desk_queue.html", status_code=status, rows=rows, which=which,
                      replaced=replaced,
                      **_helpers(), **context)


@get("/desk/card-applications", guards=staff)
async def desk_queue(request: Request) -> Template:
    return await _queue(request)


async def _desk_page(request: Request, application_id: int, status: int = 200, **context: Any) -> Template:
    found = await in_transaction(request, service.desk_view, application_id)
    if found is None:
        raise NotFoundException()
    context.setdefault("errors", {})
    context.setdefault("values", {})
    return await page(request, "card_applications/desk_show.html", status_code=status, application=found,
                      **_helpers(), **context)


@get("/desk/card-applications/{application_id:int}", guards=staff)
async def desk_show(request: Request, application_id: RowId) -> Template:
    return await _desk_page(request, application_id)


@get("/desk/card-applications/{application_id:int}/{what:str}", guards=staff)
async def desk_file(request: Request, application_id: RowId, what: FromPath[str]) -> Response:
    if what not in ("photo", "scan"):
        raise NotFoundException()
    found = await in_transaction(
        request, lambda s: service.photo_of(s, settings_of(request), application_id, what, user_id=None))
    return _image(found, "zdjecie" if what == "photo" else "dokument")


@post("/desk/card-applications/{application_id:int}/{step:str}", guards=staff)
async def desk_step(request: Request, application_id: RowId, step: FromPath[str],
                    gateway: NamedDependency[PaymentGateway]) -> Template | Response:
    """accept | return (with a reason) | made (with the card's number) | collected (after the ID check)."""
    user = await signed_in_account(request)
    assert user is not None
    form = await form_of(request)
    ip = client_ip(request)
    values = {"reason": form.get("reason", "")[:600], "number": form.get("number", "")[:40],
              "move_to": form.get("move_to", "")[:40]}
    field = {"accept": "accept", "return": "reason", "made": "number", "collected": "identity_checked",
             "give-up": "give_up"}.get(step)
    if field is None:
        raise NotFoundException()
    operator = settings_of(request).profile
    try:
        if step == "accept":
            await in_transaction(request, partial(service.accept, operator=operator), user.id, application_id, ip)
            done = _("Wniosek przyjęty: karta w produkcji.")
        elif step == "return":
            await in_transaction(request, partial(service.return_incomplete, operator=operator), user.id,
                                 application_id, values["reason"], ip)
            done = _("Wniosek zwrócony do uzupełnienia.")
        elif step == "made":
            await in_transaction(request, partial(service.card_made, operator=operator), user.id, application_id,
                                 values["number"], ip)
            done = _("Karta wykonana i czeka na odbiór.")
        elif step == "give-up":
            given_up = await in_transaction(request, partial(_desk_give_up, operator=operator), user.id, application_id,
                                            form, values["move_to"], ip)
            if given_up.refund:
                await service.give_back_deposit(request.app.state.engine, gateway, given_up)
            done = _given_up_message(given_up)
        else:
            number = await in_transaction(
                request, lambda s: service.collected(s, user.id, application_id, ip, operator=operator,  # type: ignore[arg-type]
                                                     identity_checked=checked(form, "identity_checked"),
                                                     entitlement_shown=checked(form, "entitlement_shown"),
                                                     settings=settings_of(request)))
            done = _("Karta %(number)s wydana i przypisana do konta pasażera.", number=number)
    except service.Refused as exc:
        if exc.code == "card_applications.desk.entitlement_required":
            field = "entitlement_shown"
        elif step == "give-up" and exc.code not in ("card_applications.give_up.not_possible", "card_applications.not_found"):
            field = "move_to"
        return await _desk_page(request, application_id, 409 if exc.code.endswith("wrong_state") else 422,
                                errors={field: [text(exc.code)]}, values=values)
    flash(request, done, "success")
    return redirect(f"/desk/card-applications/{application_id}")


def _desk_give_up(session: Any, staff_id: int, application_id: int, form: dict[str, str], move_to: str,
                  ip: str | None, *, operator: OperatorProfile) -> service.GivenUp:
    """R-KKM-2 at the desk: the card of this collected application given up; the balance moved to the card
    numbered `move_to` (same account) or paid out in cash."""
    row = session.get(service.CardApplicationRow, application_id)
    if row is None or row.status != service.COLLECTED or not row.card_number:
        raise service.Refused("card_applications.give_up.not_possible")
    target = "".join(move_to.split()) or None
    return service.give_up_card(session, row.card_number, ip, operator=operator, user_id=None, staff_id=staff_id,
                                damaged_by_holder=checked(form, "damaged_by_holder"), move_to=target,
                                pay_out=checked(form, "pay_out") and target is None)


router = Router(path="/", route_handlers=[index, new, apply, pay, show, my_photo, give_up, complete, change_form, change,
                                          desk_queue, desk_show,
                                          desk_file, desk_step])
