"""Card applications, the use cases (issue 16; RULES.md R-KKM-1..6): apply online with a photo, pay the deposit
through the payments port (purpose `card_deposit`), the desk's queue (accept, return with a reason, card made,
collected), giving up with the deposit refunded (R-KKM-2) and the jobs (`run_card_jobs`).

The rules are `domain.card_application` and `domain.purse`; the e-purse card itself is made only through
`web.purse.service.issue_card_to_account`. Every state change is one conditional UPDATE (`_move`): from the
states it may leave, to the next; whoever wins it writes the timeline and sends the mail, so a repeated click,
a second node or a payment outcome reported twice changes nothing more.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from domain import card_application as rules
from domain import purse as purse_rules
from domain.money import Grosze, format_pln
from domain.operator import OperatorProfile
from web.platform import clock
from web.platform.db import affected, transaction
from web.simulators.interface import is_demo_account
from web.platform.mail import queue_mail
from web.card_applications.models import CardApplicationEvent, CardApplicationRow, CardNotice
from web.accounts.interface import User
from web.payment_records.interface import Payment
from web.purse.interface import PurseCardRow
from web.payment_records import interface as payment_records
from web.purse import interface as purse
from web.accounts.interface import audit
from web.platform.settings import Settings

from web.card_applications import photos

PURPOSE = "card_deposit"

# Statuses (the timeline's steps).
AWAITING_DEPOSIT = "awaiting_deposit"  # saved, the deposit not booked yet: not an application yet (R-KKM-3)
SUBMITTED = "submitted"  # the application date is set (R-KKM-3)
ACCEPTED = "accepted"  # complete; the card is being made
RETURNED = "returned"  # incomplete: not processed (R-KKM-3), with the reason
READY = "ready"  # made, at the service point until collect_by (R-KKM-4)
COLLECTED = "collected"
INVALIDATED = "invalidated"  # not collected in 30 days: deposit forfeited (R-KKM-4)
WITHDRAWN = "withdrawn"  # given up before collection: deposit refunded (R-KKM-2)
CANCELLED = "cancelled"  # the deposit payment was refunded or charged back
GIVEN_BACK = "given_back"  # the collected card given up: blocked, unlinked, deposit refunded or kept (R-KKM-2)
OPEN = (AWAITING_DEPOSIT, SUBMITTED, ACCEPTED, RETURNED, READY)
CLOSED = (COLLECTED, INVALIDATED, WITHDRAWN, CANCELLED, GIVEN_BACK)

# Where a card is collected, with the hours the operator publishes (seed: BOK ul. Solna 2, Mon-Fri 8-14).
SERVICE_POINTS: dict[str, tuple[str, str]] = {
    "solna": ("BOK, ul. Solna 2", "pon.–pt. 8:00–14:00"),
    "jagiellonska": ("POK ul. Jagiellońska (przystanki początkowe)", "pon.–pt. 8:00–14:00"),
    "grochowska": ("POK ul. Grochowska (przystanek KM)", "pon.–pt. 8:00–14:00"),
}

# What the form's "fare" offers: a personal card's registered fare, or a bearer card.
FARES = ("normal", "off_30", "off_50", "off_75", "free", "bearer")
ENTITLEMENT_UNTIL_MAX_YEARS = 20
RETURN_REASON_MAX = 500


class ApplicationProblems(Exception):
    """Field -> message codes, for the form."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(", ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class Refused(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def service_point_text(code: str) -> str:
    name, hours = SERVICE_POINTS.get(code, (code, ""))
    return f"{name} ({hours})" if hours else name


def _kind_and_fare(fare: str) -> tuple[purse_rules.CardKind, purse_rules.RegisteredFare]:
    if fare == "bearer":
        return purse_rules.CardKind.BEARER, purse_rules.RegisteredFare.NORMAL
    return purse_rules.CardKind.PERSONAL, purse_rules.RegisteredFare(fare)


def entitlement_of(row: CardApplicationRow) -> rules.Entitlement:
    return rules.entitlement_of(purse_rules.RegisteredFare(row.registered_fare))


# --------------------------------------------------------------------------- R-KKM-1


def _cards_held(session: Session, user: User) -> list[PurseCardRow]:
    mine = PurseCardRow.account_id == user.id
    if user.pesel_hash:
        mine = or_(mine, col(PurseCardRow.pesel_hash) == user.pesel_hash)
    return list(session.scalars(select(PurseCardRow).where(mine)))


def personal_card_refusal(session: Session, user: User) -> str | None:
    """R-KKM-1: why `user` may not apply for a personal card (they hold one, or one is on its way), or None."""
    held = [purse.card_of(row) for row in _cards_held(session, user)]
    if not rules.may_apply_for(purse_rules.CardKind.PERSONAL, held, clock.to_local(clock.now())):
        return "card_applications.has_personal_card"
    pending = session.scalars(select(col(CardApplicationRow.id)).where(
        col(CardApplicationRow.user_id) == user.id, col(CardApplicationRow.kind) == purse_rules.CardKind.PERSONAL.value,
        col(CardApplicationRow.status).in_(OPEN))).first()
    if pending is not None:
        return "card_applications.personal_pending"
    return None


# --------------------------------------------------------------------------- apply


@dataclass(frozen=True)
class Upload:
    """A file from the form, already bounded by the controller (None: nothing chosen)."""

    data: bytes
    too_big: bool = False


def _parse_until(raw: str, today: date) -> date | None | str:
    raw = raw.strip()[:20]
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return "card_applications.until.format"
    if day < today or day.year > today.year + ENTITLEMENT_UNTIL_MAX_YEARS:
        return "card_applications.until.range"
    return day


Cleaned = TypeVar("Cleaned")


def _checked_upload(upload: Upload | None, field: str, clean: Callable[[bytes], Cleaned],
                    errors: dict[str, list[str]]) -> Cleaned | None:
    """A required upload (the photo, the entitlement scan) cleaned by `clean`; None with the problem put next
    to `field` in `errors` when it is missing, too big or refused."""
    if upload is None or (not upload.data and not upload.too_big):
        errors[field] = [f"card_applications.{field}.required"]
    elif upload.too_big:
        errors[field] = [f"card_applications.{field}.too_big"]
    else:
        try:
            return clean(upload.data)
        except photos.PhotoRefused as exc:
            errors[field] = [exc.code]
    return None


def apply(session: Session, settings: Settings, user_id: int, form: dict[str, str], photo: Upload | None,
          scan: Upload | None, ip: str | None) -> CardApplicationRow:
    """Check an online application (R-KKM-1, R-KKM-3) and save it; nothing is stored when anything is wrong.
    With no deposit due (free rides, R-KKM-2) it is submitted at once; otherwise it waits for the deposit."""
    user = session.get(User, user_id)
    assert user is not None
    today = clock.to_local(clock.now()).date()
    errors: dict[str, list[str]] = {}
    fare = form.get("fare", "")
    if fare not in FARES:
        errors["fare"] = ["card_applications.fare.required"]
    point = form.get("service_point", "")
    if point not in SERVICE_POINTS:
        errors["service_point"] = ["card_applications.service_point.required"]
    kind, registered = _kind_and_fare(fare if fare in FARES else "normal")
    entitlement = rules.entitlement_of(registered)
    personal = kind is purse_rules.CardKind.PERSONAL
    if "fare" not in errors and personal and (refusal := personal_card_refusal(session, user)):
        errors["fare"] = [refusal]
    clean_photo = None
    if personal and "fare" not in errors:
        clean_photo = _checked_upload(photo, "photo", photos.clean_photo, errors)
    document = "none"
    clean_scan = None
    until: date | None = None
    if personal and entitlement is not rules.Entitlement.NONE and "fare" not in errors:
        document = form.get("entitlement_document", "")
        if document not in ("scan", "at_desk"):
            errors["entitlement_document"] = ["card_applications.document.required"]
        elif document == "scan":
            clean_scan = _checked_upload(scan, "scan", photos.clean_scan, errors)
        parsed = _parse_until(form.get("entitlement_until", ""), today)
        if isinstance(parsed, str):
            errors["entitlement_until"] = [parsed]
        else:
            until = parsed
    if errors:
        raise ApplicationProblems(errors)
    row = CardApplicationRow(
        user_id=user_id, kind=kind.value, registered_fare=registered.value, first_name=user.first_name,
        last_name=user.last_name, service_point=point, entitlement_document=document, entitlement_until=until,
        status=AWAITING_DEPOSIT, deposit=rules.deposit_due(kind, entitlement))
    session.add(row)
    session.flush()
    assert row.id is not None
    if clean_photo is not None:
        row.photo = photos.encrypt(settings.photo_key, row.id, "photo", clean_photo)
    if clean_scan is not None:
        row.scan = photos.encrypt(settings.photo_key, row.id, "scan", clean_scan.data)
        row.scan_type = clean_scan.media_type
    _event(session, row, AWAITING_DEPOSIT)
    audit(session, "card_application.created", user_id, ip, f"application={row.id}")
    if row.deposit == 0:
        _submit(session, settings.profile, row, payment_id=None)
    return row


def _clean_upload(upload: Upload | None, what: str, errors: dict[str, list[str]]) -> Any:
    """The cleaned photo or scan (`what`), None when nothing was chosen; a refusal goes to `errors`."""
    if upload is None or (not upload.data and not upload.too_big):
        return None
    if upload.too_big:
        errors[what] = [f"card_applications.{what}.too_big"]
        return None
    try:
        return photos.clean_photo(upload.data) if what == "photo" else photos.clean_scan(upload.data)
    except photos.PhotoRefused as exc:
        errors[what] = [exc.code]
        return None


def complete_returned(session: Session, settings: Settings, user_id: int, application_id: int, photo: Upload | None,
                      scan: Upload | None, ip: str | None) -> CardApplicationRow:
    """R-KKM-3: a returned (incomplete) application completed with a new photo and/or entitlement scan and sent
    back to the desk's queue (SUBMITTED); the deposit already paid stays with it (none is asked again) and its
    application date and deadlines do not change. Raises `Refused` or `ApplicationProblems` (nothing stored)."""
    row = my_application(session, user_id, application_id)
    if row is None:
        raise Refused("card_applications.not_found")
    if row.status != RETURNED:
        raise Refused("card_applications.complete.not_returned")
    errors: dict[str, list[str]] = {}
    personal = row.kind == purse_rules.CardKind.PERSONAL.value
    with_document = personal and entitlement_of(row) is not rules.Entitlement.NONE
    clean_photo = _clean_upload(photo, "photo", errors) if personal else None
    clean_scan = _clean_upload(scan, "scan", errors) if with_document else None
    if personal and not errors and clean_photo is None and clean_scan is None:
        errors["photo"] = ["card_applications.complete.nothing" if with_document else "card_applications.photo.required"]
    if errors:
        raise ApplicationProblems(errors)
    moved = _move(session, row.id, (RETURNED,), SUBMITTED, return_reason="")  # type: ignore[arg-type]
    if moved is None:
        raise Refused("card_applications.complete.not_returned")
    what = []
    if clean_photo is not None:
        moved.photo = photos.encrypt(settings.photo_key, moved.id, "photo", clean_photo)  # type: ignore[arg-type]
        what.append("photo")
    if clean_scan is not None:
        moved.scan = photos.encrypt(settings.photo_key, moved.id, "scan", clean_scan.data)  # type: ignore[arg-type]
        moved.scan_type, moved.entitlement_document = clean_scan.media_type, "scan"
        what.append("scan")
    _event(session, moved, SUBMITTED, "completed: " + ", ".join(what))
    audit(session, "card_application.completed", user_id, ip, f"application={moved.id} {'+'.join(what)}")
    return moved


def _event(session: Session, row: CardApplicationRow, status: str, detail: str = "", staff_id: int | None = None) -> None:
    session.add(CardApplicationEvent(application_id=row.id, status=status, detail=detail[:500], staff_id=staff_id,  # type: ignore[arg-type]
                                     at=clock.now()))


def _move(session: Session, application_id: int, from_states: tuple[str, ...], to: str, **values: Any) -> CardApplicationRow | None:
    """The one conditional UPDATE every step is: None when the application was not in `from_states`."""
    now = clock.now()
    if to in CLOSED:
        values.setdefault("closed_at", now)
    won = affected(session.execute(
        update(CardApplicationRow).where(col(CardApplicationRow.id) == application_id,
                                         col(CardApplicationRow.status).in_(from_states))
        .values(status=to, updated_at=now, **values).execution_options(synchronize_session=False)))
    if won != 1:
        return None
    row = session.scalars(select(CardApplicationRow).where(col(CardApplicationRow.id) == application_id)
                          .execution_options(populate_existing=True)).one()
    return row


def _mail(session: Session, operator: OperatorProfile, row: CardApplicationRow, step: str, **context: Any) -> None:
    user = session.get(User, row.user_id)
    if user is None:
        return
    queue_mail(session, user.email, "card_application", user.language, operator=operator, first_name=user.first_name,
               step=step,
               application_id=row.id, service_point=service_point_text(row.service_point),
               ready_by=_day(row.ready_by), collect_by=_day(row.collect_by), reason=row.return_reason,
               card_number=row.card_number or "", deposit=format_pln(row.deposit), **context)


def _day(day: date | None) -> str:
    return day.strftime("%d.%m.%Y") if day else ""


def _submit(session: Session, operator: OperatorProfile, row: CardApplicationRow,
            payment_id: int | None) -> CardApplicationRow | None:
    """R-KKM-3/4: the application date is today (the deposit booked, or none due); the deadlines follow."""
    applied_on = clock.to_local(clock.now()).date()
    moved = _move(session, row.id, (AWAITING_DEPOSIT,), SUBMITTED, applied_on=applied_on,  # type: ignore[arg-type]
                  ready_by=rules.ready_by(applied_on), collect_by=rules.collect_by(applied_on),
                  deposit_payment_id=payment_id)
    if moved is not None:
        _event(session, moved, SUBMITTED)
        _mail(session, operator, moved, SUBMITTED)
    return moved


# --------------------------------------------------------------------------- the deposit


@dataclass(frozen=True)
class DepositToPay:
    reference: str
    amount: Grosze
    description: str
    payer_email: str
    payer_name: str


def start_deposit_payment(session: Session, user_id: int, application_id: int) -> DepositToPay:
    """Record the hosted payment of the deposit (R-KKM-2). Raises `Refused` if nothing is due now."""
    row = my_application(session, user_id, application_id)
    if row is None:
        raise Refused("card_applications.not_found")
    if row.status != AWAITING_DEPOSIT or row.deposit <= 0:
        raise Refused("card_applications.nothing_to_pay")
    user = session.get(User, user_id)
    assert user is not None
    reference = f"kkm-{row.id}-{uuid.uuid4().hex[:20]}"
    payment_records.create_payment_record(session, reference=reference, purpose=PURPOSE, subject_id=row.id,  # type: ignore[arg-type]
                                          user_id=user_id, kind="hosted", amount=row.deposit)
    return DepositToPay(reference, row.deposit, f"Kaucja za kartę KKM, wniosek {row.id}", user.email, user.full_name)


def settle_deposit_payment(session: Session, payment: Payment, outcome: payment_records.Outcome, *,
                           operator: OperatorProfile) -> payment_records.Settled:
    """Applied once per payment: a paid deposit submits the application (its date is today, R-KKM-3). A deposit
    for an application no longer waiting for one (given up, or already paid by another payment) goes back."""
    if outcome.status != "paid":
        return payment_records.Settled()
    row = session.get(CardApplicationRow, payment.subject_id)
    if row is None or payment.amount != row.deposit:
        return payment_records.Settled(refund=True)
    if _submit(session, operator, row, payment.id) is None:
        return payment_records.Settled(refund=True)
    return payment_records.Settled()


def reverse_deposit_payment(session: Session, payment: Payment, status: str, *, operator: OperatorProfile) -> str:
    """R-PAY-3: a deposit refunded or charged back cancels an application not yet collected."""
    row = session.get(CardApplicationRow, payment.subject_id)
    if row is None or row.deposit_payment_id != payment.id:
        return "nothing to take back (no application paid by it)"
    moved = _move(session, row.id, (SUBMITTED, ACCEPTED, RETURNED, READY), CANCELLED)  # type: ignore[arg-type]
    if moved is None:
        return f"application {row.id} ({row.status}): left as it is"
    _event(session, moved, CANCELLED, status)
    _mail(session, operator, moved, CANCELLED)
    return f"application {row.id}: cancelled"


# --------------------------------------------------------------------------- R-KKM-8 data changes

CHANGE_FARES = ("normal", "off_30", "off_50", "off_75", "free")


def request_change(session: Session, settings: Settings, user_id: int, application_id: int, form: dict[str, str],
                   photo: Upload | None, ip: str | None) -> CardApplicationRow:
    """R-KKM-8 for the card a collected application gave: a change of printed data (name, photo, normal /
    reduced / free) is a new card with a new deposit, made and collected like a first one (the old card's
    balance moves to it then); a change of data not printed (30/50/75 % off, the document's validity) is free,
    made at the desk on the original document. Raises `Refused` or `ApplicationProblems`."""
    user = session.get(User, user_id)
    old = my_application(session, user_id, application_id)
    assert user is not None
    if old is None:
        raise Refused("card_applications.not_found")
    card = session.get(PurseCardRow, old.card_id) if old.card_id else None
    if old.status != COLLECTED or old.kind != purse_rules.CardKind.PERSONAL.value or card is None \
            or card.account_id != user_id or card.blocked_from is not None:
        raise Refused("card_applications.change.not_possible")
    pending = session.scalars(select(col(CardApplicationRow.id)).where(
        col(CardApplicationRow.replaces_card_id) == card.id,
        col(CardApplicationRow.status).in_(OPEN))).first()
    if pending is not None:
        raise Refused("card_applications.change.pending")
    today = clock.to_local(clock.now()).date()
    errors: dict[str, list[str]] = {}
    fare = form.get("fare", "")
    if fare not in CHANGE_FARES:
        errors["fare"] = ["card_applications.fare.required"]
        fare = card.registered_fare
    new_fare = purse_rules.RegisteredFare(fare)
    until: date | None = card.entitlement_until
    parsed = _parse_until(form.get("entitlement_until", ""), today)
    if isinstance(parsed, str):
        errors["entitlement_until"] = [parsed]
    elif parsed is not None:
        until = parsed
    if new_fare is purse_rules.RegisteredFare.NORMAL:
        until = None
    account_name = f"{user.first_name} {user.last_name}"
    name_changed = form.get("name") == "account" and account_name != card.holder_name
    clean_photo = None
    if photo is not None and photo.too_big:
        errors["photo"] = ["card_applications.photo.too_big"]
    elif photo is not None and photo.data:
        try:
            clean_photo = photos.clean_photo(photo.data)
        except photos.PhotoRefused as exc:
            errors["photo"] = [exc.code]
    fields = rules.changed_fields(purse_rules.RegisteredFare(card.registered_fare), new_fare,
                                  name_changed=name_changed, new_photo=clean_photo is not None,
                                  old_until=card.entitlement_until, new_until=until)
    if not fields and not errors:
        errors["fare"] = ["card_applications.change.nothing"]
    consequence = rules.data_change_consequence(fields, entitlement=rules.entitlement_of(new_fare))
    if consequence.new_card_needed and clean_photo is None and old.photo is None and "photo" not in errors:
        errors["photo"] = ["card_applications.photo.required"]  # the old one was deleted with the application
    if errors:
        raise ApplicationProblems(errors)
    first, last = (user.first_name, user.last_name) if name_changed else (old.first_name, old.last_name)
    row = CardApplicationRow(
        user_id=user_id, kind=old.kind, registered_fare=new_fare.value, first_name=first, last_name=last,
        service_point=old.service_point, entitlement_until=until, status=AWAITING_DEPOSIT,
        entitlement_document="none" if new_fare is purse_rules.RegisteredFare.NORMAL else "at_desk",
        deposit=consequence.deposit, replaces_card_id=card.id, new_card=consequence.new_card_needed)
    session.add(row)
    session.flush()
    assert row.id is not None
    if consequence.new_card_needed:
        printed = clean_photo if clean_photo is not None else \
            photos.decrypt(settings.photo_key, old.id, "photo", old.photo)  # type: ignore[arg-type]
        row.photo = photos.encrypt(settings.photo_key, row.id, "photo", printed)
    _event(session, row, AWAITING_DEPOSIT, ", ".join(sorted(f.value for f in fields)))
    audit(session, "card_application.change_requested", user_id, ip,
          f"application={row.id} card={card.id} new_card={consequence.new_card_needed}")
    if row.deposit == 0:
        _submit(session, settings.profile, row, payment_id=None)
    return row


def _apply_free_change(session: Session, operator: OperatorProfile, row: CardApplicationRow, staff_id: int) -> None:
    """R-KKM-8: data not printed on the card change on it at once (free), at the desk on the original document."""
    card = session.get(PurseCardRow, row.replaces_card_id)
    if card is None or card.blocked_from is not None:
        raise Refused("card_applications.change.not_possible")
    card.registered_fare, card.entitlement_until, card.updated_at = row.registered_fare, row.entitlement_until, clock.now()
    moved = _move(session, row.id, (ACCEPTED,), COLLECTED, card_id=card.id, card_number=card.number)  # type: ignore[arg-type]
    assert moved is not None
    _event(session, moved, COLLECTED, card.number, staff_id=staff_id)
    _mail(session, operator, moved, COLLECTED)


def _retire_replaced_card(session: Session, row: CardApplicationRow, new: PurseCardRow, staff_id: int) -> None:
    """The card a printed data change replaces (R-KKM-8) ends when the new one is handed over; its balance moves."""
    old = purse.lock_card(session, session.get(PurseCardRow, row.replaces_card_id).number)  # type: ignore[union-attr]
    if old is None:
        return
    now = clock.now()
    if old.blocked_from is None or old.blocked_from > now:
        old.blocked_from = now
    moved = purse_rules.transfer_balance(purse.card_of(old), old_balance=old.balance, new_card=purse.card_of(new),
                                         new_balance=new.balance, now=clock.to_local(now))
    purse.book_entry(session, old, moved.old_card_entries, at=now, place="BOK", staff_id=staff_id)
    purse.book_entry(session, new, moved.new_card_entries, at=now, place="BOK", staff_id=staff_id)
    old.account_id, old.linked_at, old.updated_at = None, None, now


# --------------------------------------------------------------------------- the passenger


def my_application(session: Session, user_id: int, application_id: int) -> CardApplicationRow | None:
    row = session.get(CardApplicationRow, application_id)
    return row if row is not None and row.user_id == user_id else None


@dataclass(frozen=True)
class Step:
    status: str
    at: datetime | None  # local; None: still to come
    detail: str = ""
    done: bool = True


@dataclass
class ApplicationView:
    row: CardApplicationRow
    timeline: list[Step] = field(default_factory=list)
    deposit_refund: Grosze = 0  # what giving up would pay back now
    card: PurseCardRow | None = None  # the collected card, while it is on the applicant's account
    replaced: dict[int, str] = field(default_factory=dict)  # R-KKM-8: the changed card's number, by its id
    other_cards: list[PurseCardRow] = field(default_factory=list)  # where its balance may move (R-KKM-2)

    @property
    def service_point(self) -> str:
        return service_point_text(self.row.service_point)


_TIMELINE = (SUBMITTED, ACCEPTED, READY, COLLECTED)


def view(session: Session, row: CardApplicationRow) -> ApplicationView:
    events = session.scalars(select(CardApplicationEvent).where(col(CardApplicationEvent.application_id) == row.id)
                             .order_by(col(CardApplicationEvent.id))).all()
    steps = [Step(e.status, clock.to_local(e.at), e.detail) for e in events if e.status != AWAITING_DEPOSIT]
    if row.status in (SUBMITTED, ACCEPTED, READY):  # what is still to come
        seen = {s.status for s in steps}
        steps += [Step(status, None, done=False) for status in _TIMELINE if status not in seen]
    refund = 0
    if row.status in (SUBMITTED, ACCEPTED, RETURNED, READY) and row.deposit_payment_id is not None:
        refund = rules.deposit_refund(rules.CardEnd.GIVEN_UP, deposit_paid=row.deposit)
    card, others = None, []
    if row.status == COLLECTED and row.card_id is not None:
        card = session.get(PurseCardRow, row.card_id)
        if card is not None and card.account_id == row.user_id:
            issuing = _issuing_application(session, card.id)  # type: ignore[arg-type]
            payment = _deposit_payment(session, issuing) if issuing is not None else None
            decided = rules.give_up_card(purse.card_of(card), clock.to_local(clock.now()), balance=0,
                                         deposit_paid=payment.amount if payment is not None else 0)
            refund = decided.deposit_refund if isinstance(decided, rules.CardGiveUp) else 0
            others = list(session.scalars(select(PurseCardRow).where(
                col(PurseCardRow.account_id) == row.user_id, col(PurseCardRow.id) != card.id,
                col(PurseCardRow.blocked_from).is_(None)).order_by(col(PurseCardRow.id))))
        else:
            card = None
    return ApplicationView(row, steps, refund, card=card, other_cards=others, replaced=replaced_card_numbers(session, [row]))


def my_applications(session: Session, user_id: int) -> list[ApplicationView]:
    rows = session.scalars(select(CardApplicationRow).where(col(CardApplicationRow.user_id) == user_id)
                           .order_by(col(CardApplicationRow.id).desc())).all()
    return [view(session, row) for row in rows]


def my_application_view(session: Session, user_id: int, application_id: int) -> ApplicationView | None:
    row = my_application(session, user_id, application_id)
    return view(session, row) if row is not None else None


@dataclass(frozen=True)
class GivenUp:
    payment_id: int | None  # a deposit to give back (REFUND_DUE), or None
    transaction_id: str | None
    refund: Grosze
    card_number: str | None = None  # a collected card given up (R-KKM-2)
    balance: rules.BalanceHandling = rules.BalanceHandling.NOTHING
    amount: Grosze = 0  # the balance moved, paid out or forfeited
    moved_to: str | None = None
    deposit_kept: rules.DepositKept | None = None


def give_up(session: Session, user_id: int, application_id: int, ip: str | None, move_to: int | None = None, *,
            operator: OperatorProfile) -> GivenUp:
    """R-KKM-2: giving up before collection; the deposit paid online is refunded (the payment is its receipt).
    A collected card is given up with `give_up_card` (its balance moved to the card `move_to`).
    Raises `Refused`."""
    row = my_application(session, user_id, application_id)
    if row is None:
        raise Refused("card_applications.not_found")
    if row.status == COLLECTED:
        card = session.get(PurseCardRow, row.card_id) if row.card_id else None
        if card is None or card.account_id != user_id:
            raise Refused("card_applications.give_up.not_possible")
        target = session.get(PurseCardRow, move_to) if move_to is not None else None
        if move_to is not None and (target is None or target.account_id != user_id):
            raise Refused("card_applications.give_up.target_not_yours")
        return give_up_card(session, card.number, ip, operator=operator, user_id=user_id, staff_id=None,
                            move_to=target.number if target is not None else None)
    moved = _move(session, row.id, OPEN, WITHDRAWN)  # type: ignore[arg-type]
    if moved is None:
        raise Refused("card_applications.cannot_give_up")
    refund = 0
    payment = session.get(Payment, moved.deposit_payment_id) if moved.deposit_payment_id else None
    if payment is not None:
        refund = rules.deposit_refund(rules.CardEnd.GIVEN_UP, deposit_paid=payment.amount, receipt_shown=True)
    _event(session, moved, WITHDRAWN, format_pln(refund) if refund else "")
    audit(session, "card_application.given_up", user_id, ip, f"application={moved.id} refund={refund}")
    if payment is not None and refund:
        payment_records.ask_refund(session, payment.id)  # type: ignore[arg-type]
        _mail(session, operator, moved, WITHDRAWN, refund=format_pln(refund))
        return GivenUp(payment.id, payment.gateway_transaction_id, refund)
    _mail(session, operator, moved, WITHDRAWN, refund="")
    return GivenUp(None, None, 0)


def _issuing_application(session: Session, card_id: int) -> CardApplicationRow | None:
    """The collected application that made the card (and took its deposit); not a free data change of it."""
    return session.scalars(select(CardApplicationRow).where(
        col(CardApplicationRow.card_id) == card_id, col(CardApplicationRow.status) == COLLECTED,
        col(CardApplicationRow.new_card).is_(True))
        .order_by(col(CardApplicationRow.id).desc())).first()


def _deposit_payment(session: Session, row: CardApplicationRow) -> Payment | None:
    payment = session.get(Payment, row.deposit_payment_id) if row.deposit_payment_id else None
    return payment if payment is not None and payment.status == payment_records.PaymentStatus.PAID.value else None


def give_up_card(session: Session, number: str, ip: str | None, *, operator: OperatorProfile, user_id: int | None,
                 staff_id: int | None,
                 damaged_by_holder: bool = False, move_to: str | None = None, pay_out: bool = False) -> GivenUp:
    """R-KKM-2: a collected card given up online by its holder (`user_id`) or at the desk (`staff_id`): blocked
    at once and unlinked; the deposit paid online refunded through the payments port unless the card was lost,
    damaged by the holder or unused for 3 years (`rules.give_up_card` decides); the balance moved to the card
    `move_to` of the same account, paid out in cash at the desk (`pay_out`) or forfeited after 3 years unused.
    One conditional UPDATE of the application (COLLECTED -> GIVEN_BACK) wins; a repeat is refused."""
    card = purse.lock_card(session, number)
    if card is None or card.account_id is None or (user_id is not None and card.account_id != user_id):
        raise Refused("card_applications.give_up.not_possible")
    row = _issuing_application(session, card.id)  # type: ignore[arg-type]
    if row is None or row.user_id != card.account_id:
        raise Refused("card_applications.give_up.not_possible")
    target = None
    if move_to is not None:
        target = purse.lock_card(session, move_to)
        if target is None or target.account_id != card.account_id:
            raise Refused("card_applications.give_up.target_not_yours")
    now = clock.now()
    payment = _deposit_payment(session, row)
    decided = rules.give_up_card(
        purse.card_of(card), clock.to_local(now), balance=card.balance,
        deposit_paid=payment.amount if payment is not None else 0, damaged_by_holder=damaged_by_holder,
        move_to=purse.card_of(target) if target is not None else None,
        move_to_balance=target.balance if target is not None else 0, pay_out=pay_out and staff_id is not None)
    if isinstance(decided, rules.GiveUpProblem):
        raise Refused(f"card_applications.give_up.{decided.value}")
    moved = _move(session, row.id, (COLLECTED,), GIVEN_BACK)  # type: ignore[arg-type]
    if moved is None:
        raise Refused("card_applications.give_up.not_possible")
    place = "BOK" if staff_id is not None else "online"
    purse.book_entry(session, card, decided.old_card_entries, at=now, place=place, staff_id=staff_id)
    if target is not None and decided.new_card_entries:
        purse.book_entry(session, target, decided.new_card_entries, at=now, place=place, staff_id=staff_id)
    if card.blocked_from is None or card.blocked_from > now:
        card.blocked_from = now
    card.account_id, card.linked_at, card.updated_at = None, None, now
    detail = f"{decided.end.value}; {decided.balance.value} {format_pln(decided.amount)}"
    _event(session, moved, GIVEN_BACK, detail, staff_id=staff_id)
    audit(session, "card_application.card_given_up", staff_id if staff_id is not None else user_id, ip,
          f"application={moved.id} purse_card={card.id} end={decided.end.value} refund={decided.deposit_refund} "
          f"balance={decided.balance.value}:{decided.amount}")
    moved_to = target.number if target is not None and decided.balance is rules.BalanceHandling.MOVED else None
    _mail(session, operator, moved, GIVEN_BACK, refund=format_pln(decided.deposit_refund) if decided.deposit_refund else "",
          kept=decided.deposit_kept.value if decided.deposit_kept else "", balance=decided.balance.value,
          amount=format_pln(decided.amount), moved_to=moved_to or "")
    given = GivenUp(None, None, decided.deposit_refund, card.number, decided.balance, decided.amount, moved_to,
                    decided.deposit_kept)
    if payment is not None and decided.deposit_refund:
        payment_records.ask_refund(session, payment.id)  # type: ignore[arg-type]
        return GivenUp(payment.id, payment.gateway_transaction_id, decided.deposit_refund, given.card_number,
                       given.balance, given.amount, given.moved_to, given.deposit_kept)
    return given


async def give_back_deposit(engine: Engine, gateway: Any, given_up: GivenUp) -> bool:
    if given_up.payment_id is None:
        return True
    return await payment_records.give_back(engine, gateway, given_up.payment_id, given_up.transaction_id)


def photo_of(session: Session, settings: Settings, application_id: int, what: str, *, user_id: int | None) -> tuple[bytes, str] | None:
    """The decrypted photo or scan (`what`), for its applicant (`user_id`) or staff (None)."""
    row = session.get(CardApplicationRow, application_id)
    if row is None or (user_id is not None and row.user_id != user_id):
        return None
    blob = row.photo if what == "photo" else row.scan
    if blob is None:
        return None
    media_type = "image/jpeg" if what == "photo" else (row.scan_type or "application/octet-stream")
    return photos.decrypt(settings.photo_key, row.id, what, blob), media_type  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the desk


FILTERS = {
    "new": (SUBMITTED,),
    "documents": (RETURNED,),
    "accepted": (ACCEPTED,),
    "ready": (READY,),
    "overdue": (READY,),
    "all": OPEN + CLOSED,
}


def desk_queue(session: Session, which: str, limit: int = 200) -> list[CardApplicationRow]:
    states = FILTERS.get(which, FILTERS["new"])
    query = select(CardApplicationRow).where(col(CardApplicationRow.status).in_(states))
    if which == "overdue":
        query = query.where(col(CardApplicationRow.collect_by) < clock.to_local(clock.now()).date())
    return list(session.scalars(query.order_by(col(CardApplicationRow.id)).limit(limit)))


def replaced_card_numbers(session: Session, rows: list[CardApplicationRow]) -> dict[int, str]:
    """For the desk: the number of the card each data-change request (R-KKM-8) is about, by card id."""
    ids = {row.replaces_card_id for row in rows if row.replaces_card_id is not None}
    if not ids:
        return {}
    found = session.execute(select(col(PurseCardRow.id), col(PurseCardRow.number)).where(col(PurseCardRow.id).in_(ids))).all()
    return {card_id: number for card_id, number in found}


def desk_queue_page(session: Session, which: str) -> tuple[list[CardApplicationRow], dict[int, str]]:
    rows = desk_queue(session, which)
    return rows, replaced_card_numbers(session, rows)


def desk_view(session: Session, application_id: int) -> ApplicationView | None:
    row = session.get(CardApplicationRow, application_id)
    return view(session, row) if row is not None else None


def accept(session: Session, staff_id: int, application_id: int, ip: str | None, *, operator: OperatorProfile) -> None:
    """The application is complete (R-KKM-3); the card is being made."""
    row = _move(session, application_id, (SUBMITTED, RETURNED), ACCEPTED, return_reason="")
    if row is None:
        raise Refused("card_applications.desk.wrong_state")
    if row.kind == purse_rules.CardKind.PERSONAL.value and row.photo is None and row.new_card:
        raise Refused("card_applications.desk.no_photo")  # rolled back by the caller's transaction
    _event(session, row, ACCEPTED, staff_id=staff_id)
    audit(session, "card_application.accepted", staff_id, ip, f"application={row.id}")
    if row.replaces_card_id is not None and not row.new_card:
        _apply_free_change(session, operator, row, staff_id)
        return
    _mail(session, operator, row, ACCEPTED)


def return_incomplete(session: Session, staff_id: int, application_id: int, reason: str, ip: str | None, *,
                      operator: OperatorProfile) -> None:
    """Incomplete applications are not processed (R-KKM-3): back to the applicant with the reason."""
    reason = " ".join(reason.split())
    if not reason:
        raise Refused("card_applications.desk.reason_required")
    if len(reason) > RETURN_REASON_MAX:
        raise Refused("card_applications.desk.reason_too_long")
    row = _move(session, application_id, (SUBMITTED, ACCEPTED), RETURNED, return_reason=reason)
    if row is None:
        raise Refused("card_applications.desk.wrong_state")
    _event(session, row, RETURNED, reason, staff_id=staff_id)
    audit(session, "card_application.returned", staff_id, ip, f"application={row.id}")
    _mail(session, operator, row, RETURNED)


def card_made(session: Session, staff_id: int, application_id: int, number: str, ip: str | None, *,
              operator: OperatorProfile) -> None:
    """The card is made with its number and waits at the service point until the collection deadline."""
    number = "".join(number.split())
    if not number.isascii() or not number.isdigit() or not 4 <= len(number) <= 20:
        raise Refused("card_applications.desk.number_format")
    taken = session.scalars(select(col(PurseCardRow.id)).where(col(PurseCardRow.number) == number)).first() is not None or \
        session.scalars(select(col(CardApplicationRow.id)).where(col(CardApplicationRow.card_number) == number,
                                                            col(CardApplicationRow.id) != application_id)).first() is not None
    if taken:
        raise Refused("card_applications.desk.number_taken")
    row = _move(session, application_id, (ACCEPTED,), READY, card_number=number)
    if row is None:
        raise Refused("card_applications.desk.wrong_state")
    _event(session, row, READY, number, staff_id=staff_id)
    audit(session, "card_application.made", staff_id, ip, f"application={row.id} card={number}")
    _mail(session, operator, row, READY)


def collected(session: Session, staff_id: int, application_id: int, ip: str | None, *, operator: OperatorProfile,
              identity_checked: bool,
              entitlement_shown: bool, settings: Settings | None = None) -> str:
    """Handed over after the photo ID (and, for reduced/free, the original entitlement document) was shown
    (R-KKM-3): the card is issued, linked to the applicant's account with its fare type. Returns its number."""
    row = session.get(CardApplicationRow, application_id)
    if row is None:
        raise Refused("card_applications.not_found")
    personal = row.kind == purse_rules.CardKind.PERSONAL.value
    if personal and not identity_checked:
        raise Refused("card_applications.desk.identity_required")
    if personal and entitlement_of(row) is not rules.Entitlement.NONE and not entitlement_shown:
        raise Refused("card_applications.desk.entitlement_required")
    today = clock.to_local(clock.now()).date()
    if row.collect_by is not None and row.applied_on is not None and \
            rules.uncollected(row.applied_on, collected_on=None, today=today):
        raise Refused("card_applications.desk.too_late")
    moved = _move(session, application_id, (READY,), COLLECTED)
    if moved is None:
        raise Refused("card_applications.desk.wrong_state")
    user = session.get(User, moved.user_id)
    assert user is not None and moved.card_number is not None
    card = purse.issue_card_to_account(
        session, account_id=user.id, number=moved.card_number,  # type: ignore[arg-type]
        kind=purse_rules.CardKind(moved.kind), fare=purse_rules.RegisteredFare(moved.registered_fare),
        holder_name=f"{moved.first_name} {moved.last_name}" if personal else "",
        pesel_hash=user.pesel_hash if personal else None, entitlement_until=moved.entitlement_until,
        demo=settings is not None and is_demo_account(settings, user.email))
    moved.card_id = card.id
    if moved.replaces_card_id is not None:
        _retire_replaced_card(session, moved, card, staff_id)
    _event(session, moved, COLLECTED, moved.card_number, staff_id=staff_id)
    audit(session, "card_application.collected", staff_id, ip, f"application={moved.id} purse_card={card.id}")
    _mail(session, operator, moved, COLLECTED)
    return moved.card_number


# --------------------------------------------------------------------------- GDPR


def erase_applications_of(session: Session, user_id: int) -> None:
    """GDPR erasure: the applications, their photos, scans and timelines go with the account."""
    ids = select(col(CardApplicationRow.id)).where(col(CardApplicationRow.user_id) == user_id)
    session.execute(delete(CardApplicationEvent).where(col(CardApplicationEvent.application_id).in_(ids)))
    session.execute(delete(CardApplicationRow).where(col(CardApplicationRow.user_id) == user_id))


# --------------------------------------------------------------------------- the jobs


@dataclass
class JobReport:
    invalidated: int = 0
    reminders: int = 0
    photos_deleted: int = 0

    def __str__(self) -> str:
        return (f"{self.invalidated} application(s) invalidated, {self.reminders} reminder(s) sent, "
                f"{self.photos_deleted} application(s)' photos and scans deleted")


REMIND_BEFORE = {"month": 30, "week": 7}  # days ahead of a lapse (R-KKM-5) or an entitlement end (R-KKM-6)


def _claim_notice(session: Session, card_id: int, kind: str, due_on: date) -> bool:
    """Insert the notice's row unless it exists (ON CONFLICT DO NOTHING): True for the one node that did."""
    values = {"card_id": card_id, "kind": kind, "due_on": due_on, "sent_at": clock.now()}
    table = CardNotice.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    claimed = session.execute(insert(table).values(**values).on_conflict_do_nothing().returning(table.c.id)).first()
    return claimed is not None


def invalidate_uncollected(session: Session, today: date, *, operator: OperatorProfile) -> int:
    """R-KKM-4: not collected in 30 days -> invalidated, the deposit forfeited, the applicant told."""
    ids = session.scalars(select(col(CardApplicationRow.id)).where(
        col(CardApplicationRow.status).in_((SUBMITTED, ACCEPTED, READY)),
        col(CardApplicationRow.collect_by) < today)).all()
    done = 0
    for application_id in ids:
        row = session.get(CardApplicationRow, application_id)
        if row is None or row.applied_on is None or not rules.uncollected(row.applied_on, collected_on=None, today=today):
            continue
        moved = _move(session, application_id, (SUBMITTED, ACCEPTED, READY), INVALIDATED)
        if moved is None:
            continue  # another node did it
        kept = rules.deposit_kept(rules.CardEnd.NOT_COLLECTED, deposit_paid=moved.deposit)
        _event(session, moved, INVALIDATED, kept.value if kept else "")
        _mail(session, operator, moved, INVALIDATED)
        done += 1
    return done


def card_reminders(session: Session, today: date, *, operator: OperatorProfile) -> int:
    """R-KKM-5 and R-KKM-6: a month and a week before a card lapses (12 months without a top-up at a service
    point or a ride), before it becomes void for good (3 years unused: deposit and funds forfeited) and before
    its entitlement ends (rides at the normal fare from the day after), its holder is told once."""
    sent = 0
    now_local = clock.to_local(clock.now())
    rows = session.scalars(select(PurseCardRow).where(col(PurseCardRow.account_id).is_not(None),
                                                      col(PurseCardRow.blocked_from).is_(None))).all()
    for row in rows:
        card = purse.card_of(row)
        validity = purse_rules.card_validity(card, now_local)
        if validity.state in (purse_rules.CardState.BLOCKED, purse_rules.CardState.VOID):
            continue
        last_use = card.last_used_on or card.issued_on
        dates = {"lapse": validity.valid_through, "void": purse_rules.add_months(last_use, 36)}
        if card.entitlement_until is not None and card.registered_fare is not purse_rules.RegisteredFare.NORMAL:
            dates["entitlement"] = card.entitlement_until
        for what, due_on in dates.items():
            if what == "lapse" and validity.state is purse_rules.CardState.LAPSED:
                continue
            for ahead, days in REMIND_BEFORE.items():
                if not 0 <= (due_on - today).days <= days:
                    continue
                if not _claim_notice(session, row.id, f"{what}_{ahead}", due_on):  # type: ignore[arg-type]
                    continue
                user = session.get(User, row.account_id)
                if user is not None:
                    queue_mail(session, user.email, "card_notice", user.language, operator=operator, first_name=user.first_name,
                               what=what, card_number=row.number, due_on=_day(due_on),
                               day_after=_day(due_on + timedelta(days=1)))
                    sent += 1
                break  # the week's reminder only when the month's was sent before
    return sent


def delete_old_photos(session: Session, settings: Settings) -> int:
    """Photos and scans are deleted `card_photo_days` after the application closed (collected, invalidated,
    given up, cancelled)."""
    cutoff = clock.now() - timedelta(days=settings.card_photo_days)
    return affected(session.execute(
        update(CardApplicationRow).where(col(CardApplicationRow.closed_at).is_not(None),
                                         col(CardApplicationRow.closed_at) <= cutoff,
                                         col(CardApplicationRow.personal_data_deleted_at).is_(None))
        .values(photo=None, scan=None, personal_data_deleted_at=clock.now())))


def run_card_jobs(engine: Engine, settings: Settings) -> JobReport:
    """`ekp cards expire` and the in-process loop: safe on many nodes at once (conditional UPDATEs, notices
    claimed by a unique key), one short transaction per part."""
    today = clock.to_local(clock.now()).date()
    report = JobReport()
    with transaction(engine) as session:
        report.invalidated = invalidate_uncollected(session, today, operator=settings.profile)
    with transaction(engine) as session:
        report.reminders = card_reminders(session, today, operator=settings.profile)
    with transaction(engine) as session:
        report.photos_deleted = delete_old_photos(session, settings)
    return report
