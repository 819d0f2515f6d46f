"""Every table of EKP, registered on one `SQLModel.metadata`: import this module wherever the whole
schema must be known (migrations/env.py for Alembic, so `ekp db`, the tests and the benchmarks, which
all migrate through it). A composition root (pyproject.toml's layers): areas import their own
`models` and other areas' tables through their `interface`, never this module."""

from __future__ import annotations

from web.platform.models import (
    AuditEvent as AuditEvent,
    JobRun as JobRun,
    OutboxMail as OutboxMail,
    StoreEntry as StoreEntry,
)
from web.accounts.models import (
    EmailToken as EmailToken,
    RecoveryCode as RecoveryCode,
    User as User,
)
from web.cards.models import (
    Card as Card,
)
from web.five_plus_one.models import (
    Subscription5p1 as Subscription5p1,
    SubscriptionMonthRow as SubscriptionMonthRow,
)
from web.tickets.models import (
    Inspection as Inspection,
    Ticket as Ticket,
    TicketDevice as TicketDevice,
)
from web.purse.models import (
    Device as Device,
    DeviceEvent as DeviceEvent,
    PurseCardRow as PurseCardRow,
    PurseLedgerEntry as PurseLedgerEntry,
)
from web.payment_records.models import (
    Payment as Payment,
    PaymentEvent as PaymentEvent,
)
from web.card_applications.models import (
    CardApplicationEvent as CardApplicationEvent,
    CardApplicationRow as CardApplicationRow,
    CardNotice as CardNotice,
)
from web.office.models import (
    MeterCashCollection as MeterCashCollection,
    RegistryImport as RegistryImport,
)

__all__ = [
    "AuditEvent",
    "Card",
    "CardApplicationEvent",
    "CardApplicationRow",
    "CardNotice",
    "Device",
    "DeviceEvent",
    "EmailToken",
    "Inspection",
    "JobRun",
    "MeterCashCollection",
    "OutboxMail",
    "Payment",
    "PaymentEvent",
    "PurseCardRow",
    "PurseLedgerEntry",
    "RecoveryCode",
    "RegistryImport",
    "StoreEntry",
    "Subscription5p1",
    "SubscriptionMonthRow",
    "Ticket",
    "TicketDevice",
    "User",
]
