"""Builds the payment gateway named by EKP_PAYMENTS: the embedded Tpay-style sandbox or Tpay itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from payments import PaymentGateway, make_gateway
from web import clock
from web.settings import Settings

SANDBOX_PREFIX = "/sandbox-pay"


@dataclass
class Payments:
    gateway: PaymentGateway
    sandbox: Any = None  # payments.sandbox.Sandbox when EKP_PAYMENTS=sandbox


def build_payments(settings: Settings) -> Payments:
    notify_url = f"{settings.base_url}/payments/notify"
    extra = settings.extra
    if settings.payments == "sandbox":
        from payments.sandbox import Sandbox, SandboxSettings

        settings.var_dir.mkdir(parents=True, exist_ok=True)
        sandbox = Sandbox(SandboxSettings(
            public_url=f"{settings.base_url}{SANDBOX_PREFIX}",
            db_path=extra.get("EKP_SANDBOX_DB", str(settings.var_dir / "sandbox.db")),
            backoff_base=float(extra.get("EKP_SANDBOX_BACKOFF", "5")),
            today=clock.today,
        ))
        return Payments(make_gateway("sandbox", sandbox=sandbox, notification_url=notify_url), sandbox)
    options: dict[str, Any] = {
        "client_id": extra.get("EKP_TPAY_CLIENT_ID", ""),
        "client_secret": extra.get("EKP_TPAY_CLIENT_SECRET", ""),
        "security_code": extra.get("EKP_TPAY_SECURITY_CODE", ""),
        "notification_url": notify_url,
    }
    for env, name in (("EKP_TPAY_API_URL", "api_url"), ("EKP_TPAY_MERCHANT_ID", "merchant_id"),
                      ("EKP_TPAY_ROOT_CERT", "root_cert"), ("EKP_TPAY_X5U_PREFIX", "x5u_prefix")):
        if extra.get(env):
            options[name] = extra[env]
    return Payments(make_gateway("tpay", **options))
