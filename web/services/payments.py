"""Our side of payments: a record per payment with its state history, and applying each outcome
exactly once however many times (and in whatever order) the webhook, the browser's return, a token
charge's answer or reconciliation report it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol
from dataclasses import dataclass

from sqlalchemy import ARRAY, any_, bindparam, insert, literal, select, update
from sqlmodel import Session

from payments import PaymentStatus
from web import clock
from web.models import Payment, PaymentEvent

log = logging.getLogger("ekp.payments")

TERMINAL = {PaymentStatus.PAID.value, PaymentStatus.FAILED.value}


@dataclass(frozen=True)
class Settled:
    """What the business side decided when an outcome was applied."""

    refund: bool = False  # money arrived for something no longer wanted: give it back


@dataclass(frozen=True)
class Outcome:
    """A payment outcome from any source, reduced to what the business needs."""

    reference: str
    status: str  # a PaymentStatus value
    amount: int | None = None
    currency: str = "PLN"
    title: str | None = None
    transaction_id: str | None = None
    card_token: str | None = None
    card_brand: str | None = None
    card_last4: str | None = None
    card_expiry: str | None = None
    error_code: str | None = None


class HostedPayment(Protocol):
    """A payment recorded on our side, ready to be created at the gateway's hosted page."""

    reference: str
    amount: int
    description: str
    payer_email: str
    payer_name: str


# purpose -> function(session, payment, outcome) -> Settled; registered by each business area.
HANDLERS: dict[str, Callable[[Session, Payment, Outcome], Settled]] = {}

# purpose -> function(session, payment, outcome): a card saved with a payment whose outcome was already
# applied from a source that carries no card (the browser's return asks the gateway's status first).
CARD_SAVED: dict[str, Callable[[Session, Payment, Outcome], None]] = {}


# purpose -> function(session, [(payment, outcome), ...]) -> [Settled, ...]: the same as the purpose's
# HANDLERS entry for many payments at once; used by `apply_outcomes`, which passes each payment as a
# Core row (id, reference, purpose, subject_id, user_id, kind, amount, currency, gateway ids).
BATCH_HANDLERS: dict[str, Callable[[Session, list[tuple[Any, Outcome]]], list[Settled]]] = {}

IN_CHUNK = 500  # ids or references per IN (...) list


