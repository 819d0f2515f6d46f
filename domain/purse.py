"""The Kołobrzeg city card (KKM) e-purse: card kinds and lifecycle, the bus validator, the parking
meter and top-ups (RULES.md R-KKM-*, R-VAL-*, R-PARK-*, R-TOP-*).

Pure: every function takes the card as data, its current balance (the ledger sum, see
`domain.ledger`) and the moment `now` (local Kołobrzeg time, as the devices show it). Decisions
carry the ledger entries to append and machine codes (`Refusal`, `ValidatorMessage`) that the
web layer translates; nothing here reads a clock or a database.

Readings of the operator's rules made here (the seed is silent or ambiguous):
- R-KKM-5 vs R-KKM-6: when the reduced/free entitlement document ends, the card's *reduced or
  free validity* lapses and rides are charged at the normal fare (R-KKM-6); the card itself stays
  usable. The card lapses 12 months after the last service-point top-up/activation or 12 months
  after the last use (or issue, if never used), whichever comes first; a lapsed card is revived
  at a service point. Three years without use make it void for good (funds forfeited).
- Periods "n months from a day" end at the end of the day with the same date n months later
  (Polish Civil Code art. 112; 31 Jan + 1 month -> 28/29 Feb).
- Validator buttons: T 1x..4x = normal / 30 / 50 / 75 % off (5th press starts again at normal);
  B 1x = baggage or animal, 2x = suburban, 3x = short ride (4th press starts again at 1x);
  S = balance check. T before the holder's own tap overrides the card's default fare (the
  inspector checks the entitlement, as with any ticket). A second tap at the holder's boarding stop is a companion (normal fare
  unless T says otherwise: a personal discount belongs to the holder only).
- R-VAL-4 boarding: the device reports its vehicle and the stop it is at, or the one it last left (so the
  boarding stop lasts until the bus reaches the next stop). The first tap of a boarding is the holder's own fare;
  further taps on that vehicle at that stop (within `SAME_STOP_WINDOW`) pay for companions, baggage or animals;
  any other tap on that vehicle within `BOARDING_WINDOW` of the boarding is refused (`BOARDING_STOP_ONLY`) and
  the boarding stays where it was. Another vehicle, or the same one after `BOARDING_WINDOW`, is a new boarding.
  A tap dated before the remembered boarding (an offline upload arriving late) never moves it back.
- R-VAL-8 device time: an event is booked at its device time. Dated more than `FUTURE_TOLERANCE` after it was
  received: refused (`EventTiming.FUTURE`); before `EARLIEST_DEVICE_TIME`: not a time at all. Received more
  than `OFFLINE_WINDOW` after its time: booked but flagged for staff (`EventFlag.STALE`), and since such a time
  proves nothing, a block is checked at the time it was received. Otherwise a block applies by the event's
  time: refused either way (the card's money is the holder's from the block on), and when the tap arrives
  later than `LIVE_LAG` after its time (uploaded from the validator's buffer) it is also reported
  (`EventFlag.BLOCKED_CARD`).
- R-VAL-7 event identity: a tap's content is its card, device time (the same moment in any zone), vehicle,
  stop and buttons (`tap_fingerprint`); a replay must carry the same content.
- A credit ride takes the whole fare, so the balance goes below zero by the credited part
  (see `domain.ledger`); nothing else may be paid while the balance is below zero.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum

from domain.ledger import (
    BalanceMovedIn,
    BalanceMovedOut,
    FundsForfeited,
    LedgerEntry,
    ParkingPaid,
    RideCredited,
    RidePaid,
    ToppedUp,
    entries_for,
)
from domain import parking_hours
from domain.money import Grosze
from domain.purse_tariff import DEFAULT_PURSE_TARIFF, Discount, PurseTariff

# --------------------------------------------------------------------------- codes


class CardKind(StrEnum):
    """R-KKM-1."""

    BEARER = "bearer"  # na okaziciela: anyone may use it, always the normal fare
    PERSONAL = "personal"  # imienna: one holder, a registered fare


class RegisteredFare(StrEnum):
    """The default fare recorded on a personal card (R-VAL-1)."""

    NORMAL = "normal"
    OFF_30 = "off_30"
    OFF_50 = "off_50"
    OFF_75 = "off_75"
    FREE = "free"

    @property
    def discount(self) -> Discount | None:
        """The validator fare level; None for a free ride."""
        return None if self is RegisteredFare.FREE else Discount(self.value)


class CardState(StrEnum):
    ACTIVE = "active"
    LAPSED = "lapsed"  # R-KKM-5: 12 months without service-point top-up or without use
    VOID = "void"  # R-KKM-5: 3 years unused, invalid for good, funds forfeited
    BLOCKED = "blocked"  # R-KKM-7: reported lost or stolen


class Refusal(StrEnum):
    """Why a device or desk refused; the web layer turns these into Polish messages."""

    WRONG_CARD = "wrong_card"  # not a city card ("ZŁA KARTA", R-PARK-1)
    BLOCKED = "blocked"
    EXPIRED = "expired"  # lapsed, revive it at a service point
    VOID = "void"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    CREDIT_OUTSTANDING = "credit_outstanding"  # too little money and a credit ride unpaid (R-VAL-5)
    HOLDER_FARE_FIRST = "holder_fare_first"  # companion/baggage before the holder's fare here (R-VAL-4)
    BOARDING_STOP_ONLY = "boarding_stop_only"  # a later stop of the same boarding: nothing to add (R-VAL-4)
    NOTHING_SELECTED = "nothing_selected"  # AKCEPTUJ before any "+" or coin
    FREE_PARKING = "free_parking"  # R-PARK-4: outside the zone's paid hours, nothing to pay
    LONGEST_STAY = "longest_stay"  # R-PARK-4: one more "+" would go beyond the longest stay
    BELOW_MINIMUM = "below_minimum"  # R-TOP-1 / R-TOP-2
    ABOVE_MAXIMUM = "above_maximum"  # R-TOP-2
    COIN_NOT_ACCEPTED = "coin_not_accepted"  # R-TOP-2: 10 gr .. 5 zł coins only
    TOP_UP_MODE = "top_up_mode"  # R-TOP-2: top-up mode is left only by cancelling
    NOT_IN_TOP_UP_MODE = "not_in_top_up_mode"  # coins are taken only after DOŁADUJ
    BEARER_CARD = "bearer_card"  # loss reports and transfers are for personal cards
    NOT_BLOCKED = "not_blocked"  # a transfer needs the lost card blocked first (R-KKM-7)
    SAME_CARD = "same_card"  # the replacement card gets a new number (R-KKM-7)
    NOT_VOID = "not_void"  # funds are forfeited only after 3 years unused
    DESK_MAXIMUM = "desk_maximum"  # R-TOP-5: above the desk's ceiling for one cash top-up
    CONFIRMATION_NEEDED = "confirmation_needed"  # R-TOP-5: above the threshold, confirm the amount again


class PurseRefused(Exception):
    """A desk operation (service-point top-up, loss, transfer, forfeiture) that is not allowed."""

    def __init__(self, reason: Refusal) -> None:
        self.reason = reason
        super().__init__(reason.value)


# --------------------------------------------------------------------------- the card


@dataclass(frozen=True)
class PurseCard:
    """What the rules need to know about a card; the balance comes from the ledger."""

    number: str
    kind: CardKind
    issued_on: date
    registered_fare: RegisteredFare = RegisteredFare.NORMAL
    entitlement_until: date | None = None  # last day of the reduced/free document; None = no end
    last_activated_on: date | None = None  # last top-up or activation at a service point
    last_used_on: date | None = None  # last ride or parking
    blocked_from: datetime | None = None  # R-KKM-7: see `blocking_effective_at`

    def __post_init__(self) -> None:
        if self.kind is CardKind.BEARER and (
            self.registered_fare is not RegisteredFare.NORMAL or self.entitlement_until is not None
        ):
            raise ValueError("a bearer card always rides at the normal fare")


@dataclass(frozen=True)
class CardValidity:
    state: CardState
    valid_through: date  # last day before the card lapses (R-KKM-5, 12-month rules)
    void_from: date  # first day it is void for good (R-KKM-5, 3 years unused)
    entitlement_lapsed: bool  # R-KKM-6: reduced/free no longer applies
    default_fare: RegisteredFare  # what a plain tap charges today


def may_apply_for_personal_card(cards_held: Iterable[PurseCard], now: datetime) -> bool:
    """R-KKM-1: a passenger holds at most one personal card; a blocked (lost) or void one does
    not count, so a replacement can be issued."""
    return not any(
        card.kind is CardKind.PERSONAL and card_validity(card, now).state not in (CardState.BLOCKED, CardState.VOID)
        for card in cards_held
    )


def add_months(day: date, months: int) -> date:
    """The same date `months` later, or that month's last day (Civil Code art. 112)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def entitlement_valid(card: PurseCard, today: date) -> bool:
    """Whether the reduced/free entitlement still applies (R-KKM-6)."""
    return card.entitlement_until is None or today <= card.entitlement_until


