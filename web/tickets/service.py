"""Mobile tickets on the phone and their inspection (R-5P1-8, R-TKT-1..4; docs/ticket-record.md).

* The issuer keys (R-TKT-3) are a provided secret shared by every node, ``EKP_TICKET_KEYS``
  (``<id>:<hex>,...``; the first signs, all verify; required in production). Without it (development,
  tests) they live in ``var/`` (``ticket_issuer_key_<id>.pem``, generated on first use with key id 1;
  the highest id signs). Every key is published in the trust list; an old key stays listed until the
  tickets it signed have expired, then it is removed.
* A ticket on a mobile carrier is held by at most ``MAX_DEVICES`` phones (R-TKT-1): each phone sends
  the public half of a non-extractable WebCrypto key and gets back a static record naming it. A phone
  that is unbound is revoked for that ticket by (ticket id, device key); changes of phone are limited
  (``domain.ticket_phones``).
* Inspectors verify presentations offline in JavaScript with the trust list (issuer keys, revoked
  tickets with the reason, revoked phones), or online through the terminal endpoint; every check lands
  in ``inspections``. ``revoke_ticket`` revokes a ticket for a reason (R-TKT-4).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import exists, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from domain import five_plus_one, ticket_phones
from domain import ticket_record as tr
from domain.carriers import UnknownCarrierType, carrier_type_from_code, display_name, is_mobile
from web.platform import clock
from web.platform.db import affected
from web.platform.models import AuditEvent
from web.tickets.models import Inspection, Ticket, TicketDevice
from web.accounts.interface import User
from web.cards.interface import Card
from web.platform.settings import Settings

MAX_DEVICES = ticket_phones.MAX_PHONES
"""A ticket may be bound to at most this many phones at a time (like Kraków's official app)."""

FIRST_ISSUER_KEY_ID = 1
_KEY_PREFIX = "ticket_issuer_key_"
PRODUCT_CODES = {("5P1", "normal"): "5P1-N", ("5P1", "reduced"): "5P1-U"}
"""Ticket product + variant -> the product code written into the record (N normal, U reduced)."""

REVOKED_KEEP_DAYS = 1
"""A revoked ticket stays in the revocation list until this many days after its last valid day."""

INSPECTION_METHODS = ("scan", "terminal", "card")


# --- issuer keys ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuerKeys:
    signing_id: int
    signing_key: ec.EllipticCurvePrivateKey = field(repr=False)
    public: dict[int, ec.EllipticCurvePublicKey] = field(repr=False)


_keys_lock = threading.Lock()
_keys_cache: dict[str, IssuerKeys] = {}


def _write_new_key(path: Path) -> None:
    key = tr.generate_private_key()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def issuer_keys(var_dir: Path) -> IssuerKeys:
    """The issuer keys in ``var_dir`` (key id 1 is generated on first use)."""
    var_dir = Path(var_dir)
    cache_key = str(var_dir.resolve())
    with _keys_lock:
        cached = _keys_cache.get(cache_key)
        if cached is not None:
            return cached
        files = sorted(var_dir.glob(f"{_KEY_PREFIX}*.pem")) if var_dir.is_dir() else []
        if not files:
            _write_new_key(var_dir / f"{_KEY_PREFIX}{FIRST_ISSUER_KEY_ID}.pem")
            files = sorted(var_dir.glob(f"{_KEY_PREFIX}*.pem"))
        private: dict[int, ec.EllipticCurvePrivateKey] = {}
        for path in files:
            suffix = path.stem[len(_KEY_PREFIX):]
            if not suffix.isdigit() or not 0 <= int(suffix) <= tr.MAX_KEY_ID:
                continue
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
                raise ValueError(f"{path} is not a P-256 private key")
            private[int(suffix)] = key
        if not private:
            raise ValueError(f"no usable issuer key ({_KEY_PREFIX}<id>.pem) in {var_dir}")
        signing_id = max(private)
        keys = IssuerKeys(signing_id, private[signing_id], {kid: k.public_key() for kid, k in private.items()})
        _keys_cache[cache_key] = keys
        return keys


_env_keys_cache: dict[tuple[tuple[int, int], ...], IssuerKeys] = {}


def _keys_from_settings(ticket_keys: tuple[tuple[int, int], ...]) -> IssuerKeys:
    with _keys_lock:
        cached = _env_keys_cache.get(ticket_keys)
        if cached is None:
            private = {kid: ec.derive_private_key(scalar, ec.SECP256R1()) for kid, scalar in ticket_keys}
            signing_id = ticket_keys[0][0]
            cached = IssuerKeys(signing_id, private[signing_id], {kid: k.public_key() for kid, k in private.items()})
            _env_keys_cache[ticket_keys] = cached
        return cached


def issuer_keys_for(settings: Settings) -> IssuerKeys:
    """The issuer keys of this deployment: EKP_TICKET_KEYS when given (every node the same), else var/."""
    if settings.ticket_keys:
        return _keys_from_settings(settings.ticket_keys)
    return issuer_keys(settings.var_dir)


# --- what a ticket looks like in the record and on the page ----------------------------------------


def holder_initials(name: str) -> str:
    """Up to four initials of a holder's name ("Anna Maria Nowak-Kowalska" -> "AMNK")."""
    letters = []
    for word in name.replace("-", " ").split():
        first = next((ch for ch in word if ch.isalpha()), None)
        if first:
            letters.append(first.upper())
    return "".join(letters[: tr.MAX_INITIALS_LETTERS])


def product_code(ticket: Ticket) -> str:
    return PRODUCT_CODES.get((ticket.product, ticket.variant), f"{ticket.product}-{ticket.variant[:1].upper()}")


def validity_utc(ticket: Ticket) -> tuple[datetime, datetime]:
    """Warsaw days [valid_from, valid_until] as UTC instants [start, end) on whole minutes (R-5P1-3)."""
    return five_plus_one.ticket_validity(ticket.valid_from, ticket.valid_until, clock.WARSAW)


def ticket_state(ticket: Ticket, today: date, card_blocked: bool = False) -> str:
    """revoked | expired | upcoming | valid (on Warsaw day ``today``)."""
    if ticket.revoked_at is not None or card_blocked:
        return "revoked"
    if ticket.valid_until < today:
        return "expired"
    if ticket.valid_from > today:
        return "upcoming"
    return "valid"


@dataclass
class TicketView:
    ticket: Ticket
    product_code: str
    carrier_type: str
    carrier_name: str
    client_code: str
    is_mobile: bool
    state: str
    devices: list[TicketDevice]
    changes: ticket_phones.PhoneChanges | None = None
    """Changes of phone used in the last 30 days (R-TKT-1); None for a plastic carrier."""

    @property
    def can_bind(self) -> bool:
        return self.is_mobile and self.state in {"valid", "upcoming"} and len(self.devices) < MAX_DEVICES


def is_mobile_card(card: Card) -> bool:
    try:
        return is_mobile(carrier_type_from_code(card.carrier_type))
    except UnknownCarrierType:
        return False


def _carrier_name(card: Card) -> str:
    try:
        return display_name(carrier_type_from_code(card.carrier_type))
    except UnknownCarrierType:
        return card.carrier_type


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _bound_times(session: Session, ticket_ids: Iterable[int]) -> dict[int, list[datetime]]:
    """When each phone was ever bound to these tickets (ended bindings included)."""
    ids = list(ticket_ids)
    found: dict[int, list[datetime]] = {tid: [] for tid in ids}
    if ids:
        for ticket_id, bound_at in session.exec(select(col(TicketDevice.ticket_id), col(TicketDevice.bound_at))
                                                .where(col(TicketDevice.ticket_id).in_(ids))):
            found[ticket_id].append(_utc(bound_at))
    return found


def _active_devices(session: Session, ticket_ids: Iterable[int]) -> dict[int, list[TicketDevice]]:
    ids = list(ticket_ids)
    found: dict[int, list[TicketDevice]] = {tid: [] for tid in ids}
    if not ids:
        return found
    rows = session.scalars(select(TicketDevice).where(col(TicketDevice.ticket_id).in_(ids),
                                                      col(TicketDevice.unbound_at).is_(None))
                           .order_by(col(TicketDevice.bound_at)))
    for device in rows:
        found[device.ticket_id].append(device)
    return found


def _view(ticket: Ticket, card: Card, devices: list[TicketDevice], today: date,
          bound: list[datetime] | None = None) -> TicketView:
    mobile = is_mobile_card(card)
    changes = ticket_phones.phone_changes(bound, clock.now()) if mobile and bound is not None else None
    return TicketView(ticket=ticket, product_code=product_code(ticket), carrier_type=card.carrier_type,
                      carrier_name=_carrier_name(card), client_code=card.client_code, is_mobile=mobile,
                      state=ticket_state(ticket, today, card.blocked), devices=devices, changes=changes)


def my_tickets(session: Session, user_id: int, today: date, past_days: int = 31) -> list[TicketView]:
    """The passenger's tickets that are valid, upcoming, or ended in the last ``past_days`` days."""
    rows = session.exec(select(Ticket, Card).join(Card, col(Ticket.card_id) == col(Card.id))
                        .where(col(Ticket.user_id) == user_id, col(Ticket.valid_until) >= today - timedelta(days=past_days))
                        .order_by(col(Ticket.valid_from), col(Ticket.id))).all()
    ids = [t.id for t, _ in rows if t.id is not None]
    devices = _active_devices(session, ids)
    bound = _bound_times(session, ids)
    return [_view(ticket, card, devices.get(ticket.id, []), today, bound.get(ticket.id, []))  # type: ignore[arg-type]
            for ticket, card in rows]


def my_ticket(session: Session, user_id: int, ticket_id: int, today: date) -> TicketView | None:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or ticket.user_id != user_id:
        return None
    card = session.get(Card, ticket.card_id)
    if card is None:
        return None
    return _view(ticket, card, _active_devices(session, [ticket_id])[ticket_id], today,
                 _bound_times(session, [ticket_id])[ticket_id])


# --- binding a ticket to a phone -------------------------------------------------------------------


@dataclass
class BindResult:
    device: TicketDevice | None = None
    problem: str | None = None
    """ticket.not_found | ticket.not_mobile | ticket.ended | ticket.device_limit | ticket.change_limit | ticket.bad_key"""
    next_change_at: datetime | None = None  # with ticket.change_limit: when a change of phone is possible again


def sign_ticket_record(ticket: Ticket, birth_year: int | None, device_key: bytes, keys: IssuerKeys) -> bytes:
    valid_from, valid_until = validity_utc(ticket)
    fields = tr.TicketFields(
        key_id=keys.signing_id, ticket_id=ticket.id or 0, product_code=product_code(ticket),
        valid_from=valid_from, valid_until=valid_until, holder_initials=holder_initials(ticket.holder_name),
        birth_year=birth_year, device_public_key=device_key,
    )
    return tr.sign_static(keys.signing_key, fields)


def _birth_year(session: Session, ticket: Ticket) -> int | None:
    user = session.get(User, ticket.user_id) if ticket.user_id else None
    if user is None or not tr.MIN_BIRTH_YEAR <= user.birth_date.year <= tr.MAX_BIRTH_YEAR:
        return None
    return user.birth_date.year


def bind_device(session: Session, user_id: int, ticket_id: int, public_key: bytes, label: str,
                keys: IssuerKeys, today: date, ip: str | None = None) -> BindResult:
    """Bind the passenger's ticket to the phone holding ``public_key``; sign a record naming it.

    The same phone binding again gets a freshly signed record on its existing binding.
    """
    view = my_ticket(session, user_id, ticket_id, today)
    if view is None:
        return BindResult(problem="ticket.not_found")
    if not view.is_mobile:
        return BindResult(problem="ticket.not_mobile")
    if view.state not in {"valid", "upcoming"}:
        return BindResult(problem="ticket.ended")
    try:
        device_key = tr.compressed_device_key(public_key)
    except (ValueError, TypeError):
        return BindResult(problem="ticket.bad_key")
    # Serialise concurrent binds of one ticket (the row lock is a no-op on SQLite, which serialises anyway).
    session.exec(select(Ticket).where(col(Ticket.id) == ticket_id).with_for_update()).first()
    devices = _active_devices(session, [ticket_id])[ticket_id]
    record = sign_ticket_record(view.ticket, _birth_year(session, view.ticket), device_key, keys)
    existing = next((d for d in devices if d.public_key == device_key.hex()), None)
    if existing is not None:
        existing.static_record = record
        existing.issuer_key_id = keys.signing_id
        session.add(existing)
        return BindResult(device=existing)
    now = clock.now()
    bound = _bound_times(session, [ticket_id])[ticket_id]
    refusal = ticket_phones.new_phone_refusal(len(devices), bound, now)
    if refusal is not None:
        return BindResult(problem=f"ticket.{refusal}",
                          next_change_at=ticket_phones.phone_changes(bound, now).next_change_at)
    device = TicketDevice(ticket_id=ticket_id, user_id=user_id, public_key=device_key.hex(),
                          label=label[:ticket_phones.PHONE_NAME_MAX], static_record=record, issuer_key_id=keys.signing_id,
                          bound_at=now)
    session.add(device)
    session.add(AuditEvent(user_id=user_id, action="ticket.bind_device", ip=ip, detail=f"ticket {ticket_id}"))
    session.flush()
    return BindResult(device=device)


def unbind_device(session: Session, user_id: int, device_id: int, ip: str | None = None) -> TicketDevice | None:
    """End a binding of one of the passenger's tickets; None when there is no such active binding."""
    device = session.get(TicketDevice, device_id)
    if device is None or device.unbound_at is not None:
        return None
    ticket = session.get(Ticket, device.ticket_id)
    if ticket is None or ticket.user_id != user_id:
        return None
    device.unbound_at = clock.now()
    session.add(device)
    session.add(AuditEvent(user_id=user_id, action="ticket.unbind_device", ip=ip, detail=f"ticket {ticket.id}"))
    return device


def rename_device(session: Session, user_id: int, device_id: int, name: str) -> TicketDevice | None:
    """Give one of the passenger's bound phones a name (already cleaned: ticket_phones.clean_phone_name);
    None when there is no such active binding of theirs."""
    device = session.get(TicketDevice, device_id)
    if device is None or device.unbound_at is not None:
        return None
    ticket = session.get(Ticket, device.ticket_id)
    if ticket is None or ticket.user_id != user_id:
        return None
    device.label = name[:ticket_phones.PHONE_NAME_MAX]
    session.add(device)
    return device


def current_mobile_ticket(session: Session, user_id: int, today: date) -> int | None:
    """The id of the passenger's valid ticket on a mobile carrier (the one to show), if any."""
    views = [v for v in my_tickets(session, user_id, today, past_days=0) if v.is_mobile and v.state == "valid"]
    views.sort(key=lambda v: v.ticket.valid_until)
    return views[0].ticket.id if views else None


def my_devices(session: Session, user_id: int, today: date) -> list[tuple[TicketDevice, TicketView]]:
    """Every active binding of the passenger's current tickets (for the account page)."""
    return [(device, view) for view in my_tickets(session, user_id, today, past_days=0) for device in view.devices]


# --- trust list, verification, inspections ------------------------------------------------------------


def revoke_ticket(session: Session, ticket_id: int, reason: str, ip: str | None = None) -> bool:
    """Revoke a ticket for ``reason`` (a ``domain.ticket_record.Revocation`` value other than
    ``device_unbound``: cancelled, refunded, chargeback, card_blocked, other). Every inspector refuses
    it once synced, and the verdict names the reason (R-TKT-4).

    Idempotent: True when this call revoked it; False when there is no such ticket or it was already
    revoked (the first reason stays). Raises ValueError for an unknown reason. Runs in the caller's
    transaction; a stable entry point for other use cases (payment reversals, card blocking).
    """
    try:
        why = tr.Revocation(reason)
    except ValueError:
        raise ValueError(f"unknown revocation reason {reason!r}") from None
    if why is tr.Revocation.DEVICE_UNBOUND:
        raise ValueError("a phone is unbound with unbind_device, not by revoking the ticket")
    revoked = affected(session.execute(update(Ticket).where(col(Ticket.id) == ticket_id, col(Ticket.revoked_at).is_(None))
                           .values(revoked_at=clock.now(), revoked_reason=why.value)))
    if revoked:
        session.add(AuditEvent(action="ticket.revoke", ip=ip, detail=f"ticket {ticket_id}: {why.value}"))
    return bool(revoked)


def _revocation_of(ticket: Ticket, card_blocked: bool) -> str:
    if ticket.revoked_at is not None:
        return ticket.revoked_reason or tr.Revocation.OTHER.value
    return tr.Revocation.CARD_BLOCKED.value if card_blocked else ""


def revocations(session: Session, today: date, ticket_id: int | None = None) -> dict[int, str]:
    """Tickets still within validity (+ a day) that were revoked or sit on a blocked card -> the reason."""
    query = (select(Ticket, col(Card.blocked)).join(Card, col(Ticket.card_id) == col(Card.id))
             .where(col(Ticket.valid_until) >= today - timedelta(days=REVOKED_KEEP_DAYS),
                    or_(col(Ticket.revoked_at).is_not(None), col(Card.blocked).is_(True))))
    if ticket_id is not None:
        query = query.where(col(Ticket.id) == ticket_id)
    return {int(ticket.id): _revocation_of(ticket, bool(blocked))  # type: ignore[arg-type]
            for ticket, blocked in session.exec(query).all()}


def revoked_ticket_ids(session: Session, today: date) -> list[int]:
    """Tickets still within validity (+ a day) that were revoked or sit on a blocked card."""
    return sorted(revocations(session, today))


def revoked_devices(session: Session, today: date, ticket_id: int | None = None) -> set[tuple[int, bytes]]:
    """(ticket id, device key) of phones unbound from tickets still within validity (+ a day) and not
    bound to them again since (R-TKT-1): their records no longer verify."""
    ended = aliased(TicketDevice)
    bound_again = select(col(TicketDevice.id)).where(col(TicketDevice.ticket_id) == ended.ticket_id,
                                                col(TicketDevice.public_key) == ended.public_key,
                                                col(TicketDevice.unbound_at).is_(None))
    query = (select(ended.ticket_id, ended.public_key).join(Ticket, col(Ticket.id) == ended.ticket_id)
             .where(col(ended.unbound_at).is_not(None),
                    col(Ticket.valid_until) >= today - timedelta(days=REVOKED_KEEP_DAYS),
                    ~exists(bound_again)))
    if ticket_id is not None:
        query = query.where(ended.ticket_id == ticket_id)
    return {(int(tid), bytes.fromhex(key)) for tid, key in session.exec(query).all()}


def trust_list_document(session: Session, keys: IssuerKeys, now: datetime) -> dict[str, object]:
    today = clock.to_local(now).date()
    return tr.trust_list(keys.public, revocations(session, today), now, revoked_devices(session, today))


@dataclass
class CheckedCode:
    verdict: tr.Verdict
    holder_name: str | None = None
    inspection_id: int | None = None


def _log(session: Session, inspector_id: int | None, method: str, verdict: str, ticket_id: int | None,
         card_id: int | None = None, at: datetime | None = None) -> Inspection:
    row = Inspection(inspector_id=inspector_id, at=at or clock.now(), method=method, verdict=verdict,
                     ticket_id=ticket_id, card_id=card_id)
    session.add(row)
    session.flush()
    return row


def check_code(session: Session, keys: IssuerKeys, inspector_id: int | None, code: bytes, now: datetime,
               method: str = "terminal") -> CheckedCode:
    """Verify a presentation against the current keys, revocations and unbound phones; log the inspection."""
    today = clock.to_local(now).date()
    revoked: dict[int, str] = {}
    unbound: set[tuple[int, bytes]] = set()
    try:
        claimed = tr.decode(code).record.fields.ticket_id  # only this ticket's revocations matter
    except tr.RecordError:
        claimed = None
    if claimed is not None and 0 < claimed < 2**31:  # ticket ids are 32-bit in the database
        revoked = revocations(session, today, claimed)
        unbound = revoked_devices(session, today, claimed)
    verdict = tr.verify(code, keys.public, revoked, now, revoked_devices=unbound)
    ticket_id = verdict.ticket.ticket_id if verdict.ticket is not None else None
    holder = None
    if ticket_id is not None:
        row = session.get(Ticket, ticket_id)
        holder = row.holder_name if row is not None else None
    logged = _log(session, inspector_id, method, verdict.code, ticket_id)
    return CheckedCode(verdict=verdict, holder_name=holder, inspection_id=logged.id)


def record_scans(session: Session, inspector_id: int, scans: list[tuple[str, int | None, datetime]], now: datetime) -> int:
    """Log verdicts the inspector app reached offline: (verdict code, ticket id, when). Returns how many."""
    known = {"valid", *(reason.value for reason in tr.Reason)}
    count = 0
    for verdict, ticket_id, at in scans:
        if verdict not in known:
            continue
        if ticket_id is not None and session.get(Ticket, ticket_id) is None:
            ticket_id = None  # only our own tickets are recorded by id
        if at > now + timedelta(minutes=5) or at < now - timedelta(days=30):
            at = now
        _log(session, inspector_id, "scan", verdict, ticket_id, at=at)
        count += 1
    return count


@dataclass
class CardCheck:
    card: Card
    carrier_name: str
    is_mobile: bool
    tickets: list[TicketView]


def look_up_card(session: Session, inspector_id: int, client_code: str, today: date,
                 carrier_type: str | None = None) -> list[CardCheck]:
    """Cards with this client code (optionally of one type) and their tickets valid today; logged."""
    query = select(Card).where(col(Card.client_code) == client_code.strip())
    if carrier_type:
        query = query.where(col(Card.carrier_type) == carrier_type)
    found = []
    for card in session.scalars(query.order_by(col(Card.id))):
        tickets = session.scalars(select(Ticket).where(col(Ticket.card_id) == card.id, col(Ticket.valid_from) <= today,
                                                       col(Ticket.valid_until) >= today).order_by(col(Ticket.valid_from))).all()
        views = [_view(t, card, [], today) for t in tickets]
        found.append(CardCheck(card=card, carrier_name=_carrier_name(card), is_mobile=is_mobile_card(card), tickets=views))
        verdict = "valid" if any(v.state == "valid" for v in views) else "no_ticket"
        _log(session, inspector_id, "card", verdict, views[0].ticket.id if views else None, card.id)
    if not found:
        _log(session, inspector_id, "card", "card_not_found", None)
    return found


def recent_inspections(session: Session, inspector_id: int, limit: int = 20) -> list[Inspection]:
    return list(session.scalars(select(Inspection).where(col(Inspection.inspector_id) == inspector_id)
                                .order_by(col(Inspection.at).desc(), col(Inspection.id).desc()).limit(limit)))


# --------------------------------------------------------------------------- GDPR erasure


def detach_tickets_from_months(session: Session, month_ids: Any) -> None:
    """Tickets of 5+1 months about to be erased (`month_ids`: ids or a SELECT of them) stay valid without them."""
    session.execute(update(Ticket).where(col(Ticket.subscription_month_id).in_(month_ids))
                    .values(subscription_month_id=None))


def erase_tickets_of(session: Session, user_id: int) -> None:
    """GDPR erasure (a step of `web.purposes.gdpr_erasure_steps`): tickets already paid stay valid, no longer
    linked to the account; the phones they were bound to stay bound (the ticket can still be shown) without the
    account; inspections the person made as an inspector keep no link to them."""
    session.execute(update(Ticket).where(col(Ticket.user_id) == user_id).values(user_id=None))
    session.execute(update(TicketDevice).where(col(TicketDevice.user_id) == user_id).values(user_id=None))
    session.execute(update(Inspection).where(col(Inspection.inspector_id) == user_id).values(inspector_id=None))
