"""Database tables (SQLModel). Changes to these go with an Alembic migration in `migrations/`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint, text
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
    detail: str = Field(default="", max_length=500)


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
    created_at: datetime = Field(default_factory=clock.now, index=True)  # the back office's new per day


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
    event_at: Optional[datetime] = None  # the device's time of the event


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
