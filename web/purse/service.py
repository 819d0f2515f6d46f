"""The Kołobrzeg e-purse card on one ledger: devices (validators, parking meters) and their events,
online top-ups, linking a card to an account, loss reports.

Every money-moving transaction follows the same order, on SQLite and PostgreSQL alike:
1. lock the card row with an UPDATE on it (a row lock on PostgreSQL; on SQLite the UPDATE is the
   first statement of the transaction, so it takes the database's write lock before anything is read);
2. look for the device event (a retry or re-upload gets the stored response and changes nothing; a validator
   tap's content must match the stored one's, else the event is refused, R-VAL-7);
3. read the card and its balance, let `domain.purse` decide;
4. append the ledger entries and move the cached balance by their sum, in the same transaction.

Validator taps, the device API's hot path (`tap_steps`, run by web.purse.taps_on_loop), do the same in one transaction with Core
statements: one `UPDATE … RETURNING` locks and reads the card and, in subqueries of its RETURNING, confirms the
device (active, its kind, its secret) and looks for the event; then the ledger rows, one UPDATE of the card and the
remembered response are written (on PostgreSQL in one statement). On PostgreSQL the subqueries read the statement's
snapshot, taken before the row lock was granted: a duplicate of the event racing its original then books nothing
either, because the remembered response's unique key (device, event id) fails its transaction and the retry
answers from the stored response. Credentials are cached per process only to skip the look-up before the
transaction.

Device times are the device's clock (what happened when, e.g. taps buffered offline); the rules get
them as Kołobrzeg local time. Stored times are aware UTC.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections import namedtuple
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, bindparam, func, insert, select, update
from sqlmodel import Session, col

from domain import purse as rules
from domain.ledger import LedgerEntry, outstanding_credit
from domain.money import Grosze, format_pln
from domain.purse_tariff import PurseTariff
from domain.trust import simulator_may_use
from web.platform import clock
from web.platform.db import affected
from web.platform.messages import message
from web.purse.models import Device, DeviceEvent, PurseCardRow, PurseLedgerEntry
from web.accounts.interface import User
from web.payment_records.interface import Payment
from web.payment_records import interface as payment_records

PURPOSE = "purse_topup"
DEVICE_KINDS = ("validator", "parking-meter")
ONLINE_TOP_UP_MAXIMUM: Grosze = 200_000  # a technical ceiling for one online payment (2 000 zł)


# --------------------------------------------------------------------------- tariff


def pln(amount: Grosze | None) -> str | None:
    return None if amount is None else format_pln(amount)


# --------------------------------------------------------------------------- devices


def _secret_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_device(session: Session, kind: str, name: str) -> tuple[Device, str]:
    """Register a device; returns it and its credential `<id>.<token>` (shown once, only the hash is kept)."""
    if kind not in DEVICE_KINDS:
        raise ValueError(f"device kind must be one of {', '.join(DEVICE_KINDS)}")
    token = secrets.token_urlsafe(32)
    device = Device(kind=kind, name=name.strip()[:80] or kind, secret_hash=_secret_hash(token))
    session.add(device)
    session.flush()
    return device, f"{device.id}.{token}"


def authenticate_device(session: Session, credential: str, kind: str) -> Device | None:
    """The active device of `kind` whose credential this is, or None. Never a simulator device: its
    credential is no one's to present (the simulators act server-side, see web.purse.simulator)."""
    parts = _credential_key(credential)
    if parts is None:
        return None
    device = session.get(Device, parts[0])
    if device is None or not device.active or device.kind != kind or device.simulator:
        return None
    if not hmac.compare_digest(device.secret_hash, parts[1]):
        return None
    return device


# Credentials that authenticated a moment ago, per process: (sha256 of the credential, kind) -> (valid until
# on the monotonic clock, device id, device name). A hit only spares the look-up before the transaction; every
# validator tap still checks, in its own transaction, that the device is active, of its kind and holds this
# secret (see `validator_tap`), so a disabled device or a rotated secret is refused at once in every process.
DEVICE_CACHE_SECONDS = 30.0
_ACTIVE_DEVICE = (
    select(Device.__table__.c.id, Device.__table__.c.name, Device.__table__.c.secret_hash)  # type: ignore[attr-defined]
    .where(Device.__table__.c.id == bindparam("device_id"), Device.__table__.c.kind == bindparam("kind"),  # type: ignore[attr-defined]
           Device.__table__.c.active.is_(True), Device.__table__.c.simulator.is_(False))  # type: ignore[attr-defined]
)
_device_cache: dict[tuple[str, str], tuple[float, int, str]] = {}
_device_cache_lock = threading.Lock()


@dataclass(frozen=True)
class KnownDevice:
    """A device that presented a valid credential (what the device API needs of it)."""

    id: int
    name: str
    kind: str
    secret_hash: str  # sha256 of the token it presented
    simulator: bool = False  # the server's own simulator device (web.purse.simulator)


class DeviceRefused(Exception):
    """The device is no longer allowed (disabled, or its secret changed) since it was authenticated."""


class SimulatorCardRefused(Exception):
    """A simulator device may tap only a demo card or no city card (`domain.trust.simulator_may_use`)."""


class TapProblem(Exception):
    """A tap event refused as a whole, nothing written: `event_id_reused` (409, R-VAL-7: a different event under
    a used id), `future_event` or `bad_time` (422, R-VAL-8: the device's clock)."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status, self.code = status, code


def forget_device(device_id: int) -> None:
    """Drop a device's cached credentials in this process (call when it is disabled or its secret changes)."""
    with _device_cache_lock:
        for key in [k for k, v in _device_cache.items() if v[1] == device_id]:
            _device_cache.pop(key, None)


def disable_device(session: Session, device_id: int) -> bool:
    """Take a device out of service: from this transaction on, every request with its credential is refused."""
    disabled = affected(session.execute(
        update(Device).where(col(Device.id) == device_id, col(Device.active).is_(True))
        .values(active=False).execution_options(synchronize_session=False)
    ))
    forget_device(device_id)
    return disabled == 1


def rename_device(session: Session, device_id: int, name: str) -> bool:
    """Give a (non-simulator) device a new name (where it is now); its credential stays."""
    renamed = affected(session.execute(
        update(Device).where(col(Device.id) == device_id, col(Device.simulator).is_(False))
        .values(name=name.strip()[:80]).execution_options(synchronize_session=False)
    ))
    forget_device(device_id)
    return renamed == 1


