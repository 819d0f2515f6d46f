"""Applying for a Kołobrzeg city card (KKM): documents, deposit, issue deadlines and data changes
(RULES.md R-KKM-1..4, R-KKM-8; the lifecycle R-KKM-5..7 lives in `domain.purse`).

Pure: dates are passed in, nothing here reads a clock, a file or a database. Problems come back
as machine codes (`ApplicationProblem`, `DepositKept`) that the web layer translates.

Readings of the operator's rules made here (the seed is silent or ambiguous):
- "15 business days of the application": counted from the day after the application date
  (Civil Code art. 111 §2), so the card is due on the 15th business day after it. Business days
  are Monday..Friday that are not statutory public holidays (`domain.public_holidays`).
- Collection: the 30 calendar days run from the application date, as the Polish seed says
  twice ("30 dni kalendarzowych od daty złożenia wniosku"); RULES.md does not say from when.
  A deadline whose last day falls on a Saturday, Sunday or public holiday ends on
  the next business day (Civil Code art. 115): the service points are closed then.
- Electronic photo "min. 320x240": at least 320 px on the long side and 240 px on the short side
  (a portrait 240×320 photo qualifies; the printed photo is 2.5 × 3 cm, i.e. portrait).
- An electronic application is for personal cards only (the seed offers it for "KKM imienna").
  Its photo ID, the entitlement document (original + copy) and the deposit confirmation are
  shown when the card is collected (`documents_at_collection`).
- The application date of an electronic application is the day the deposit is booked on the
  operator's account; one with no deposit due (free rides) is dated the day it arrives.
- Deposit refund on giving a card up needs the receipt (paragon); it is the amount actually
  paid (none for a free-ride card).
- Giving up a collected card (R-KKM-2, `give_up_card`): the card is blocked at once and unlinked. A card reported
  lost (its block set, even if it takes effect only at 08:00 the next day) counts as lost, a void one (3 years
  unused) as unused: both keep the deposit. The seed says nothing of the e-purse balance on giving up; it
  is the holder's money, so it is moved to another card of the same account (as after a loss, R-KKM-7) or paid
  out in cash at the desk; after 3 years unused it is forfeited with the deposit (R-KKM-5). An outstanding
  credit ride (balance below zero) may move to another card but is never paid out: it is repaid first.
- R-KKM-8 printed fields: first and last name, photo and the card kind (normal/reduced/free);
  PESEL, birth date, address, phone, e-mail and the entitlement document's details are not
  printed. Change `PRINTED_FIELDS` (pass `printed=`) if the operator's card shows more.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from domain.ledger import BalanceMovedIn, BalanceMovedOut, BalancePaidOut, FundsForfeited, LedgerEntry, entries_for
from domain.money import Grosze
from domain.public_holidays import polish_public_holidays
from domain.purse import CardKind, CardState, PurseCard, RegisteredFare, card_validity, may_apply_for_personal_card

# --------------------------------------------------------------------------- tariff data

# R-KKM-2: 12 zł. `domain.purse_tariff.PurseTariff` has no deposit field, so it is a parameter
# of every function that uses it, with this default.
CARD_DEPOSIT: Grosze = 1200

ISSUE_BUSINESS_DAYS = 15  # R-KKM-4
COLLECTION_CALENDAR_DAYS = 30  # R-KKM-4
MIN_PHOTO_LONG_SIDE = 320  # R-KKM-3, pixels
MIN_PHOTO_SHORT_SIDE = 240

# --------------------------------------------------------------------------- kinds and codes


class Entitlement(StrEnum):
    """What a personal card is registered for (R-KKM-1: normal, reduced or free)."""

    NONE = "none"  # normal fare; always so for a bearer card
    REDUCED = "reduced"
    FREE = "free"


def entitlement_of(fare: RegisteredFare) -> Entitlement:
    """The entitlement a card's registered fare stands for."""
    if fare is RegisteredFare.NORMAL:
        return Entitlement.NONE
    if fare is RegisteredFare.FREE:
        return Entitlement.FREE
    return Entitlement.REDUCED


