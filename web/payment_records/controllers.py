"""The gateway's notifications (webhook) and the payer's return from the payment page."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from litestar import Request, Router, get, post
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.exceptions import NotFoundException
from litestar.response import Response, Template

from litestar.response import Redirect

from payments import ACKNOWLEDGEMENT, CardNotice, GatewayError, GatewayTimeout, NotificationRejected, PaymentRequest
from web.platform.http import flash, in_transaction, page, redirect, requires_login, safe_next, settings_of, signed_in_user
from web.pages import interface as payment_history
from web.payment_records import service as records

log = logging.getLogger("ekp.payments")


async def settle(request: Request, outcome: records.Outcome, source: str) -> records.Settlement:
    """Apply an outcome once, by the same use case as every other path (R-PAY-1)."""
    return await records.settle(request.app.state.engine, request.app.state.payments.gateway, outcome, source)


async def send_to_payment_page(request: Request, to_pay: records.HostedPayment, *, back: str, save_card: bool,
                               unavailable_message: str) -> Response:
    """Create the hosted payment recorded as `to_pay` and send the payer to the operator's page; the
    payer comes back to /payments/return/<reference>, then to `back`. If the gateway cannot even
    create it, the payment is failed (nothing was charged) and the payer is told on `back`."""
    settings = settings_of(request)
    back = safe_next(back, "/")
    return_url = f"{settings.base_url}/payments/return/{to_pay.reference}?{urlencode({'back': back})}"
    try:
        created = await request.app.state.payments.gateway.create_payment(PaymentRequest(
            amount=to_pay.amount, description=to_pay.description, payer_email=to_pay.payer_email,
            payer_name=to_pay.payer_name, reference=to_pay.reference, success_url=return_url,
            error_url=return_url, save_card=save_card))
    except (GatewayError, GatewayTimeout) as exc:
        log.warning("payment %s could not be created: %s", to_pay.reference, type(exc).__name__)
        await in_transaction(request, records.payment_failed_to_start, to_pay.reference)
        flash(request, unavailable_message, "error")
        return redirect(back)
    await in_transaction(request, records.record_gateway_ids, to_pay.reference, created.transaction_id, created.title,
                         created.redirect_url)
    return Redirect(path=created.redirect_url, status_code=303)


@post("/payments/notify", include_in_schema=False)
async def notify(request: Request) -> Response:
    body = await request.body()
    try:
        outcome = await request.app.state.payments.gateway.parse_notification(body, request.headers)
    except NotificationRejected as exc:
        log.warning("payment notification rejected: %s", exc.reason)
        return Response(content=f"FALSE - {exc.reason}", media_type="text/plain", status_code=400)
    if isinstance(outcome, CardNotice):
        # A card token was issued or updated (Tpay's JSON notifications). Cards saved with a payment come
        # with the payment's own notification, which is what EKP applies; this one is acknowledged so
        # Tpay stops resending it.
        log.info("card notification %s acknowledged", outcome.kind)
        return Response(content=outcome.acknowledgement, media_type="application/json", status_code=200)
    if outcome.panel_test:
        log.info("test notification from the operator's panel acknowledged (nothing applied)")
        return Response(content=ACKNOWLEDGEMENT, media_type="text/plain", status_code=200)
    try:
        await settle(request, records.outcome_from_gateway(outcome), "webhook")
    except records.OutcomeRejected as exc:
        log.warning("payment notification not applied: %s", exc.code)
        return Response(content=f"FALSE - {exc.code}", media_type="text/plain", status_code=400)
    return Response(content=ACKNOWLEDGEMENT, media_type="text/plain", status_code=200)  # Tpay wants 200 + TRUE


def _payment_of(session, reference: str, user_id: int):
    payment = records.payment_by_reference(session, reference)
    if payment is None or payment.user_id != user_id:
        return None
    return payment


async def _reconcile_one(request: Request, reference: str, user_id: int):
    payment = await in_transaction(request, _payment_of, reference, user_id)
    if payment is None:
        raise NotFoundException()
    if payment.applied_at is None and payment.gateway_transaction_id:
        try:
            status = await request.app.state.payments.gateway.get_status(payment.gateway_transaction_id)
        except (GatewayError, GatewayTimeout):
            return payment
        if status.status.value != "pending":
            await settle(request, records.outcome_from_gateway(status), "return")
            payment = await in_transaction(request, _payment_of, reference, user_id)
    return payment


@get("/payments/return/{reference:str}", guards=[requires_login])
async def payment_return(request: HTMXRequest, reference: FromPath[str]) -> Template:
    """Where the payer lands after the payment page; the webhook may come before or after."""
    user = await signed_in_user(request)
    payment = await _reconcile_one(request, reference, user.id)
    partial = bool(request.htmx)
    line = await in_transaction(request, payment_history.my_payment, user.id, reference)
    return await page(request, "payments/_status.html" if partial else "payments/return.html",
                      payment=payment, line=line, back=safe_next(request.query_params.get("back"), "/"))


@get("/payments", guards=[requires_login])
async def history(request: Request) -> Template:
    """ "Historia płatności": every payment of the account, newest first, each with its confirmation."""
    user = await signed_in_user(request)
    lines = await in_transaction(request, payment_history.my_payments, user.id)
    return await page(request, "payments/history.html", lines=lines, limit=payment_history.HISTORY_LIMIT)


@get("/payments/{reference:str}/confirmation", guards=[requires_login])
async def confirmation(request: Request, reference: FromPath[str]) -> Template:
    """A printable confirmation of one payment (plain HTML; `?download=1` saves it as a file). Only the
    payment's owner gets it: anyone else, and any reference that is not theirs, gets 404."""
    user = await signed_in_user(request)
    line = await in_transaction(request, payment_history.my_payment, user.id, reference)
    if line is None:
        raise NotFoundException()
    response = await page(request, "payments/confirmation.html", line=line, payer=user)
    response.headers["Cache-Control"] = "no-store"
    if request.query_params.get("download") == "1":
        safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "-" for ch in line.payment.reference)[:96]
        response.headers["Content-Disposition"] = f'attachment; filename="potwierdzenie-{safe}.html"'
    return response


router = Router(path="/", route_handlers=[notify, payment_return, history, confirmation])
