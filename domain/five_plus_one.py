"""The Kraków 5+1 subscription (R-5P1-1..7): eligibility, month boundaries, schedule, billing.

Pure decisions only. The web layer keeps one row per subscription and one row per month
(unique on `(subscription_id, cycle, index)`), and asks these functions what to do:

    check_eligibility(...)            may this passenger buy 5+1 at all, with which cards?  R-5P1-1
    validate_start_date(...)          is the chosen first day acceptable?                   R-5P1-3
    cycle_schedule(...)               the six months, dates and prices, shown before paying R-5P1-2
    start_subscription(...)           the new subscription and its month 1 (paid at once)  R-5P1-4
    plan_next_month(...)              the next month row to insert, once its charge window opens
    months_due_for_charge(...)        which month rows to charge today (first tries and retries)
    begin_charge(...)                 mark a month CHARGING before calling the payment gateway
    on_charge_succeeded(...)          month PAID, issue its ticket (or refund a stray payment)
    on_charge_failed(...)             month FAILED, next retry day (or none)               R-5P1-6
    review(...)                       day-driven transitions: broken cycle, end of subscription
    cancel(...)                       stop it; paid tickets stay valid                       R-5P1-7

A billing run for one subscription is: `plan_next_month` (insert if not None) ->
`months_due_for_charge` -> for each: `begin_charge`, gateway call with `attempt_key`, then
`on_charge_succeeded` / `on_charge_failed` -> `review`. Every function returns new values; nothing
is mutated, so the caller can write them with compare-and-set on the row's previous state.

Month boundaries (R-5P1-3)
    A monthly ticket runs from its start day to the day before the same day next month. Every
    month of a subscription is anchored to the subscription's *first day* (the day the passenger
    chose), never to the previous month, so dates never drift. Month k (0-based, counted across
    cycles) starts on the anchor's day-of-month in the k-th following calendar month; **when that
    month has no such day (29–31), it starts on the 1st of the next month instead**. Each month
    ends the day before the next one starts, so months never overlap and never leave a gap.
    Example, first day 31 January 2025: 31 Jan–28 Feb, 1 Mar–30 Mar, 31 Mar–30 Apr,
    1 May–30 May, 31 May–30 Jun, 1 Jul–30 Jul; the next cycle starts 31 Jul. (In 2024, a leap
    year, month 1 is 31 Jan–29 Feb.) This is the passenger-friendly reading, the same one the
    Polish Civil Code uses for periods in months (art. 112 k.c.): a ticket bought from 31 January
    covers all of February instead of stopping on 27 February.

Billing and the broken cycle (R-5P1-4..6)
    Month 1 is paid at once on the operator's hosted page. Later months are charged with the saved
    card token from `charge_days_before` days before they start; a declined charge is retried every
    `retry_every_days` until the day before the month starts (and the passenger may pay a FAILED
    month themselves in the meantime). A month not paid by its first day is MISSED: the cycle is
    broken, so the cheap month 6 is never reached (R-5P1-6), and the passenger is told.
    What happens next — the passenger-friendly, realistic choice: **a broken subscription stops**.
    Tickets already paid stay valid; nothing more is charged automatically (the card that just
    declined is not charged again behind the passenger's back, and no half-started month is sold
    at full price). The passenger may buy 5+1 again at once, choosing any first day from today,
    which starts a fresh cycle whose month 6 is again the cheap one.
    The only exception is our own fault: if the system never even tried to charge a month (an
    outage), that month may still be charged for `late_charge_grace_days` after it starts
    (its ticket keeps its normal dates) before it counts as missed.

Renewal (R-5P1-5): after month 6, a subscription with auto-renewal plans month 1 of the next cycle
exactly as any other month; without auto-renewal it ENDS the day after month 6 ends.

Never twice for one month (R-5P1-6): `charge_key(subscription_id, cycle, index)` names the month
(store it unique on the paid charge / issued ticket); `attempt_key(..., attempt)` names a single
gateway request, so a retry after a decline is a new request while a resent request is not. Only a
month in DUE or FAILED can start charging, and a success for a month that is already PAID,
MISSED or CANCELLED is reported back as a duplicate or as a refund to make.
"""

from __future__ import annotations

import calendar
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from enum import StrEnum

from domain.carriers import LinkedCard, ResidentStatusState
from domain.money import Grosze
from domain.tariff_5p1 import (
    CYCLE_LENGTH,
    PLUS_ONE_MONTH_INDEX,
    Tariff5p1,
    TicketVariant,
    period_in_force,
    price_for_month,
)