class ApplicationChannel(StrEnum):
    SERVICE_POINT = "service_point"  # BOK/POK desk, deposit paid at the desk
    ELECTRONIC = "electronic"  # e-mail/online, deposit paid by bank transfer


class Document(StrEnum):
    """R-KKM-3 documents."""

    APPLICATION_FORM = "application_form"  # wniosek
    PHOTO = "photo"  # a 2.5 × 3 cm print, or the JPEG attachment of an electronic application
    PHOTO_ID = "photo_id"  # identity document with a photo, shown
    ENTITLEMENT_DOCUMENT = "entitlement_document"  # reduced/free entitlement: copy + original shown
    DEPOSIT_PROOF = "deposit_proof"  # confirmation of the deposit transfer (electronic applications)


class ApplicationProblem(StrEnum):
    """Why an application cannot be processed yet (incomplete ones are not processed)."""

    ALREADY_HAS_PERSONAL_CARD = "already_has_personal_card"  # R-KKM-1
    BEARER_WITH_ENTITLEMENT = "bearer_with_entitlement"  # a bearer card always rides at the normal fare
    BEARER_NOT_ELECTRONIC = "bearer_not_electronic"  # electronic applications are for personal cards
    MISSING_APPLICATION_FORM = "missing_application_form"
    MISSING_PHOTO = "missing_photo"
    MISSING_PHOTO_ID = "missing_photo_id"
    MISSING_ENTITLEMENT_DOCUMENT = "missing_entitlement_document"
    PHOTO_NOT_JPEG = "photo_not_jpeg"
    PHOTO_TOO_SMALL = "photo_too_small"
    DEPOSIT_NOT_PAID = "deposit_not_paid"  # less than the deposit due (or not yet booked)


_MISSING = {
    Document.APPLICATION_FORM: ApplicationProblem.MISSING_APPLICATION_FORM,
    Document.PHOTO: ApplicationProblem.MISSING_PHOTO,
    Document.PHOTO_ID: ApplicationProblem.MISSING_PHOTO_ID,
    Document.ENTITLEMENT_DOCUMENT: ApplicationProblem.MISSING_ENTITLEMENT_DOCUMENT,
}

# --------------------------------------------------------------------------- R-KKM-3 application


def required_documents(
    kind: CardKind,
    entitlement: Entitlement = Entitlement.NONE,
    channel: ApplicationChannel = ApplicationChannel.SERVICE_POINT,
) -> frozenset[Document]:
    """What must come with the application (R-KKM-3). Bearer: nothing. Personal at a desk:
    form, photo, photo ID, plus the entitlement document for reduced/free. Electronic: the form
    and the JPEG photo; the rest is shown at collection (`documents_at_collection`)."""
    if kind is CardKind.BEARER:
        return frozenset()
    if channel is ApplicationChannel.ELECTRONIC:
        return frozenset({Document.APPLICATION_FORM, Document.PHOTO})
    documents = {Document.APPLICATION_FORM, Document.PHOTO, Document.PHOTO_ID}
    if entitlement is not Entitlement.NONE:
        documents.add(Document.ENTITLEMENT_DOCUMENT)
    return frozenset(documents)


def documents_at_collection(
    kind: CardKind,
    entitlement: Entitlement = Entitlement.NONE,
    channel: ApplicationChannel = ApplicationChannel.SERVICE_POINT,
    *,
    deposit: Grosze = CARD_DEPOSIT,
) -> frozenset[Document]:
    """What the applicant shows when collecting the card: a personal card is handed over only
    on the photo ID, a reduced/free one only on the original entitlement document; an electronic
    applicant also brings the deposit confirmation and the entitlement document's copy."""
    if kind is CardKind.BEARER:
        return frozenset()
    documents = {Document.PHOTO_ID}
    if entitlement is not Entitlement.NONE:
        documents.add(Document.ENTITLEMENT_DOCUMENT)
    if channel is ApplicationChannel.ELECTRONIC and deposit_due(kind, entitlement, deposit=deposit) > 0:
        documents.add(Document.DEPOSIT_PROOF)
    return frozenset(documents)


@dataclass(frozen=True)
class PhotoFile:
    """The photo attached to an electronic application, as the web layer measured it."""

    width: int  # pixels
    height: int
    format: str  # e.g. Pillow's "JPEG", or a MIME type "image/jpeg"