def default_fare(card: PurseCard, today: date) -> RegisteredFare:
    """The fare a plain tap charges: bearer normal; personal its registered fare while the
    entitlement document is valid, the normal fare once it has lapsed (R-VAL-1, R-KKM-6)."""
    if card.kind is CardKind.BEARER or not entitlement_valid(card, today):
        return RegisteredFare.NORMAL
    return card.registered_fare


def last_used_after(card: PurseCard, day: date) -> date | None:
    """R-KKM-5: the card's last use after a use dated `day` by a device: never earlier than it was, nor than
    the card's issue (a device clock set back, e.g. to 1970, must not make the card void)."""
    used = max(day, card.issued_on)
    return card.last_used_on if card.last_used_on is not None and card.last_used_on >= used else used


def is_blocked(card: PurseCard, now: datetime) -> bool:
    return card.blocked_from is not None and now >= card.blocked_from


def card_validity(card: PurseCard, now: datetime) -> CardValidity:
    """R-KKM-5 lifecycle of a card at `now`."""
    today = now.date()
    last_use = card.last_used_on or card.issued_on
    last_activation = card.last_activated_on or card.issued_on
    valid_through = min(add_months(last_activation, 12), add_months(last_use, 12))
    void_from = add_months(last_use, 36) + timedelta(days=1)
    if is_blocked(card, now):
        state = CardState.BLOCKED
    elif today >= void_from:
        state = CardState.VOID
    elif today > valid_through:
        state = CardState.LAPSED
    else:
        state = CardState.ACTIVE
    has_entitlement = card.kind is CardKind.PERSONAL and card.registered_fare is not RegisteredFare.NORMAL
    return CardValidity(
        state=state,
        valid_through=valid_through,
        void_from=void_from,
        entitlement_lapsed=has_entitlement and not entitlement_valid(card, today),
        default_fare=default_fare(card, today),
    )