__all__ = [
    "CYCLE_LENGTH",
    "PLUS_ONE_MONTH_INDEX",
    "BillingPolicy",
    "CancelReason",
    "CycleSchedule",
    "Decision",
    "EndReason",
    "Eligibility",
    "IneligibleReason",
    "MonthState",
    "Notice",
    "ScheduledMonth",
    "StartDateProblem",
    "Subscription",
    "SubscriptionError",
    "SubscriptionMonth",
    "SubscriptionStatus",
    "TicketVariant",
    "UpcomingCharge",
    "active_month_on",
    "attempt_key",
    "begin_charge",
    "cancel",
    "card_eligible_on",
    "charge_key",
    "check_eligibility",
    "cycle_schedule",
    "month_end",
    "month_period",
    "month_start",
    "months_due_for_charge",
    "on_charge_failed",
    "on_charge_succeeded",
    "plan_next_month",
    "plus_one_earned",
    "review",
    "set_auto_renew",
    "start_subscription",
    "upcoming_charge",
    "validate_start_date",
]

ONE_DAY = timedelta(days=1)


# --------------------------------------------------------------------------- R-5P1-1 eligibility


class IneligibleReason(StrEnum):
    """Why a passenger cannot buy 5+1 (the web layer words it in Polish)."""

    NO_PESEL = "no_pesel"  # account registered without PESEL: cards cannot be matched (R-CARD-2)
    NO_CARDS = "no_cards"  # no card linked to the account
    NO_RESIDENT_STATUS = "no_resident_status"  # cards linked, none with "Karta Krakowska" status
    RESIDENT_STATUS_EXPIRED = "resident_status_expired"
    RESIDENT_STATUS_NOT_YET_VALID = "resident_status_not_yet_valid"
    CARDS_BLOCKED = "cards_blocked"  # the only cards with valid status are blocked


@dataclass(frozen=True)
class Eligibility:
    eligible_cards: tuple[LinkedCard, ...]
    reason: IneligibleReason | None

    @property
    def eligible(self) -> bool:
        return bool(self.eligible_cards)


def card_eligible_on(card: LinkedCard, day: date) -> bool:
    """A card can carry 5+1 on `day`: not blocked and resident status valid that day."""
    return not card.blocked and card.resident_status_on(day) is ResidentStatusState.VALID


def check_eligibility(
    *,
    account_has_pesel: bool,
    cards: Iterable[LinkedCard],
    today: date,
    first_day: date | None = None,
) -> Eligibility:
    """Which linked cards may carry a 5+1 ticket (R-5P1-1), or why none can.

    A card qualifies when it is not blocked and its resident status is valid `today` and, when the
    chosen `first_day` is given, on that day too. When none qualifies, the reason is the most
    useful one to show: expired status beats not-yet-valid beats blocked beats no status at all.
    """
    cards = tuple(cards)
    if not account_has_pesel:
        return Eligibility((), IneligibleReason.NO_PESEL)
    if not cards:
        return Eligibility((), IneligibleReason.NO_CARDS)
    days = (today,) if first_day is None else (today, first_day)
    eligible = tuple(c for c in cards if all(card_eligible_on(c, d) for d in days))
    if eligible:
        return Eligibility(eligible, None)
    states = {c.resident_status_on(d) for c in cards if not c.blocked for d in days}
    if ResidentStatusState.EXPIRED in states:
        return Eligibility((), IneligibleReason.RESIDENT_STATUS_EXPIRED)
    if ResidentStatusState.NOT_YET_VALID in states:
        return Eligibility((), IneligibleReason.RESIDENT_STATUS_NOT_YET_VALID)
    if any(c.blocked and c.resident_status is not None for c in cards):
        return Eligibility((), IneligibleReason.CARDS_BLOCKED)
    return Eligibility((), IneligibleReason.NO_RESIDENT_STATUS)


# ----------------------------------------------------------------------- R-5P1-3 month boundaries


class StartDateProblem(StrEnum):
    IN_THE_PAST = "start_in_the_past"
    TOO_FAR_AHEAD = "start_too_far_ahead"


def validate_start_date(
    first_day: date, today: date, *, max_days_ahead: int | None = None
) -> StartDateProblem | None:
    """The chosen first day of validity: today or later (R-5P1-3), optionally not too far ahead."""
    if first_day < today:
        return StartDateProblem.IN_THE_PAST
    if max_days_ahead is not None and first_day > today + timedelta(days=max_days_ahead):
        return StartDateProblem.TOO_FAR_AHEAD
    return None