def _credential_key(credential: str) -> tuple[int, str, str] | None:
    """(device id, sha256 of the token, sha256 of the whole credential) of a well-formed `<id>.<token>`, else None."""
    device_id, _, token = credential.partition(".")
    if not device_id.isdigit() or not token or len(device_id) > 12:
        return None
    return int(device_id), _secret_hash(token), hashlib.sha256(credential.encode()).hexdigest()


def cached_device(credential: str, kind: str) -> KnownDevice | None:
    """The device this credential authenticated as within DEVICE_CACHE_SECONDS (this process), else None."""
    parts = _credential_key(credential)
    if parts is None:
        return None
    device_id, token_hash, digest = parts
    cached = _device_cache.get((digest, kind))
    if cached is not None and cached[0] > time.monotonic() and cached[1] == device_id:
        return KnownDevice(cached[1], cached[2], kind, token_hash)
    return None


def device_lookup(credential: str, kind: str) -> tuple[Any, dict[str, Any]] | None:
    """The statement and parameters that find the credential's active device (None: malformed credential)."""
    parts = _credential_key(credential)
    return None if parts is None else (_ACTIVE_DEVICE, {"device_id": parts[0], "kind": kind})


def remember_device(credential: str, kind: str, found: Any) -> KnownDevice | None:
    """The device of `device_lookup`'s row if the credential's secret matches it (then cached), else None."""
    parts = _credential_key(credential)
    if parts is None or found is None or not hmac.compare_digest(found.secret_hash, parts[1]):
        return None
    with _device_cache_lock:
        if len(_device_cache) > 10_000:
            _device_cache.clear()
        _device_cache[(parts[2], kind)] = (time.monotonic() + DEVICE_CACHE_SECONDS, found.id, found.name)
    return KnownDevice(found.id, found.name, kind, parts[1])


SIMULATOR_NAMES = {"validator": "Symulator kasownika", "parking-meter": "Symulator parkometru"}


def simulator_device(session: Session, kind: str) -> Device | None:
    """The simulators' device of `kind`, made on first use; None once it was disabled (`ekp devices disable`):
    a disabled simulator is never made again. It has no credential anyone knows (the hash of a random token
    that is thrown away) and the device API refuses simulator devices anyway; the simulator pages act as it
    on the server."""
    device = session.scalars(
        select(Device).where(col(Device.kind) == kind, col(Device.simulator).is_(True))
        .order_by(col(Device.id))
    ).first()
    if device is None:
        device = Device(kind=kind, name=SIMULATOR_NAMES[kind], simulator=True,
                        secret_hash=_secret_hash(secrets.token_urlsafe(32)))
        session.add(device)
        session.flush()
    return device if device.active else None


@dataclass(frozen=True)
class FlaggedEvent:
    """A device event staff should look at (R-VAL-8)."""

    received_at: datetime
    device_id: int
    device_name: str
    event_id: str
    flag: str  # stale | blocked_card
    card_number: str | None
    event_at: datetime | None  # the device's time
    code: str  # what the device was answered (charged, blocked, ...)


def flagged_events(session: Session, *, since: datetime, limit: int = 500) -> list[FlaggedEvent]:
    """Events flagged for staff received since `since`, newest first."""
    rows = session.execute(
        select(col(DeviceEvent.received_at), col(DeviceEvent.device_id), col(Device.name), col(DeviceEvent.event_id), col(DeviceEvent.flag),
               col(DeviceEvent.card_number), col(DeviceEvent.event_at), col(DeviceEvent.response))
        .join(Device, Device.id == DeviceEvent.device_id)
        .where(col(DeviceEvent.flag).is_not(None), col(DeviceEvent.received_at) >= since)
        .order_by(col(DeviceEvent.received_at).desc(), col(DeviceEvent.id).desc()).limit(limit)
    ).all()
    return [FlaggedEvent(r.received_at, r.device_id, r.name, r.event_id, r.flag, r.card_number, r.event_at,
                         str(json.loads(r.response).get("code", ""))) for r in rows]


def _replayed(session: Session, device_id: int, event_id: str, digest: str) -> dict[str, Any] | None:
    """The stored answer to this device's event `event_id`, if it was seen; an event id already used for
    another event (another digest) is refused (R-VAL-7)."""
    stored = session.execute(
        select(col(DeviceEvent.response), col(DeviceEvent.request_digest))
        .where(col(DeviceEvent.device_id) == device_id, col(DeviceEvent.event_id) == event_id)
    ).first()
    if stored is None:
        return None
    if not rules.is_replay(stored.request_digest, digest):
        raise TapProblem(409, "event_id_reused")
    return json.loads(stored.response)


def _check_device_time(at: datetime) -> None:
    """R-VAL-8 for meter events that move money: a meter's clock far ahead (or no time at all) is refused."""
    timing = rules.event_timing(at, clock.now())
    if timing is rules.EventTiming.FUTURE:
        raise TapProblem(422, "future_event")
    if timing is rules.EventTiming.IMPOSSIBLE:
        raise TapProblem(422, "bad_time")


def _remember(session: Session, device_id: int, event_id: str, action: str, response: dict[str, Any],
              digest: str | None = None, card_number: str | None = None, at: datetime | None = None) -> None:
    session.add(DeviceEvent(device_id=device_id, event_id=event_id, action=action,
                            response=json.dumps(response, ensure_ascii=False, sort_keys=True),
                            request_digest=digest, card_number=card_number, event_at=at))
    session.flush()


# --------------------------------------------------------------------------- cards and the ledger


def card_of(row: PurseCardRow) -> rules.PurseCard:
    return rules.PurseCard(
        number=row.number,
        kind=rules.CardKind(row.kind),
        issued_on=row.issued_on,
        registered_fare=rules.RegisteredFare(row.registered_fare),
        entitlement_until=row.entitlement_until,
        last_activated_on=row.last_activated_on,
        last_used_on=row.last_used_on,
        blocked_from=row.blocked_from,
    )


