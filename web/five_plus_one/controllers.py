"""The "Bilet 5plus1" tab: eligibility, schedule, purchase, the active ticket, cancel and auto-renew."""

from __future__ import annotations

import logging
from datetime import date, timedelta

from litestar.di import NamedDependency
from litestar import Request, Router, get, post
from litestar.response import Response, Template

from domain import five_plus_one as rules
from domain.tariff_5p1 import TicketVariant, period_in_force
from web.platform import clock
from web.five_plus_one.billing import billing_policy
from payments import PaymentGateway
from web.payment_records.interface import PaymentPurposes, send_to_payment_page
from web.platform.http import (RowId, checked, flash, form_of, in_transaction, page, redirect, requires_role, settings_of,
                      signed_in_user)
from web.platform.i18n import _
from web.platform.messages import message
from web.five_plus_one import service

log = logging.getLogger("ekp.5p1")
passenger = [requires_role("passenger")]


async def _tab(request: Request, status: int = 200, **context: object) -> Template:
    user = await signed_in_user(request)
    view = await in_transaction(request, service.tab, user.id, billing_policy(settings_of(request)),
                                settings_of(request).tariff_5p1)
    today = clock.today()
    cancelled = await in_transaction(request, service.cancelled_ids, [p.id for p in view.payments])
    context.setdefault("values", {"first_day": today.isoformat(), "variant": "normal"})
    context.setdefault("errors", {})
    return await page(request, "five_plus_one/tab.html", status_code=status, tab=view, today=today,
                      prices=period_in_force(settings_of(request).tariff_5p1, today), reason_text=message(f"5p1.{view.eligibility.reason.value}") if view.eligibility.reason else None,
                      max_day=(today + timedelta(days=60)).isoformat(), cancelled_ids=cancelled, **context)


@get("/5plus1", guards=passenger)
async def tab(request: Request) -> Template:
    return await _tab(request)


def _read_choice(form: dict[str, str]) -> tuple[dict[str, list[str]], int | None, TicketVariant | None, date | None]:
    errors: dict[str, list[str]] = {}
    card_id = int(form["card_id"]) if form.get("card_id", "").isdigit() else None
    if card_id is None:
        errors["card_id"] = [message("5p1.card_required")]
    try:
        variant = TicketVariant(form.get("variant", ""))
    except ValueError:
        variant = None
        errors["variant"] = [message("5p1.variant_required")]
    try:
        first_day = date.fromisoformat(form.get("first_day", "").strip())
    except ValueError:
        first_day = None
        errors["first_day"] = [message("5p1.first_day_required")]
    if first_day is not None:
        problem = rules.validate_start_date(first_day, clock.today(), max_days_ahead=60)
        if problem is not None:
            errors["first_day"] = [message(f"5p1.{problem.value}")]
    return errors, card_id, variant, first_day


@post("/5plus1/schedule", guards=passenger)
async def schedule(request: Request) -> Template:
    """The full 6-month schedule for the current choice (htmx, as the passenger changes it)."""
    form = await form_of(request)
    errors, _card, variant, first_day = _read_choice(form)
    months = None
    if variant is not None and first_day is not None and "first_day" not in errors:
        months = rules.cycle_schedule(settings_of(request).tariff_5p1, variant, first_day).months
    return Template(template_name="five_plus_one/_schedule.html", context={"months": months})


@post("/5plus1/buy", guards=passenger)
async def buy(request: Request, purposes: NamedDependency[PaymentPurposes],
              gateway: NamedDependency[PaymentGateway]) -> Template | Response:
    user = await signed_in_user(request)
    form = await form_of(request)
    errors, card_id, variant, first_day = _read_choice(form)
    if not checked(form, "consent"):
        errors["consent"] = [message("5p1.consent_required")]
    values = {k: form.get(k, "") for k in ("card_id", "variant", "first_day")}
    values["auto_renew"] = checked(form, "auto_renew")  # type: ignore[assignment]
    if errors:
        return await _tab(request, 422, errors=errors, values=values)
    try:
        to_pay = await in_transaction(request, service.start_purchase, settings_of(request).tariff_5p1, user.id, card_id, variant, first_day,
                                      checked(form, "auto_renew"))
    except service.PurchaseProblem as exc:
        return await _tab(request, 409, errors={exc.field: [message(exc.code)]}, values=values)
    return await send_to_payment_page(request, gateway, purposes, to_pay, back="/5plus1", save_card=True,
                                     unavailable_message=message("5p1.gateway_unavailable"))


@post("/5plus1/pay/{month_id:int}", guards=passenger)
async def pay_now(request: Request, month_id: RowId, purposes: NamedDependency[PaymentPurposes],
                  gateway: NamedDependency[PaymentGateway]) -> Response:
    """ "Zapłać": pay a month whose automatic charge failed (always with the card saved again)."""
    user = await signed_in_user(request)
    try:
        to_pay = await in_transaction(request, service.start_manual_payment, user.id, month_id)
    except service.PurchaseProblem as exc:
        flash(request, message(exc.code), "error")
        return redirect("/5plus1")
    return await send_to_payment_page(request, gateway, purposes, to_pay, back="/5plus1", save_card=True,
                                     unavailable_message=message("5p1.gateway_unavailable"))


@post("/5plus1/cancel", guards=passenger)
async def cancel(request: Request) -> Response:
    user = await signed_in_user(request)
    problem = await in_transaction(request, service.cancel_subscription, settings_of(request), user.id)
    if problem:
        flash(request, message(problem), "error")
    else:
        flash(request, _("Subskrypcja została anulowana. Opłacone bilety pozostają ważne; nic więcej nie pobierzemy."), "success")
    return redirect("/5plus1")


@post("/5plus1/auto-renew", guards=passenger)
async def auto_renew(request: Request) -> Response:
    user = await signed_in_user(request)
    form = await form_of(request)
    on = form.get("auto_renew") == "on"
    problem = await in_transaction(request, service.set_auto_renew, user.id, on)
    if problem:
        flash(request, message(problem), "error")
    else:
        flash(request, _("Automatyczne odnawianie włączone.") if on else _("Automatyczne odnawianie wyłączone."), "success")
    return redirect("/5plus1")


router = Router(path="/", route_handlers=[tab, schedule, buy, pay_now, cancel, auto_renew])