def month_start(first_day: date, offset: int) -> date:
    """First day of the month `offset` (0-based, across cycles) of a subscription from `first_day`.

    Same day-of-month as `first_day`; if that calendar month has no such day, the 1st of the
    following month (see the module docstring).
    """
    if offset < 0:
        raise ValueError("offset must be >= 0")
    years, month0 = divmod(first_day.month - 1 + offset, 12)
    year, month = first_day.year + years, month0 + 1
    last_day = calendar.monthrange(year, month)[1]
    if first_day.day <= last_day:
        return date(year, month, first_day.day)
    return date(year, month, last_day) + ONE_DAY


def month_end(first_day: date, offset: int) -> date:
    """Last day of validity (inclusive) of month `offset`: the day before the next one starts."""
    return month_start(first_day, offset + 1) - ONE_DAY


def _offset(cycle: int, index: int) -> int:
    if cycle < 1 or not 1 <= index <= CYCLE_LENGTH:
        raise ValueError(f"bad month position cycle={cycle} index={index}")
    return (cycle - 1) * CYCLE_LENGTH + (index - 1)


def month_period(first_day: date, cycle: int, index: int) -> tuple[date, date]:
    """(first, last) day of month `index` (1..6) of `cycle` (1, 2, ...), both inclusive."""
    offset = _offset(cycle, index)
    return month_start(first_day, offset), month_end(first_day, offset)


# ------------------------------------------------------------------- R-5P1-2 the cycle schedule


@dataclass(frozen=True)
class ScheduledMonth:
    cycle: int
    index: int
    starts_on: date
    ends_on: date
    price: Grosze

    @property
    def is_plus_one(self) -> bool:
        return self.index == PLUS_ONE_MONTH_INDEX


@dataclass(frozen=True)
class CycleSchedule:
    variant: TicketVariant
    months: tuple[ScheduledMonth, ...]

    @property
    def total(self) -> Grosze:
        return sum(m.price for m in self.months)

    @property
    def starts_on(self) -> date:
        return self.months[0].starts_on

    @property
    def ends_on(self) -> date:
        return self.months[-1].ends_on


def cycle_schedule(
    tariff: Tariff5p1, variant: TicketVariant, first_day: date, cycle: int = 1
) -> CycleSchedule:
    """The six months of `cycle` with their dates and prices, to show before paying (R-5P1-2)."""
    months = []
    for index in range(1, CYCLE_LENGTH + 1):
        starts_on, ends_on = month_period(first_day, cycle, index)
        price = price_for_month(tariff, variant, index, starts_on)
        months.append(ScheduledMonth(cycle, index, starts_on, ends_on, price))
    return CycleSchedule(variant, tuple(months))


# ---------------------------------------------------------------------- R-5P1-4..7 subscription


class SubscriptionStatus(StrEnum):
    PENDING_FIRST_PAYMENT = "pending_first_payment"
    ACTIVE = "active"
    CANCELLED = "cancelled"  # by the passenger or because the card lost eligibility
    ENDED = "ended"  # ran to its end without renewal, or month 1 was never paid
    BROKEN = "broken"  # a month could not be paid before it started (R-5P1-6)

    @property
    def is_open(self) -> bool:
        return self in (SubscriptionStatus.PENDING_FIRST_PAYMENT, SubscriptionStatus.ACTIVE)


class MonthState(StrEnum):
    DUE = "due"  # planned, not charged yet
    CHARGING = "charging"  # a payment is in flight
    PAID = "paid"  # its ticket is issued
    FAILED = "failed"  # last attempt declined; see next_attempt_on
    MISSED = "missed"  # not paid before it started: the cycle broke
    CANCELLED = "cancelled"  # will never be charged (subscription cancelled/ended)

    @property
    def chargeable(self) -> bool:
        return self in (MonthState.DUE, MonthState.FAILED)


class EndReason(StrEnum):
    CYCLE_COMPLETED = "cycle_completed"  # month 6 over, no auto-renewal
    FIRST_PAYMENT_NOT_COMPLETED = "first_payment_not_completed"
    MONTH_NOT_PAID = "month_not_paid"  # broken cycle
    CANCELLED_BY_PASSENGER = "cancelled_by_passenger"
    NOT_ELIGIBLE = "not_eligible"  # resident status lapsed / card blocked or unlinked
    PAYMENT_REVERSED = "payment_reversed"  # a month's payment was refunded or charged back (R-PAY-3)


class CancelReason(StrEnum):
    PASSENGER = "passenger"
    NOT_ELIGIBLE = "not_eligible"


