"""The tables of tickets (ticket records, mobile-ticket phones, inspections) (SQLModel). Changes to these go with an
Alembic migration in `migrations/`; `web/tables.py` registers every area's tables on one metadata. Other areas
reach them only through this area's `interface.py`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel

from web.platform import clock


class Ticket(SQLModel, table=True):
    """A period ticket on a card (one per paid 5+1 month)."""

    __tablename__ = "tickets"

    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: Optional[int] = Field(default=None, foreign_key="users.id", index=True, ondelete="SET NULL")
    card_id: int = Field(foreign_key="cards.id", index=True)
    subscription_month_id: Optional[int] = Field(default=None, foreign_key="subscription_months.id", unique=True)
    product: str = Field(max_length=16)  # e.g. 5P1
    variant: str = Field(max_length=8)  # normal | reduced
    holder_name: str = Field(max_length=160)
    valid_from: date = Field(index=True)
    valid_until: date = Field(index=True)
    price: int
    revoked_at: Optional[datetime] = None
    revoked_reason: Optional[str] = Field(default=None, max_length=24)  # a domain.ticket_record.Revocation value
    created_at: datetime = Field(default_factory=clock.now)


class TicketDevice(SQLModel, table=True):
    """A phone a mobile ticket is bound to (at most 2 active per ticket): its public key and signed record."""

    __tablename__ = "ticket_devices"

    id: Optional[int] = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True, ondelete="CASCADE")
    user_id: Optional[int] = Field(default=None, foreign_key="users.id", index=True, ondelete="SET NULL")
    public_key: str = Field(max_length=66, index=True)  # compressed P-256 point, hex
    label: str = Field(default="", max_length=80)
    static_record: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    issuer_key_id: int
    bound_at: datetime = Field(default_factory=clock.now)
    unbound_at: Optional[datetime] = Field(default=None, index=True)


class Inspection(SQLModel, table=True):
    """One ticket check by an inspector: a scanned code, a terminal request or a card lookup."""

    __tablename__ = "inspections"

    id: Optional[int] = Field(default=None, primary_key=True)
    inspector_id: Optional[int] = Field(default=None, foreign_key="users.id", index=True, ondelete="SET NULL")
    at: datetime = Field(default_factory=clock.now, index=True)
    method: str = Field(max_length=16)  # scan | terminal | card
    verdict: str = Field(max_length=24, index=True)  # valid or a domain.ticket_record.Reason value
    ticket_id: Optional[int] = Field(default=None, index=True)  # as read from the code (may not exist)
    card_id: Optional[int] = Field(default=None, index=True)