_STATE_REFUSAL = {
    CardState.BLOCKED: Refusal.BLOCKED,
    CardState.VOID: Refusal.VOID,
    CardState.LAPSED: Refusal.EXPIRED,
}


def _unusable(card: PurseCard | None, now: datetime) -> Refusal | None:
    if card is None:
        return Refusal.WRONG_CARD
    return _STATE_REFUSAL.get(card_validity(card, now).state)


# --------------------------------------------------------------------------- loss (R-KKM-7)

BLOCKING_HOUR = time(8, 0)


def blocking_effective_at(reported_at: datetime) -> datetime:
    """A card reported lost at `reported_at` is blocked by 08:00 the next day (R-KKM-7);
    the operator is not liable for what is spent before then."""
    next_day = reported_at.date() + timedelta(days=1)
    return datetime.combine(next_day, BLOCKING_HOUR, tzinfo=reported_at.tzinfo)


def report_loss(card: PurseCard, reported_at: datetime) -> PurseCard:
    """The card with its blocking time set (personal cards only: bearer cards are not
    registered to anyone, so the operator does not answer for them)."""
    if card.kind is CardKind.BEARER:
        raise PurseRefused(Refusal.BEARER_CARD)
    blocked_from = blocking_effective_at(reported_at)
    if card.blocked_from is not None and card.blocked_from <= blocked_from:
        return card
    return replace(card, blocked_from=blocked_from)


def operator_liable_for(card: PurseCard, spent_at: datetime) -> bool:
    """Whether money spent at `spent_at` after a loss report is the operator's loss (R-KKM-7)."""
    return is_blocked(card, spent_at)


@dataclass(frozen=True)
class BalanceTransfer:
    amount: Grosze  # may be below zero: an outstanding credit moves with the balance
    old_card_entries: tuple[LedgerEntry, ...]
    new_card_entries: tuple[LedgerEntry, ...]


def transfer_balance(
    old_card: PurseCard,
    *,
    old_balance: Grosze,
    new_card: PurseCard,
    new_balance: Grosze,
    now: datetime,
) -> BalanceTransfer:
    """Move a blocked card's balance to its replacement (R-KKM-7)."""
    if old_card.kind is CardKind.BEARER:
        raise PurseRefused(Refusal.BEARER_CARD)
    if not is_blocked(old_card, now):
        raise PurseRefused(Refusal.NOT_BLOCKED)
    if new_card.number == old_card.number:
        raise PurseRefused(Refusal.SAME_CARD)
    refusal = _unusable(new_card, now)
    if refusal is not None and refusal is not Refusal.EXPIRED:
        raise PurseRefused(refusal)
    if old_balance < 0 and new_balance < 0:
        raise PurseRefused(Refusal.CREDIT_OUTSTANDING)
    detail_out, detail_in = f"to:{new_card.number}", f"from:{old_card.number}"
    return BalanceTransfer(
        amount=old_balance,
        old_card_entries=tuple(entries_for(BalanceMovedOut(detail_out), current_balance=old_balance)),
        new_card_entries=tuple(entries_for(BalanceMovedIn(old_balance, detail_in), current_balance=new_balance)),
    )


@dataclass(frozen=True)
class Forfeiture:
    entries: tuple[LedgerEntry, ...]
    deposit_forfeited: bool = True


def forfeit_unused_card(card: PurseCard, *, balance: Grosze, now: datetime) -> Forfeiture:
    """After 3 years of non-use the remaining funds and the deposit are forfeited (R-KKM-5)."""
    if now.date() < card_validity(card, now).void_from:  # also when blocked meanwhile
        raise PurseRefused(Refusal.NOT_VOID)
    return Forfeiture(entries=tuple(entries_for(FundsForfeited("3y-unused"), current_balance=balance)))


# --------------------------------------------------------------------------- validator


class FareZone(StrEnum):
    CITY = "city"
    SUBURBAN = "suburban"  # B 2x
    SHORT = "short"  # B 3x: between two adjacent stops inside the city


class RideKind(StrEnum):
    OWN = "own"  # the holder's fare
    COMPANION = "companion"
    BAGGAGE = "baggage"  # baggage or an animal (B 1x)
    BALANCE_CHECK = "balance_check"


class ValidatorMessage(StrEnum):
    CHARGED = "charged"
    FREE_RIDE = "free_ride"
    CREDIT_RIDE = "credit_ride"
    BALANCE = "balance"


class Signal(StrEnum):
    SHORT_BEEP = "short_beep"  # R-VAL-1: one short beep confirms
    ERROR = "error"


@dataclass(frozen=True)
class FareSelection:
    """What the buttons pressed before a tap ask for."""

    balance_check: bool = False
    baggage: bool = False
    zone: FareZone = FareZone.CITY
    discount: Discount | None = None  # None: the card's default fare


_T_LEVELS = (Discount.NORMAL, Discount.OFF_30, Discount.OFF_50, Discount.OFF_75)


