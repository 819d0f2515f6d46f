"""The tables of five_plus_one (5+1 subscriptions and their months) (SQLModel). Changes to these go with an Alembic
migration in `migrations/`; `web/tables.py` registers every area's tables on one metadata. Other areas reach them
only through this area's `interface.py`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from web.platform import clock


class Subscription5p1(SQLModel, table=True):
    """A passenger's 5+1 subscription (R-5P1-4); its months are `SubscriptionMonthRow` rows."""

    __tablename__ = "subscriptions_5p1"

    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    card_id: int = Field(foreign_key="cards.id", index=True)
    variant: str = Field(max_length=8)  # normal | reduced
    first_day: date
    auto_renew: bool = False
    status: str = Field(max_length=24, index=True)
    end_reason: Optional[str] = Field(default=None, max_length=32)
    ended_on: Optional[date] = None
    card_token: Optional[str] = Field(default=None, max_length=128)  # the gateway's saved-card token
    card_brand: Optional[str] = Field(default=None, max_length=32)
    card_last4: Optional[str] = Field(default=None, max_length=4)
    card_expiry: Optional[str] = Field(default=None, max_length=7)
    created_at: datetime = Field(default_factory=clock.now, index=True)


class SubscriptionMonthRow(SQLModel, table=True):
    """One monthly ticket of a subscription: planned, charged, paid (and then a ticket)."""

    __tablename__ = "subscription_months"
    __table_args__ = (UniqueConstraint("subscription_id", "cycle", "month_index", name="uq_subscription_month"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="subscriptions_5p1.id", index=True, ondelete="CASCADE")
    cycle: int
    month_index: int
    starts_on: date = Field(index=True)
    ends_on: date
    price: int  # grosze, fixed when planned
    state: str = Field(max_length=16, index=True)
    attempts: int = 0
    next_attempt_on: Optional[date] = None
    paid_on: Optional[date] = Field(default=None, index=True)  # the back office's revenue per month
    updated_at: datetime = Field(default_factory=clock.now)
