"""Builds the payment gateway named by EKP_PAYMENTS from `payments.GATEWAYS`: the embedded Tpay-style sandbox (run
in this process, wired here) or any other adapter from its settings (Tpay)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, TypedDict

from domain.trust import sandbox_refusal
from payments import PaymentGateway, make_gateway
from web.platform import clock
from web.platform.settings import Settings, SettingsError, _secret_from_var

SANDBOX_PREFIX = "/sandbox-pay"


@dataclass
class Payments:
    gateway: PaymentGateway
    sandbox: Any = None  # payments.sandbox.Sandbox when EKP_PAYMENTS=sandbox


class SandboxCredentials(TypedDict):
    client_id: str
    client_secret: str
    security_code: str


def sandbox_credentials(key: bytes) -> SandboxCredentials:
    """This installation's sandbox credentials, derived from its random `var/sandbox_key` (never the public
    `sandbox`/`sandbox`: anyone could otherwise create, pay and refund transactions in its name)."""

    def derive(purpose: str) -> str:
        return hmac.new(key, f"ekp:sandbox:{purpose}".encode(), hashlib.sha256).hexdigest()

    return {"client_id": f"ekp-{derive('client-id')[:12]}", "client_secret": derive("client-secret"),
            "security_code": derive("security-code")}


def build_payments(settings: Settings) -> Payments:
    notify_url = f"{settings.base_url}/payments/notify"
    if sandbox_refusal(settings.env, settings.payments, settings.sandbox_in_production):  # R-PAY-5
        raise SettingsError(["EKP_PAYMENTS: production takes real payments only (EKP_PAYMENTS=tpay), or set "
                             "EKP_ALLOW_SANDBOX_IN_PRODUCTION=true"])
    if settings.payments == "sandbox":
        from payments.sandbox import Sandbox, SandboxSettings

        settings.var_dir.mkdir(parents=True, exist_ok=True)
        key = settings.sandbox_key or _secret_from_var(settings.var_dir, "sandbox_key")
        sandbox = Sandbox(SandboxSettings(
            public_url=f"{settings.base_url}{SANDBOX_PREFIX}",
            db_path=str(settings.sandbox_db or settings.var_dir / "sandbox.db"),
            backoff_base=settings.sandbox_backoff,
            today=clock.today,
            callback_base=settings.base_url,  # notifications and payers go back to this app only
            **sandbox_credentials(key),
        ))
        return Payments(make_gateway("sandbox", sandbox=sandbox, notification_url=notify_url), sandbox)
    # any other adapter: its settings, as read and checked by the settings (payments.GATEWAYS)
    return Payments(make_gateway(settings.payments, notification_url=notify_url, **settings.gateway_options))