class Notice(StrEnum):
    """Things to tell the passenger (screen and/or e-mail), in the order they happened."""

    SUBSCRIPTION_STARTED = "subscription_started"  # month 1 paid: confirmation (R-5P1-9)
    MONTH_PAID = "month_paid"  # months 2..6: ticket issued
    CYCLE_RENEWED = "cycle_renewed"  # month 1 of a renewal cycle paid (R-5P1-5)
    FIRST_PAYMENT_FAILED = "first_payment_failed"
    CHARGE_FAILED_WILL_RETRY = "charge_failed_will_retry"
    CHARGE_FAILED_NO_RETRY = "charge_failed_no_retry"  # pay it yourself before it starts
    CYCLE_BROKEN = "cycle_broken"  # R-5P1-6
    SUBSCRIPTION_ENDED = "subscription_ended"
    SUBSCRIPTION_CANCELLED = "subscription_cancelled"
    PAYMENT_REVERSED = "payment_reversed"  # R-PAY-3: a month's ticket revoked, the subscription cancelled


@dataclass(frozen=True)
class BillingPolicy:
    """Operator-configurable timing of automatic charges."""

    charge_days_before: int = 3  # first automatic attempt this many days before a month starts
    retry_every_days: int = 1  # after a decline, try again this many days later
    max_attempts: int | None = None  # cap on automatic attempts per month (None: until it starts)
    late_charge_grace_days: int = 2  # only for months we never tried to charge (our outage)

    def __post_init__(self) -> None:
        if self.charge_days_before < 1:
            raise ValueError("charge_days_before must be >= 1: a month is paid before it starts")
        if self.retry_every_days < 1:
            raise ValueError("retry_every_days must be at least 1")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.late_charge_grace_days < 0:
            raise ValueError("late_charge_grace_days must be >= 0")


@dataclass(frozen=True)
class Subscription:
    variant: TicketVariant
    first_day: date  # anchor of every month's dates
    auto_renew: bool
    status: SubscriptionStatus
    end_reason: EndReason | None = None
    ended_on: date | None = None


@dataclass(frozen=True)
class SubscriptionMonth:
    cycle: int
    index: int
    starts_on: date
    ends_on: date
    price: Grosze  # fixed when planned, never recomputed
    state: MonthState
    attempts: int = 0  # charge attempts begun (hosted page or token)
    next_attempt_on: date | None = None  # FAILED: next automatic retry day, None = no more
    paid_on: date | None = None

    @property
    def position(self) -> tuple[int, int]:
        return (self.cycle, self.index)

    @property
    def is_plus_one(self) -> bool:
        return self.index == PLUS_ONE_MONTH_INDEX

    def covers(self, day: date) -> bool:
        return self.starts_on <= day <= self.ends_on


@dataclass(frozen=True)
class Decision:
    """What a transition decided. Persist `subscription` and every row in `months` (changed rows
    only), tell the passenger `notices`, issue a ticket for `issue_ticket_for`, revoke the ticket of
    `revoke_ticket_for`, and refund the payment just reported when `refund` is set. `duplicate` means the event was already applied.
    """

    subscription: Subscription
    months: tuple[SubscriptionMonth, ...] = ()
    notices: tuple[Notice, ...] = ()
    issue_ticket_for: SubscriptionMonth | None = None
    revoke_ticket_for: SubscriptionMonth | None = None
    refund: bool = False
    duplicate: bool = False


class SubscriptionError(ValueError):
    """A transition that is not allowed in the current state. `code` is a machine code."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(code)


def charge_key(subscription_id: Hashable, cycle: int, index: int) -> str:
    """The one key of a month's charge: at most one paid charge/ticket per key (R-5P1-6)."""
    _offset(cycle, index)
    return f"5p1:{subscription_id}:{cycle}:{index}"


def attempt_key(subscription_id: Hashable, cycle: int, index: int, attempt: int) -> str:
    """Idempotency key of one gateway request for a month (a retry is a new attempt number)."""
    if attempt < 1:
        raise ValueError("attempt numbers start at 1")
    return f"{charge_key(subscription_id, cycle, index)}:{attempt}"


def _last(months: Sequence[SubscriptionMonth]) -> SubscriptionMonth | None:
    return max(months, key=lambda m: m.position, default=None)


def plus_one_earned(months: Sequence[SubscriptionMonth], cycle: int) -> bool:
    """Months 1–5 of `cycle` are all paid, so month 6 may cost the "+1" price (R-5P1-6).

    Months of a cycle are consecutive by construction (anchored dates), so "no gap" is "all paid".
    """
    paid = {m.index for m in months if m.cycle == cycle and m.state is MonthState.PAID}
    return paid >= set(range(1, PLUS_ONE_MONTH_INDEX))


