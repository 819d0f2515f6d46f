"""Payments: the gateway port and its adapters.  Knows nothing of tickets, cards or EKP's database.

    gateway = make_gateway("tpay", client_id=..., client_secret=..., security_code=..., notification_url=...)
    gateway = make_gateway("sandbox", sandbox=sandbox, notification_url=...)          # embedded sandbox
    gateway = make_gateway("sandbox", api_url="https://pay-sandbox.example", notification_url=...)  # remote
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .port import (
    ACKNOWLEDGEMENT,
    JSON_ACKNOWLEDGEMENT,
    CardNotice,
    ChargeResult,
    CreatedPayment,
    GatewayError,
    GatewayTimeout,
    Notification,
    NotificationRejected,
    PaymentError,
    PaymentGateway,
    PaymentOutcome,
    PaymentRequest,
    PaymentStatus,
    Refund,
    RefundResult,
    RejectReason,
    SavedCard,
    TokenCharge,
    TransactionStatus,
)

if TYPE_CHECKING:
    from .sandbox import Sandbox


def make_gateway(kind: str, **settings: Any) -> PaymentGateway:
    """Build a gateway: `kind` is "tpay" or "sandbox".

    tpay: client_id, client_secret, security_code, notification_url, and optionally api_url,
      merchant_id, root_cert (PEM text or file path), root_cert_url, x5u_prefix, timeout.
    sandbox: notification_url and either `sandbox=<payments.sandbox.Sandbox>` (in the same process) or
      `api_url=<the sandbox's public URL>` (remote; optional client_id, client_secret, merchant_id,
      security_code matching the sandbox's settings).
    """
    from .tpay import TpayGateway

    if kind == "tpay":
        return TpayGateway(**settings)
    if kind == "sandbox":
        sandbox: Sandbox | None = settings.pop("sandbox", None)
        if sandbox is not None:
            return sandbox.gateway(**settings)
        api_url = str(settings.pop("api_url")).rstrip("/")
        return TpayGateway(
            client_id=settings.pop("client_id", "sandbox"),
            client_secret=settings.pop("client_secret", "sandbox"),
            merchant_id=settings.pop("merchant_id", "1010"),
            security_code=settings.pop("security_code", "sandbox-security-code"),
            api_url=api_url,
            x5u_prefix=f"{api_url}/x509/",
            root_cert_url=f"{api_url}/x509/tpay-jws-root.pem",
            **settings,
        )
    raise ValueError(f"unknown payment gateway kind {kind!r} (expected 'sandbox' or 'tpay')")


__all__ = [
    "ACKNOWLEDGEMENT",
    "CardNotice",
    "ChargeResult",
    "JSON_ACKNOWLEDGEMENT",
    "CreatedPayment",
    "GatewayError",
    "GatewayTimeout",
    "Notification",
    "NotificationRejected",
    "PaymentError",
    "PaymentGateway",
    "PaymentOutcome",
    "PaymentRequest",
    "PaymentStatus",
    "Refund",
    "RefundResult",
    "RejectReason",
    "SavedCard",
    "TokenCharge",
    "TransactionStatus",
    "make_gateway",
]
