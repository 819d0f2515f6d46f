""""Moje karty": the list, adding a card in steps (htmx), unlinking (R-CARD-1..4)."""

from __future__ import annotations

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.plugins.htmx import ClientRedirect, HTMXRequest
from litestar.response import Response, Template

from domain.cards import LinkOutcome, client_code_problem
from domain.carriers import CarrierType, UnknownCarrierType, carrier_choices, carrier_type_from_code
from web.platform.http import wait_text
from web.accounts.interface import signed_in_account
from web.platform import clock
from web.platform.http import (RowId, client_ip, flash, form_of, in_transaction, page, redirect, requires_role, session_data,
                      settings_of)
from web.platform.i18n import _
from web.platform.messages import message
from web.cards import service
from web.cards.service import CardIsInUse

CONFIRM_SECONDS = 600
passenger = [requires_role("passenger")]


def _go(request: HTMXRequest, path: str) -> Response:
    if request.htmx:
        answer = ClientRedirect(path)
        answer.status_code = 200  # htmx follows HX-Redirect on a 200 (a POST handler's default would be 201)
        return answer
    return redirect(path)


@get("/cards", guards=passenger)
async def cards_page(request: Request) -> Template:
    user = await signed_in_account(request)
    cards = await in_transaction(request, service.my_cards, user.id)
    return await page(request, "cards/list.html", cards=cards)


async def _add_step(request: HTMXRequest, status: int = 200, **context: object) -> Template:
    user = await signed_in_account(request)
    context.setdefault("errors", {})
    context.setdefault("values", {})
    template = "cards/add.html"
    if request.htmx:
        # htmx 2 swaps only 2xx/3xx answers by default: a refusal sent with 4xx would never be shown.
        template, status = "cards/_add_step.html", 200
    return await page(request, template, status_code=status, carriers=carrier_choices(),
                      no_pesel=user.pesel_hash is None, **context)


@get("/cards/add", guards=passenger)
async def add_card_page(request: HTMXRequest) -> Template:
    return await _add_step(request)


def card_fields(values: dict[str, str]) -> tuple[CarrierType | None, dict[str, list[str]]]:
    """The carrier type and client code typed in a card form: the type, and the errors next to each field."""
    errors: dict[str, list[str]] = {}
    carrier_type = None
    try:
        carrier_type = carrier_type_from_code(values["carrier_type"])
    except UnknownCarrierType:
        errors["carrier_type"] = [message("carrier_type.required")]
    if code := client_code_problem(values["client_code"]):
        errors["client_code"] = [message(code)]
    return carrier_type, errors


@post("/cards/add", guards=passenger)
async def add_card_check(request: HTMXRequest) -> Template:
    user = await signed_in_account(request)
    assert user is not None
    form = await form_of(request)
    values = {"carrier_type": form.get("carrier_type", ""), "client_code": form.get("client_code", "").strip()}
    if user.pesel_hash is None:
        return await _add_step(request, 409, values=values)
    carrier_type, errors = card_fields(values)
    if errors or carrier_type is None:
        return await _add_step(request, 422, values=values, errors=errors)

    limiter = request.app.state.limiter
    ip = client_ip(request)
    # Counted first, atomically (R-AUTH-1); only a mismatch keeps its count.
    counters = [("link_card.account", str(user.id)), ("link_card.ip", ip)]
    if wait := await limiter.count(*counters):
        return await _add_step(request, 429, values=values, limit_message=wait_text(wait))
    check = await in_transaction(request, service.find_card_to_link, user.id, carrier_type, values["client_code"], ip)
    if check.outcome is not LinkOutcome.MISMATCH:
        await limiter.uncount(counters)
    if check.outcome is LinkOutcome.MISMATCH:
        return await _add_step(request, 422, values=values, errors={"form": [message("card.mismatch")]})
    if check.outcome is LinkOutcome.MATCH:
        session_data(request)["link_card"] = {"id": check.card.id, "at": int(clock.now().timestamp())}  # type: ignore[union-attr]
        template = "cards/_confirm.html" if request.htmx else "cards/confirm.html"
        return await page(request, template, card=check.card)
    return await _add_step(request, 409, values=values, errors={"form": [message(f"card.{check.outcome.value}")]})


@post("/cards/add/confirm", guards=passenger)
async def add_card_confirm(request: HTMXRequest) -> Template | Response:
    user = await signed_in_account(request)
    form = await form_of(request)
    pending = session_data(request).pop("link_card", None)
    if form.get("answer") != "yes":
        return _go(request, "/cards")
    if not pending or clock.now().timestamp() - pending.get("at", 0) > CONFIRM_SECONDS:
        return await _add_step(request, 410, errors={"form": [message("card.confirm_expired")]})
    outcome = await in_transaction(request, service.link_card, settings_of(request).profile, user.id, pending["id"],
                                   client_ip(request))
    if outcome is LinkOutcome.MATCH:
        flash(request, _("Karta została dodana do Twojego konta."), "success")
        return _go(request, "/cards")
    return await _add_step(request, 409, errors={"form": [message(f"card.{outcome.value}")]})


@get("/cards/{card_id:int}/unlink", guards=passenger)
async def unlink_page(request: Request, card_id: RowId) -> Template:
    user = await signed_in_account(request)
    card = await in_transaction(request, service.my_card, user.id, card_id)
    if card is None:
        raise NotFoundException()
    return await page(request, "cards/unlink.html", card=card, errors={})


@post("/cards/{card_id:int}/unlink", guards=passenger)
async def unlink(request: Request, card_id: RowId,
                 card_in_use: NamedDependency[CardIsInUse]) -> Template | Response:
    user = await signed_in_account(request)
    problem = await in_transaction(request, service.unlink_card, user.id, card_id,
                                   client_ip(request), card_in_use)
    if problem == "card.not_found":
        raise NotFoundException()
    if problem:
        card = await in_transaction(request, service.my_card, user.id, card_id)
        return await page(request, "cards/unlink.html", status_code=409, card=card, errors={"form": [message(problem)]})
    flash(request, _("Karta została odłączona od konta."), "success")
    return redirect("/cards")


router = Router(path="/", route_handlers=[cards_page, add_card_page, add_card_check, add_card_confirm, unlink_page, unlink])