_JPEG_NAMES = frozenset({"jpeg", "jpg", "image/jpeg", "image/jpg", "image/pjpeg"})


def photo_problems(photo: PhotoFile) -> list[ApplicationProblem]:
    """R-KKM-3: a JPEG of at least 320×240 pixels (either orientation)."""
    problems = []
    if photo.format.strip().lower() not in _JPEG_NAMES:
        problems.append(ApplicationProblem.PHOTO_NOT_JPEG)
    long_side, short_side = max(photo.width, photo.height), min(photo.width, photo.height)
    if long_side < MIN_PHOTO_LONG_SIDE or short_side < MIN_PHOTO_SHORT_SIDE:
        problems.append(ApplicationProblem.PHOTO_TOO_SMALL)
    return problems


@dataclass(frozen=True)
class CardApplication:
    """An application for a city card as submitted (R-KKM-3)."""

    kind: CardKind
    submitted_on: date  # the day it was handed in at the desk or arrived electronically
    entitlement: Entitlement = Entitlement.NONE
    channel: ApplicationChannel = ApplicationChannel.SERVICE_POINT
    documents: frozenset[Document] = frozenset()  # what came with it
    photo_file: PhotoFile | None = None  # electronic applications: the JPEG attachment
    deposit_paid: Grosze = 0
    deposit_booked_on: date | None = None  # electronic: when the transfer reached the operator

    @property
    def documents_required(self) -> frozenset[Document]:
        return required_documents(self.kind, self.entitlement, self.channel)


def application_date(application: CardApplication, *, deposit: Grosze = CARD_DEPOSIT) -> date | None:
    """The date the application counts from (R-KKM-3/R-KKM-4). At a desk: the day it was handed
    in (the deposit is paid there). Electronic: the day the deposit is booked on the operator's
    account — None while it is not; with no deposit due, the day it arrived."""
    if application.channel is ApplicationChannel.SERVICE_POINT:
        return application.submitted_on
    if deposit_due(application.kind, application.entitlement, deposit=deposit) == 0:
        return application.submitted_on
    return application.deposit_booked_on


def check_application(
    application: CardApplication,
    *,
    cards_held: Iterable[PurseCard] = (),
    now: datetime | None = None,
    deposit: Grosze = CARD_DEPOSIT,
) -> list[ApplicationProblem]:
    """Every reason the application cannot be processed yet, in a stable order; empty = complete.
    `cards_held` are the applicant's cards, checked against the one-personal-card rule (R-KKM-1)
    at `now` (required when `cards_held` is not empty)."""
    problems: list[ApplicationProblem] = []
    personal = application.kind is CardKind.PERSONAL
    if personal:
        held = tuple(cards_held)
        if held:
            if now is None:
                raise ValueError("now is needed to check the cards held")
            if not may_apply_for_personal_card(held, now):
                problems.append(ApplicationProblem.ALREADY_HAS_PERSONAL_CARD)
    else:
        if application.entitlement is not Entitlement.NONE:
            problems.append(ApplicationProblem.BEARER_WITH_ENTITLEMENT)
        if application.channel is ApplicationChannel.ELECTRONIC:
            problems.append(ApplicationProblem.BEARER_NOT_ELECTRONIC)
    electronic = application.channel is ApplicationChannel.ELECTRONIC
    for document in sorted(application.documents_required, key=list(Document).index):
        if document is Document.PHOTO and electronic:
            if application.photo_file is None:
                problems.append(ApplicationProblem.MISSING_PHOTO)
            else:
                problems.extend(photo_problems(application.photo_file))
        elif document not in application.documents:
            problems.append(_MISSING[document])
    if ApplicationProblem.BEARER_WITH_ENTITLEMENT not in problems:
        due = deposit_due(application.kind, application.entitlement, deposit=deposit)
        booked = not electronic or application.deposit_booked_on is not None
        if due > 0 and (application.deposit_paid < due or not booked):
            problems.append(ApplicationProblem.DEPOSIT_NOT_PAID)
    return problems