@dataclass(frozen=True)
class ValidatorPanel:
    """Buttons pressed since the last tap (R-VAL-2, R-VAL-3). Start a fresh one after each tap."""

    t_presses: int = 0
    b_presses: int = 0
    s_pressed: bool = False

    def press_t(self) -> ValidatorPanel:
        return replace(self, t_presses=self.t_presses % 4 + 1)

    def press_b(self) -> ValidatorPanel:
        return replace(self, b_presses=self.b_presses % 3 + 1)

    def press_s(self) -> ValidatorPanel:
        return replace(self, s_pressed=True)

    @property
    def selection(self) -> FareSelection:
        if self.s_pressed:
            return FareSelection(balance_check=True)
        discount = _T_LEVELS[self.t_presses - 1] if self.t_presses else None
        if self.b_presses == 1:
            return FareSelection(baggage=True, discount=discount)
        zone = {0: FareZone.CITY, 2: FareZone.SUBURBAN, 3: FareZone.SHORT}[self.b_presses]
        return FareSelection(zone=zone, discount=discount)


@dataclass(frozen=True)
class Boarding:
    """Where and when the holder's own fare was last paid (R-VAL-4); the web layer stores the one
    a tap returns and passes it back on the card's next tap."""

    card_number: str
    vehicle_id: str
    stop_id: str
    boarded_at: datetime


# A companion tap must come while the bus is still at the holder's boarding stop; this bounds
# "still" for a bus that comes back to the same stop on a later trip.
SAME_STOP_WINDOW = timedelta(minutes=15)
# How long a boarding lasts on its vehicle (R-VAL-4): within it a tap at a later stop adds nothing and moves
# nothing; after it the same vehicle is a new boarding (a bus needs longer than this to come back to a stop
# the holder got off at; a city ride is shorter).
BOARDING_WINDOW = timedelta(minutes=30)


class BoardingPlace(StrEnum):
    """Where a tap is relative to the card's remembered boarding (R-VAL-4)."""

    NEW = "new"  # no boarding, another vehicle, after BOARDING_WINDOW, or dated before the boarding
    BOARDING_STOP = "boarding_stop"  # the same vehicle at the boarding stop: companions, baggage, animals
    LATER_STOP = "later_stop"  # the same vehicle, another stop (or back at it later): nothing to add


def boarding_place(
    boarding: Boarding | None,
    card_number: str,
    vehicle_id: str,
    stop_id: str,
    now: datetime,
    *,
    same_stop_window: timedelta = SAME_STOP_WINDOW,
    boarding_window: timedelta = BOARDING_WINDOW,
) -> BoardingPlace:
    """R-VAL-4: whether a tap at `vehicle_id`/`stop_id` at `now` belongs to the card's boarding."""
    if boarding is None or boarding.card_number != card_number or boarding.vehicle_id != vehicle_id:
        return BoardingPlace.NEW
    since = now - boarding.boarded_at
    if since < timedelta(0) or since > boarding_window:
        return BoardingPlace.NEW
    if boarding.stop_id == stop_id and since <= same_stop_window:
        return BoardingPlace.BOARDING_STOP
    return BoardingPlace.LATER_STOP


# --------------------------------------------------------------------------- device events (R-VAL-7, R-VAL-8)

# A device clock may be a little fast; beyond this an event dated in the future is refused.
FUTURE_TOLERANCE = timedelta(minutes=5)
# An event that arrives within this of its time was sent live (retries included); later, from an offline buffer.
LIVE_LAG = timedelta(minutes=2)
# Validators upload what they buffered offline within this (at the depot, at the latest after a long weekend);
# an event older than this on arrival is booked but flagged for staff.
OFFLINE_WINDOW = timedelta(days=3)
# No device recorded anything before this: a time so early is not a time (and not representable in every zone).
EARLIEST_DEVICE_TIME = datetime(1900, 1, 1, tzinfo=timezone.utc)


class EventTiming(StrEnum):
    """A device event's time against the moment it was received (R-VAL-8)."""

    LIVE = "live"  # sent as it happened
    OFFLINE = "offline"  # uploaded from the device's buffer within the offline window
    STALE = "stale"  # older than the offline window: booked, flagged for staff
    FUTURE = "future"  # dated in the future beyond the tolerance: refused
    IMPOSSIBLE = "impossible"  # before EARLIEST_DEVICE_TIME: refused


class EventFlag(StrEnum):
    """Why staff should look at a device event (R-VAL-8)."""

    STALE = "stale"  # older than the offline window on arrival: the device's clock or upload is wrong
    BLOCKED_CARD = "blocked_card"  # a blocked card tapped offline, reported when the tap arrived


def event_timing(
    event_at: datetime,
    received_at: datetime,
    *,
    future_tolerance: timedelta = FUTURE_TOLERANCE,
    live_lag: timedelta = LIVE_LAG,
    offline_window: timedelta = OFFLINE_WINDOW,
) -> EventTiming:
    """R-VAL-8: how to treat an event the device dated `event_at` that arrived at `received_at` (both aware)."""
    earliest = EARLIEST_DEVICE_TIME if event_at.tzinfo is not None else EARLIEST_DEVICE_TIME.replace(tzinfo=None)
    if event_at < earliest:
        return EventTiming.IMPOSSIBLE
    lag = received_at - event_at
    if lag < -future_tolerance:
        return EventTiming.FUTURE
    if lag <= live_lag:
        return EventTiming.LIVE
    if lag <= offline_window:
        return EventTiming.OFFLINE
    return EventTiming.STALE


