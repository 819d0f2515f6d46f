"""Reconciliation: ask the gateway about payments we never heard back about (lost webhook, payer
closed the tab, our server restarted) and apply what it says, exactly once like any other outcome."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio
from sqlalchemy.engine import Engine

from payments import GatewayError, GatewayTimeout, PaymentGateway, PaymentStatus
from web.platform.db import transaction
from web.payment_records import service as records

log = logging.getLogger("ekp.reconcile")


@dataclass
class ReconcileReport:
    asked: int = 0
    settled: int = 0
    still_pending: int = 0
    unreachable: int = 0
    refunded: int = 0
    refunds_owed: int = 0

    def __str__(self) -> str:
        return (f"pending payments asked about: {self.asked}, settled now: {self.settled}, "
                f"still pending at the gateway: {self.still_pending}, gateway unreachable: {self.unreachable}, "
                f"refunded: {self.refunded}, refunds still owed: {self.refunds_owed}")


def _in_tx(engine: Engine, fn, *args):
    with transaction(engine) as session:
        return fn(session, *args)


def _hosted_pending(session, older_than_seconds: int) -> list[tuple[str, str]]:
    return [
        (p.reference, p.gateway_transaction_id)
        for p in records.pending_payments(session, older_than_seconds)
        if p.kind == "hosted" and p.gateway_transaction_id
    ]


def _refunds_due(session, older_than_seconds: int) -> list[tuple[int, str | None]]:
    return [(p.id, p.gateway_transaction_id) for p in records.refunds_due(session, older_than_seconds)]


async def reconcile_pending_payments(engine: Engine, gateway: PaymentGateway, purposes: records.PaymentPurposes, *,
                                     older_than_seconds: int = 600) -> ReconcileReport:
    """Hosted payments still pending after `older_than_seconds`: ask the gateway for their status and
    apply it by the one use case (`records.settle`: paid, failed, refunded or charged back, a refund
    where the payment bought nothing). Then refunds still owed (R-PAY-4) are asked for again.

    Token charges left pending are re-asked by the billing run with their original reference."""
    report = ReconcileReport()
    for reference, transaction_id in await anyio.to_thread.run_sync(_in_tx, engine, _hosted_pending, older_than_seconds):
        report.asked += 1
        try:
            status = await gateway.get_status(transaction_id)
        except (GatewayError, GatewayTimeout) as exc:
            log.warning("reconcile %s: gateway unreachable (%s)", reference, type(exc).__name__)
            report.unreachable += 1
            continue
        if status.status is PaymentStatus.PENDING:
            report.still_pending += 1
            continue
        try:
            done = await records.settle(engine, gateway, purposes, records.outcome_from_gateway(status), "reconcile")
        except records.OutcomeRejected as exc:
            log.warning("reconcile %s: gateway's answer does not fit our record (%s)", reference, exc.code)
            continue
        if done.settled is not None:
            report.settled += 1
        if done.refunded:
            report.refunded += 1
    for payment_id, transaction_id in await anyio.to_thread.run_sync(_in_tx, engine, _refunds_due, older_than_seconds):
        if await records.give_back(engine, gateway, payment_id, transaction_id):
            report.refunded += 1
        else:
            report.refunds_owed += 1
    return report
