"""The tables of office (the back office's meter cash counts and registry uploads) (SQLModel). Changes to these go
with an Alembic migration in `migrations/`; `web/tables.py` registers every area's tables on one metadata. Other
areas reach them only through this area's `interface.py`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from web.platform import clock


class MeterCashCollection(SQLModel, table=True):
    """The cash staff collected from a parking meter's box for one day (the back office compares it with the
    coin top-ups the meter booked that day)."""

    __tablename__ = "meter_cash_collections"
    __table_args__ = (UniqueConstraint("device_id", "day", name="uq_meter_cash_day"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="devices.id", index=True)
    day: date
    amount: int  # grosze counted
    entered_by: Optional[int] = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    entered_at: datetime = Field(default_factory=clock.now)


class RegistryImport(SQLModel, table=True):
    """One upload of the operator's card registry in the back office: previewed, then applied (or not)."""

    __tablename__ = "registry_imports"

    id: Optional[int] = Field(default=None, primary_key=True)
    admin_id: Optional[int] = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    filename: str = Field(default="", max_length=120)
    sha256: str = Field(max_length=64)
    rows: int = 0
    added: int = 0
    updated: int = 0
    unlinked: int = 0
    unchanged: int = 0
    problems: int = 0
    status: str = Field(default="previewed", max_length=16)  # previewed | applied | refused
    created_at: datetime = Field(default_factory=clock.now, index=True)
    applied_at: Optional[datetime] = None
