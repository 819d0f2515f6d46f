"""The tables of accounts (sign-in, two-factor, people) (SQLModel). Changes to these go with an Alembic migration in
`migrations/`; `web/tables.py` registers every area's tables on one metadata. Other areas reach them only through
this area's `interface.py`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel

from web.platform import clock


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: Optional[int] = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    first_name: str = Field(max_length=80)
    last_name: str = Field(max_length=80)
    role: str = Field(default="passenger", max_length=16)  # passenger | inspector | staff | admin (the back office)
    password_hash: str = Field(max_length=255)
    # PESEL is personal data: a keyed hash to match cards, the number itself only encrypted.
    pesel_hash: Optional[str] = Field(default=None, max_length=64, index=True)
    pesel_encrypted: Optional[bytes] = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    birth_date: date
    language: str = Field(default="pl", max_length=2)
    activated_at: Optional[datetime] = None
    created_at: datetime = Field(default_factory=clock.now)
    password_changed_at: Optional[datetime] = None
    # Second factor (R-AUTH-3): the TOTP secret encrypted (AES-GCM, key derived from EKP_SECRET_KEY), when
    # it was confirmed, and the last time step accepted (a code is never accepted twice).
    totp_secret_encrypted: Optional[bytes] = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    totp_enabled_at: Optional[datetime] = None
    totp_last_step: Optional[int] = None
    # Taken out of service in the back office (staff, inspectors): no sign-in, every session ends.
    disabled_at: Optional[datetime] = None

    @property
    def has_totp(self) -> bool:
        return self.totp_enabled_at is not None and self.totp_secret_encrypted is not None

    @property
    def is_active(self) -> bool:
        return self.activated_at is not None and self.disabled_at is None

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class EmailToken(SQLModel, table=True):
    """A single-use link sent by e-mail (activation or password reset); only its hash is kept."""

    __tablename__ = "email_tokens"

    id: Optional[int] = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    purpose: str = Field(max_length=16)  # activate | reset
    sent_at: datetime = Field(default_factory=clock.now)
    used_at: Optional[datetime] = None


class RecoveryCode(SQLModel, table=True):
    """A single-use recovery code for the second factor (R-AUTH-3); only its keyed hash is kept."""

    __tablename__ = "recovery_codes"

    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    code_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=clock.now)
    used_at: Optional[datetime] = None
