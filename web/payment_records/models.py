"""The tables of payment_records (our record of each payment and its history) (SQLModel). Changes to these go with an
Alembic migration in `migrations/`; `web/tables.py` registers every area's tables on one metadata. Other areas
reach them only through this area's `interface.py`."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlmodel import Field, SQLModel

from web.platform import clock


class Payment(SQLModel, table=True):
    """Our record of one payment at the gateway; its outcome is applied to the business exactly once."""

    __tablename__ = "payments"

    id: Optional[int] = Field(default=None, primary_key=True)
    reference: str = Field(max_length=96, unique=True, index=True)  # our idempotency key, sent to the gateway
    purpose: str = Field(max_length=24)  # 5p1_month | purse_topup
    subject_id: int  # the month row or top-up this pays for
    user_id: Optional[int] = Field(default=None, foreign_key="users.id", index=True, ondelete="SET NULL")
    kind: str = Field(max_length=8)  # hosted | token
    amount: int  # grosze
    currency: str = Field(default="PLN", max_length=3)
    status: str = Field(default="pending", max_length=16, index=True)  # pending|paid|failed|refunded|chargeback
    gateway_transaction_id: Optional[str] = Field(default=None, max_length=64, index=True)
    gateway_title: Optional[str] = Field(default=None, max_length=64, index=True)
    redirect_url: Optional[str] = Field(default=None, max_length=1000)
    applied_at: Optional[datetime] = None
    created_at: datetime = Field(default_factory=clock.now, index=True)
    updated_at: datetime = Field(default_factory=clock.now)


class PaymentEvent(SQLModel, table=True):
    """The state history of a payment: every notification, return, charge and reconciliation."""

    __tablename__ = "payment_events"

    id: Optional[int] = Field(default=None, primary_key=True)
    payment_id: int = Field(foreign_key="payments.id", index=True, ondelete="CASCADE")
    at: datetime = Field(default_factory=clock.now)
    source: str = Field(max_length=16)  # created | webhook | return | charge | reconcile
    status: str = Field(max_length=16)
    detail: str = Field(default="", max_length=300)
