"""The passenger's payment pages: the landing after the payment page, the history and a payment's printable
confirmation (the history reads across areas, so it lives with the other cross-area pages)."""

from __future__ import annotations

from litestar.di import NamedDependency
from litestar import Request, Router, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template

from web.pages import payment_history
from payments import PaymentGateway
from web.payment_records.interface import PaymentPurposes, reconcile_one
from web.platform.http import in_transaction, page, requires_login, safe_next, signed_in_user


@get("/payments/return/{reference:str}", guards=[requires_login])
async def payment_return(request: HTMXRequest, reference: FromPath[str],
                         purposes: NamedDependency[PaymentPurposes], gateway: NamedDependency[PaymentGateway]) -> Template:
    """Where the payer lands after the payment page; the webhook may come before or after."""
    user = await signed_in_user(request)
    payment = await reconcile_one(request, gateway, purposes, reference, user.id)
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


router = Router(path="/", route_handlers=[payment_return, history, confirmation])