def lock_card(session: Session, number: str) -> PurseCardRow | None:
    """Lock the card row (UPDATE first, see the module docstring), then read it afresh."""
    locked = affected(session.execute(
        update(PurseCardRow).where(col(PurseCardRow.number) == number)
        .values(balance=PurseCardRow.balance).execution_options(synchronize_session=False)
    ))
    if locked != 1:
        return None
    return session.scalars(
        select(PurseCardRow).where(col(PurseCardRow.number) == number).execution_options(populate_existing=True)
    ).one()


def book_entry(session: Session, row: PurseCardRow, entries: tuple[LedgerEntry, ...] | list[LedgerEntry], *, at: datetime,
          place: str = "", device_id: int | None = None, payment_id: int | None = None,
          staff_id: int | None = None) -> Grosze:
    """Append `entries` to the card's ledger and move the cached balance by their sum (the caller holds the lock).
    `staff_id` names the staff member of a desk action (R-TOP-5)."""
    moved = 0
    for entry in entries:
        session.add(PurseLedgerEntry(card_id=row.id, at=at, kind=entry.kind.value, amount=entry.amount,  # type: ignore[arg-type]
                                     detail=entry.detail[:80], place=place[:120], device_id=device_id,
                                     payment_id=payment_id, staff_id=staff_id))
        moved += entry.amount
    row.balance += moved
    row.updated_at = clock.now()
    session.add(row)
    session.flush()
    return row.balance


def ledger_sum(session: Session, card_id: int) -> Grosze:
    return int(session.scalar(select(func.coalesce(func.sum(PurseLedgerEntry.amount), 0))
                              .where(col(PurseLedgerEntry.card_id) == card_id)) or 0)


def issue_card(session: Session, *, number: str, kind: rules.CardKind, issued_on: date, holder_name: str = "",
               pesel_hash: str | None = None, registered_fare: rules.RegisteredFare = rules.RegisteredFare.NORMAL,
               entitlement_until: date | None = None, demo: bool = False) -> PurseCardRow:
    """A new card in the registry (as the service point issues it), with an empty purse. A `demo` card
    (`ekp demo load`) is one the simulators may act on; its replacement is a demo card too."""
    card = rules.PurseCard(number=number, kind=kind, issued_on=issued_on, registered_fare=registered_fare,
                           entitlement_until=entitlement_until, last_activated_on=issued_on)
    row = PurseCardRow(number=card.number, kind=card.kind.value, registered_fare=card.registered_fare.value,
                       entitlement_until=card.entitlement_until, issued_on=card.issued_on,
                       last_activated_on=card.last_activated_on, holder_name=holder_name, pesel_hash=pesel_hash,
                       demo=demo)
    session.add(row)
    session.flush()
    return row


def issue_card_to_account(session: Session, *, account_id: int, number: str, kind: rules.CardKind,
                          fare: rules.RegisteredFare, holder_name: str, pesel_hash: str | None,
                          entitlement_until: date | None, demo: bool = False) -> PurseCardRow:
    """Issue a card collected at the desk (issue 16) to this account with this fare type: it shows in
    Portmonetka at once. `demo`: collected by a demo account (`web.simulators.demo.is_demo_account`)."""
    row = issue_card(session, number=number, kind=kind, issued_on=clock.to_local(clock.now()).date(),
                     holder_name=holder_name, pesel_hash=pesel_hash, registered_fare=fare,
                     entitlement_until=entitlement_until, demo=demo)
    row.account_id, row.linked_at = account_id, clock.now()
    session.add(row)
    session.flush()
    return row


def top_up_at_service_point(session: Session, number: str, payment: Grosze, *, tariff: PurseTariff,
                            place: str = "BOK") -> rules.TopUpReceipt:
    """R-TOP-1 at a desk (also revives a lapsed card, R-KKM-5); `tariff`: the settings' (EKP_TARIFF_PURSE, read at
    start-up). Raises `rules.PurseRefused`."""
    row = lock_card(session, number)
    if row is None:
        raise rules.PurseRefused(rules.Refusal.WRONG_CARD)
    now = clock.now()
    receipt = rules.top_up_at_service_point(card_of(row), balance=row.balance, payment=payment,
                                            now=clock.to_local(now), tariff=tariff)
    if receipt.renews_activation:
        row.last_activated_on = clock.to_local(now).date()
    book_entry(session, row, receipt.entries, at=now, place=place)
    return receipt


def _mark_used(row: PurseCardRow, local_day: date) -> None:
    if row.last_used_on is None or row.last_used_on < local_day:
        row.last_used_on = local_day


# --------------------------------------------------------------------------- what devices show


def _text(code: str) -> str:
    return message(f"purse.{code}")


def _display(code: str, *, amount: Grosze | None = None, balance: Grosze | None = None,
             labels: tuple[str, str] = ("purse.label.charged", "purse.label.balance")) -> list[str]:
    lines = [_text(code)]
    if amount is not None:
        lines.append(f"{message(labels[0])}: {format_pln(amount)}")
    if balance is not None:
        lines.append(f"{message(labels[1])}: {format_pln(balance)}")
    return lines


def _card_content(row: PurseCardRow, now_local: datetime) -> dict[str, Any]:
    validity = rules.card_validity(card_of(row), now_local)
    return {
        "number": row.number,
        "kind": row.kind,
        "balance": row.balance,
        "balance_text": format_pln(row.balance),
        "credit_outstanding": outstanding_credit(row.balance),
        "valid_through": validity.valid_through.isoformat(),
        "default_fare": validity.default_fare.value,
    }


# --------------------------------------------------------------------------- the validator


@dataclass(frozen=True)
class Tap:
    event_id: str
    at: datetime  # device time, aware
    card_number: str | None  # None: not a city card
    vehicle_id: str
    stop_id: str
    t: int = 0
    b: int = 0
    s: bool = False


def panel_for(t: int, b: int, s: bool) -> rules.ValidatorPanel:
    """The panel after T pressed `t` times, B `b` times and S (R-VAL-2, R-VAL-3)."""
    panel = rules.ValidatorPanel()
    for _ in range(max(0, t)):
        panel = panel.press_t()
    for _ in range(max(0, b)):
        panel = panel.press_b()
    return panel.press_s() if s else panel


def _tap_response(event_id: str, decision: rules.TapDecision) -> dict[str, Any]:
    display = decision.display
    code = display.message.value
    return {
        "event_id": event_id,
        "accepted": decision.accepted,
        "code": code,
        "message": _text(code),
        "amount": display.amount,
        "balance": display.balance,
        "amount_text": pln(display.amount),
        "balance_text": pln(display.balance),
        "display": _display(code, amount=display.amount, balance=display.balance),
        "signal": decision.signal.value,
    }