def may_apply_for(kind: CardKind, cards_held: Iterable[PurseCard], now: datetime) -> bool:
    """R-KKM-1: anyone may apply for a bearer card; a personal one only without another valid
    personal card (a blocked/lost or void one does not count)."""
    return kind is CardKind.BEARER or may_apply_for_personal_card(cards_held, now)


# --------------------------------------------------------------------------- R-KKM-2 deposit


def deposit_due(
    kind: CardKind, entitlement: Entitlement = Entitlement.NONE, *, deposit: Grosze = CARD_DEPOSIT
) -> Grosze:
    """The deposit paid with the application: 12 zł, none for people entitled to free rides."""
    if kind is CardKind.BEARER and entitlement is not Entitlement.NONE:
        raise ValueError("a bearer card always rides at the normal fare")
    if entitlement is Entitlement.FREE:
        return 0
    return deposit


class CardEnd(StrEnum):
    """Why a card is handed back or ends (for the deposit, R-KKM-2)."""

    GIVEN_UP = "given_up"  # rezygnacja: refunded on the receipt
    NOT_COLLECTED = "not_collected"  # not collected in time (R-KKM-4)
    LOST = "lost"  # lost or stolen (R-KKM-7)
    DAMAGED_BY_HOLDER = "damaged_by_holder"
    UNUSED_3_YEARS = "unused_3_years"  # R-KKM-5


class DepositKept(StrEnum):
    """Why the deposit is not refunded."""

    NOT_COLLECTED = "not_collected"
    LOST = "lost"
    DAMAGED_BY_HOLDER = "damaged_by_holder"
    UNUSED_3_YEARS = "unused_3_years"
    NO_RECEIPT = "no_receipt"  # refunds only on the receipt (paragon)
    NOTHING_PAID = "nothing_paid"  # free-ride card: no deposit was taken


def deposit_kept(reason: CardEnd, *, deposit_paid: Grosze, receipt_shown: bool = True) -> DepositKept | None:
    """Why the deposit stays with the operator, or None when it is refunded (R-KKM-2)."""
    if reason is not CardEnd.GIVEN_UP:
        return DepositKept(reason.value)
    if deposit_paid <= 0:
        return DepositKept.NOTHING_PAID
    if not receipt_shown:
        return DepositKept.NO_RECEIPT
    return None


def deposit_refund(reason: CardEnd, *, deposit_paid: Grosze, receipt_shown: bool = True) -> Grosze:
    """The deposit paid back when a card ends for `reason` (R-KKM-2): all of it when the card is
    given up and the receipt is shown; nothing when it was not collected in time, lost, damaged
    by the holder or unused for 3 years."""
    if deposit_kept(reason, deposit_paid=deposit_paid, receipt_shown=receipt_shown) is not None:
        return 0
    return deposit_paid


def card_end_reason(card: PurseCard, now: datetime, *, damaged_by_holder: bool = False) -> CardEnd:
    """How a card handed back at `now` ends: a void card (3 years unused) or a blocked one (lost)
    keeps its deposit whatever the holder says; otherwise it is given up."""
    state = card_validity(card, now).state
    if state is CardState.VOID:
        return CardEnd.UNUSED_3_YEARS
    if state is CardState.BLOCKED:
        return CardEnd.LOST
    if damaged_by_holder:
        return CardEnd.DAMAGED_BY_HOLDER
    return CardEnd.GIVEN_UP


class BalanceHandling(StrEnum):
    """What happens to the e-purse balance of a card given up (R-KKM-2, R-KKM-5, R-KKM-7)."""

    NOTHING = "nothing"  # the balance is 0
    MOVED = "moved"  # to another card of the same account
    PAID_OUT = "paid_out"  # in cash at the desk
    FORFEITED = "forfeited"  # R-KKM-5: 3 years unused


class GiveUpProblem(StrEnum):
    """Why a card cannot be given up this way."""

    CREDIT_OUTSTANDING = "credit_outstanding"  # a credit ride to repay first (nothing to pay out)
    BALANCE_LEFT = "balance_left"  # money left and nowhere to put it (online: no other card; pay-out at the desk)
    SAME_CARD = "same_card"
    TARGET_UNUSABLE = "target_unusable"  # the card to move the balance to is blocked or void
    TARGET_IN_CREDIT = "target_in_credit"  # both cards owe a credit ride