def tap_fingerprint(
    card_number: str | None, at: datetime, vehicle_id: str, stop_id: str, t: int, b: int, s: bool
) -> str:
    """R-VAL-7: what a tap event says (card, device time as a moment, vehicle, stop, buttons), as a digest."""
    moment = at.astimezone(timezone.utc).isoformat(timespec="microseconds")
    content = "\x1f".join((card_number or "", moment, vehicle_id, stop_id, str(t), str(b), "1" if s else "0"))
    return hashlib.sha256(content.encode()).hexdigest()


def meter_fingerprint(action: str, card_number: str | None, at: datetime, amounts: tuple[int, ...]) -> str:
    """R-VAL-7: what a parking-meter event says (its action, card, device time as a moment, and the presses or
    the coins in the order inserted), as a digest."""
    moment = at.astimezone(timezone.utc).isoformat(timespec="microseconds")
    content = "\x1f".join((action, card_number or "", moment, ",".join(str(a) for a in amounts)))
    return hashlib.sha256(content.encode()).hexdigest()


def is_replay(stored_fingerprint: str | None, fingerprint: str) -> bool:
    """R-VAL-7: whether an event under a used id repeats the stored one (answer it from the stored response)
    or is a different event (refuse it). An event stored before fingerprints were kept counts as a repeat."""
    return stored_fingerprint is None or hmac.compare_digest(stored_fingerprint, fingerprint)


@dataclass(frozen=True)
class ValidatorDisplay:
    """What the validator shows (R-VAL-1): the amount charged and the balance left."""

    message: ValidatorMessage | Refusal
    amount: Grosze | None = None
    balance: Grosze | None = None


@dataclass(frozen=True)
class TapDecision:
    accepted: bool
    display: ValidatorDisplay
    signal: Signal
    refusal: Refusal | None = None
    ride: RideKind | None = None
    zone: FareZone | None = None
    discount: Discount | None = None  # None with an accepted ride = free ride
    charged: Grosze = 0
    credit_ride: bool = False
    balance_after: Grosze | None = None
    entries: tuple[LedgerEntry, ...] = ()
    boarding: Boarding | None = None  # the boarding to remember after this tap
    card_used: bool = False  # set the card's last_used_on to today (R-KKM-5)
    flag: EventFlag | None = None  # for staff (R-VAL-8)


def _refuse(refusal: Refusal, boarding: Boarding | None = None, balance: Grosze | None = None,
            flag: EventFlag | None = None) -> TapDecision:
    return TapDecision(
        accepted=False,
        display=ValidatorDisplay(refusal, balance=balance),
        signal=Signal.ERROR,
        refusal=refusal,
        balance_after=balance,
        boarding=boarding,
        flag=flag,
    )


def ride_fare(
    tariff: PurseTariff, zone: FareZone, discount: Discount | None
) -> Grosze:
    """The fare for `zone` at `discount` (None = free ride)."""
    if discount is None:
        return 0
    if zone is FareZone.SUBURBAN:
        return tariff.suburban.price(discount)
    if zone is FareZone.SHORT:
        return tariff.short_ride_fare(discount)
    return tariff.city.price(discount)


def tap(
    card: PurseCard | None,
    *,
    balance: Grosze,
    panel: ValidatorPanel,
    vehicle_id: str,
    stop_id: str,
    now: datetime,
    boarding: Boarding | None,
    tariff: PurseTariff = DEFAULT_PURSE_TARIFF,
    same_stop_window: timedelta = SAME_STOP_WINDOW,
    boarding_window: timedelta = BOARDING_WINDOW,
    received_at: datetime | None = None,
    offline_window: timedelta = OFFLINE_WINDOW,
) -> TapDecision:
    """A card touched to the validator of `vehicle_id` at `stop_id` at the device's time `now`, received at
    `received_at` (None: as it happened) (R-VAL-1..5, R-VAL-8, R-KKM-5..7).

    `card` is None when the card is not a Kołobrzeg city card. `boarding` is the last one this
    card's tap returned (or None). Events `event_timing` calls FUTURE or IMPOSSIBLE are the caller's to
    refuse (they raise ValueError here).
    """
    timing = event_timing(now, now if received_at is None else received_at, offline_window=offline_window)
    if timing in (EventTiming.FUTURE, EventTiming.IMPOSSIBLE):
        raise ValueError(f"a {timing} event is refused before the rules see it")
    flag = EventFlag.STALE if timing is EventTiming.STALE else None
    decision = _tap(card, balance=balance, panel=panel, vehicle_id=vehicle_id, stop_id=stop_id, now=now,
                    boarding=boarding, tariff=tariff, same_stop_window=same_stop_window,
                    boarding_window=boarding_window,
                    block_checked_at=received_at if timing is EventTiming.STALE and received_at else now)
    if decision.refusal is Refusal.BLOCKED and timing is not EventTiming.LIVE:
        flag = EventFlag.BLOCKED_CARD  # R-VAL-8: refused all the same, and reported
    return replace(decision, flag=flag) if flag is not None else decision