def one_of(session: Session, column: Any, values: list[Any]) -> Any:
    """`column IN (values)`; on PostgreSQL `column = ANY(:array)`, one parameter instead of one per value
    (psycopg parses a query with hundreds of parameters each time it is sent)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(literal(list(values), ARRAY(column.type)))
    return column.in_(values)


def create_payment_record(session: Session, *, reference: str, purpose: str, subject_id: int, user_id: int | None,
                          kind: str, amount: int) -> Payment:
    payment = Payment(reference=reference, purpose=purpose, subject_id=subject_id, user_id=user_id, kind=kind, amount=amount)
    session.add(payment)
    session.flush()
    session.add(PaymentEvent(payment_id=payment.id, source="created", status="pending", detail=kind))  # type: ignore[arg-type]
    return payment


@dataclass(frozen=True)
class PaymentToRecord:
    reference: str
    purpose: str
    subject_id: int
    user_id: int | None
    kind: str
    amount: int


def create_payment_records(session: Session, wanted: list[PaymentToRecord]) -> dict[str, int]:
    """`create_payment_record` for many payments: two INSERTs in all. Returns reference -> payment id."""
    if not wanted:
        return {}
    now = clock.now()
    table, events = Payment.__table__, PaymentEvent.__table__  # type: ignore[attr-defined]
    ids: dict[str, int] = {}
    for start in range(0, len(wanted), IN_CHUNK):
        chunk = wanted[start:start + IN_CHUNK]
        rows = session.execute(insert(table).returning(table.c.id, table.c.reference, sort_by_parameter_order=True), [
            {"reference": w.reference, "purpose": w.purpose, "subject_id": w.subject_id, "user_id": w.user_id,
             "kind": w.kind, "amount": w.amount, "currency": "PLN", "status": PaymentStatus.PENDING.value,
             "created_at": now, "updated_at": now} for w in chunk]).all()
        ids.update({reference: payment_id for payment_id, reference in rows})
        session.execute(insert(events), [
            {"payment_id": ids[w.reference], "at": now, "source": "created", "status": "pending", "detail": w.kind}
            for w in chunk])
    return ids


def record_gateway_ids(session: Session, reference: str, transaction_id: str, title: str, redirect_url: str | None) -> None:
    payment = payment_by_reference(session, reference)
    if payment is None:
        return
    payment.gateway_transaction_id, payment.gateway_title = transaction_id, title
    payment.redirect_url = redirect_url
    payment.updated_at = clock.now()


def payment_by_reference(session: Session, reference: str) -> Payment | None:
    return session.scalars(select(Payment).where(Payment.reference == reference)).first()


class OutcomeRejected(Exception):
    """An outcome that does not fit our record (unknown reference, wrong amount or currency)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def apply_outcome(session: Session, outcome: Outcome, source: str) -> tuple[Payment, Settled | None]:
    """Apply `outcome` once: the first terminal report changes the business, repeats change nothing.

    Returns the payment and what was settled (None when nothing new happened).
    """
    payment = payment_by_reference(session, outcome.reference)
    if payment is None:
        raise OutcomeRejected("unknown_reference")
    if outcome.amount is not None and outcome.amount != payment.amount:
        log.warning("payment %s: amount differs from our record; ignored", payment.id)
        raise OutcomeRejected("amount_mismatch")
    if outcome.currency.upper() != payment.currency:
        log.warning("payment %s: currency differs from our record; ignored", payment.id)
        raise OutcomeRejected("currency_mismatch")
    session.add(PaymentEvent(payment_id=payment.id, source=source, status=outcome.status,  # type: ignore[arg-type]
                             detail=(outcome.error_code or "")[:300]))
    if outcome.title and not payment.gateway_title:
        payment.gateway_title = outcome.title
    if outcome.transaction_id and not payment.gateway_transaction_id:
        payment.gateway_transaction_id = outcome.transaction_id

    if outcome.status in TERMINAL:
        # One conditional UPDATE decides who applies it, on SQLite and PostgreSQL alike.
        won = session.execute(
            update(Payment)
            .where(Payment.id == payment.id, Payment.applied_at.is_(None))  # type: ignore[union-attr]
            .values(status=outcome.status, applied_at=clock.now(), updated_at=clock.now())
        ).rowcount
        if won != 1:
            session.refresh(payment)
            if outcome.card_token and payment.status == PaymentStatus.PAID.value and payment.purpose in CARD_SAVED:
                CARD_SAVED[payment.purpose](session, payment, outcome)
            return payment, None
        session.refresh(payment)
        settled = HANDLERS[payment.purpose](session, payment, outcome)
        return payment, settled
    if outcome.status in {PaymentStatus.REFUNDED.value, PaymentStatus.CHARGEBACK.value}:
        session.execute(update(Payment).where(Payment.id == payment.id).values(status=outcome.status, updated_at=clock.now()))
        session.refresh(payment)
    return payment, None


@dataclass(frozen=True)
class Applied:
    """One outcome of `apply_outcomes`: what `apply_outcome` would have returned, or why it was refused."""

    outcome: Outcome
    payment: Any  # the Payment, or its Core row when the batch handler settled it; None if unknown
    settled: Settled | None = None
    rejected: str | None = None  # an OutcomeRejected code


