"""The platform's own tables (SQLModel): the mail outbox, the key/value store, the audit trail, the jobs' counters.
Every area keeps its tables in its own `models.py` (docs/architecture.md, "Tables per area"); `web/tables.py`
registers them all. Changes to these go with an Alembic migration in `migrations/`."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel

from web.platform import clock


class OutboxMail(SQLModel, table=True):
    """Mail waits here until delivered, so a request never fails because SMTP is down."""

    __tablename__ = "mail_outbox"

    id: Optional[int] = Field(default=None, primary_key=True)
    to_address: str = Field(max_length=254, index=True)
    subject: str = Field(max_length=255)
    text_body: str
    html_body: str
    created_at: datetime = Field(default_factory=clock.now)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=clock.now, index=True)
    sent_at: Optional[datetime] = Field(default=None, index=True)
    last_error: Optional[str] = Field(default=None, max_length=500)
    # Given up (EKP_MAIL_RETRY_HOURS passed, its link no longer usable, or a bad address): never retried;
    # `last_error` says why; staff list these with `ekp mail failed`.
    failed_at: Optional[datetime] = None
    # The single-use link this mail carries: its validity counts from delivery (R-ACC-3).
    email_token_id: Optional[int] = Field(default=None, foreign_key="email_tokens.id", ondelete="SET NULL")
    # A mail queued unrendered (web.platform.mail.deferred_mail): its templates, language and context (JSON);
    # subject and bodies stay empty in the row and are rendered whenever the row is loaded.
    template: Optional[str] = Field(default=None, max_length=64)
    language: Optional[str] = Field(default=None, max_length=8)
    context: Optional[str] = None


class StoreEntry(SQLModel, table=True):
    """Key/value store for server-side sessions and rate limits when no Redis is configured."""

    __tablename__ = "kv_store"

    key: str = Field(primary_key=True, max_length=255)
    value: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    expires_at: Optional[datetime] = Field(default=None, index=True)


class AuditEvent(SQLModel, table=True):
    """Who did what, when; never holds PESEL, passwords or card numbers."""

    __tablename__ = "audit_events"

    id: Optional[int] = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=clock.now, index=True)
    user_id: Optional[int] = Field(default=None, index=True)
    action: str = Field(max_length=64, index=True)
    ip: Optional[str] = Field(default=None, max_length=64)
    detail: str = Field(default="", max_length=500)  # the back office's new per day  # the device's time of the event


class JobRun(SQLModel, table=True):
    """How often each scheduled job (`ekp billing run`, `ekp mail send`, ...) ran and failed, on any node, for
    the metrics (`ekp_job_runs`, `ekp_job_failures`, `ekp_job_last_success_timestamp_seconds`)."""

    __tablename__ = "job_runs"

    job: str = Field(primary_key=True, max_length=32)
    runs: int = 0
    failures: int = 0
    last_run_at: Optional[datetime] = None
    last_success_at: Optional[datetime] = None
    last_error: Optional[str] = Field(default=None, max_length=300)