def _tap(
    card: PurseCard | None,
    *,
    balance: Grosze,
    panel: ValidatorPanel,
    vehicle_id: str,
    stop_id: str,
    now: datetime,
    boarding: Boarding | None,
    tariff: PurseTariff,
    same_stop_window: timedelta,
    boarding_window: timedelta,
    block_checked_at: datetime,
) -> TapDecision:
    if card is not None and is_blocked(card, block_checked_at):  # R-KKM-7 by the event's time (R-VAL-8)
        return _refuse(Refusal.BLOCKED, boarding)
    refusal = _unusable(card, now)
    if refusal is not None or card is None:
        return _refuse(refusal or Refusal.WRONG_CARD, boarding)
    selection = panel.selection

    if selection.balance_check:  # R-VAL-2
        return TapDecision(
            accepted=True,
            display=ValidatorDisplay(ValidatorMessage.BALANCE, balance=balance),
            signal=Signal.SHORT_BEEP,
            ride=RideKind.BALANCE_CHECK,
            balance_after=balance,
            boarding=boarding,
        )

    place = boarding_place(boarding, card.number, vehicle_id, stop_id, now,
                           same_stop_window=same_stop_window, boarding_window=boarding_window)
    if place is BoardingPlace.LATER_STOP:  # R-VAL-4: nothing added after the boarding stop; the boarding stays
        return _refuse(Refusal.BOARDING_STOP_ONLY, boarding, balance)
    at_boarding_stop = place is BoardingPlace.BOARDING_STOP
    if selection.baggage and not at_boarding_stop:  # R-VAL-4
        return _refuse(Refusal.HOLDER_FARE_FIRST, boarding, balance)

    if at_boarding_stop:  # R-VAL-4: companion, baggage or animal, paid in full, never on credit
        if selection.baggage:
            ride, zone, discount, fare = RideKind.BAGGAGE, FareZone.CITY, None, tariff.baggage_fare
            detail = "baggage"
        else:
            ride, zone = RideKind.COMPANION, selection.zone
            discount = selection.discount or Discount.NORMAL
            fare = ride_fare(tariff, zone, discount)
            detail = f"{zone}:{discount}"
        if fare > balance:
            return _refuse(
                Refusal.CREDIT_OUTSTANDING if balance < 0 else Refusal.INSUFFICIENT_FUNDS, boarding, balance
            )
        entries = tuple(entries_for(RidePaid(fare, companion=True, detail=detail), current_balance=balance))
        return TapDecision(
            accepted=True,
            display=ValidatorDisplay(ValidatorMessage.CHARGED, amount=fare, balance=balance - fare),
            signal=Signal.SHORT_BEEP,
            ride=ride,
            zone=zone,
            discount=discount,
            charged=fare,
            balance_after=balance - fare,
            entries=entries,
            boarding=boarding,
            card_used=True,
        )

    # The holder's own fare (R-VAL-1, R-VAL-3, R-KKM-6).
    zone = selection.zone
    discount = selection.discount if selection.discount is not None else default_fare(card, now.date()).discount
    fare = ride_fare(tariff, zone, discount)
    detail = f"{zone}:{discount or RegisteredFare.FREE}"
    new_boarding = Boarding(card.number, vehicle_id, stop_id, now)
    if boarding is not None and boarding.card_number == card.number and now < boarding.boarded_at:
        new_boarding = boarding  # an older ride uploaded late: the card's latest boarding stays
    if fare <= balance or fare == 0:
        entries = tuple(entries_for(RidePaid(fare, detail=detail), current_balance=balance))
        message, credit = (ValidatorMessage.CHARGED if fare else ValidatorMessage.FREE_RIDE), False
    elif balance >= 0:  # R-VAL-5: one ride on credit
        entries = tuple(entries_for(RideCredited(fare, detail=detail), current_balance=balance))
        message, credit = ValidatorMessage.CREDIT_RIDE, True
    else:
        return _refuse(Refusal.CREDIT_OUTSTANDING, boarding, balance)
    return TapDecision(
        accepted=True,
        display=ValidatorDisplay(message, amount=fare, balance=balance - fare),
        signal=Signal.SHORT_BEEP,
        ride=RideKind.OWN,
        zone=zone,
        discount=discount,
        charged=fare,
        credit_ride=credit,
        balance_after=balance - fare,
        entries=entries,
        boarding=new_boarding,
        card_used=True,
    )


# --------------------------------------------------------------------------- inspection (R-VAL-6)

# How long after boarding a validated ride still counts, for an inspection on the same vehicle.
RIDE_VALIDITY = timedelta(hours=2)


@dataclass(frozen=True)
class Inspection:
    validated: bool
    amount_due: Grosze  # surcharge + fare when not validated, else 0


def inspect_purse_card(
    card: PurseCard,
    *,
    boarding: Boarding | None,
    vehicle_id: str,
    now: datetime,
    zone: FareZone = FareZone.CITY,
    tariff: PurseTariff = DEFAULT_PURSE_TARIFF,
    ride_validity: timedelta = RIDE_VALIDITY,
) -> Inspection:
    """A card shown to an inspector counts as a ticket only if it was validated on this vehicle
    for this ride; otherwise it is riding without a ticket: surcharge + normal fare (R-VAL-6)."""
    validated = (
        boarding is not None
        and boarding.card_number == card.number
        and boarding.vehicle_id == vehicle_id
        and timedelta(0) <= now - boarding.boarded_at <= ride_validity
        and not is_blocked(card, boarding.boarded_at)
    )
    if validated:
        return Inspection(validated=True, amount_due=0)
    return Inspection(
        validated=False, amount_due=tariff.no_ticket_surcharge + ride_fare(tariff, zone, Discount.NORMAL)
    )


# --------------------------------------------------------------------------- top-ups