def start_subscription(
    *,
    tariff: Tariff5p1,
    variant: TicketVariant,
    first_day: date,
    auto_renew: bool,
    today: date,
    max_days_ahead: int | None = None,
) -> tuple[Subscription, SubscriptionMonth]:
    """Enrol in 5+1 (R-5P1-4): the subscription and its month 1, already CHARGING (attempt 1).

    The caller then creates the hosted-page payment for `month.price` with
    `attempt_key(id, 1, 1, 1)` and "save card" set. Check eligibility first (R-5P1-1).
    Raises `SubscriptionError` with a `StartDateProblem` code for a bad first day.
    """
    problem = validate_start_date(first_day, today, max_days_ahead=max_days_ahead)
    if problem is not None:
        raise SubscriptionError(problem.value)
    subscription = Subscription(
        variant=variant,
        first_day=first_day,
        auto_renew=auto_renew,
        status=SubscriptionStatus.PENDING_FIRST_PAYMENT,
    )
    starts_on, ends_on = month_period(first_day, 1, 1)
    month = SubscriptionMonth(
        cycle=1,
        index=1,
        starts_on=starts_on,
        ends_on=ends_on,
        price=price_for_month(tariff, variant, 1, starts_on),
        state=MonthState.CHARGING,
        attempts=1,
    )
    return subscription, month


def _next_position(sub: Subscription, last: SubscriptionMonth) -> tuple[int, int] | None:
    if last.index < CYCLE_LENGTH:
        return (last.cycle, last.index + 1)
    if sub.auto_renew:
        return (last.cycle + 1, 1)
    return None


def _price(
    tariff: Tariff5p1,
    sub: Subscription,
    months: Sequence[SubscriptionMonth],
    cycle: int,
    index: int,
    starts_on: date,
) -> Grosze:
    if index == PLUS_ONE_MONTH_INDEX and not plus_one_earned(months, cycle):
        # Defensive: a cycle with a gap never reaches month 6 here (it breaks), but if it ever
        # did, month 6 would cost the normal monthly price (R-5P1-6).
        return period_in_force(tariff, starts_on).monthly(sub.variant)
    return price_for_month(tariff, sub.variant, index, starts_on)


def _month_after_last_paid(
    sub: Subscription, months: Sequence[SubscriptionMonth]
) -> tuple[int, int, date, date] | None:
    """(cycle, index, first day, last day) of the month that follows the latest one, when that one is
    PAID and another follows it (not after month 6 without auto-renewal)."""
    last = _last(months)
    if last is None or last.state is not MonthState.PAID:
        return None
    position = _next_position(sub, last)
    if position is None:
        return None
    cycle, index = position
    starts_on, ends_on = month_period(sub.first_day, cycle, index)
    return cycle, index, starts_on, ends_on


def plan_next_month(
    sub: Subscription,
    months: Sequence[SubscriptionMonth],
    tariff: Tariff5p1,
    today: date,
    policy: BillingPolicy = BillingPolicy(),
) -> SubscriptionMonth | None:
    """The next month row to insert (state DUE), once its charge window has opened, else None.

    Only for an ACTIVE subscription whose latest month is PAID. After month 6 the next month is
    month 1 of a new cycle if auto-renewal is on (R-5P1-5). The price is taken now, from the
    tariff period in force on the month's first day, and stays on the row.
    """
    if sub.status is not SubscriptionStatus.ACTIVE:
        return None
    following = _month_after_last_paid(sub, months)
    if following is None:
        return None
    cycle, index, starts_on, ends_on = following
    if today < starts_on - timedelta(days=policy.charge_days_before):
        return None
    return SubscriptionMonth(
        cycle=cycle,
        index=index,
        starts_on=starts_on,
        ends_on=ends_on,
        price=_price(tariff, sub, months, cycle, index, starts_on),
        state=MonthState.DUE,
    )


def _can_still_be_charged(month: SubscriptionMonth, today: date, policy: BillingPolicy) -> bool:
    """Before the month starts; or, if we never tried at all, within the late grace days."""
    if today < month.starts_on:
        return True
    return (
        month.state is MonthState.DUE
        and month.attempts == 0
        and today < month.starts_on + timedelta(days=policy.late_charge_grace_days)
    )


def months_due_for_charge(
    sub: Subscription,
    months: Sequence[SubscriptionMonth],
    today: date,
    policy: BillingPolicy = BillingPolicy(),
) -> tuple[SubscriptionMonth, ...]:
    """Month rows to charge automatically today, with the saved card token.

    A DUE month from `charge_days_before` days before it starts; a FAILED month on or after its
    `next_attempt_on`; in both cases only while it can still be paid (before it starts).
    """
    if sub.status is not SubscriptionStatus.ACTIVE:
        return ()
    due = []
    for month in sorted(months, key=lambda m: m.position):
        if not month.state.chargeable or not _can_still_be_charged(month, today, policy):
            continue
        if month.state is MonthState.DUE:
            if today >= month.starts_on - timedelta(days=policy.charge_days_before):
                due.append(month)
        elif month.next_attempt_on is not None and month.next_attempt_on <= today:
            due.append(month)
    return tuple(due)