_CARDS = PurseCardRow.__table__  # type: ignore[attr-defined]
_LEDGER = PurseLedgerEntry.__table__  # type: ignore[attr-defined]
_DEVICES = Device.__table__  # type: ignore[attr-defined]
_EVENTS = DeviceEvent.__table__  # type: ignore[attr-defined]

# Core statements of the validator tap (compiled once, cached by SQLAlchemy).
# 2. the device is still active, of its kind, with this secret; and the stored response if the event is a replay
_REPLAY = (select(_EVENTS.c.response)
           .where(_EVENTS.c.device_id == bindparam("device_id"), _EVENTS.c.event_id == bindparam("event_id"))
           .scalar_subquery())
_REPLAY_DIGEST = (select(_EVENTS.c.request_digest)
                  .where(_EVENTS.c.device_id == bindparam("device_id"), _EVENTS.c.event_id == bindparam("event_id"))
                  .scalar_subquery())
_DEVICE_OK = (select(_DEVICES.c.id)
              .where(_DEVICES.c.id == bindparam("device_id"), _DEVICES.c.kind == bindparam("device_kind"),
                     _DEVICES.c.active.is_(True), _DEVICES.c.secret_hash == bindparam("device_secret"),
                     _DEVICES.c.simulator == bindparam("device_simulator"))
              .scalar_subquery())
# 1+2. lock the card row and read it (an UPDATE first, see the module docstring), the device check and the replay
# with it, in one statement; a tap without a known card does 2. alone (_DEVICE_AND_EVENT)
_LOCK_AND_READ_CARD = (
    update(_CARDS).where(_CARDS.c.number == bindparam("card_number")).values(balance=_CARDS.c.balance)
    .returning(_CARDS.c.id, _CARDS.c.number, _CARDS.c.kind, _CARDS.c.registered_fare, _CARDS.c.entitlement_until,
               _CARDS.c.issued_on, _CARDS.c.last_activated_on, _CARDS.c.last_used_on, _CARDS.c.blocked_from,
               _CARDS.c.balance, _CARDS.c.boarding_vehicle, _CARDS.c.boarding_stop, _CARDS.c.boarded_at, _CARDS.c.demo,
               _DEVICE_OK.label("device_ok"), _REPLAY.label("replay"), _REPLAY_DIGEST.label("replay_digest"))
)
_DEVICE_AND_EVENT = select(_DEVICE_OK.label("device_ok"), _REPLAY.label("replay"), _REPLAY_DIGEST.label("replay_digest"))
# 3. the ledger entries, 4. the card (balance moved by their sum), 5. the response remembered
_INSERT_LEDGER = insert(_LEDGER)
_UPDATE_CARD = update(_CARDS).where(_CARDS.c.id == bindparam("card_id")).values(
    balance=_CARDS.c.balance + bindparam("moved"), updated_at=bindparam("now"), last_used_on=bindparam("used_on"),
    boarding_vehicle=bindparam("vehicle"), boarding_stop=bindparam("stop"), boarded_at=bindparam("boarded"),
)
_INSERT_EVENT = insert(_EVENTS)


def _card_of_row(row: Any) -> rules.PurseCard:
    return rules.PurseCard(
        number=row.number, kind=rules.CardKind(row.kind), issued_on=row.issued_on,
        registered_fare=rules.RegisteredFare(row.registered_fare), entitlement_until=row.entitlement_until,
        last_activated_on=row.last_activated_on, last_used_on=row.last_used_on, blocked_from=row.blocked_from,
    )


# A tap's statements: `tap_steps` yields (statement, parameters, column keys) and is sent each statement's first
# row (or None); it returns (the display, whether it is a replay). web.purse.taps_on_loop runs them, on the
# event loop, on SQLite and PostgreSQL (the one way a tap is booked).
TapStep = tuple[Any, dict[str, Any], tuple[str, ...] | None]


