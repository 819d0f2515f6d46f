"""Our side of payments: a record per payment with its state history, and applying each outcome
exactly once however many times (and in whatever order) the webhook, the browser's return, a token
charge's answer or reconciliation report it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol
from dataclasses import dataclass

from sqlalchemy import select, update
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


def create_payment_record(session: Session, *, reference: str, purpose: str, subject_id: int, user_id: int | None,
                          kind: str, amount: int) -> Payment:
    payment = Payment(reference=reference, purpose=purpose, subject_id=subject_id, user_id=user_id, kind=kind, amount=amount)
    session.add(payment)
    session.flush()
    session.add(PaymentEvent(payment_id=payment.id, source="created", status="pending", detail=kind))  # type: ignore[arg-type]
    return payment


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
