"""Payments: the gateway port and its adapters.  Knows nothing of tickets, cards or EKP's database.

    gateway = make_gateway("tpay", client_id=..., client_secret=..., security_code=..., notification_url=...)
    gateway = make_gateway("sandbox", sandbox=sandbox, notification_url=...)          # embedded sandbox
    gateway = make_gateway("sandbox", api_url="https://pay-sandbox.example", notification_url=...)  # remote
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .port import (
    ACKNOWLEDGEMENT,
    Acknowledgement,
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


@dataclass(frozen=True)
class GatewayOption:
    """One setting of an adapter: the factory's keyword `name`, read by EKP from `EKP_<GATEWAY>_<NAME>`."""

    name: str
    required: bool = False
    secret: bool = False  # never printed (settings' repr, logs)
    url: bool = False  # checked as an http(s) URL


@dataclass(frozen=True)
class GatewayAdapter:
    """A payment operator's adapter: its name (`EKP_PAYMENTS`), its factory and the settings the factory takes.
    Adding an operator (PayU, Przelewy24) is one module with its `PaymentGateway` plus one entry in `GATEWAYS`."""

    name: str
    build: Callable[..., PaymentGateway]
    options: tuple[GatewayOption, ...] = ()


def _tpay(**settings: Any) -> PaymentGateway:
    from .tpay import TpayGateway

    return TpayGateway(**settings)


def _sandbox(**settings: Any) -> PaymentGateway:
    from .tpay import TpayGateway

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


#: The adapters by name: the only place that lists them (EKP's settings and its web wiring read it).
GATEWAYS: Mapping[str, GatewayAdapter] = MappingProxyType({
    "tpay": GatewayAdapter("tpay", _tpay, (
        GatewayOption("client_id", required=True),
        GatewayOption("client_secret", required=True, secret=True),
        GatewayOption("security_code", required=True, secret=True),
        GatewayOption("api_url", url=True),
        GatewayOption("merchant_id"),
        GatewayOption("root_cert"),
        GatewayOption("x5u_prefix", url=True),
    )),
    # the Tpay-style sandbox: in process (`sandbox=<payments.sandbox.Sandbox>`) or remote (`api_url=...`)
    "sandbox": GatewayAdapter("sandbox", _sandbox),
})


def gateway_adapter(name: str) -> GatewayAdapter | None:
    """The adapter registered as `name` in `GATEWAYS`, if any."""
    return GATEWAYS.get(name)


def gateway_names() -> tuple[str, ...]:
    return tuple(GATEWAYS)


def make_gateway(kind: str, **settings: Any) -> PaymentGateway:
    """Build a gateway: `kind` is one of `GATEWAYS` ("tpay" or "sandbox").

    tpay: client_id, client_secret, security_code, notification_url, and optionally api_url,
      merchant_id, root_cert (PEM text or file path), root_cert_url, x5u_prefix, timeout.
    sandbox: notification_url and either `sandbox=<payments.sandbox.Sandbox>` (in the same process) or
      `api_url=<the sandbox's public URL>` (remote; optional client_id, client_secret, merchant_id,
      security_code matching the sandbox's settings).
    """
    adapter = GATEWAYS.get(kind)
    if adapter is None:
        raise ValueError(f"unknown payment gateway kind {kind!r} (expected one of {', '.join(GATEWAYS)})")
    return adapter.build(**settings)


__all__ = [
    "ACKNOWLEDGEMENT",
    "Acknowledgement",
    "GATEWAYS",
    "GatewayAdapter",
    "GatewayOption",
    "gateway_adapter",
    "gateway_names",
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
