"""The gateway's notifications (webhook) and the payer's return from the payment page."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from litestar.di import NamedDependency
from litestar import Request, Router, post
from litestar.exceptions import NotFoundException
from litestar.response import Response

from litestar.response import Redirect

from payments import (Acknowledgement, CardNotice, GatewayError, GatewayTimeout, NotificationRejected, PaymentGateway,
                      PaymentRequest)
from web.platform.http import flash, in_transaction, redirect, safe_next, settings_of
from web.payment_records import service as records

log = logging.getLogger("ekp.payments")


async def settle(request: Request, gateway: PaymentGateway, purposes: records.PaymentPurposes, outcome: records.Outcome,
                 source: str) -> records.Settlement:
    """Apply an outcome once, by the same use case as every other path (R-PAY-1)."""
    return await records.settle(request.app.state.engine, gateway, purposes, outcome, source)


async def send_to_payment_page(request: Request, gateway: PaymentGateway, purposes: records.PaymentPurposes, to_pay: records.HostedPayment, *,
                               back: str, save_card: bool,
                               unavailable_message: str) -> Response:
    """Create the hosted payment recorded as `to_pay` and send the payer to the operator's page; the
    payer comes back to /payments/return/<reference>, then to `back`. If the gateway cannot even
    create it, the payment is failed (nothing was charged) and the payer is told on `back`."""
    settings = settings_of(request)
    back = safe_next(back, "/")
    return_url = f"{settings.base_url}/payments/return/{to_pay.reference}?{urlencode({'back': back})}"
    try:
        created = await gateway.create_payment(PaymentRequest(
            amount=to_pay.amount, description=to_pay.description, payer_email=to_pay.payer_email,
            payer_name=to_pay.payer_name, reference=to_pay.reference, success_url=return_url,
            error_url=return_url, save_card=save_card))
    except (GatewayError, GatewayTimeout) as exc:
        log.warning("payment %s could not be created: %s", to_pay.reference, type(exc).__name__)
        await in_transaction(request, records.payment_failed_to_start, purposes, to_pay.reference)
        flash(request, unavailable_message, "error")
        return redirect(back)
    await in_transaction(request, records.record_gateway_ids, [records.OpenedTransaction(
        to_pay.reference, created.transaction_id, created.title, created.redirect_url)])
    return Redirect(path=created.redirect_url, status_code=303)


@post("/payments/notify", include_in_schema=False)
async def notify(request: Request, purposes: NamedDependency[records.PaymentPurposes],
                 gateway: NamedDependency[PaymentGateway]) -> Response:
    body = await request.body()
    try:
        outcome = await gateway.parse_notification(body, request.headers)
    except NotificationRejected as exc:
        log.warning("payment notification rejected: %s", exc.reason)
        return _answer(gateway.acknowledge(False, str(exc.reason)))
    if isinstance(outcome, CardNotice):
        # A card token was issued or updated (Tpay's JSON notifications). Cards saved with a payment come
        # with the payment's own notification, which is what EKP applies; this one is acknowledged so
        # Tpay stops resending it.
        log.info("card notification %s acknowledged", outcome.kind)
        return Response(content=outcome.acknowledgement, media_type="application/json", status_code=200)
    if outcome.panel_test:
        log.info("test notification from the operator's panel acknowledged (nothing applied)")
        return _answer(gateway.acknowledge(True))
    try:
        await settle(request, gateway, purposes, records.outcome_from_gateway(outcome), "webhook")
    except records.OutcomeRejected as exc:
        log.warning("payment notification not applied: %s", exc.code)
        return _answer(gateway.acknowledge(False, exc.code))
    return _answer(gateway.acknowledge(True))  # in the operator's convention (Tpay: 200 and TRUE)


def _answer(acknowledgement: Acknowledgement) -> Response:
    return Response(content=acknowledgement.body, media_type=acknowledgement.media_type,
                    status_code=acknowledgement.status_code)


def _payment_of(session, reference: str, user_id: int):
    payment = records.payment_by_reference(session, reference)
    if payment is None or payment.user_id != user_id:
        return None
    return payment


async def reconcile_one(request: Request, gateway: PaymentGateway, purposes: records.PaymentPurposes, reference: str, user_id: int):
    payment = await in_transaction(request, _payment_of, reference, user_id)
    if payment is None:
        raise NotFoundException()
    if payment.applied_at is None and payment.gateway_transaction_id:
        try:
            status = await gateway.get_status(payment.gateway_transaction_id)
        except (GatewayError, GatewayTimeout):
            return payment
        if status.status.value != "pending":
            await settle(request, gateway, purposes, records.outcome_from_gateway(status), "return")
            payment = await in_transaction(request, _payment_of, reference, user_id)
    return payment


router = Router(path="/", route_handlers=[notify])
