"""The gateway's notifications (webhook) and the payer's return from the payment page."""

from __future__ import annotations

import logging

from litestar import Request, Router, get, post
from litestar.params import FromPath
from litestar.exceptions import NotFoundException
from litestar.response import Response, Template

from payments import ACKNOWLEDGEMENT, GatewayError, GatewayTimeout, NotificationRejected, Refund
from web.http import current_user, in_transaction, page, requires_login
from web.services import payments as records

log = logging.getLogger("ekp.payments")


async def settle(request: Request, outcome: records.Outcome, source: str) -> None:
    """Apply an outcome once; give the money back when the business no longer wants it."""
    payment, settled = await in_transaction(request, records.apply_outcome, outcome, source)
    if settled is not None and settled.refund and payment.gateway_transaction_id:
        try:
            await request.app.state.payments.gateway.refund(Refund(payment.gateway_transaction_id, reason="EKP"))
        except (GatewayError, GatewayTimeout):
            log.warning("refund of payment %s failed; reconciliation will report it", payment.id)


@post("/payments/notify", include_in_schema=False)
async def notify(request: Request) -> Response:
    body = await request.body()
    try:
        outcome = await request.app.state.payments.gateway.parse_notification(body, request.headers)
    except NotificationRejected as exc:
        log.warning("payment notification rejected: %s", exc.reason)
        return Response(content=f"FALSE - {exc.reason}", media_type="text/plain", status_code=400)
    try:
        await settle(request, records.outcome_from_gateway(outcome), "webhook")
    except records.OutcomeRejected as exc:
        log.warning("payment notification not applied: %s", exc.code)
        return Response(content=f"FALSE - {exc.code}", media_type="text/plain", status_code=400)
    return Response(content=ACKNOWLEDGEMENT, media_type="text/plain", status_code=200)  # Tpay wants 200 + TRUE


def _payment_of(session, reference: str, user_id: int):  # type: ignore[no-untyped-def]
    payment = records.payment_by_reference(session, reference)
    if payment is None or payment.user_id != user_id:
        return None
    return payment


async def _reconcile_one(request: Request, reference: str, user_id: int):  # type: ignore[no-untyped-def]
    payment = await in_transaction(request, _payment_of, reference, user_id)
    if payment is None:
        raise NotFoundException()
    if payment.applied_at is None and payment.gateway_transaction_id:
        try:
            status = await request.app.state.payments.gateway.get_status(payment.gateway_transaction_id)
        except (GatewayError, GatewayTimeout):
            return payment
        if status.status.value in records.TERMINAL:
            await settle(request, records.outcome_from_gateway(status), "return")
            payment = await in_transaction(request, _payment_of, reference, user_id)
    return payment


@get("/payments/return/{reference:str}", guards=[requires_login])
async def payment_return(request: Request, reference: FromPath[str]) -> Template:
    """Where the payer lands after the payment page; the webhook may come before or after."""
    user = await current_user(request)
    payment = await _reconcile_one(request, reference, user.id)  # type: ignore[union-attr]
    partial = request.headers.get("hx-request") == "true"
    return await page(request, "payments/_status.html" if partial else "payments/return.html",
                      payment=payment, back=request.query_params.get("back", "/"))


router = Router(path="/", route_handlers=[notify, payment_return])