def begin_charge(
    sub: Subscription,
    month: SubscriptionMonth,
    today: date,
    policy: BillingPolicy = BillingPolicy(),
) -> SubscriptionMonth:
    """Mark `month` CHARGING (attempt number += 1) before calling the gateway.

    Used for automatic charges and when the passenger pays a FAILED month (or retries the first
    payment) on the hosted page. Persist it with compare-and-set on the previous state: that is
    what keeps two workers from charging the same month.
    """
    if not sub.status.is_open:
        raise SubscriptionError("subscription_closed")
    if not month.state.chargeable:
        raise SubscriptionError(f"month_not_chargeable:{month.state.value}")
    first_payment = sub.status is SubscriptionStatus.PENDING_FIRST_PAYMENT
    if first_payment:
        if month.position != (1, 1) or today > month.starts_on:
            raise SubscriptionError("first_payment_too_late")
    elif not _can_still_be_charged(month, today, policy):
        raise SubscriptionError("month_already_started")
    return replace(
        month, state=MonthState.CHARGING, attempts=month.attempts + 1, next_attempt_on=None
    )


def on_charge_succeeded(sub: Subscription, month: SubscriptionMonth, today: date) -> Decision:
    """The gateway confirmed payment for `month` (call once per distinct payment).

    PAID months: `duplicate` (if this was a *different* payment than the recorded one, refund it).
    A month that was cancelled or missed, or a closed subscription: `refund`. Otherwise the month
    is PAID, its ticket is issued, and a pending subscription becomes ACTIVE.
    """
    if month.state is MonthState.PAID:
        return Decision(sub, duplicate=True)
    if month.state in (MonthState.CANCELLED, MonthState.MISSED) or not sub.status.is_open:
        return Decision(sub, refund=True)
    paid = replace(month, state=MonthState.PAID, paid_on=today, next_attempt_on=None)
    if month.position == (1, 1):
        notice = Notice.SUBSCRIPTION_STARTED
    elif month.index == 1:
        notice = Notice.CYCLE_RENEWED
    else:
        notice = Notice.MONTH_PAID
    return Decision(
        replace(sub, status=SubscriptionStatus.ACTIVE),
        months=(paid,),
        notices=(notice,),
        issue_ticket_for=paid,
    )


def on_payment_arrived(sub: Subscription, month: SubscriptionMonth, today: date) -> Decision:
    """R-PAY-1: a paid outcome for `month`, whichever attempt it was for. A payment of another attempt than the
    month's current one (an earlier hosted payment completed late, a retry's answer after a newer attempt began)
    still pays the month: a month FAILED or DUE is taken as CHARGING; then `on_charge_succeeded`."""
    if month.state in (MonthState.FAILED, MonthState.DUE):
        month = replace(month, state=MonthState.CHARGING)
    return on_charge_succeeded(sub, month, today)


# R-5P1-6: gateway error codes of a declined charge that no automatic retry can fix (the saved card is gone or
# expired: the passenger must pay on the payment page), and of a payment the payer cancelled there.
NOT_RETRYABLE_DECLINES = frozenset({"token_expired", "token_removed", "card_expired"})
PAYER_CANCELLED = frozenset({"cancelled", "canceled"})


def payer_cancelled(error_code: str | None) -> bool:
    """The payer cancelled the payment on the payment page (they know: nobody mails them it failed)."""
    return error_code in PAYER_CANCELLED


def on_charge_declined(sub: Subscription, month: SubscriptionMonth, today: date, policy: BillingPolicy,
                       error_code: str | None) -> Decision:
    """R-5P1-6: `on_charge_failed` for a decline with the gateway's error code: retried automatically unless no
    retry can fix it (`NOT_RETRYABLE_DECLINES`); not mailed about when the payer cancelled (`PAYER_CANCELLED`)."""
    return on_charge_failed(sub, month, today, policy, retryable=error_code not in NOT_RETRYABLE_DECLINES,
                            cancelled_by_payer=payer_cancelled(error_code))


