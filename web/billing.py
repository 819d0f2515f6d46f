"""Charging what is due: `ekp billing run` and the in-process scheduler call `charge_due_months`.

Safe to run on many nodes at once: each month is claimed by compare-and-set before its charge, the
gateway gets an idempotency key per attempt, and outcomes are applied once (web.services.payments).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio
from sqlalchemy.engine import Engine

from domain.five_plus_one import BillingPolicy
from payments import GatewayError, GatewayTimeout, PaymentGateway, TokenCharge
from web.db import transaction
from web.services import payments as records
from web.services import subscriptions
from web.settings import Settings

log = logging.getLogger("ekp.billing")


def billing_policy(settings: Settings) -> BillingPolicy:
    extra = settings.extra
    return BillingPolicy(
        charge_days_before=int(extra.get("EKP_CHARGE_DAYS_BEFORE", "3")),
        retry_every_days=int(extra.get("EKP_RETRY_EVERY_DAYS", "1")),
    )


@dataclass
class BillingReport:
    subscriptions: int = 0
    charged: int = 0
    declined: int = 0
    unanswered: int = 0

    def __str__(self) -> str:
        return (f"subscriptions reviewed: {self.subscriptions}, months charged: {self.charged}, "
                f"declined: {self.declined}, no answer yet (retried later with the same key): {self.unanswered}")


def _in_tx(engine: Engine, fn, *args):  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return fn(session, *args)


async def _charge(engine: Engine, gateway: PaymentGateway, charge: subscriptions.ChargeToMake, report: BillingReport) -> None:
    try:
        result = await gateway.charge_token(TokenCharge(
            token=charge.token, amount=charge.amount, description=charge.description, reference=charge.reference,
            payer_email=charge.payer_email, payer_name=charge.payer_name))
    except (GatewayTimeout, GatewayError) as exc:
        # Unknown outcome: the payment stays pending and the month CHARGING; the next run asks again
        # with the same reference, which the gateway answers without charging twice.
        log.warning("charge %s: no answer from the gateway (%s)", charge.reference, type(exc).__name__)
        report.unanswered += 1
        return
    outcome = records.outcome_from_gateway(result)
    await anyio.to_thread.run_sync(_in_tx, engine, records.apply_outcome, outcome, "charge")
    if result.paid:
        report.charged += 1
    else:
        report.declined += 1


async def charge_due_months(engine: Engine, gateway: PaymentGateway, settings: Settings, *,
                            batch: int = 500, concurrency: int = 8) -> BillingReport:
    """Review every open subscription, plan and charge what is due today (R-5P1-4..6)."""
    policy = billing_policy(settings)
    report = BillingReport()
    limiter = anyio.CapacityLimiter(concurrency)

    async def charge_limited(charge: subscriptions.ChargeToMake) -> None:
        async with limiter:
            await _charge(engine, gateway, charge, report)

    stuck = await anyio.to_thread.run_sync(_in_tx, engine, subscriptions.stuck_token_charges)
    async with anyio.create_task_group() as tg:
        for charge in stuck:
            tg.start_soon(charge_limited, charge)

    after = 0
    while True:
        ids = await anyio.to_thread.run_sync(_in_tx, engine, subscriptions.open_subscription_ids, after, batch)
        if not ids:
            break
        after = ids[-1]
        async with anyio.create_task_group() as tg:
            for sub_id in ids:
                report.subscriptions += 1
                charges = await anyio.to_thread.run_sync(_in_tx, engine, subscriptions.prepare_subscription, sub_id, policy)
                for charge in charges:
                    tg.start_soon(charge_limited, charge)
    return report