class TopUpChannel(StrEnum):
    SERVICE_POINT = "service_point"  # R-TOP-1 (BOK/POK), fiscal receipt
    PARKING_METER = "parking_meter"  # R-TOP-2, printed receipt


def top_up_bonus(
    card: PurseCard, payment: Grosze, *, channel: TopUpChannel, tariff: PurseTariff = DEFAULT_PURSE_TARIFF
) -> Grosze:
    """R-TOP-3: the bonus on top of `payment` — personal cards by bracket, bearer cards none."""
    if card.kind is not CardKind.PERSONAL:
        return 0
    if channel is TopUpChannel.PARKING_METER and not tariff.top_up.bonus_at_meter:
        return 0
    return tariff.top_up.bonus_for(payment)


@dataclass(frozen=True)
class TopUpReceipt:
    channel: TopUpChannel
    payment: Grosze
    bonus: Grosze
    credit_repaid: Grosze  # R-TOP-4: the part of the payment that repaid a credit ride
    balance_after: Grosze
    entries: tuple[LedgerEntry, ...]
    renews_activation: bool  # service-point top-ups set last_activated_on to today (R-KKM-5)


def _top_up(
    card: PurseCard, balance: Grosze, payment: Grosze, channel: TopUpChannel, tariff: PurseTariff
) -> TopUpReceipt:
    bonus = top_up_bonus(card, payment, channel=channel, tariff=tariff)
    entries = tuple(entries_for(ToppedUp(payment, bonus, detail=channel.value), current_balance=balance))
    return TopUpReceipt(
        channel=channel,
        payment=payment,
        bonus=bonus,
        credit_repaid=min(payment, max(0, -balance)),
        balance_after=balance + sum(e.amount for e in entries),
        entries=entries,
        renews_activation=channel is TopUpChannel.SERVICE_POINT,
    )


def top_up_at_service_point(
    card: PurseCard | None,
    *,
    balance: Grosze,
    payment: Grosze,
    now: datetime,
    tariff: PurseTariff = DEFAULT_PURSE_TARIFF,
) -> TopUpReceipt:
    """R-TOP-1 at a BOK/POK desk: at least the minimum; also revives a lapsed card (R-KKM-5).
    Raises `PurseRefused`."""
    refusal = _unusable(card, now)
    if card is None or (refusal is not None and refusal is not Refusal.EXPIRED):
        raise PurseRefused(refusal or Refusal.WRONG_CARD)
    if payment < tariff.top_up.service_point_minimum:
        raise PurseRefused(Refusal.BELOW_MINIMUM)
    return _top_up(card, balance, payment, TopUpChannel.SERVICE_POINT, tariff)


@dataclass(frozen=True)
class DeskCashLimits:
    """R-TOP-5: one cash top-up at the desk is refused above `maximum`; above `confirm_above` it needs a
    second confirmation of the same amount (defaults: 1 000 zł and 200 zł, EKP_DESK_TOPUP_MAX and
    EKP_DESK_TOPUP_CONFIRM_ABOVE)."""

    maximum: Grosze = 100_000
    confirm_above: Grosze = 20_000

    def __post_init__(self) -> None:
        if self.maximum <= 0 or not 0 <= self.confirm_above <= self.maximum:
            raise ValueError("desk limits: 0 <= confirm_above <= maximum, maximum above 0")


def top_up_at_desk(
    card: PurseCard | None,
    *,
    balance: Grosze,
    payment: Grosze,
    now: datetime,
    limits: DeskCashLimits,
    confirmed_amount: Grosze | None,
    tariff: PurseTariff = DEFAULT_PURSE_TARIFF,
) -> TopUpReceipt:
    """R-TOP-5 then R-TOP-1: cash at the desk. Above the ceiling refused (`DESK_MAXIMUM`); above the
    threshold booked only when `confirmed_amount` (what the second confirmation named) is this very
    amount, else `CONFIRMATION_NEEDED`. Raises `PurseRefused`; nothing is booked when it does."""
    if payment > limits.maximum:
        raise PurseRefused(Refusal.DESK_MAXIMUM)
    receipt = top_up_at_service_point(card, balance=balance, payment=payment, now=now, tariff=tariff)
    if payment > limits.confirm_above and confirmed_amount != payment:
        raise PurseRefused(Refusal.CONFIRMATION_NEEDED)
    return receipt


# --------------------------------------------------------------------------- parking meter


class MeterMode(StrEnum):
    PARKING = "parking"
    TOP_UP = "top_up"  # "ŁADOWANIE KARTY"


@dataclass(frozen=True)
class MeterSession:
    """A card inside a parking meter (R-PARK-1..3, R-TOP-2). Each action returns a new session;
    `notice` says why the last action was refused (the coin is returned, "+" ignored, ...)."""

    card: PurseCard
    balance: Grosze
    started_at: datetime
    tariff: PurseTariff = field(default=DEFAULT_PURSE_TARIFF, repr=False)
    mode: MeterMode = MeterMode.PARKING
    presses: int = 0
    coins: tuple[Grosze, ...] = ()
    notice: Refusal | None = None

    @property
    def fee(self) -> Grosze:
        """The OPŁATA field while choosing parking time."""
        return self.tariff.parking.fee(self.presses)

    @property
    def minutes_paid(self) -> int:
        return self.tariff.parking.minutes(self.presses)

    @property
    def parking_start(self) -> datetime:
        """The minute the card went in: parking is sold from it, to the minute."""
        return self.started_at.replace(second=0, microsecond=0)

    @property
    def paid_until(self) -> datetime:
        """The OPŁACONO ZA end time, to the minute: the time bought runs only through the zone's paid
        hours (R-PARK-4), e.g. 1 h bought at 17:30 on a Friday ends at 08:30 on Monday."""
        return parking_hours.paid_until(self.parking_start, self.minutes_paid, self.tariff.parking)

    @property
    def parking_is_paid(self) -> bool:
        """R-PARK-4: whether the zone is paid now (outside its paid hours the meter sells nothing)."""
        return parking_hours.is_paid_at(self.parking_start, self.tariff.parking)

    @property
    def coins_inserted(self) -> Grosze:
        """The OPŁATA field in top-up mode."""
        return sum(self.coins)