def tap_steps(dialect_name: str, device: KnownDevice, tap: Tap,
              tariff: PurseTariff) -> Generator[TapStep, Any, tuple[dict[str, Any], bool]]:
    now = clock.now()
    timing = rules.event_timing(tap.at, now)  # R-VAL-8: a clock far ahead (or no time at all) is refused at once
    if timing is rules.EventTiming.FUTURE:
        raise TapProblem(422, "future_event")
    if timing is rules.EventTiming.IMPOSSIBLE:
        raise TapProblem(422, "bad_time")
    digest = rules.tap_fingerprint(tap.card_number, tap.at, tap.vehicle_id, tap.stop_id, tap.t, tap.b, tap.s)
    params = {"event_id": tap.event_id, "device_id": device.id, "device_kind": device.kind,
              "device_secret": device.secret_hash, "device_simulator": device.simulator}
    row = (yield _LOCK_AND_READ_CARD, {"card_number": tap.card_number, **params}, None) if tap.card_number else None
    checked = row if row is not None else (yield _DEVICE_AND_EVENT, params, None)
    if checked is None or checked.device_ok is None:
        forget_device(device.id)  # type: ignore[arg-type]
        raise DeviceRefused(device.id)
    if checked.replay is not None:
        if not rules.is_replay(checked.replay_digest, digest):  # R-VAL-7: another event under a used id
            raise TapProblem(409, "event_id_reused")
        return json.loads(checked.replay), True
    if device.simulator and not simulator_may_use(tap.card_number is not None, bool(row is not None and row.demo)):
        raise SimulatorCardRefused(tap.card_number)
    at_local = clock.to_local(tap.at)
    card = _card_of_row(row) if row is not None else None
    boarding = None
    if row is not None and row.boarded_at is not None and row.boarding_vehicle and row.boarding_stop:
        boarding = rules.Boarding(row.number, row.boarding_vehicle, row.boarding_stop, clock.to_local(row.boarded_at))
    decision = rules.tap(card, balance=row.balance if row else 0, panel=panel_for(tap.t, tap.b, tap.s),
                         vehicle_id=tap.vehicle_id, stop_id=tap.stop_id, now=at_local, boarding=boarding,
                         tariff=tariff, received_at=clock.to_local(now))
    ledger: list[dict[str, Any]] = []
    card_change: dict[str, Any] | None = None
    if row is not None and decision.accepted:
        used_on = rules.last_used_after(card, at_local.date()) if decision.card_used and card else row.last_used_on
        vehicle, stop, boarded = row.boarding_vehicle, row.boarding_stop, row.boarded_at
        if decision.boarding is not None and decision.boarding != boarding:
            vehicle, stop = decision.boarding.vehicle_id, decision.boarding.stop_id
            boarded = decision.boarding.boarded_at
        place = f"{tap.vehicle_id} / {tap.stop_id}"[:120]
        ledger = [{"card_id": row.id, "at": tap.at, "kind": entry.kind.value, "amount": entry.amount,
                   "detail": entry.detail[:80], "place": place, "device_id": device.id, "payment_id": None,
                   "recorded_at": now} for entry in decision.entries]
        if ledger or used_on != row.last_used_on or boarded is not row.boarded_at:
            # one UPDATE for the balance (moved by the entries' sum) and the card's other fields
            card_change = {"card_id": row.id, "moved": sum(entry.amount for entry in decision.entries), "now": now,
                           "used_on": used_on, "vehicle": vehicle, "stop": stop, "boarded": boarded}
    response = _tap_response(tap.event_id, decision)
    event = {"device_id": device.id, "event_id": tap.event_id, "action": "tap",
             "response": json.dumps(response, ensure_ascii=False, sort_keys=True), "received_at": now,
             "request_digest": digest, "flag": decision.flag.value if decision.flag else None,
             "card_number": tap.card_number, "event_at": tap.at}
    if dialect_name == "postgresql":
        # a ledger row, the card's UPDATE and the remembered response in one statement (several entries, rare:
        # each its own INSERT first)
        params = {f"e_{name}": value for name, value in event.items()}
        if len(ledger) > 1:
            for entry in ledger:
                yield _INSERT_LEDGER, entry, _LEDGER_COLUMNS
        elif ledger:
            params.update({f"l_{name}": value for name, value in ledger[0].items()})
        if card_change is not None:
            params.update(card_change)
        yield _tap_writes(len(ledger) == 1, card_change is not None), params, None
    else:
        for entry in ledger:
            yield _INSERT_LEDGER, entry, _LEDGER_COLUMNS
        if card_change is not None:
            yield _UPDATE_CARD, card_change, None
        yield _INSERT_EVENT, event, _EVENT_COLUMNS
    return response, False


@lru_cache(maxsize=4)
def _tap_writes(entry: bool, card: bool) -> Any:
    """PostgreSQL: a ledger row, the card's UPDATE and the remembered response in one statement (data-modifying
    CTEs run once and to completion whether or not the main statement reads them): one round trip, not three."""
    statement = insert(_EVENTS).values({name: bindparam(f"e_{name}") for name in _EVENT_COLUMNS})
    if entry:
        statement = statement.add_cte(insert(_LEDGER).values({name: bindparam(f"l_{name}") for name in _LEDGER_COLUMNS})
                                      .cte("ledger"))
    if card:
        statement = statement.add_cte(_UPDATE_CARD.cte("card"))
    return statement


_LEDGER_COLUMNS = ("card_id", "at", "kind", "amount", "detail", "place", "device_id", "payment_id", "recorded_at")
_EVENT_COLUMNS = ("device_id", "event_id", "action", "response", "received_at", "request_digest", "flag",
                  "card_number", "event_at")


# The tap's statements (on PostgreSQL two: lock and read, write; on SQLite four) run on the driver's cursor, as SQL
# compiled once from the Core statements above, with the same type conversions SQLAlchemy would apply (the columns'
# bind and result processors, looked up once). That skips SQLAlchemy's per-execution work (result metadata,
# parameter processing, cursor wrapping), about a third of a tap's CPU in the service. Driver errors are raised as
# SQLAlchemy's (IntegrityError for a racing duplicate event; a lost connection is invalidated, as SQLAlchemy does).
@dataclass(frozen=True)
class DriverStatement:
    sql: str
    binds: tuple[tuple[str, Any], ...]  # (parameter, bind processor) for the parameters that have one
    row: Any  # a namedtuple class of the returned columns, or None
    results: tuple[tuple[int, Any], ...]  # (column index, result processor) for the columns that have one
    positions: tuple[str, ...] | None  # the parameters in order, for a driver with positional parameters (SQLite)

    def parameters(self, params: dict[str, Any]) -> dict[str, Any] | list[Any]:
        """What the driver's `execute` takes for `params`, converted as SQLAlchemy would."""
        if self.binds:
            params = dict(params)
            for key, process in self.binds:
                params[key] = process(params[key])
        return params if self.positions is None else [params[key] for key in self.positions]

    def first_row(self, found: Any) -> Any:
        """The driver's row (or None) as a named row with SQLAlchemy's conversions."""
        if found is None:
            return None
        if self.results:
            found = list(found)
            for index, process in self.results:
                found[index] = process(found[index])
        return self.row._make(found)


@lru_cache(maxsize=32)
def driver_statement(statement: Any, dialect: Any, column_keys: tuple[str, ...] | None) -> DriverStatement:
    compiled = statement.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
    binds = tuple((key, proc) for key, bind in compiled.binds.items()
                  if (proc := bind.type.dialect_impl(dialect).bind_processor(dialect)))
    described = statement.column_descriptions if isinstance(statement, Select) else statement.returning_column_descriptions
    columns = [(d["name"], d["type"]) for d in described]
    results = tuple((i, proc) for i, (_name, type_) in enumerate(columns)
                    if (proc := type_.dialect_impl(dialect).result_processor(dialect, None)))
    row = namedtuple("Row", [name for name, _type in columns]) if columns else None
    positions = tuple(compiled.positiontup) if dialect.positional else None
    return DriverStatement(compiled.string, binds, row, results, positions)


# --------------------------------------------------------------------------- the parking meter


def _returned(code: str, coins_returned: Grosze = 0) -> dict[str, Any]:
    return {"accepted": False, "code": code, "message": _text(code), "display": [_text(code)],
            "coins_returned": coins_returned, "coins_returned_text": format_pln(coins_returned), "card_returned": True}


