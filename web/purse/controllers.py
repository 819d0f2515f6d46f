""""Portmonetka": the passenger's Kołobrzeg e-purse cards — balance, outstanding credit, history,
linking a card, online top-up through the payments port (bonus shown before paying, booked on
confirmation) and the loss report (R-KKM-7)."""

from __future__ import annotations

import logging

from litestar.di import NamedDependency
from litestar import Request, Router, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Response, Template

from domain.money import MoneyFormatError, format_pln, parse_pln
from domain.purse_tariff import PurseTariff
from web.platform.http import (RowId, checked, client_ip, flash, form_of, in_transaction, page, redirect, requires_role,
                      settings_of)
from web.accounts.interface import signed_in_account
from web.platform.messages import message
from web.purse import service
from payments import PaymentGateway
from web.payment_records.interface import PaymentPurposes, send_to_payment_page

log = logging.getLogger("ekp.purse")
passenger = [requires_role("passenger")]
QUICK_AMOUNTS = (2000, 5000, 10000)  # grosze: the top-up amount buttons (checked like a typed amount)


async def _purse_page(request: Request, status: int = 200, **context: object) -> Template:
    user = await signed_in_account(request)
    cards = await in_transaction(request, service.my_purse_cards, user.id)
    context.setdefault("errors", {})
    context.setdefault("values", {})
    context.setdefault("quote", None)
    context.setdefault("quote_card", None)
    tariff = settings_of(request).purse_tariff
    return await page(request, "purse/index.html", status_code=status, cards=cards, pln=format_pln,
                      minimum=tariff.top_up.service_point_minimum, brackets=tariff.top_up.bonus_brackets,
                      no_pesel=user.pesel_hash is None, quick_amounts=QUICK_AMOUNTS, **context)


@get("/purse", guards=passenger)
async def purse_page(request: Request) -> Template:
    return await _purse_page(request)


@post("/purse/link", guards=passenger)
async def link(request: Request) -> Template | Response:
    user = await signed_in_account(request)
    assert user is not None
    form = await form_of(request)
    number = form.get("number", "").strip()
    if not number:
        return await _purse_page(request, 422, errors={"number": [message("purse.number.required")]}, values={"number": number})
    limiter = request.app.state.limiter
    ip = client_ip(request)
    # Counted first, atomically (R-AUTH-1); only a mismatch keeps its count.
    counters = [("link_card.account", str(user.id)), ("link_card.ip", ip)]
    if wait := await limiter.count(*counters):
        from web.platform.http import wait_text

        return await _purse_page(request, 429, errors={"number": [wait_text(wait)]}, values={"number": number})
    outcome = await in_transaction(request, service.link_purse_card, user.id, number, ip)
    if outcome != "purse.mismatch":
        await limiter.uncount(counters)
    if outcome == "purse.linked":
        flash(request, message(outcome), "success")
        return redirect("/purse")
    return await _purse_page(request, 409 if outcome != "purse.mismatch" else 422,
                             errors={"number": [message(outcome)]}, values={"number": number})


def _amount_problem(raw: str) -> tuple[int | None, str | None]:
    try:
        amount = parse_pln(raw.strip())
    except MoneyFormatError:
        return None, "purse.amount.required"
    if amount <= 0:
        return None, "purse.amount.required"
    return amount, None


def _problem_text(code: str, tariff: PurseTariff) -> str:
    if code == "purse.below_minimum":
        return message("purse.top_up_minimum", min=format_pln(tariff.top_up.service_point_minimum))
    return message(code)


@post("/purse/{card_id:int}/top-up", guards=passenger)
async def top_up(request: Request, card_id: RowId,
                 purposes: NamedDependency[PaymentPurposes], gateway: NamedDependency[PaymentGateway]) -> Template | Response:
    """`action=quote` shows the bonus and the balance after; `action=pay` goes to the payment page."""
    user = await signed_in_account(request)
    form = await form_of(request)
    raw = form.get("amount", "")
    if form.get("quick"):  # a quick-amount button: a quote for that amount, validated like a typed one
        raw = form["quick"][:20]
        form["action"] = "quote"
    values = {"amount": raw, "card_id": card_id}
    amount, problem = _amount_problem(raw)
    if problem is None:
        try:
            quote = await in_transaction(request, service.quote_online_top_up, settings_of(request).purse_tariff,
                                         user.id, card_id, amount)
        except service.TopUpProblem as exc:
            problem = exc.code
    if problem is not None:
        problem_text = _problem_text(problem, settings_of(request).purse_tariff)
        return await _purse_page(request, 422, errors={f"amount-{card_id}": [problem_text]}, values=values)
    if form.get("action") != "pay":
        return await _purse_page(request, quote=quote, quote_card=card_id, values=values)
    to_pay = await in_transaction(request, service.start_online_top_up, settings_of(request).purse_tariff,
                                   user.id, card_id, amount)
    return await send_to_payment_page(request, gateway, purposes, to_pay, back="/purse", save_card=False,
                                     unavailable_message=message("purse.gateway_unavailable"))


async def _loss_page(request: Request, card_id: int, status: int = 200, **context: object) -> Template:
    """The loss report (R-KKM-7) on its own page, out of the everyday purse content."""
    user = await signed_in_account(request)
    cards = await in_transaction(request, service.my_purse_cards, user.id)
    card = next((c for c in cards if c.id == card_id), None)
    if card is None:
        raise NotFoundException()
    context.setdefault("errors", {})
    return await page(request, "purse/loss.html", status_code=status, card=card, **context)


@get("/purse/{card_id:int}/loss", guards=passenger)
async def loss_page(request: Request, card_id: RowId) -> Template:
    return await _loss_page(request, card_id)


@post("/purse/{card_id:int}/loss", guards=passenger)
async def report_loss(request: Request, card_id: RowId) -> Template | Response:
    user = await signed_in_account(request)
    form = await form_of(request)
    if not checked(form, "confirm"):
        return await _loss_page(request, card_id, 422,
                                errors={f"loss-{card_id}": [message("purse.loss_confirm_required")]})
    code, blocked_from = await in_transaction(request, service.report_card_loss, user.id, card_id, client_ip(request))
    if code != "purse.loss_reported":
        return await _loss_page(request, card_id, 409, errors={f"loss-{card_id}": [message(code)]})
    text = message(code)
    if blocked_from is not None:
        text += " " + message("purse.blocked_from", at=f"{blocked_from:%d.%m.%Y %H:%M}")
    flash(request, text, "success")
    return redirect("/purse")


router = Router(path="/", route_handlers=[purse_page, link, top_up, loss_page, report_loss])