def ticket_validity(valid_from: date, valid_until: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """R-5P1-3: a monthly ticket valid on the local calendar days [valid_from, valid_until] is valid from midnight
    at the start of its first day to midnight after its last (half-open [start, end), aware UTC instants; a
    clock change in between is real time, so the days keep their local midnights)."""
    start = datetime.combine(valid_from, time.min, tzinfo=zone).astimezone(timezone.utc)
    end = datetime.combine(valid_until + ONE_DAY, time.min, tzinfo=zone).astimezone(timezone.utc)
    return start, end


def on_charge_failed(
    sub: Subscription,
    month: SubscriptionMonth,
    today: date,
    policy: BillingPolicy = BillingPolicy(),
    *,
    retryable: bool = True,
    cancelled_by_payer: bool = False,
) -> Decision:
    """The gateway declined (or the hosted payment was abandoned) for `month`.

    `cancelled_by_payer`: the passenger pressed "cancel" on the payment page; they know, so nobody is
    mailed that a payment failed (the month is FAILED all the same, and may be paid again).

    The month becomes FAILED. For automatic charges the next retry is `retry_every_days` later,
    if that is still before the month starts and under `max_attempts`; `retryable=False` (token
    expired or removed) means no automatic retry. The first payment is never retried
    automatically: the passenger may try again on the hosted page until the first day.
    A month not CHARGING (a repeated notification) is left alone (`duplicate`).
    """
    if month.state is not MonthState.CHARGING or not sub.status.is_open:
        return Decision(sub, duplicate=True)
    if sub.status is SubscriptionStatus.PENDING_FIRST_PAYMENT:
        failed = replace(month, state=MonthState.FAILED, next_attempt_on=None)
        return Decision(sub, months=(failed,), notices=() if cancelled_by_payer else (Notice.FIRST_PAYMENT_FAILED,))
    next_try = today + timedelta(days=policy.retry_every_days)
    retry_on = (
        next_try
        if retryable
        and next_try < month.starts_on
        and (policy.max_attempts is None or month.attempts < policy.max_attempts)
        else None
    )
    failed = replace(month, state=MonthState.FAILED, next_attempt_on=retry_on)
    notice = Notice.CHARGE_FAILED_NO_RETRY if retry_on is None else Notice.CHARGE_FAILED_WILL_RETRY
    return Decision(sub, months=(failed,), notices=() if cancelled_by_payer else (notice,))


def on_payment_reversed(
    sub: Subscription,
    months: Sequence[SubscriptionMonth],
    month: SubscriptionMonth,
    today: date,
) -> Decision:
    """R-PAY-3: the payment that paid `month` was refunded or charged back.

    The month is no longer paid: it is CANCELLED and its ticket revoked. An open subscription is
    cancelled (end reason PAYMENT_REVERSED) with every unpaid month, so nothing more is charged to a
    card whose holder disputed a charge; other paid months keep their tickets. A month that is not
    PAID (reversed already) is left alone (`duplicate`).
    """
    if month.state is not MonthState.PAID:
        return Decision(sub, duplicate=True)
    taken_back = replace(month, state=MonthState.CANCELLED, next_attempt_on=None)
    changed = [taken_back]
    if sub.status.is_open:
        sub = replace(sub, status=SubscriptionStatus.CANCELLED, end_reason=EndReason.PAYMENT_REVERSED, ended_on=today)
        changed += _close_open_months([m for m in months if m.position != month.position], MonthState.CANCELLED)
    return Decision(
        sub,
        months=tuple(sorted(changed, key=lambda m: m.position)),
        notices=(Notice.PAYMENT_REVERSED,),
        revoke_ticket_for=taken_back,
    )


def _close_open_months(
    months: Sequence[SubscriptionMonth], state: MonthState
) -> list[SubscriptionMonth]:
    return [
        replace(m, state=state, next_attempt_on=None)
        for m in months
        if m.state in (MonthState.DUE, MonthState.FAILED, MonthState.CHARGING)
    ]


def review(
    sub: Subscription,
    months: Sequence[SubscriptionMonth],
    today: date,
    policy: BillingPolicy = BillingPolicy(),
) -> Decision:
    """Transitions driven by the calendar; run daily (and after each billing step).

    - pending, and month 1 was not paid by its first day -> ENDED (first payment not completed);
      a payment still in flight gets one more day.
    - active, a month reached its first day unpaid (and not in flight) -> that month MISSED,
      the subscription BROKEN (R-5P1-6), passenger told.
    - active, latest month PAID, nothing follows it (month 6 without auto-renewal) and it is
      over -> ENDED (R-5P1-5).
    """
    if sub.status is SubscriptionStatus.PENDING_FIRST_PAYMENT:
        first = next((m for m in months if m.position == (1, 1)), None)
        if first is None or first.state is MonthState.PAID:
            return Decision(sub)
        in_flight = first.state is MonthState.CHARGING
        deadline = first.starts_on + (ONE_DAY if in_flight else timedelta())
        if today <= deadline:
            return Decision(sub)
        ended = replace(
            sub,
            status=SubscriptionStatus.ENDED,
            end_reason=EndReason.FIRST_PAYMENT_NOT_COMPLETED,
            ended_on=today,
        )
        return Decision(
            ended,
            months=tuple(_close_open_months(months, MonthState.CANCELLED)),
            notices=(Notice.SUBSCRIPTION_ENDED,),
        )

    if sub.status is not SubscriptionStatus.ACTIVE:
        return Decision(sub)

    missed = [
        replace(m, state=MonthState.MISSED, next_attempt_on=None)
        for m in months
        if m.state.chargeable and not _can_still_be_charged(m, today, policy)
    ]
    if missed:
        broken = replace(
            sub,
            status=SubscriptionStatus.BROKEN,
            end_reason=EndReason.MONTH_NOT_PAID,
            ended_on=today,
        )
        missed_positions = {m.position for m in missed}
        rest = [m for m in months if m.position not in missed_positions]
        changed = missed + _close_open_months(rest, MonthState.CANCELLED)
        return Decision(
            broken,
            months=tuple(sorted(changed, key=lambda m: m.position)),
            notices=(Notice.CYCLE_BROKEN,),
        )

    last = _last(months)
    if (
        last is not None
        and last.state is MonthState.PAID
        and _next_position(sub, last) is None
        and today > last.ends_on
    ):
        ended = replace(
            sub,
            status=SubscriptionStatus.ENDED,
            end_reason=EndReason.CYCLE_COMPLETED,
            ended_on=today,
        )
        return Decision(ended, notices=(Notice.SUBSCRIPTION_ENDED,))
    return Decision(sub)


def cancel(
    sub: Subscription,
    months: Sequence[SubscriptionMonth],
    today: date,
    reason: CancelReason = CancelReason.PASSENGER,
) -> Decision:
    """Cancel (R-5P1-7): paid months keep their tickets; every unpaid month is CANCELLED.

    A charge in flight is cancelled too: if it still succeeds, `on_charge_succeeded` asks for a
    refund. Use `CancelReason.NOT_ELIGIBLE` when, before charging a month, the card no longer
    qualifies (`card_eligible_on(card, month.starts_on)` is false).
    """
    if not sub.status.is_open:
        raise SubscriptionError("subscription_closed")
    end_reason = (
        EndReason.CANCELLED_BY_PASSENGER
        if reason is CancelReason.PASSENGER
        else EndReason.NOT_ELIGIBLE
    )
    cancelled = replace(
        sub, status=SubscriptionStatus.CANCELLED, end_reason=end_reason, ended_on=today
    )
    return Decision(
        cancelled,
        months=tuple(_close_open_months(months, MonthState.CANCELLED)),
        notices=(Notice.SUBSCRIPTION_CANCELLED,),
    )


def set_auto_renew(sub: Subscription, auto_renew: bool) -> Subscription:
    """Tick or untick "renew subscription automatically" (R-5P1-5) on an open subscription."""
    if not sub.status.is_open:
        raise SubscriptionError("subscription_closed")
    return replace(sub, auto_renew=auto_renew)


def active_month_on(months: Iterable[SubscriptionMonth], day: date) -> SubscriptionMonth | None:
    """The paid month whose ticket is valid on `day`, whatever the subscription's status now
    (tickets already paid stay valid after cancellation, R-5P1-7)."""
    for month in months:
        if month.state is MonthState.PAID and month.covers(day):
            return month
    return None


@dataclass(frozen=True)
class UpcomingCharge:
    cycle: int
    index: int
    charge_on: date  # first automatic attempt (or today, if that day has passed)
    starts_on: date
    ends_on: date
    price: Grosze


def upcoming_charge(
    sub: Subscription,
    months: Sequence[SubscriptionMonth],
    tariff: Tariff5p1,
    today: date,
    policy: BillingPolicy = BillingPolicy(),
) -> UpcomingCharge | None:
    """The next automatic charge to show on the 5+1 tab ("next charge on ..., amount ...")."""
    if sub.status is not SubscriptionStatus.ACTIVE:
        return None
    for month in sorted(months, key=lambda m: m.position):
        if month.state.chargeable:
            charge_on = (
                month.next_attempt_on
                if month.state is MonthState.FAILED
                else month.starts_on - timedelta(days=policy.charge_days_before)
            )
            if charge_on is None:
                return None
            return UpcomingCharge(
                month.cycle,
                month.index,
                max(charge_on, today),
                month.starts_on,
                month.ends_on,
                month.price,
            )
    following = _month_after_last_paid(sub, months)
    if following is None:
        return None
    cycle, index, starts_on, ends_on = following
    return UpcomingCharge(
        cycle,
        index,
        max(starts_on - timedelta(days=policy.charge_days_before), today),
        starts_on,
        ends_on,
        _price(tariff, sub, months, cycle, index, starts_on),
    )