def _session_for(row: PurseCardRow | None, at: datetime, tariff: PurseTariff) -> rules.MeterSession | rules.CardReturned:
    card = card_of(row) if row is not None else None
    return rules.insert_card(card, balance=row.balance if row else 0, now=clock.to_local(at), tariff=tariff)


def _find_card(session: Session, number: str | None) -> PurseCardRow | None:
    if not number:
        return None
    return session.scalars(select(PurseCardRow).where(col(PurseCardRow.number) == number)).first()


def meter_insert(session: Session, card_number: str | None, at: datetime, *, tariff: PurseTariff) -> dict[str, Any]:
    """R-PARK-1: the card's content, or "ZŁA KARTA" (the card comes back)."""
    row = _find_card(session, card_number)
    meter = _session_for(row, at, tariff)
    if isinstance(meter, rules.CardReturned):
        return _returned(meter.refusal.value if meter.refusal else "wrong_card")
    assert row is not None
    content = _card_content(row, clock.to_local(at))
    lines = [_text("card_content"), f"{message('purse.label.balance')}: {content['balance_text']}"]
    if content["credit_outstanding"]:
        lines.append(f"{message('purse.label.credit')}: {format_pln(content['credit_outstanding'])}")
    return {"accepted": True, "code": "card_content", "message": _text("card_content"), "card": content, "display": lines}


def _plus(meter: rules.MeterSession, presses: int) -> rules.MeterSession:
    for _ in range(max(0, presses)):
        meter = rules.press_plus(meter)
        if meter.notice is not None:
            break
    return meter


def _quote_response(meter: rules.MeterSession) -> dict[str, Any]:
    paid_until = clock.to_local(meter.paid_until)
    # R-PARK-4: the end time; with the day when the time bought runs on into a later paid day
    ends = (f"{paid_until:%H:%M}" if paid_until.date() == clock.to_local(meter.started_at).date()
            else f"{message('purse.label.until')} {paid_until:%d.%m %H:%M}")
    lines = [f"{message('purse.label.fee')}: {format_pln(meter.fee)}",
             f"{message('purse.label.paid_for')}: {meter.minutes_paid} min ({ends})"]
    if meter.notice is not None:
        lines.insert(0, _text(meter.notice.value))
    return {
        "accepted": meter.notice is None,
        "code": meter.notice.value if meter.notice else "quote",
        "message": _text(meter.notice.value) if meter.notice else None,
        "presses": meter.presses,
        "fee": meter.fee,
        "fee_text": format_pln(meter.fee),
        "minutes": meter.minutes_paid,
        "paid_until": paid_until.isoformat(timespec="minutes"),
        "display": lines,
    }


def meter_quote(session: Session, card_number: str | None, inserted_at: datetime, presses: int, *,
                tariff: PurseTariff) -> dict[str, Any]:
    """R-PARK-2: OPŁATA and OPŁACONO ZA after "+" pressed `presses` times (never beyond the balance)."""
    row = _find_card(session, card_number)
    meter = _session_for(row, inserted_at, tariff)
    if isinstance(meter, rules.CardReturned):
        return _returned(meter.refusal.value if meter.refusal else "wrong_card")
    return _quote_response(_plus(meter, presses))


def meter_accept(session: Session, device: Device, event_id: str, card_number: str | None, inserted_at: datetime,
                 presses: int, *, tariff: PurseTariff) -> tuple[dict[str, Any], bool]:
    """R-PARK-3: AKCEPTUJ prints the parking ticket and deducts the fee. The same event again answers as the
    first time; another event under its id is refused (R-VAL-7); a time far ahead is refused (R-VAL-8)."""
    _check_device_time(inserted_at)
    digest = rules.meter_fingerprint("park", card_number, inserted_at, (presses,))
    row = lock_card(session, card_number) if card_number else None
    if (stored := _replayed(session, device.id, event_id, digest)) is not None:  # type: ignore[arg-type]
        return stored, True
    meter = _session_for(row, inserted_at, tariff)
    if isinstance(meter, rules.CardReturned):
        response = _returned(meter.refusal.value if meter.refusal else "wrong_card")
    else:
        meter = _plus(meter, presses)
        outcome = rules.accept(meter)
        if isinstance(outcome, rules.ParkingTicket):
            assert row is not None
            balance = book_entry(session, row, outcome.entries, at=inserted_at, place=device.name, device_id=device.id)
            _mark_used(row, clock.to_local(inserted_at).date())
            start, until = clock.to_local(outcome.started_at), clock.to_local(outcome.paid_until)
            response = {
                "accepted": True, "code": "parking_ticket", "message": _text("parking_ticket"),
                "fee": outcome.fee, "fee_text": format_pln(outcome.fee), "minutes": outcome.minutes,
                "paid_until": until.isoformat(timespec="minutes"), "balance": balance, "balance_text": format_pln(balance),
                "display": [_text("parking_ticket"), _text("take_ticket")],
                "ticket": [message("purse.ticket.title"), device.name,
                           f"{message('purse.label.card')}: {row.number}",
                           f"{message('purse.ticket.from')}: {start:%Y-%m-%d %H:%M}",
                           f"{message('purse.ticket.until')}: {until:%Y-%m-%d %H:%M}",
                           f"{message('purse.label.fee')}: {format_pln(outcome.fee)}",
                           f"{message('purse.label.balance')}: {format_pln(balance)}"],
                "card_returned": True,
            }
        else:
            notice = outcome.notice.value if isinstance(outcome, rules.MeterSession) and outcome.notice else "nothing_selected"
            response = {**_quote_response(outcome if isinstance(outcome, rules.MeterSession) else meter),
                        "accepted": False, "code": notice, "message": _text(notice)}
    _remember(session, device.id, event_id, "park", response, digest, card_number, inserted_at)  # type: ignore[arg-type]
    return response, False


