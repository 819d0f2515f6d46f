"""The back office's use cases: what an admin changes. Other areas are reached only through their public
service functions (devices: `web.purse.service`; registry: `web.cards.service`; accounts:
`web.accounts.people` / `web.accounts.service`). Every action lands in the audit log as `office.*`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from domain.accounts import InvalidPesel, normalise_email, read_pesel
from domain.cards import RowProblem
from domain.office import MAX_COLLECTED
from web.platform import clock
from web.platform.db import transaction
from web.office.models import MeterCashCollection, RegistryImport
from web.accounts.interface import User
from web.cards.interface import Card
from web.purse.interface import PurseCardRow
from web.platform.protect import pesel_hash
from web.cards import interface as registry
from web.purse import interface as devices_service
from web.accounts.interface import audit
from web.accounts.interface import create_active_user, disable_user
from web.platform.settings import Settings

MAX_DEVICE_NAME = 80
MAX_REGISTRY_BYTES = 20 * 1024 * 1024  # 20 MB: about 200 000 rows of the operator's export
REGISTRY_CHUNK = 500  # rows per transaction when applying: taps and sign-ins never wait long for a lock
STAFF_ROLES = ("staff", "inspector")


class OfficeProblem(Exception):
    def __init__(self, code: str, field: str = "form") -> None:
        super().__init__(code)
        self.code, self.field = code, field


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise OfficeProblem("office.device_name_required", "name")
    if len(name) > MAX_DEVICE_NAME or any(ord(ch) < 32 for ch in name):
        raise OfficeProblem("office.device_name_invalid", "name")
    return name


# --------------------------------------------------------------------------- devices


def add_device(session: Session, admin_id: int, kind: str, name: str, ip: str | None) -> tuple[int, str, str]:
    """Register a device as `ekp devices add` does; returns (id, name, credential shown once)."""
    if kind not in devices_service.DEVICE_KINDS:
        raise OfficeProblem("office.device_kind", "kind")
    device, credential = devices_service.add_device(session, kind, _clean_name(name))
    audit(session, "office.device.added", admin_id, ip, f"device {device.id} ({kind})")
    return device.id, device.name, credential  # type: ignore[return-value]


def disable_device(session: Session, admin_id: int, device_id: int, ip: str | None) -> bool:
    done = devices_service.disable_device(session, device_id)
    if done:
        audit(session, "office.device.disabled", admin_id, ip, f"device {device_id}")
    return done


def rename_device(session: Session, admin_id: int, device_id: int, name: str, ip: str | None) -> bool:
    done = devices_service.rename_device(session, device_id, _clean_name(name))
    if done:
        audit(session, "office.device.renamed", admin_id, ip, f"device {device_id}")
    return done


def record_cash(session: Session, admin_id: int, device_id: int, day: date, amount: int, ip: str | None) -> None:
    """The cash counted from a meter's box for a day (entered again: replaced, both in the audit log)."""
    if not 0 <= amount <= MAX_COLLECTED:
        raise OfficeProblem("office.cash_amount", "amount")
    if day > clock.today():
        raise OfficeProblem("office.cash_future", "day")
    row = session.scalars(select(MeterCashCollection).where(col(MeterCashCollection.device_id) == device_id,
                                                            col(MeterCashCollection.day) == day)).first()
    if row is None:
        session.add(MeterCashCollection(device_id=device_id, day=day, amount=amount, entered_by=admin_id))
    else:
        row.amount, row.entered_by, row.entered_at = amount, admin_id, clock.now()
    audit(session, "office.cash.recorded", admin_id, ip, f"device {device_id} day {day.isoformat()} amount {amount}")


# --------------------------------------------------------------------------- card registry


@dataclass
class RegistryPreview:
    import_id: int
    report: registry.ImportReport
    rows: int
    problems: list[RowProblem] = field(default_factory=list)


