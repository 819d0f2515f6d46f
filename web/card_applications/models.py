"""The tables of card_applications (online card applications, their timelines, card notices) (SQLModel). Changes to
these go with an Alembic migration in `migrations/`; `web/tables.py` registers every area's tables on one
metadata. Other areas reach them only through this area's `interface.py`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from web.platform import clock


class CardApplicationRow(SQLModel, table=True):
    """An online application for a Kołobrzeg card (R-KKM-1..4, issue 16): its state, deadlines and the photo
    and entitlement scan, both encrypted at rest (`web.card_applications.photos`) and deleted a stated time
    after the application is closed."""

    __tablename__ = "card_applications"

    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=16)  # domain.purse.CardKind
    registered_fare: str = Field(default="normal", max_length=16)  # domain.purse.RegisteredFare
    first_name: str = Field(max_length=80)
    last_name: str = Field(max_length=80)
    service_point: str = Field(max_length=32)
    entitlement_document: str = Field(default="none", max_length=16)  # none | scan | at_desk
    entitlement_until: Optional[date] = None
    status: str = Field(max_length=24, index=True)
    return_reason: str = Field(default="", max_length=500)
    deposit: int = 0  # grosze due (R-KKM-2)
    deposit_payment_id: Optional[int] = None
    applied_on: Optional[date] = None  # R-KKM-3: the day the deposit was booked
    ready_by: Optional[date] = None  # R-KKM-4
    collect_by: Optional[date] = None
    card_number: Optional[str] = Field(default=None, max_length=20)
    card_id: Optional[int] = None
    replaces_card_id: Optional[int] = None  # R-KKM-8: a data change of this card (the holder's)
    new_card: bool = True  # False: a free change of data not printed on the card, made at the desk
    photo: Optional[bytes] = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    scan: Optional[bytes] = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    scan_type: str = Field(default="", max_length=32)
    personal_data_deleted_at: Optional[datetime] = None
    closed_at: Optional[datetime] = None
    created_at: datetime = Field(default_factory=clock.now)
    updated_at: datetime = Field(default_factory=clock.now)


class CardApplicationEvent(SQLModel, table=True):
    """One step of an application's timeline (what the passenger's status page lists)."""

    __tablename__ = "card_application_events"

    id: Optional[int] = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="card_applications.id", index=True, ondelete="CASCADE")
    at: datetime = Field(default_factory=clock.now)
    status: str = Field(max_length=24)
    detail: str = Field(default="", max_length=500)
    staff_id: Optional[int] = None


class CardNotice(SQLModel, table=True):
    """A notice the card jobs sent (an expiry reminder, an entitlement end): the unique key is the claim, so
    a notice is sent once however many nodes run the job."""

    __tablename__ = "card_notices"
    __table_args__ = (UniqueConstraint("card_id", "kind", "due_on", name="uq_card_notices_once"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    card_id: int
    kind: str = Field(max_length=32)
    due_on: date
    sent_at: datetime = Field(default_factory=clock.now)