@dataclass(frozen=True)
class CardReturned:
    """The meter gives the card back without a charge (wrong/unusable card, or ANULUJ)."""

    refusal: Refusal | None
    coins_returned: Grosze = 0


@dataclass(frozen=True)
class ParkingTicket:
    fee: Grosze
    minutes: int
    started_at: datetime
    paid_until: datetime
    balance_after: Grosze
    entries: tuple[LedgerEntry, ...]
    card_used: bool = True


def insert_card(
    card: PurseCard | None, *, balance: Grosze, now: datetime, tariff: PurseTariff = DEFAULT_PURSE_TARIFF
) -> MeterSession | CardReturned:
    """R-PARK-1: a city card wakes the meter and shows its content; any other card comes back
    with "ZŁA KARTA" (`Refusal.WRONG_CARD`), as does a blocked, lapsed or void card."""
    refusal = _unusable(card, now)
    if refusal is not None or card is None:
        return CardReturned(refusal or Refusal.WRONG_CARD)
    return MeterSession(card=card, balance=balance, started_at=now, tariff=tariff)


def press_plus(session: MeterSession) -> MeterSession:
    """R-PARK-2: first "+" = minimum fee, each next one unit; never beyond the balance. R-PARK-4: never
    outside the zone's paid hours, never beyond its longest stay."""
    if session.mode is MeterMode.TOP_UP:
        return replace(session, notice=Refusal.TOP_UP_MODE)
    if not session.parking_is_paid:  # R-PARK-4: nothing is sold outside the paid hours
        return replace(session, notice=Refusal.FREE_PARKING)
    if session.tariff.parking.minutes(session.presses + 1) > session.tariff.parking.longest_stay_minutes:
        return replace(session, notice=Refusal.LONGEST_STAY)  # R-PARK-4
    next_fee = session.tariff.parking.fee(session.presses + 1)
    if next_fee > session.balance:
        notice = Refusal.CREDIT_OUTSTANDING if session.balance < 0 else Refusal.INSUFFICIENT_FUNDS
        return replace(session, notice=notice)
    return replace(session, presses=session.presses + 1, notice=None)


def press_top_up(session: MeterSession) -> MeterSession:
    """DOŁADUJ: enter top-up mode (any parking time chosen so far is dropped)."""
    return replace(session, mode=MeterMode.TOP_UP, presses=0, notice=None)


def insert_coin(session: MeterSession, coin: Grosze) -> MeterSession:
    """R-TOP-2: accepted coins only, never beyond the maximum (a refused coin falls back out)."""
    if session.mode is not MeterMode.TOP_UP:
        return replace(session, notice=Refusal.NOT_IN_TOP_UP_MODE)
    limits = session.tariff.top_up
    if coin not in limits.meter_coins:
        return replace(session, notice=Refusal.COIN_NOT_ACCEPTED)
    if session.coins_inserted + coin > limits.meter_maximum:
        return replace(session, notice=Refusal.ABOVE_MAXIMUM)
    return replace(session, coins=session.coins + (coin,), notice=None)


def accept(session: MeterSession) -> ParkingTicket | TopUpReceipt | MeterSession:
    """AKCEPTUJ: print the parking ticket and deduct the fee (R-PARK-3), or book the top-up and
    print its receipt (R-TOP-2). A refused accept returns the session with a notice."""
    if session.mode is MeterMode.TOP_UP:
        if session.coins_inserted < session.tariff.top_up.meter_minimum:
            return replace(session, notice=Refusal.BELOW_MINIMUM)
        return _top_up(
            session.card, session.balance, session.coins_inserted, TopUpChannel.PARKING_METER, session.tariff
        )
    if not session.parking_is_paid:  # R-PARK-4, also for a session not built by "+" presses
        return replace(session, presses=0, notice=Refusal.FREE_PARKING)
    if session.presses == 0:
        return replace(session, notice=Refusal.NOTHING_SELECTED)
    if session.minutes_paid > session.tariff.parking.longest_stay_minutes:
        return replace(session, notice=Refusal.LONGEST_STAY)
    fee = session.fee
    entries = tuple(
        entries_for(ParkingPaid(fee, detail=f"{session.minutes_paid}min"), current_balance=session.balance)
    )
    return ParkingTicket(
        fee=fee,
        minutes=session.minutes_paid,
        started_at=session.started_at,
        paid_until=session.paid_until,
        balance_after=session.balance - fee,
        entries=entries,
    )


def cancel(session: MeterSession) -> CardReturned:
    """ANULUJ: the card and any coins come back, nothing is charged (the only way out of
    top-up mode, R-TOP-2)."""
    return CardReturned(refusal=None, coins_returned=session.coins_inserted)