@dataclass(frozen=True)
class CardGiveUp:
    """The outcome of giving up a collected card (R-KKM-2)."""

    end: CardEnd
    deposit_refund: Grosze
    deposit_kept: DepositKept | None
    balance: BalanceHandling
    amount: Grosze  # the balance handled (moved, paid out or forfeited)
    old_card_entries: tuple[LedgerEntry, ...] = ()
    new_card_entries: tuple[LedgerEntry, ...] = ()  # on `move_to`


def give_up_card(
    card: PurseCard,
    now: datetime,
    *,
    balance: Grosze,
    deposit_paid: Grosze,
    receipt_shown: bool = True,
    damaged_by_holder: bool = False,
    move_to: PurseCard | None = None,
    move_to_balance: Grosze = 0,
    pay_out: bool = False,
) -> CardGiveUp | GiveUpProblem:
    """R-KKM-2 for a collected card handed back at `now`: the deposit is refunded unless the card was lost
    (reported, even if its block takes effect later), damaged by the holder or unused for 3 years (then the
    balance is forfeited too, R-KKM-5). Otherwise the balance moves to `move_to` (another card of the same
    account, not blocked or void) or, with `pay_out` (the desk), is paid out in cash; with neither and money
    left, or a credit ride outstanding with nowhere to move it, the card cannot be given up yet."""
    end = card_end_reason(card, now, damaged_by_holder=damaged_by_holder)
    if card.blocked_from is not None and end is not CardEnd.UNUSED_3_YEARS:
        end = CardEnd.LOST  # reported lost: the block may take effect only at 08:00 the next day (R-KKM-7)
    kept = deposit_kept(end, deposit_paid=deposit_paid, receipt_shown=receipt_shown)
    refund = 0 if kept is not None else deposit_paid
    if end is CardEnd.UNUSED_3_YEARS:
        entries = tuple(entries_for(FundsForfeited("3y-unused"), current_balance=balance))
        handling = BalanceHandling.FORFEITED if balance else BalanceHandling.NOTHING
        return CardGiveUp(end, refund, kept, handling, balance, entries)
    if balance == 0:
        return CardGiveUp(end, refund, kept, BalanceHandling.NOTHING, 0)
    if move_to is not None:
        if move_to.number == card.number:
            return GiveUpProblem.SAME_CARD
        if card_validity(move_to, now).state in (CardState.BLOCKED, CardState.VOID):
            return GiveUpProblem.TARGET_UNUSABLE
        if balance < 0 and move_to_balance < 0:
            return GiveUpProblem.TARGET_IN_CREDIT
        return CardGiveUp(
            end, refund, kept, BalanceHandling.MOVED, balance,
            tuple(entries_for(BalanceMovedOut(f"to:{move_to.number}"), current_balance=balance)),
            tuple(entries_for(BalanceMovedIn(balance, f"from:{card.number}"), current_balance=move_to_balance)),
        )
    if balance < 0:
        return GiveUpProblem.CREDIT_OUTSTANDING
    if not pay_out:
        return GiveUpProblem.BALANCE_LEFT
    entries = tuple(entries_for(BalancePaidOut("given-up"), current_balance=balance))
    return CardGiveUp(end, refund, kept, BalanceHandling.PAID_OUT, balance, entries)


# --------------------------------------------------------------------------- calendar


def is_business_day(day: date) -> bool:
    """Monday..Friday and not a public holiday (`domain.public_holidays`, the `holidays` package)."""
    return day.weekday() < 5 and day not in polish_public_holidays(day.year)


def next_business_day(day: date) -> date:
    """`day` itself if it is a business day, else the first business day after it."""
    while not is_business_day(day):
        day += timedelta(days=1)
    return day


def add_business_days(day: date, count: int) -> date:
    """The `count`-th business day after `day` (`day` itself is not counted; count >= 0;
    0 gives `day`)."""
    if count < 0:
        raise ValueError("count must not be negative")
    while count:
        day += timedelta(days=1)
        if is_business_day(day):
            count -= 1
    return day


