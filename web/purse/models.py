"""The tables of purse (e-purse cards, their ledger, devices and their events) (SQLModel). Changes to these go with
an Alembic migration in `migrations/`; `web/tables.py` registers every area's tables on one metadata. Other areas
reach them only through this area's `interface.py`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from web.platform import clock


class PurseCardRow(SQLModel, table=True):
    """A Kołobrzeg e-purse city card (R-KKM-1..7); its money is the sum of its `PurseLedgerEntry` rows,
    `balance` is a cache of that sum kept in the same transaction as every entry."""

    __tablename__ = "purse_cards"

    id: Optional[int] = Field(default=None, primary_key=True)
    number: str = Field(max_length=20, unique=True, index=True)
    kind: str = Field(max_length=16)  # domain.purse.CardKind
    registered_fare: str = Field(default="normal", max_length=16)  # domain.purse.RegisteredFare
    entitlement_until: Optional[date] = None
    issued_on: date
    last_activated_on: Optional[date] = None
    last_used_on: Optional[date] = None
    blocked_from: Optional[datetime] = None
    holder_name: str = Field(default="", max_length=160)
    pesel_hash: Optional[str] = Field(default=None, max_length=64, index=True)  # personal cards: keyed hash
    account_id: Optional[int] = Field(default=None, foreign_key="users.id", index=True, ondelete="SET NULL")
    linked_at: Optional[datetime] = None
    balance: int = 0  # grosze; cache of the ledger sum
    demo: bool = False  # issued by `ekp demo load`: the only cards the simulators may act on
    boarding_vehicle: Optional[str] = Field(default=None, max_length=32)
    boarding_stop: Optional[str] = Field(default=None, max_length=32)
    boarded_at: Optional[datetime] = None
    updated_at: datetime = Field(default_factory=clock.now)


class PurseLedgerEntry(SQLModel, table=True):
    """One change of an e-purse card's balance (R-MONEY-2): signed grosze, never updated or deleted."""

    __tablename__ = "purse_ledger"
    # The back office's e-purse dashboard reads a period's entries from this index alone on PostgreSQL
    # (an index-only scan: no table rows fetched).
    __table_args__ = (Index("ix_purse_ledger_at_covering", "at", "kind",
                            postgresql_include=["device_id", "detail", "amount", "place"]),)

    id: Optional[int] = Field(default=None, primary_key=True)
    card_id: int = Field(foreign_key="purse_cards.id", index=True)
    at: datetime = Field(index=True)
    kind: str = Field(max_length=20)  # domain.ledger.EntryKind
    amount: int
    detail: str = Field(default="", max_length=80)
    place: str = Field(default="", max_length=120)  # vehicle/stop, meter name, "online"
    device_id: Optional[int] = Field(default=None, index=True)
    payment_id: Optional[int] = Field(default=None, index=True)
    staff_id: Optional[int] = Field(default=None, index=True)  # the staff member of a desk action (R-TOP-5)
    recorded_at: datetime = Field(default_factory=clock.now)


class Device(SQLModel, table=True):
    """A bus validator or parking meter allowed to use the device API (`ekp devices add`)."""

    __tablename__ = "devices"

    id: Optional[int] = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # validator | parking-meter
    name: str = Field(max_length=80)
    secret_hash: str = Field(max_length=64)  # sha256 of the device's high-entropy token
    active: bool = True
    simulator: bool = False  # the simulators' device (no credential: the device API refuses it)
    created_at: datetime = Field(default_factory=clock.now)


class DeviceEvent(SQLModel, table=True):
    """An event a device sent, with the response it got: a retry or re-upload gets the same answer."""

    __tablename__ = "device_events"
    __table_args__ = (
        UniqueConstraint("device_id", "event_id", name="uq_device_event"),
        # the events flagged for staff (R-VAL-8), a few among many
        Index("ix_device_events_flagged", "received_at", sqlite_where=text("flag IS NOT NULL"),
              postgresql_where=text("flag IS NOT NULL")),
        # the back office's health dashboard: each device's last contact and its events of the last day
        Index("ix_device_events_device_received", "device_id", "received_at"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="devices.id", index=True)
    event_id: str = Field(max_length=64)
    action: str = Field(max_length=24)
    response: str  # JSON
    received_at: datetime = Field(default_factory=clock.now)
    # R-VAL-7: sha256 of what the event said (validator taps: `domain.purse.tap_fingerprint`); a repeat must match
    request_digest: Optional[str] = Field(default=None, max_length=64)
    flag: Optional[str] = Field(default=None, max_length=24)  # R-VAL-8, for staff: stale | blocked_card
    card_number: Optional[str] = Field(default=None, max_length=20)
    event_at: Optional[datetime] = None