def meter_top_up(session: Session, device: Device, event_id: str, card_number: str | None, inserted_at: datetime,
                 coins: list[int], *, tariff: PurseTariff) -> tuple[dict[str, Any], bool]:
    """R-TOP-2: DOŁADUJ, the coins, AKCEPTUJ: book the top-up (repaying a credit first, R-TOP-4) and print a receipt."""
    _check_device_time(inserted_at)
    digest = rules.meter_fingerprint("top_up", card_number, inserted_at, tuple(coins))
    row = lock_card(session, card_number) if card_number else None
    if (stored := _replayed(session, device.id, event_id, digest)) is not None:  # type: ignore[arg-type]
        return stored, True
    meter = _session_for(row, inserted_at, tariff)
    paid_in = sum(c for c in coins if c > 0)
    if isinstance(meter, rules.CardReturned):
        response = _returned(meter.refusal.value if meter.refusal else "wrong_card", paid_in)
    else:
        meter = rules.press_top_up(meter)
        refused: list[int] = []
        for coin in coins:
            after = rules.insert_coin(meter, coin)
            if after.notice is not None:
                refused.append(coin)
            meter = replace(after, notice=None)
        outcome = rules.accept(meter)
        if isinstance(outcome, rules.TopUpReceipt):
            assert row is not None
            balance = book_entry(session, row, outcome.entries, at=inserted_at, place=device.name, device_id=device.id)
            at_local = clock.to_local(inserted_at)
            receipt = [message("purse.receipt.title"), device.name, f"{message('purse.label.card')}: {row.number}",
                       f"{at_local:%Y-%m-%d %H:%M}", f"{message('purse.label.paid_in')}: {format_pln(outcome.payment)}"]
            if outcome.credit_repaid:
                receipt.append(f"{message('purse.label.credit_repaid')}: {format_pln(outcome.credit_repaid)}")
            if outcome.bonus:
                receipt.append(f"{message('purse.label.bonus')}: {format_pln(outcome.bonus)}")
            receipt.append(f"{message('purse.label.balance')}: {format_pln(balance)}")
            response = {
                "accepted": True, "code": "top_up_receipt", "message": _text("top_up_receipt"),
                "payment": outcome.payment, "payment_text": format_pln(outcome.payment), "bonus": outcome.bonus,
                "bonus_text": format_pln(outcome.bonus), "credit_repaid": outcome.credit_repaid,
                "balance": balance, "balance_text": format_pln(balance), "coins_returned": sum(refused),
                "coins_returned_text": format_pln(sum(refused)),
                "display": [_text("top_up_receipt"), _text("take_ticket")], "receipt": receipt, "card_returned": True,
            }
        else:
            notice = outcome.notice.value if isinstance(outcome, rules.MeterSession) and outcome.notice else "below_minimum"
            response = {**_returned(notice, paid_in), "payment": 0}
    _remember(session, device.id, event_id, "top_up", response, digest, card_number, inserted_at)  # type: ignore[arg-type]
    return response, False


def meter_cancel(coins: list[int]) -> dict[str, Any]:
    """ANULUJ: the card and every coin come back; nothing is charged."""
    returned = sum(c for c in coins if c > 0)
    return {"accepted": True, "code": "cancelled", "message": _text("cancelled"), "display": [_text("cancelled")],
            "coins_returned": returned, "coins_returned_text": format_pln(returned), "card_returned": True}


# --------------------------------------------------------------------------- the passenger


@dataclass(frozen=True)
class HistoryLine:
    at: datetime  # local
    kind: str
    label: str
    amount: Grosze
    place: str
    detail: str


@dataclass(frozen=True)
class PurseView:
    id: int
    number: str
    kind: str
    holder_name: str
    balance: Grosze
    credit: Grosze
    state: str
    state_text: str
    valid_through: date
    default_fare: str
    blocked_from: datetime | None  # local
    history: list[HistoryLine] = field(default_factory=list)


_FARE_DETAIL_ZONES = {"city": "purse.zone.city", "suburban": "purse.zone.suburban", "short": "purse.zone.short"}


def _detail_text(kind: str, detail: str) -> str:
    zone, _, fare = detail.partition(":")
    if zone in _FARE_DETAIL_ZONES and fare:
        return f"{message(_FARE_DETAIL_ZONES[zone])}, {message('purse.fare.' + fare)}"
    if detail == "baggage":
        return message("purse.fare.baggage")
    if detail.endswith("min") and detail[:-3].isdigit():
        return f"{detail[:-3]} min"
    return ""


def purse_view(session: Session, row: PurseCardRow, history_limit: int = 50) -> PurseView:
    now_local = clock.to_local(clock.now())
    card = card_of(row)
    validity = rules.card_validity(card, now_local)
    entries = session.scalars(
        select(PurseLedgerEntry).where(col(PurseLedgerEntry.card_id) == row.id)
        .order_by(col(PurseLedgerEntry.at).desc(), col(PurseLedgerEntry.id).desc()).limit(history_limit)
    ).all()
    state = validity.state.value
    if row.blocked_from is not None and validity.state is not rules.CardState.BLOCKED:
        state = "blocking"  # reported, blocked from 08:00 next day (R-KKM-7)
    history = [HistoryLine(at=clock.to_local(e.at), kind=e.kind, label=message(f"purse.entry.{e.kind}"), amount=e.amount,
                           place=e.place, detail=_detail_text(e.kind, e.detail)) for e in entries]
    return PurseView(
        id=row.id, number=row.number, kind=row.kind, holder_name=row.holder_name, balance=row.balance,  # type: ignore[arg-type]
        credit=outstanding_credit(row.balance), state=state, state_text=message(f"purse.state.{state}"),
        valid_through=validity.valid_through, default_fare=validity.default_fare.value,
        blocked_from=clock.to_local(row.blocked_from) if row.blocked_from else None, history=history,
    )


def my_purse_cards(session: Session, user_id: int) -> list[PurseView]:
    rows = session.scalars(select(PurseCardRow).where(col(PurseCardRow.account_id) == user_id)
                           .order_by(col(PurseCardRow.linked_at), col(PurseCardRow.id))).all()
    return [purse_view(session, row) for row in rows]


def _my_card(session: Session, user_id: int, card_id: int) -> PurseCardRow | None:
    row = session.get(PurseCardRow, card_id)
    return row if row is not None and row.account_id == user_id else None