def business_days_between(start: date, end: date) -> int:
    """Business days in (start, end]: after `start`, up to and including `end`."""
    days, day = 0, start
    while day < end:
        day += timedelta(days=1)
        days += is_business_day(day)
    return days


# --------------------------------------------------------------------------- R-KKM-4 deadlines


def ready_by(application_date: date, *, business_days: int = ISSUE_BUSINESS_DAYS) -> date:
    """The day by which the card is at the chosen service point: the 15th business day after
    the application date (R-KKM-4)."""
    return add_business_days(application_date, business_days)


def collect_by(applied_on: date, *, calendar_days: int = COLLECTION_CALENDAR_DAYS) -> date:
    """The last day to collect a card applied for on `applied_on` (R-KKM-4): the operator's rules count
    the 30 calendar days from the date of the application ("30 dni kalendarzowych od daty złożenia
    wniosku"), moved to the next business day when that is a weekend day or a holiday (Civil Code
    art. 115). The card is ready within 15 business days (`ready_by`), so about a week is left."""
    return next_business_day(applied_on + timedelta(days=calendar_days))


def uncollected(applied_on: date, *, collected_on: date | None, today: date) -> bool:
    """Whether the card is invalidated and its deposit forfeited for not being collected in time
    (R-KKM-4): the collection deadline has passed by `today` without it being collected by then."""
    deadline = collect_by(applied_on)
    if collected_on is not None and collected_on <= deadline and collected_on <= today:
        return False
    return today > deadline


# --------------------------------------------------------------------------- R-KKM-8 data changes


class CardField(StrEnum):
    """The holder's data kept for a personal card."""

    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"
    PHOTO = "photo"
    CARD_KIND = "card_kind"  # normal / reduced / free (or personal <-> bearer)
    PESEL = "pesel"
    BIRTH_DATE = "birth_date"
    ADDRESS = "address"
    PHONE = "phone"
    EMAIL = "email"
    ENTITLEMENT_DOCUMENT = "entitlement_document"  # the document's number and validity


PRINTED_FIELDS: frozenset[CardField] = frozenset(
    {CardField.FIRST_NAME, CardField.LAST_NAME, CardField.PHOTO, CardField.CARD_KIND}
)


class DataChangeConsequence(NamedTuple):
    new_card_needed: bool
    deposit: Grosze  # to pay for the new card; 0 when none is needed or for free-ride cards


def data_change_consequence(
    changed_fields: Iterable[CardField],
    *,
    entitlement: Entitlement = Entitlement.NONE,
    deposit: Grosze = CARD_DEPOSIT,
    printed: frozenset[CardField] = PRINTED_FIELDS,
) -> DataChangeConsequence:
    """R-KKM-8: a change that does not alter the printed card is free; one that does needs a new
    card and a new deposit (`entitlement` is the new card's: none for free-ride holders).
    Changes are made on showing the original document that proves them; printed ones only at
    the head office (BOK)."""
    if not printed.intersection(changed_fields):
        return DataChangeConsequence(new_card_needed=False, deposit=0)
    return DataChangeConsequence(
        new_card_needed=True, deposit=deposit_due(CardKind.PERSONAL, entitlement, deposit=deposit)
    )


def changed_fields(
    old_fare: RegisteredFare,
    new_fare: RegisteredFare,
    *,
    name_changed: bool = False,
    new_photo: bool = False,
    old_until: date | None = None,
    new_until: date | None = None,
) -> frozenset[CardField]:
    """What a requested data change of a personal card changes (R-KKM-8). The card kind printed is normal,
    reduced or free: 30 % -> 50 % off stays "reduced" (not printed; the entitlement document is shown at the
    desk), normal -> reduced or reduced -> free is printed."""
    fields = set()
    if entitlement_of(old_fare) is not entitlement_of(new_fare):
        fields.add(CardField.CARD_KIND)
    elif old_fare is not new_fare or old_until != new_until:
        fields.add(CardField.ENTITLEMENT_DOCUMENT)
    if name_changed:
        fields.update({CardField.FIRST_NAME, CardField.LAST_NAME})
    if new_photo:
        fields.add(CardField.PHOTO)
    return frozenset(fields)
