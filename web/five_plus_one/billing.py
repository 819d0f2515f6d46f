"""Charging what is due: `ekp billing run` and the in-process scheduler call `charge_due_months`.

Safe to run on many nodes at once: each month is claimed by compare-and-set before its charge, the
gateway transaction of each attempt is opened and its id committed to our record before money moves
(Tpay does not deduplicate on our reference: after a crash the recorded transaction is asked about and
paid only if it never was), and outcomes are applied once (web.payment_records.service).

Subscriptions are taken in batches: one transaction (and one worker-thread hop) reviews a batch,
claims its due months and records their payments; the charges then go to the gateway concurrently;
one more transaction applies the batch's answers (on PostgreSQL while the next batch is claimed: the
batches' subscriptions are disjoint). A crash anywhere leaves claimed months CHARGING with a pending
payment, which the next run asks the gateway about again with the same reference.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace

import anyio
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from domain.five_plus_one import BillingPolicy
from payments import ChargeResult, GatewayError, GatewayTimeout, PaymentGateway, TokenCharge
from web.platform.db import transaction
from web.payment_records import interface as records
from web.five_plus_one import service as subscriptions
from web.five_plus_one.service import billing_policy  # noqa: F401  (re-exported: where the policy is read)
from web.platform.settings import BILLING_CRASH_VARIABLE, Settings

log = logging.getLogger("ekp.billing")

CONFLICT_RETRIES = 3  # a batch that collided with another billing run is read again this many times
# Charges in flight at once (EKP_BILLING_CONCURRENCY, 1-256): each month is two calls to Tpay (open, pay),
# so with Tpay's latency L a run charges about concurrency / (2 L) months per second (benchmarks/README.md).
DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 256

# Tests only (the crash test of R-PAY-1, tests/web/five_plus_one/test_billing_crash.py): the process ends at once, as if
# killed, at this point of a batch: "recorded" (the Tpay transaction ids committed, nothing paid yet) or
# "answered" (Tpay answered the charges, nothing applied yet). Ignored in production.
CRASH_VARIABLE = BILLING_CRASH_VARIABLE
CRASH_EXIT_CODE = 86


def _crash_point(crash_at: str, point: str) -> None:
    if crash_at == point:  # settings.billing_crash_at: refused in production by the settings
        log.error("billing run ended at %s (%s)", point, CRASH_VARIABLE)
        logging.shutdown()
        os._exit(CRASH_EXIT_CODE)


@dataclass
class BillingReport:
    subscriptions: int = 0
    charged: int = 0
    declined: int = 0
    unanswered: int = 0

    def __str__(self) -> str:
        return (f"subscriptions reviewed: {self.subscriptions}, months charged: {self.charged}, "
                f"declined: {self.declined}, no answer yet (retried later with the same key): {self.unanswered}")


def _in_tx(engine: Engine, fn, *args):
    with transaction(engine) as session:
        return fn(session, *args)


def _claim_batch(engine: Engine, settings: Settings, ids: list[int],
                 policy: BillingPolicy) -> list[subscriptions.ChargeToMake]:
    """Review a batch of subscriptions and claim what is due, in one transaction.

    Another run working on the same rows at the same moment can make the transaction fail (a month it
    planned first, a deadlock, a busy database): nothing of it was kept, so the batch is read again and
    the compare-and-set skips what the other run took. After repeated collisions, one by one."""
    for _ in range(CONFLICT_RETRIES):
        try:
            return _in_tx(engine, subscriptions.prepare_subscriptions, settings, ids, policy)
        except (IntegrityError, OperationalError) as exc:
            log.info("billing batch after id %s collided with another run (%s); reading it again", ids[0], type(exc).__name__)
    charges: list[subscriptions.ChargeToMake] = []
    for sub_id in ids:
        try:
            charges.extend(_in_tx(engine, subscriptions.prepare_subscription, settings, sub_id, policy))
        except (IntegrityError, OperationalError) as exc:
            # Still colliding: the other run has it in hand, or the next run will.
            log.info("billing subscription %s left to the other run (%s)", sub_id, type(exc).__name__)
    return charges


def _apply_batch(engine: Engine, purposes: records.PaymentPurposes,
                 outcomes: list[records.Outcome]) -> list[records.Applied]:
    """Apply a batch of gateway answers in one transaction; if that fails, each in its own (as a
    webhook would), so one bad answer cannot hold back the others. Unapplied answers leave their
    payment pending: the next run asks again."""
    try:
        applied = _in_tx(engine, records.apply_outcomes, purposes, outcomes, "charge")
    except Exception:  # noqa: BLE001 - the batch failed as a whole; retried one by one below
        log.exception("applying %d charge outcomes together failed; applying them one by one", len(outcomes))
        applied = []
        for outcome in outcomes:
            try:
                applied.extend(_in_tx(engine, records.apply_outcomes, purposes, [outcome], "charge"))
            except Exception:  # noqa: BLE001 - stays pending; the next run asks the gateway again
                log.exception("charge %s: outcome not applied; the next run asks again", outcome.reference)
    for result in applied:
        if result.rejected:
            log.error("charge %s: outcome refused (%s)", result.outcome.reference, result.rejected)
    return applied


def _token_charge(charge: subscriptions.ChargeToMake) -> TokenCharge:
    return TokenCharge(token=charge.token, amount=charge.amount, description=charge.description,
                       reference=charge.reference, payer_email=charge.payer_email, payer_name=charge.payer_name,
                       transaction_id=charge.transaction_id)


async def _open_transaction(gateway: PaymentGateway, charge: subscriptions.ChargeToMake) -> subscriptions.ChargeToMake | None:
    """Open the gateway transaction for a charge (no money moves); None if the gateway did not answer
    (the payment stays pending; the next run opens it again)."""
    try:
        opened = await gateway.open_token_charge(_token_charge(charge))
    except (GatewayTimeout, GatewayError) as exc:
        log.warning("charge %s: transaction not opened (%s)", charge.reference, type(exc).__name__)
        return None
    except Exception:  # noqa: BLE001 - one broken answer must not stop the run
        log.exception("charge %s: opening the transaction failed unexpectedly", charge.reference)
        return None
    return replace(charge, transaction_id=opened.transaction_id, title=opened.title)


async def _ask_gateway(gateway: PaymentGateway, charge: subscriptions.ChargeToMake) -> ChargeResult | None:
    try:
        return await gateway.charge_token(_token_charge(charge))
    except (GatewayTimeout, GatewayError) as exc:
        # Unknown outcome: the payment stays pending and the month CHARGING; the next run asks again
        # with the same reference, which the gateway answers without charging twice.
        log.warning("charge %s: no answer from the gateway (%s)", charge.reference, type(exc).__name__)
        return None
    except Exception:  # noqa: BLE001 - one broken answer must not stop the run; same recovery as above
        log.exception("charge %s: the gateway call failed unexpectedly; the next run asks again", charge.reference)
        return None


async def _open_all(engine: Engine, gateway: PaymentGateway, charges: list[subscriptions.ChargeToMake],
                    limiter: anyio.CapacityLimiter, crash_at: str = "") -> list[subscriptions.ChargeToMake]:
    """R-PAY-1 (issue 19): every charge's gateway transaction is opened and its id committed to our
    record *before* any money moves. Charges that already have one (an earlier run's) keep it. Returns
    the charges ready to pay; the others stay pending for the next run."""
    opened: list[subscriptions.ChargeToMake | None] = [c if c.transaction_id else None for c in charges]

    async def open_one(i: int, charge: subscriptions.ChargeToMake) -> None:
        async with limiter:
            opened[i] = await _open_transaction(gateway, charge)

    async with anyio.create_task_group() as tg:
        for i, charge in enumerate(charges):
            if charge.transaction_id is None:
                tg.start_soon(open_one, i, charge)
    new = [records.OpenedTransaction(c.reference, c.transaction_id, c.title) for c, was in zip(opened, charges, strict=True)
           if c is not None and c.transaction_id and was.transaction_id is None]
    if new:
        await anyio.to_thread.run_sync(_in_tx, engine, records.record_gateway_ids, new)
        _crash_point(crash_at, "recorded")
    return [c for c in opened if c is not None]


async def _ask_all(engine: Engine, gateway: PaymentGateway, charges: list[subscriptions.ChargeToMake],
                   limiter: anyio.CapacityLimiter, report: BillingReport, crash_at: str = "") -> list[ChargeResult]:
    """Open a batch's transactions (recorded before paying), then pay them concurrently; the answers
    received (the others stay pending)."""
    ready = await _open_all(engine, gateway, charges, limiter, crash_at)
    report.unanswered += len(charges) - len(ready)
    charges = ready
    results: list[ChargeResult | None] = [None] * len(charges)

    async def ask(i: int, charge: subscriptions.ChargeToMake) -> None:
        async with limiter:
            results[i] = await _ask_gateway(gateway, charge)

    async with anyio.create_task_group() as tg:
        for i, charge in enumerate(charges):
            tg.start_soon(ask, i, charge)
    answered = [r for r in results if r is not None]
    if answered:
        _crash_point(crash_at, "answered")
    report.unanswered += len(results) - len(answered)
    return answered


async def _apply_answers(engine: Engine, gateway: PaymentGateway, purposes: records.PaymentPurposes,
                         answered: list[ChargeResult], report: BillingReport) -> None:
    if answered:
        outcomes = [records.outcome_from_gateway(r) for r in answered]
        applied = await anyio.to_thread.run_sync(_apply_batch, engine, purposes, outcomes)
        for result in applied:
            if result.settled is not None and result.settled.refund:
                # R-PAY-4: paid for a month no longer wanted (cancelled while the charge was in flight).
                await records.give_back(engine, gateway, result.payment.id,
                                        result.payment.gateway_transaction_id or result.outcome.transaction_id)
    for result in answered:
        if result.paid:
            report.charged += 1
        else:
            report.declined += 1


def billing_concurrency(settings: Settings) -> int:
    """EKP_BILLING_CONCURRENCY (default 8, at most 256; validated at start-up)."""
    return settings.billing_concurrency


async def charge_due_months(engine: Engine, gateway: PaymentGateway, purposes: records.PaymentPurposes,
                            settings: Settings, *,
                            batch: int = 200, concurrency: int | None = None) -> BillingReport:
    """Review every open subscription, plan and charge what is due today (R-5P1-4..6).

    On PostgreSQL a batch's answers are applied (in a worker thread, on its own connection) while the
    next batch is claimed and charged, so the database's round trips overlap our work; at most one
    batch is being applied at a time, so memory stays that of two batches however many are due. On
    SQLite, with one writer at a time, the batches take turns.

    Within a batch at most `concurrency` (EKP_BILLING_CONCURRENCY) gateway calls are in flight at once,
    so Tpay's latency overlaps instead of adding up month after month."""
    policy = billing_policy(settings)
    report = BillingReport()
    limiter = anyio.CapacityLimiter(concurrency or billing_concurrency(settings))
    overlap = engine.dialect.name == "postgresql"
    crash_at = "" if settings.is_production else settings.billing_crash_at

    async with anyio.create_task_group() as tg:
        applying: anyio.Event | None = None

        async def apply_in_background(answered: list[ChargeResult], done: anyio.Event) -> None:
            try:
                await _apply_answers(engine, gateway, purposes, answered, report)
            finally:
                done.set()

        async def apply(answered: list[ChargeResult]) -> None:
            nonlocal applying
            if applying is not None:
                await applying.wait()
            if overlap:
                applying = anyio.Event()
                tg.start_soon(apply_in_background, answered, applying)
            else:
                await _apply_answers(engine, gateway, purposes, answered, report)

        stuck = await anyio.to_thread.run_sync(_in_tx, engine, subscriptions.stuck_token_charges)
        for start in range(0, len(stuck), batch):
            await apply(await _ask_all(engine, gateway, stuck[start:start + batch], limiter, report, crash_at))
        if applying is not None:
            # Stuck charges belong to any subscription: their answers are in before any is reviewed.
            await applying.wait()

        after = 0
        while True:
            ids = await anyio.to_thread.run_sync(_in_tx, engine, subscriptions.open_subscription_ids, after, batch)
            if not ids:
                break
            after = ids[-1]
            report.subscriptions += len(ids)
            charges = await anyio.to_thread.run_sync(_claim_batch, engine, settings, ids, policy)
            if charges:
                await apply(await _ask_all(engine, gateway, charges, limiter, report, crash_at))
    return report