def decode_registry(raw: bytes) -> str:
    if len(raw) > MAX_REGISTRY_BYTES:
        raise OfficeProblem("office.registry_too_large", "file")
    if not raw.strip():
        raise OfficeProblem("office.registry_empty", "file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise OfficeProblem("office.registry_not_utf8", "file") from None


def preview_registry(engine: Engine, settings: Settings, admin_id: int, filename: str, raw: bytes,
                     ip: str | None) -> RegistryPreview:
    """What the file would change: the import's own code run in a transaction that is rolled back; the
    upload is recorded (its hash, not its content) so it can be applied once."""
    text = decode_registry(raw)
    rows, problems = registry.read_registry_csv(text)
    report = registry.ImportReport(problems=problems)
    if not problems:
        with transaction(engine) as session:
            registry.apply_registry_rows(session, settings, rows, report)
            session.rollback()
    with transaction(engine) as session:
        record = RegistryImport(admin_id=admin_id, filename=filename[:120], sha256=hashlib.sha256(raw).hexdigest(),
                                rows=len(rows), added=report.added, updated=report.updated, unlinked=report.unlinked,
                                unchanged=report.unchanged, problems=len(problems),
                                status="refused" if problems else "previewed")
        session.add(record)
        session.flush()
        audit(session, "office.registry.previewed", admin_id, ip,
              f"import {record.id}: {len(rows)} rows, {len(problems)} problems")
        import_id = record.id
    return RegistryPreview(import_id, report, len(rows), problems)  # type: ignore[arg-type]


def apply_registry(engine: Engine, settings: Settings, admin_id: int, import_id: int, raw: bytes,
                   ip: str | None, chunk: int = REGISTRY_CHUNK) -> registry.ImportReport:
    """Apply a previewed upload (the same file: its hash must match), `chunk` rows per transaction. The
    import marks itself applied first, so a second click applies nothing."""
    text = decode_registry(raw)
    digest = hashlib.sha256(raw).hexdigest()
    with transaction(engine) as session:
        record = session.get(RegistryImport, import_id)
        if record is None or record.sha256 != digest:
            raise OfficeProblem("office.registry_not_previewed", "file")
        if record.status != "previewed":
            raise OfficeProblem("office.registry_already_applied" if record.status == "applied"
                                else "office.registry_has_problems", "file")
        record.status, record.applied_at = "applied", clock.now()
    rows, problems = registry.read_registry_csv(text)
    report = registry.ImportReport(problems=problems)
    if problems:  # checked at preview; kept as a guard
        raise OfficeProblem("office.registry_has_problems", "file")
    for start in range(0, len(rows), chunk):
        with transaction(engine) as session:
            registry.apply_registry_rows(session, settings, rows[start:start + chunk], report)
    with transaction(engine) as session:
        record = session.get(RegistryImport, import_id)
        assert record is not None
        record.added, record.updated, record.unlinked, record.unchanged = (report.added, report.updated,
                                                                           report.unlinked, report.unchanged)
        audit(session, "office.registry.applied", admin_id, ip,
              f"import {import_id}: {report.added} added, {report.updated} updated, {report.unlinked} unlinked")
    return report


# --------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class Found:
    user: User
    why: str


MAX_SEARCH = 100


def find_accounts(session: Session, settings: Settings, admin_id: int, query: str, ip: str | None) -> list[Found]:
    """Accounts by e-mail (exact, or the start of it), card (city card client code, e-purse card number) or
    exact PESEL (matched by its keyed hash: the number is never stored in clear). Audited without the query."""
    query = query.strip()[:MAX_SEARCH]
    found: dict[int, Found] = {}
    if not query:
        return []
    compact = "".join(query.split())
    if len(compact) == 11 and compact.isdigit():
        try:
            info = read_pesel(compact)
        except InvalidPesel:
            info = None
        if info is not None:
            for user in session.scalars(select(User).where(col(User.pesel_hash) == pesel_hash(settings.pesel_key, info.number))
                                        .limit(20)):
                found.setdefault(user.id, Found(user, "PESEL"))  # type: ignore[arg-type]
    if "@" in query:
        email = normalise_email(query)
        for user in session.scalars(select(User).where(col(User.email).startswith(email, autoescape=True))
                                    .order_by(col(User.email)).limit(50)):
            found.setdefault(user.id, Found(user, "e-mail"))  # type: ignore[arg-type]
    if compact.isascii() and compact.isalnum() and len(compact) <= 20:
        owners = session.scalars(
            select(User).where(or_(
                col(User.id).in_(select(col(Card.account_id)).where(col(Card.client_code) == compact.upper())),
                col(User.id).in_(select(col(PurseCardRow.account_id)).where(col(PurseCardRow.number) == compact))))
            .limit(20))
        for user in owners:
            found.setdefault(user.id, Found(user, "karta"))  # type: ignore[arg-type]
    audit(session, "office.accounts.searched", admin_id, ip, f"{len(found)} found")
    return list(found.values())


def create_staff_account(session: Session, settings: Settings, admin_id: int, fields: dict[str, str],
                         ip: str | None) -> User:
    """A staff or inspector account (active; enrols its second factor at first sign-in)."""
    role = fields.get("role", "")
    if role not in STAFF_ROLES:
        raise OfficeProblem("office.role", "role")
    for name in ("first_name", "last_name"):
        value = fields.get(name, "").strip()
        if not value or len(value) > 80 or any(ord(ch) < 32 for ch in value):
            raise OfficeProblem(f"{name}.required" if not value else f"{name}.invalid", name)
    try:
        user = create_active_user(session, settings, role=role, email=fields.get("email", "").strip()[:254],
                                  first_name=fields["first_name"].strip(), last_name=fields["last_name"].strip(),
                                  password=fields.get("password", "")[:256])
    except ValueError as exc:
        text = str(exc)
        if text.startswith("not an e-mail"):
            raise OfficeProblem("email.invalid", "email") from None
        if text.startswith("password"):
            raise OfficeProblem("office.password_weak", "password") from None
        raise OfficeProblem("office.email_taken", "email") from None
    audit(session, "office.account.created", admin_id, ip, f"user {user.id} ({role})")
    return user


def disable_account(session: Session, admin_id: int, user_id: int, ip: str | None) -> User:
    """Take a staff or inspector account out of service: it can no longer sign in, its sessions end."""
    already = session.scalar(select(col(User.disabled_at)).where(col(User.id) == user_id))
    user = disable_user(session, user_id, STAFF_ROLES)
    if user is None:
        raise OfficeProblem("office.not_staff")
    if already is None:
        audit(session, "office.account.disabled", admin_id, ip, f"user {user.id} ({user.role})")
    return user


def viewed_account(session: Session, admin_id: int, user_id: int, ip: str | None) -> None:
    audit(session, "office.account.viewed", admin_id, ip, f"user {user_id}")


def noted(session: Session, admin_id: int, action: str, detail: str, ip: str | None) -> Any:
    """An admin's read of personal data or an export, in the audit log."""
    audit(session, f"office.{action}", admin_id, ip, detail)


# --------------------------------------------------------------------------- GDPR erasure


def erase_staff_marks_of(session: Session, user_id: int) -> None:
    """GDPR erasure (a step of `web.purposes.gdpr_erasure_steps`) of a staff account: the meter cash it counted
    and the registry files it imported stay, no longer naming it."""
    from sqlalchemy import update

    session.execute(update(MeterCashCollection).where(col(MeterCashCollection.entered_by) == user_id)
                    .values(entered_by=None))
    session.execute(update(RegistryImport).where(col(RegistryImport.admin_id) == user_id).values(admin_id=None))
