"""The tables of cards (the Kraków card registry) (SQLModel). Changes to these go with an Alembic migration in
`migrations/`; `web/tables.py` registers every area's tables on one metadata. Other areas reach them only through
this area's `interface.py`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from web.platform import clock


class Card(SQLModel, table=True):
    """A city card in the operator's registry (R-CARD-1..4); linked to at most one account."""

    __tablename__ = "cards"
    __table_args__ = (UniqueConstraint("carrier_type", "client_code", name="uq_cards_type_code"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    carrier_type: str = Field(max_length=8)
    client_code: str = Field(max_length=20, index=True)
    holder_name: str = Field(max_length=160)
    pesel_hash: str = Field(max_length=64, index=True)  # keyed hash; the number itself is never stored
    resident_from: Optional[date] = None
    resident_until: Optional[date] = None
    has_resident_status: bool = False
    blocked: bool = False
    account_id: Optional[int] = Field(default=None, foreign_key="users.id", index=True, ondelete="SET NULL")
    linked_at: Optional[datetime] = None
    updated_at: datetime = Field(default_factory=clock.now)
