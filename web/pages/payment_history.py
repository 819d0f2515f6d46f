"""The passenger's payments as they read them: what each one paid for, whether they cancelled it, where
its ticket is; the history page and the printable confirmation of one payment (owner only)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from web.cards.interface import Card
from web.five_plus_one.interface import (
    Subscription5p1,
    SubscriptionMonthRow,
)
from web.payment_records.interface import Payment
from web.purse.interface import PurseCardRow
from web.tickets.interface import Ticket
from web.purse import interface as purse
from web.five_plus_one import interface as subscriptions
from web.tickets.interface import is_mobile_card

HISTORY_LIMIT = 100  # the newest payments the history page lists


@dataclass
class PaymentLine:
    payment: Payment
    description: dict[str, object]  # kind ("5p1" | "purse" | "other") and its details, worded by the template
    cancelled: bool  # failed because the payer pressed cancel on the payment page
    ticket_id: int | None = None  # the ticket a 5+1 payment bought
    ticket_mobile: bool = False


def _line(session: Session, payment: Payment, cancelled: set[int]) -> PaymentLine:
    line = PaymentLine(payment, {"kind": "other"}, payment.id in cancelled)
    if payment.purpose == subscriptions.PURPOSE:
        month = session.get(SubscriptionMonthRow, payment.subject_id)
        sub = session.get(Subscription5p1, month.subscription_id) if month else None
        if month is not None and sub is not None:
            line.description = {"kind": "5p1", "variant": sub.variant, "index": month.month_index,
                                 "starts_on": month.starts_on, "ends_on": month.ends_on}
            ticket = session.scalars(select(Ticket).where(col(Ticket.subscription_month_id) == month.id)).first()
            if ticket is not None and payment.status == "paid":
                card = session.get(Card, ticket.card_id)
                line.ticket_id, line.ticket_mobile = ticket.id, bool(card and is_mobile_card(card))
    elif payment.purpose == purse.PURPOSE:
        purse_card = session.get(PurseCardRow, payment.subject_id)
        line.description = {"kind": "purse", "number": purse_card.number if purse_card else ""}
    return line


def my_payments(session: Session, user_id: int, limit: int = HISTORY_LIMIT) -> list[PaymentLine]:
    payments = list(session.scalars(select(Payment).where(col(Payment.user_id) == user_id)
                                    .order_by(col(Payment.created_at).desc(), col(Payment.id).desc()).limit(limit)))
    cancelled = subscriptions.cancelled_ids(session, [p.id for p in payments])  # type: ignore[misc]
    return [_line(session, p, cancelled) for p in payments]


def my_payment(session: Session, user_id: int, reference: str) -> PaymentLine | None:
    """One of the passenger's payments by its reference; None for anyone else's (or none)."""
    if not reference or len(reference) > 96:
        return None
    payment = session.scalars(select(Payment).where(col(Payment.reference) == reference)).first()
    if payment is None or payment.user_id != user_id:
        return None
    return _line(session, payment, subscriptions.cancelled_ids(session, [payment.id]))  # type: ignore[list-item]