def apply_outcomes(session: Session, outcomes: list[Outcome], source: str) -> list[Applied]:
    """`apply_outcome` for many outcomes in one transaction, in the input's order of results.

    Same rule: a terminal outcome changes the business only if its conditional UPDATE (`applied_at IS
    NULL`) wins, here one set-based UPDATE … RETURNING per status; the winners are settled by the
    purpose's batch handler, which gets the payments as Core rows. The batch path reads and writes with
    SQLAlchemy Core (one SELECT, one INSERT of events, one executemany for the gateway's ids, one UPDATE
    per status). Outcomes with no batch handler, non-terminal ones and repeated references go through
    `apply_outcome` one by one. A refused outcome is returned with its code, not raised.
    """
    references = [o.reference for o in outcomes]
    if len(set(references)) != len(references):
        return [_apply_one(session, o, source) for o in outcomes]
    table = Payment.__table__  # type: ignore[attr-defined]
    payments: dict[str, Any] = {}
    for start in range(0, len(references), IN_CHUNK):
        chunk = references[start:start + IN_CHUNK]
        payments.update((p.reference, p) for p in session.execute(
            select(table.c.id, table.c.reference, table.c.purpose, table.c.subject_id, table.c.user_id, table.c.kind,
                   table.c.amount, table.c.currency, table.c.gateway_title, table.c.gateway_transaction_id)
            .where(one_of(session, table.c.reference, chunk))))
    results: dict[str, Applied] = {}
    terminal: list[tuple[Any, Outcome]] = []
    events, gateway_ids = [], []
    now = clock.now()
    for outcome in outcomes:
        payment = payments.get(outcome.reference)
        if payment is None or outcome.status not in TERMINAL or payment.purpose not in BATCH_HANDLERS:
            results[outcome.reference] = _apply_one(session, outcome, source)
            continue
        if outcome.amount is not None and outcome.amount != payment.amount:
            log.warning("payment %s: amount differs from our record; ignored", payment.id)
            results[outcome.reference] = Applied(outcome, None, rejected="amount_mismatch")
            continue
        if outcome.currency.upper() != payment.currency:
            log.warning("payment %s: currency differs from our record; ignored", payment.id)
            results[outcome.reference] = Applied(outcome, None, rejected="currency_mismatch")
            continue
        events.append({"payment_id": payment.id, "at": now, "source": source, "status": outcome.status,
                       "detail": (outcome.error_code or "")[:300]})
        title = payment.gateway_title or outcome.title
        transaction_id = payment.gateway_transaction_id or outcome.transaction_id
        if (title, transaction_id) != (payment.gateway_title, payment.gateway_transaction_id):
            gateway_ids.append({"b_id": payment.id, "gateway_title": title, "gateway_transaction_id": transaction_id})
        terminal.append((payment, outcome))
    session.flush()  # whatever `_apply_one` changed is written before the set-based statements below
    if events:
        session.execute(insert(PaymentEvent.__table__), events)  # type: ignore[attr-defined]
    if gateway_ids:
        session.execute(update(table).where(table.c.id == bindparam("b_id")), gateway_ids)
    won: set[int] = set()
    for status in sorted(TERMINAL):
        ids = [p.id for p, o in terminal if o.status == status]
        for start in range(0, len(ids), IN_CHUNK):
            won.update(session.scalars(
                update(table).where(one_of(session, table.c.id, ids[start:start + IN_CHUNK]), table.c.applied_at.is_(None))
                .values(status=status, applied_at=now, updated_at=now).returning(table.c.id)))
    winners: dict[str, list[tuple[Any, Outcome]]] = {}
    for payment, outcome in terminal:
        if payment.id in won:
            winners.setdefault(payment.purpose, []).append((payment, outcome))
            continue
        # Applied before (another run, the webhook): nothing new, except a card saved with it.
        record = session.get(Payment, payment.id)
        if (record is not None and outcome.card_token and record.status == PaymentStatus.PAID.value
                and record.purpose in CARD_SAVED):
            CARD_SAVED[record.purpose](session, record, outcome)
        results[outcome.reference] = Applied(outcome, record)
    session.flush()  # the handlers below write with Core: nothing of the ORM's may be left to write after them
    for purpose, pairs in winners.items():
        for (payment, outcome), settled in zip(pairs, BATCH_HANDLERS[purpose](session, pairs), strict=True):
            results[outcome.reference] = Applied(outcome, payment, settled)
    return [results[r] for r in references]


def _apply_one(session: Session, outcome: Outcome, source: str) -> Applied:
    try:
        payment, settled = apply_outcome(session, outcome, source)
    except OutcomeRejected as exc:
        return Applied(outcome, None, rejected=exc.code)
    return Applied(outcome, payment, settled)


def payment_failed_to_start(session: Session, reference: str) -> None:
    """The gateway could not even create the payment: it failed, nothing was charged."""
    apply_outcome(session, Outcome(reference=reference, status="failed", error_code="gateway_unavailable"), "created")


def pending_payments(session: Session, older_than_seconds: int, limit: int = 500) -> list[Payment]:
    """Payments we never heard back about: candidates for reconciliation with the gateway."""
    from datetime import timedelta

    cutoff = clock.now() - timedelta(seconds=older_than_seconds)
    return list(session.scalars(
        select(Payment).where(Payment.applied_at.is_(None), Payment.created_at <= cutoff)  # type: ignore[union-attr]
        .order_by(Payment.id).limit(limit)  # type: ignore[arg-type]
    ))


def outcome_from_gateway(outcome: Any) -> Outcome:
    """Turn the port's PaymentOutcome/ChargeResult/TransactionStatus into our Outcome."""
    card = getattr(outcome, "card", None)
    status = outcome.status
    return Outcome(
        reference=outcome.reference,
        status=status.value if hasattr(status, "value") else str(status),
        amount=getattr(outcome, "amount", None),
        currency=getattr(outcome, "currency", "PLN"),
        title=getattr(outcome, "title", None),
        transaction_id=getattr(outcome, "transaction_id", None),
        card_token=card.token if card else None,
        card_brand=card.brand if card else None,
        card_last4=getattr(card, "last4", None) if card else None,
        card_expiry=f"{card.expiry_month:02d}/{card.expiry_year}" if card else None,
        error_code=getattr(outcome, "error_code", None),
    )
