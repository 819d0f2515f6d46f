"""The 5+1 subscription: buying it, charging months, the "Bilet 5plus1" tab (R-5P1-1..9)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import Session

from domain.five_plus_one import SubscriptionStatus
from web.models import Subscription5p1

OPEN_STATUSES = [s.value for s in SubscriptionStatus if s.is_open]


def card_has_active_subscription(session: Session, card_id: int) -> bool:
    """An open subscription (paying or waiting for its first payment) keeps its card linked."""
    count = session.scalar(
        select(func.count()).select_from(Subscription5p1).where(
            Subscription5p1.card_id == card_id, Subscription5p1.status.in_(OPEN_STATUSES)  # type: ignore[attr-defined]
        )
    )
    return bool(count)