def link_purse_card(session: Session, user_id: int, number: str, ip: str | None) -> str:
    """Link a personal e-purse card whose registered PESEL is the account's; returns an outcome code
    (`purse.linked` on success, else the reason)."""
    from web.accounts.interface import audit

    user = session.get(User, user_id)
    assert user is not None
    if user.pesel_hash is None:
        return "purse.no_pesel"
    number = "".join(number.split())
    row = session.scalars(select(PurseCardRow).where(col(PurseCardRow.number) == number)).first()
    if row is None or row.kind != rules.CardKind.PERSONAL.value or not row.pesel_hash \
            or not hmac.compare_digest(row.pesel_hash, user.pesel_hash):
        audit(session, "purse.link.mismatch", user_id, ip, "")
        return "purse.mismatch"
    if row.account_id == user_id:
        return "purse.already_yours"
    linked = affected(session.execute(
        update(PurseCardRow).where(col(PurseCardRow.id) == row.id, col(PurseCardRow.account_id).is_(None))
        .values(account_id=user_id, linked_at=clock.now()).execution_options(synchronize_session=False)
    ))
    if linked != 1:
        return "purse.linked_elsewhere"
    audit(session, "purse.linked", user_id, ip, f"purse_card={row.id}")
    return "purse.linked"


def report_card_loss(session: Session, user_id: int, card_id: int, ip: str | None) -> tuple[str, datetime | None]:
    """R-KKM-7 from the account: the card is blocked from 08:00 the next day. Returns (code, blocked_from local)."""
    from web.accounts.interface import audit

    row = _my_card(session, user_id, card_id)
    if row is None:
        return "purse.not_found", None
    row = lock_card(session, row.number)
    assert row is not None
    now = clock.now()
    try:
        card = rules.report_loss(card_of(row), clock.to_local(now))
    except rules.PurseRefused as exc:
        return f"purse.{exc.reason.value}", None
    row.blocked_from = card.blocked_from
    row.updated_at = now
    session.add(row)
    audit(session, "purse.loss_reported", user_id, ip, f"purse_card={row.id}")
    return "purse.loss_reported", clock.to_local(card.blocked_from) if card.blocked_from else None


# --------------------------------------------------------------------------- online top-up


@dataclass(frozen=True)
class TopUpQuote:
    payment: Grosze
    bonus: Grosze
    credit_repaid: Grosze
    balance_after: Grosze


class TopUpProblem(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def quote_online_top_up(session: Session, tariff: PurseTariff, user_id: int, card_id: int, payment: Grosze) -> TopUpQuote:
    """What a top-up of `payment` would bring (R-TOP-1 minimum, R-TOP-3 bonus, R-TOP-4 repayment).
    Raises `TopUpProblem`."""
    row = _my_card(session, user_id, card_id)
    if row is None:
        raise TopUpProblem("purse.not_found")
    if payment > ONLINE_TOP_UP_MAXIMUM:
        raise TopUpProblem("purse.top_up_too_much")
    try:
        receipt = rules.top_up_at_service_point(card_of(row), balance=row.balance, payment=payment,
                                                now=clock.to_local(clock.now()), tariff=tariff)
    except rules.PurseRefused as exc:
        raise TopUpProblem(f"purse.{exc.reason.value}") from exc
    return TopUpQuote(receipt.payment, receipt.bonus, receipt.credit_repaid, receipt.balance_after)


@dataclass(frozen=True)
class TopUpToPay:
    reference: str
    amount: Grosze
    description: str
    payer_email: str
    payer_name: str


def start_online_top_up(session: Session, tariff: PurseTariff, user_id: int, card_id: int, payment: Grosze) -> TopUpToPay:
    """Check the amount and record the hosted payment (purpose `purse_topup`, subject: the card)."""
    quote_online_top_up(session, tariff, user_id, card_id, payment)
    user = session.get(User, user_id)
    row = session.get(PurseCardRow, card_id)
    assert user is not None and row is not None
    reference = f"purse-{card_id}-{uuid.uuid4().hex[:20]}"
    payment_records.create_payment_record(session, reference=reference, purpose=PURPOSE, subject_id=card_id,
                                          user_id=user_id, kind="hosted", amount=payment)
    return TopUpToPay(reference, payment, f"Doładowanie karty KKM {row.number}", user.email, user.full_name)


def settle_top_up_payment(session: Session, payment: Payment, outcome: payment_records.Outcome, *,
                          tariff: PurseTariff) -> payment_records.Settled:
    """Applied exactly once per payment: a paid top-up is booked with its bonus; if the card can no
    longer take it (blocked, void), the money goes back."""
    if outcome.status != "paid":
        return payment_records.Settled()
    row = session.get(PurseCardRow, payment.subject_id)
    if row is None:
        return payment_records.Settled(refund=True)
    row = lock_card(session, row.number)
    assert row is not None
    now = clock.now()
    try:
        receipt = rules.top_up_at_service_point(card_of(row), balance=row.balance, payment=payment.amount,
                                                now=clock.to_local(now), tariff=tariff)
    except rules.PurseRefused:
        return payment_records.Settled(refund=True)
    book_entry(session, row, receipt.entries, at=now, place="online", payment_id=payment.id)
    return payment_records.Settled()


def reverse_top_up_payment(session: Session, payment: Payment, status: str) -> str:
    """R-PAY-3: a refunded or charged-back top-up is taken back from the card with its bonus (and the
    credit it repaid), one ledger entry; if it was spent, the balance goes below zero: a debt that
    stops credit rides and that the next top-up repays first (R-VAL-5, R-TOP-4). Returns what was done."""
    from domain.ledger import EntryKind, reversal_of

    row = session.get(PurseCardRow, payment.subject_id)
    if row is None:
        return "nothing to take back (the card no longer exists)"
    row = lock_card(session, row.number)
    assert row is not None
    booked = session.scalars(select(PurseLedgerEntry).where(col(PurseLedgerEntry.payment_id) == payment.id)).all()
    entry = reversal_of([LedgerEntry(EntryKind(e.kind), e.amount, e.detail) for e in booked])
    if entry is None:
        return f"card {row.number}: nothing was credited"
    balance = book_entry(session, row, [entry], at=clock.now(), place="online", payment_id=payment.id)
    return f"card {row.number}: {format_pln(-entry.amount)} taken back, balance {format_pln(balance)}"


# --------------------------------------------------------------------------- GDPR erasure


def erase_purse_cards_of(session: Session, user_id: int) -> None:
    """GDPR erasure (a step of `web.purposes.gdpr_erasure_steps`): the person's e-purse cards are unlinked from
    the account; the cards, their balances and ledgers stay (the card registry is the operator's)."""
    session.execute(update(PurseCardRow).where(col(PurseCardRow.account_id) == user_id)
                    .values(account_id=None, linked_at=None))
