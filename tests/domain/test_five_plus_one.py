"""The Kraków 5+1 subscription (R-5P1-1..7) and its tariff (R-5P1-2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.carriers import CarrierType, LinkedCard, ResidentStatus
from domain.five_plus_one import (
    BillingPolicy,
    CancelReason,
    EndReason,
    IneligibleReason,
    MonthState,
    Notice,
    StartDateProblem,
    Subscription,
    SubscriptionError,
    SubscriptionMonth,
    SubscriptionStatus,
    active_month_on,
    attempt_key,
    begin_charge,
    cancel,
    card_eligible_on,
    charge_key,
    check_eligibility,
    cycle_schedule,
    month_end,
    month_period,
    month_start,
    months_due_for_charge,
    on_charge_declined,
    on_charge_failed,
    on_charge_succeeded,
    on_payment_arrived,
    payer_cancelled,
    ticket_validity,
    plan_next_month,
    plus_one_earned,
    review,
    set_auto_renew,
    start_subscription,
    upcoming_charge,
    validate_start_date,
)
from domain.tariff_5p1 import (
    PricePeriod,
    Tariff5p1,
    TariffError,
    TariffNotInForce,
    TicketVariant,
    price_for_month,
    tariff_5p1_from_dict,
    tariff_5p1_from_toml,
)

D = date
NORMAL, REDUCED = TicketVariant.NORMAL, TicketVariant.REDUCED
TARIFF_FILE = Path(__file__).resolve().parents[2] / "tariffs" / "krakow-5plus1.toml"


def make_tariff(*periods: tuple[date, int, int]) -> Tariff5p1:
    """Periods as (effective_from, monthly_normal, plus_one_normal); reduced = 50 %."""
    return Tariff5p1(
        "test",
        tuple(PricePeriod(day, m, m // 2, p, p // 2) for day, m, p in periods),
    )


TARIFF = make_tariff((D(2020, 1, 1), 8000, 2000))


# --------------------------------------------------------------------------- R-5P1-1


FAR_FUTURE = D(2026, 12, 31)


def kk(card_id="c1", until=FAR_FUTURE, since=None, blocked=False, ct=CarrierType.KK):
    return LinkedCard(card_id, ct, ResidentStatus(valid_from=since, valid_until=until), blocked)


def test_r_5p1_1_eligible_cards_are_those_with_valid_resident_status():
    plain = LinkedCard("plain", CarrierType.KKM, None)
    resident = kk("res")
    result = check_eligibility(account_has_pesel=True, cards=[plain, resident], today=D(2025, 5, 1))
    assert result.eligible and result.reason is None
    assert result.eligible_cards == (resident,)


def test_r_5p1_1_no_pesel_no_cards_no_status():
    today = D(2025, 5, 1)
    assert (
        check_eligibility(account_has_pesel=False, cards=[kk()], today=today).reason
        is IneligibleReason.NO_PESEL
    )
    assert (
        check_eligibility(account_has_pesel=True, cards=[], today=today).reason
        is IneligibleReason.NO_CARDS
    )
    plain = LinkedCard("plain", CarrierType.MKKM, None)
    result = check_eligibility(account_has_pesel=True, cards=[plain], today=today)
    assert not result.eligible
    assert result.reason is IneligibleReason.NO_RESIDENT_STATUS


def test_r_5p1_1_expired_not_yet_valid_and_blocked_reasons():
    today = D(2025, 5, 1)
    expired = kk("old", until=D(2025, 4, 30))
    future = kk("new", since=D(2025, 6, 1), until=None)
    blocked = kk("lost", blocked=True)
    plain = LinkedCard("plain", CarrierType.KKM, None)

    def reason(*cards):
        return check_eligibility(account_has_pesel=True, cards=cards, today=today).reason

    assert reason(expired, plain) is IneligibleReason.RESIDENT_STATUS_EXPIRED
    assert reason(future, plain) is IneligibleReason.RESIDENT_STATUS_NOT_YET_VALID
    assert reason(blocked, plain) is IneligibleReason.CARDS_BLOCKED
    assert reason(expired, future, blocked) is IneligibleReason.RESIDENT_STATUS_EXPIRED
    assert reason(expired, kk("ok")) is None


def test_r_5p1_1_status_must_also_hold_on_the_chosen_first_day():
    card = kk(until=D(2025, 5, 10))
    ok = check_eligibility(
        account_has_pesel=True, cards=[card], today=D(2025, 5, 1), first_day=D(2025, 5, 10)
    )
    assert ok.eligible
    late = check_eligibility(
        account_has_pesel=True, cards=[card], today=D(2025, 5, 1), first_day=D(2025, 5, 11)
    )
    assert late.reason is IneligibleReason.RESIDENT_STATUS_EXPIRED
    assert card_eligible_on(card, D(2025, 5, 10)) and not card_eligible_on(card, D(2025, 5, 11))


# --------------------------------------------------------------------------- R-5P1-2 tariff


def test_r_5p1_2_default_tariff_file_public_prices():
    tariff = tariff_5p1_from_toml(TARIFF_FILE.read_text(encoding="utf-8"))
    period = tariff.periods[-1]
    assert (period.plus_one_normal, period.plus_one_reduced) == (2000, 1000)
    assert period.monthly_reduced * 2 == period.monthly_normal  # ulgowy = 50 %


def test_r_5p1_2_months_1_to_5_normal_month_6_plus_one():
    schedule = cycle_schedule(TARIFF, NORMAL, D(2025, 3, 10))
    assert [m.index for m in schedule.months] == [1, 2, 3, 4, 5, 6]
    assert [m.price for m in schedule.months] == [8000] * 5 + [2000]
    assert schedule.total == 42000
    assert schedule.months[-1].is_plus_one
    reduced = cycle_schedule(TARIFF, REDUCED, D(2025, 3, 10))
    assert [m.price for m in reduced.months] == [4000] * 5 + [1000]
    assert (schedule.starts_on, schedule.ends_on) == (D(2025, 3, 10), D(2025, 9, 9))


def test_r_5p1_2_price_for_month_rejects_bad_index_and_days_before_tariff():
    with pytest.raises(ValueError):
        price_for_month(TARIFF, NORMAL, 7, D(2025, 1, 1))
    with pytest.raises(ValueError):
        price_for_month(TARIFF, NORMAL, 0, D(2025, 1, 1))
    with pytest.raises(TariffNotInForce):
        price_for_month(TARIFF, NORMAL, 1, D(2019, 12, 31))


def test_r_5p1_2_price_change_applies_to_months_starting_on_or_after_it():
    tariff = make_tariff((D(2020, 1, 1), 8000, 2000), (D(2025, 3, 1), 9000, 2400))
    assert price_for_month(tariff, NORMAL, 2, D(2025, 2, 28)) == 8000
    assert price_for_month(tariff, NORMAL, 2, D(2025, 3, 1)) == 9000
    assert price_for_month(tariff, REDUCED, 6, D(2025, 3, 1)) == 1200
    schedule = cycle_schedule(tariff, NORMAL, D(2025, 1, 15))
    # 15 Jan, 15 Feb at the old price; 15 Mar onwards at the new one (announced change shown).
    assert [m.price for m in schedule.months] == [8000, 8000, 9000, 9000, 9000, 2400]

    # The month starting 15 Mar is charged on 12 Mar: new price. A month planned (and priced)
    # on 12 Feb for 15 Feb keeps the old price even though it runs into March.
    sub, months = active_subscription(D(2025, 1, 15), tariff=tariff)
    feb = plan_next_month(sub, months, tariff, D(2025, 2, 12))
    assert feb is not None and feb.price == 8000
    paid_feb = on_charge_succeeded(sub, begin_charge(sub, feb, D(2025, 2, 12)), D(2025, 2, 12))
    months = [*months, paid_feb.months[0]]
    mar = plan_next_month(sub, months, tariff, D(2025, 3, 12))
    assert mar is not None and mar.price == 9000


def test_r_5p1_2_tariff_from_dict_defaults_and_explicit_reduced():
    tariff = tariff_5p1_from_dict(
        {
            "name": "5+1",
            "prices": [
                {"effective_from": "2025-06-01", "monthly_normal": "90", "plus_one_normal": "20,00",
                 "monthly_reduced": "44.50"},
                {"effective_from": D(2024, 1, 1), "monthly_normal": "80.00",
                 "plus_one_normal": "20.00"},
            ],
        }
    )  # fmt: skip
    assert [p.effective_from for p in tariff.periods] == [D(2024, 1, 1), D(2025, 6, 1)]
    assert tariff.periods[1].monthly_reduced == 4450
    assert tariff.periods[1].plus_one_reduced == 1000
    assert tariff.periods[0].monthly_reduced == 4000


def test_r_5p1_2_tariff_reduced_percent_rounds_half_up():
    tariff = tariff_5p1_from_dict(
        {
            "reduced_percent": "37.5",
            "prices": [{"effective_from": "2025-01-01", "monthly_normal": "80.01",
                        "plus_one_normal": "20.00"}],
        }
    )  # fmt: skip
    assert tariff.periods[0].monthly_reduced == 3000  # 8001 * 0.375 = 3000.375 -> 3000
    assert tariff.periods[0].plus_one_reduced == 750


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({}, "prices: at least one"),
        ({"prices": []}, "prices: at least one"),
        ({"colour": "red", "prices": [{}]}, "colour: unknown key"),
        ({"prices": [{"effective_from": "2025-01-01", "monthly_normal": 80.0,
                      "plus_one_normal": "20"}]}, "must be an amount in zł written as a string"),
        ({"prices": [{"effective_from": "2025-01-01", "monthly_normal": "abc",
                      "plus_one_normal": "20"}]}, "is not an amount"),
        ({"prices": [{"effective_from": "2025-01-01", "plus_one_normal": "20"}]},
         "monthly_normal: missing"),
        ({"prices": [{"effective_from": "2025-01-01", "monthly_normal": "0",
                      "plus_one_normal": "20"}]}, "more than 0"),
        ({"prices": [{"effective_from": "1 Jan", "monthly_normal": "80",
                      "plus_one_normal": "20"}]}, "must be a date"),
        ({"prices": [{"effective_from": "2025-01-01", "monthly_normal": "80",
                      "plus_one_normal": "90"}]}, '"+1" month may not cost more'),
        ({"prices": [{"effective_from": "2025-01-01", "monthly_normal": "80",
                      "plus_one_normal": "20", "monthly_reduced": "81"}]}, "may not exceed"),
        ({"prices": [{"effective_from": "2025-01-01", "monthly_normal": "80",
                      "plus_one_normal": "20", "typo": 1}]}, "prices[0].typo: unknown key"),
        ({"prices": [{"effective_from": "2025-01-01", "monthly_normal": "80",
                      "plus_one_normal": "20"}] * 2}, "two periods start on 2025-01-01"),
        ({"reduced_percent": 0, "prices": [{"effective_from": "2025-01-01",
                                            "monthly_normal": "80", "plus_one_normal": "20"}]},
         "reduced_percent"),
        ({"reduced_percent": 50.0, "prices": [{"effective_from": "2025-01-01",
                                               "monthly_normal": "80",
                                               "plus_one_normal": "20"}]},
         "reduced_percent"),
        ({"name": "", "prices": [{"effective_from": "2025-01-01", "monthly_normal": "80",
                                  "plus_one_normal": "20"}]}, "name:"),
    ],
)  # fmt: skip
def test_r_5p1_2_tariff_from_dict_rejects_bad_data_clearly(data, fragment):
    with pytest.raises(TariffError) as info:
        tariff_5p1_from_dict(data)
    assert any(fragment in problem for problem in info.value.problems), info.value.problems


def test_r_5p1_2_tariff_from_toml_reports_syntax_errors():
    with pytest.raises(TariffError, match="not valid TOML"):
        tariff_5p1_from_toml("prices = [")


@given(
    monthly=st.integers(min_value=2, max_value=100_000),
    plus_one_share=st.integers(min_value=1, max_value=100),
    variant=st.sampled_from(list(TicketVariant)),
    first_day=st.dates(min_value=D(2020, 1, 1), max_value=D(2100, 12, 31)),
    cycle=st.integers(min_value=1, max_value=5),
)
def test_r_5p1_2_property_cycle_total_is_five_normal_plus_one(
    monthly, plus_one_share, variant, first_day, cycle
):
    plus_one = max(1, monthly * plus_one_share // 100)
    tariff = make_tariff((D(2020, 1, 1), monthly, plus_one))
    period = tariff.periods[0]
    schedule = cycle_schedule(tariff, variant, first_day, cycle)
    assert schedule.total == 5 * period.monthly(variant) + period.plus_one(variant)


# --------------------------------------------------------------------------- R-5P1-3 dates


def test_r_5p1_3_ordinary_month_ends_the_day_before_the_same_day():
    assert month_period(D(2025, 1, 15), 1, 1) == (D(2025, 1, 15), D(2025, 2, 14))
    assert month_period(D(2025, 12, 1), 1, 2) == (D(2026, 1, 1), D(2026, 1, 31))
    assert month_period(D(2025, 11, 20), 1, 2) == (D(2025, 12, 20), D(2026, 1, 19))


def test_r_5p1_3_start_31_january_covers_all_of_february():
    schedule = cycle_schedule(TARIFF, NORMAL, D(2025, 1, 31))
    assert [(m.starts_on, m.ends_on) for m in schedule.months] == [
        (D(2025, 1, 31), D(2025, 2, 28)),
        (D(2025, 3, 1), D(2025, 3, 30)),
        (D(2025, 3, 31), D(2025, 4, 30)),
        (D(2025, 5, 1), D(2025, 5, 30)),
        (D(2025, 5, 31), D(2025, 6, 30)),
        (D(2025, 7, 1), D(2025, 7, 30)),
    ]
    # The next cycle keeps anchoring to the 31st.
    assert month_period(D(2025, 1, 31), 2, 1) == (D(2025, 7, 31), D(2025, 8, 30))
    assert month_period(D(2025, 1, 31), 2, 2) == (D(2025, 8, 31), D(2025, 9, 30))


def test_r_5p1_3_leap_years():
    assert month_period(D(2024, 1, 31), 1, 1) == (D(2024, 1, 31), D(2024, 2, 29))
    assert month_period(D(2024, 1, 29), 1, 1) == (D(2024, 1, 29), D(2024, 2, 28))
    assert month_period(D(2024, 1, 29), 1, 2) == (D(2024, 2, 29), D(2024, 3, 28))
    assert month_period(D(2025, 1, 29), 1, 1) == (D(2025, 1, 29), D(2025, 2, 28))
    assert month_period(D(2025, 1, 29), 1, 2) == (D(2025, 3, 1), D(2025, 3, 28))
    # Starting on 29 Feb of a leap year: every later month starts on the 29th (or 1 Mar).
    assert month_period(D(2024, 2, 29), 1, 2) == (D(2024, 3, 29), D(2024, 4, 28))
    assert month_start(D(2024, 2, 29), 12) == D(2025, 3, 1)
    assert month_start(D(2024, 2, 29), 48) == D(2028, 2, 29)


def test_r_5p1_3_first_day_not_in_the_past():
    today = D(2025, 5, 1)
    assert validate_start_date(D(2025, 4, 30), today) is StartDateProblem.IN_THE_PAST
    assert validate_start_date(today, today) is None
    assert validate_start_date(D(2025, 8, 1), today) is None
    assert (
        validate_start_date(D(2025, 6, 1), today, max_days_ahead=30)
        is StartDateProblem.TOO_FAR_AHEAD
    )
    assert validate_start_date(D(2025, 5, 31), today, max_days_ahead=30) is None
    with pytest.raises(SubscriptionError) as info:
        start_subscription(
            tariff=TARIFF, variant=NORMAL, first_day=D(2025, 4, 30), auto_renew=True, today=today
        )
    assert info.value.code == StartDateProblem.IN_THE_PAST.value


@given(first_day=st.dates(min_value=D(2000, 1, 1), max_value=D(2200, 12, 31)))
def test_r_5p1_3_property_months_never_overlap_nor_leave_gaps(first_day):
    previous_end = first_day - timedelta(days=1)
    for offset in range(30):  # five cycles
        start, end = month_start(first_day, offset), month_end(first_day, offset)
        assert start == previous_end + timedelta(days=1)
        assert 28 <= (end - start).days + 1 <= 31
        # Anchored to the original day: same day-of-month, or the 1st right after a short month.
        if start.day != first_day.day:
            assert start.day == 1 and first_day.day > 28
            before = start - timedelta(days=1)
            assert before.day < first_day.day
        previous_end = end


# --------------------------------------------------------------------------- billing helpers


def active_subscription(
    first_day: date, *, tariff: Tariff5p1 = TARIFF, auto_renew: bool = True
) -> tuple[Subscription, list[SubscriptionMonth]]:
    sub, month1 = start_subscription(
        tariff=tariff, variant=NORMAL, first_day=first_day, auto_renew=auto_renew, today=first_day
    )
    decision = on_charge_succeeded(sub, month1, first_day)
    return decision.subscription, list(decision.months)


@dataclass
class Billing:
    """What the web layer does each day for one subscription, with a scripted gateway."""

    sub: Subscription
    months: dict[tuple[int, int], SubscriptionMonth]
    gateway: Callable[[SubscriptionMonth, date], bool]
    tariff: Tariff5p1 = TARIFF
    policy: BillingPolicy = field(default_factory=BillingPolicy)
    charges: list[tuple[date, tuple[int, int], int, bool]] = field(default_factory=list)
    notices: list[tuple[date, Notice]] = field(default_factory=list)
    tickets: list[tuple[int, int]] = field(default_factory=list)
    keys_paid: set[str] = field(default_factory=set)

    @classmethod
    def start(cls, first_day, gateway, **kwargs) -> Billing:
        sub, months = active_subscription(
            first_day,
            auto_renew=kwargs.pop("auto_renew", True),
            tariff=kwargs.get("tariff", TARIFF),
        )
        billing = cls(sub, {m.position: m for m in months}, gateway, **kwargs)
        billing.tickets.append((1, 1))
        billing.keys_paid.add(charge_key("s1", 1, 1))
        return billing

    def apply(self, decision, today):
        self.sub = decision.subscription
        for month in decision.months:
            self.months[month.position] = month
        self.notices.extend((today, n) for n in decision.notices)
        if decision.issue_ticket_for is not None:
            month = decision.issue_ticket_for
            key = charge_key("s1", month.cycle, month.index)
            assert key not in self.keys_paid, "a month was paid twice"
            self.keys_paid.add(key)
            self.tickets.append(month.position)

    def day(self, today: date) -> None:
        rows = list(self.months.values())
        new = plan_next_month(self.sub, rows, self.tariff, today, self.policy)
        if new is not None:
            assert new.position not in self.months
            self.months[new.position] = new
        due = months_due_for_charge(self.sub, list(self.months.values()), today, self.policy)
        for month in due:
            charging = begin_charge(self.sub, month, today, self.policy)
            self.months[charging.position] = charging
            ok = self.gateway(charging, today)
            self.charges.append((today, charging.position, charging.price, ok))
            if ok:
                self.apply(on_charge_succeeded(self.sub, charging, today), today)
            else:
                self.apply(on_charge_failed(self.sub, charging, today, self.policy), today)
        self.apply(review(self.sub, list(self.months.values()), today, self.policy), today)

    def run(self, first: date, last: date) -> None:
        today = first
        while today <= last:
            self.day(today)
            today += timedelta(days=1)


def always(ok: bool) -> Callable[[SubscriptionMonth, date], bool]:
    return lambda month, today: ok


# --------------------------------------------------------------------------- R-5P1-4 .. 7


def test_r_5p1_4_first_month_is_paid_at_once_then_ticket_and_confirmation():
    today = D(2025, 5, 1)
    sub, month = start_subscription(
        tariff=TARIFF, variant=REDUCED, first_day=D(2025, 5, 3), auto_renew=False, today=today
    )
    assert sub.status is SubscriptionStatus.PENDING_FIRST_PAYMENT
    assert (month.position, month.state, month.attempts, month.price) == (
        (1, 1), MonthState.CHARGING, 1, 4000,
    )  # fmt: skip
    assert (month.starts_on, month.ends_on) == (D(2025, 5, 3), D(2025, 6, 2))
    decision = on_charge_succeeded(sub, month, today)
    assert decision.subscription.status is SubscriptionStatus.ACTIVE
    assert decision.notices == (Notice.SUBSCRIPTION_STARTED,)  # R-5P1-9 confirmation
    assert decision.issue_ticket_for == decision.months[0]
    assert decision.months[0].state is MonthState.PAID and decision.months[0].paid_on == today


def test_r_5p1_4_a_first_payment_the_passenger_cancelled_is_failed_without_a_failure_notice():
    today = D(2025, 5, 1)
    sub, month = start_subscription(
        tariff=TARIFF, variant=NORMAL, first_day=D(2025, 5, 2), auto_renew=True, today=today
    )
    cancelled = on_charge_failed(sub, month, today, cancelled_by_payer=True)
    assert cancelled.notices == ()
    assert cancelled.months[0].state is MonthState.FAILED
    assert begin_charge(sub, cancelled.months[0], today).state is MonthState.CHARGING  # may pay again


def test_r_5p1_4_failed_first_payment_can_be_retried_until_the_first_day():
    today = D(2025, 5, 1)
    sub, month = start_subscription(
        tariff=TARIFF, variant=NORMAL, first_day=D(2025, 5, 2), auto_renew=True, today=today
    )
    failed = on_charge_failed(sub, month, today)
    assert failed.notices == (Notice.FIRST_PAYMENT_FAILED,)
    month = failed.months[0]
    assert month.state is MonthState.FAILED and month.next_attempt_on is None
    assert months_due_for_charge(sub, [month], today) == ()  # no token yet: never automatic
    retry = begin_charge(sub, month, D(2025, 5, 2))
    assert retry.state is MonthState.CHARGING and retry.attempts == 2
    with pytest.raises(SubscriptionError):
        begin_charge(sub, month, D(2025, 5, 3))
    assert review(sub, [month], D(2025, 5, 2)).subscription is sub
    ended = review(sub, [month], D(2025, 5, 3))
    assert ended.subscription.status is SubscriptionStatus.ENDED
    assert ended.subscription.end_reason is EndReason.FIRST_PAYMENT_NOT_COMPLETED
    assert ended.months[0].state is MonthState.CANCELLED
    # A payment that still arrives afterwards is refunded.
    assert on_charge_succeeded(ended.subscription, ended.months[0], D(2025, 5, 3)).refund


def test_r_5p1_4_months_are_charged_charge_days_before_they_start():
    sub, months = active_subscription(D(2025, 1, 15))
    policy = BillingPolicy(charge_days_before=3)
    assert plan_next_month(sub, months, TARIFF, D(2025, 2, 11), policy) is None
    month2 = plan_next_month(sub, months, TARIFF, D(2025, 2, 12), policy)
    assert month2 is not None
    assert (month2.position, month2.state, month2.starts_on, month2.price) == (
        (1, 2), MonthState.DUE, D(2025, 2, 15), 8000,
    )  # fmt: skip
    assert months_due_for_charge(sub, [*months, month2], D(2025, 2, 12), policy) == (month2,)
    assert plan_next_month(sub, [*months, month2], TARIFF, D(2025, 2, 12), policy) is None
    upcoming = upcoming_charge(sub, months, TARIFF, D(2025, 1, 20), policy)
    assert upcoming is not None
    assert (upcoming.charge_on, upcoming.starts_on, upcoming.price) == (
        D(2025, 2, 12), D(2025, 2, 15), 8000,
    )  # fmt: skip


def test_r_5p1_5_full_cycle_then_auto_renewal_into_the_next():
    billing = Billing.start(D(2025, 1, 31), always(True))
    billing.run(D(2025, 1, 31), D(2026, 1, 31))
    paid = sorted(
        (m for m in billing.months.values() if m.state is MonthState.PAID), key=lambda m: m.position
    )
    expected = [(1, i) for i in range(1, 7)] + [(2, i) for i in range(1, 7)] + [(3, 1)]
    assert [m.position for m in paid] == expected
    assert [m.price for m in paid] == [8000] * 5 + [2000] + [8000] * 5 + [2000] + [8000]
    assert billing.sub.status is SubscriptionStatus.ACTIVE
    # Every month charged exactly once, 3 days before it starts, no gap between tickets.
    assert len(billing.charges) == 12 and all(ok for *_, ok in billing.charges)
    for today, position, _, _ in billing.charges:
        assert today == billing.months[position].starts_on - timedelta(days=3)
    for a, b in zip(paid, paid[1:], strict=False):
        assert b.starts_on == a.ends_on + timedelta(days=1)
    renewed = [n for _, n in billing.notices if n is Notice.CYCLE_RENEWED]
    assert len(renewed) == 2
    assert billing.tickets == [m.position for m in paid]
    assert plus_one_earned(paid, 1) and plus_one_earned(paid, 2)


def test_r_5p1_5_without_auto_renewal_the_subscription_ends_with_month_6():
    billing = Billing.start(D(2025, 3, 10), always(True), auto_renew=False)
    billing.run(D(2025, 3, 10), D(2025, 9, 9))
    assert billing.sub.status is SubscriptionStatus.ACTIVE  # month 6 still running
    assert max(billing.months) == (1, 6)
    billing.run(D(2025, 9, 10), D(2025, 12, 31))
    assert billing.sub.status is SubscriptionStatus.ENDED
    assert billing.sub.end_reason is EndReason.CYCLE_COMPLETED
    assert billing.sub.ended_on == D(2025, 9, 10)
    assert max(billing.months) == (1, 6) and len(billing.charges) == 5
    assert (D(2025, 9, 10), Notice.SUBSCRIPTION_ENDED) in billing.notices


def test_r_5p1_5_auto_renewal_can_be_switched_off_mid_cycle():
    billing = Billing.start(D(2025, 3, 10), always(True))
    billing.run(D(2025, 3, 10), D(2025, 5, 1))
    billing.sub = set_auto_renew(billing.sub, False)
    billing.run(D(2025, 5, 2), D(2025, 10, 31))
    assert billing.sub.status is SubscriptionStatus.ENDED
    assert max(billing.months) == (1, 6)


def test_r_5p1_6_declined_renewal_is_retried_then_breaks_the_cycle():
    # Cycle 2 month 1 starts 10 Sep 2025; its charges are declined.
    def gateway(month, today):
        return month.cycle == 1

    billing = Billing.start(D(2025, 3, 10), gateway)
    billing.run(D(2025, 3, 10), D(2025, 12, 31))
    attempts = [(day, pos) for day, pos, _, ok in billing.charges if not ok]
    assert attempts == [(D(2025, 9, 7), (2, 1)), (D(2025, 9, 8), (2, 1)), (D(2025, 9, 9), (2, 1))]
    assert billing.months[(2, 1)].state is MonthState.MISSED
    assert billing.sub.status is SubscriptionStatus.BROKEN
    assert billing.sub.end_reason is EndReason.MONTH_NOT_PAID
    assert billing.sub.ended_on == D(2025, 9, 10)
    notices = [n for _, n in billing.notices]
    assert notices.count(Notice.CHARGE_FAILED_WILL_RETRY) == 2
    assert notices.count(Notice.CHARGE_FAILED_NO_RETRY) == 1
    assert (D(2025, 9, 10), Notice.CYCLE_BROKEN) in billing.notices
    # Nothing more is planned or charged; the paid month 6 of cycle 1 stayed valid to its end.
    assert max(billing.months) == (2, 1)
    assert active_month_on(billing.months.values(), D(2025, 9, 9)).position == (1, 6)
    assert active_month_on(billing.months.values(), D(2025, 9, 10)) is None


def test_r_5p1_6_gap_in_months_1_to_5_means_no_cheap_month_6():
    def gateway(month, today):
        return month.index != 3

    billing = Billing.start(D(2025, 1, 31), gateway)
    billing.run(D(2025, 1, 31), D(2025, 12, 31))
    assert billing.months[(1, 3)].state is MonthState.MISSED
    assert billing.sub.status is SubscriptionStatus.BROKEN
    assert (1, 6) not in billing.months  # the +1 month is never charged
    assert all(pos != (1, 6) for _, pos, _, _ in billing.charges)
    assert not plus_one_earned(list(billing.months.values()), 1)


def test_r_5p1_6_a_retry_that_succeeds_keeps_the_cycle():
    declined = {D(2025, 5, 7)}

    def gateway(month, today):
        return today not in declined

    billing = Billing.start(D(2025, 3, 10), gateway)
    billing.run(D(2025, 3, 10), D(2025, 9, 15))
    assert [(d, ok) for d, pos, _, ok in billing.charges if pos == (1, 3)] == [
        (D(2025, 5, 7), False), (D(2025, 5, 8), True),
    ]  # fmt: skip
    assert billing.months[(1, 6)].state is MonthState.PAID
    assert billing.months[(1, 6)].price == 2000


def test_r_5p1_6_passenger_may_pay_a_failed_month_before_it_starts():
    sub, months = active_subscription(D(2025, 1, 15))
    month2 = plan_next_month(sub, months, TARIFF, D(2025, 2, 12))
    decision = on_charge_failed(sub, begin_charge(sub, month2, D(2025, 2, 12)), D(2025, 2, 12),
                                retryable=False)  # fmt: skip
    failed = decision.months[0]
    assert decision.notices == (Notice.CHARGE_FAILED_NO_RETRY,)
    assert months_due_for_charge(sub, [*months, failed], D(2025, 2, 13)) == ()
    manual = begin_charge(sub, failed, D(2025, 2, 14))
    assert manual.attempts == 2
    paid = on_charge_succeeded(sub, manual, D(2025, 2, 14))
    assert paid.notices == (Notice.MONTH_PAID,)
    with pytest.raises(SubscriptionError):
        begin_charge(sub, failed, D(2025, 2, 15))


def test_r_5p1_6_max_attempts_caps_automatic_retries():
    def never(month, today):
        return month.position == (1, 1)

    billing = Billing.start(D(2025, 1, 15), never, policy=BillingPolicy(charge_days_before=5,
                                                                       max_attempts=2))  # fmt: skip
    billing.run(D(2025, 1, 15), D(2025, 2, 20))
    assert [d for d, pos, _, _ in billing.charges] == [D(2025, 2, 10), D(2025, 2, 11)]
    assert billing.sub.status is SubscriptionStatus.BROKEN


def test_r_5p1_6_a_month_we_never_tried_is_not_the_passengers_fault():
    # Outage: the billing job did not run before 15 Feb. Grace 2 days, then missed.
    sub, months = active_subscription(D(2025, 1, 15))
    policy = BillingPolicy(late_charge_grace_days=2)
    month2 = plan_next_month(sub, months, TARIFF, D(2025, 2, 16), policy)
    assert month2 is not None and month2.attempts == 0
    rows = [*months, month2]
    assert review(sub, rows, D(2025, 2, 16), policy).subscription is sub
    assert months_due_for_charge(sub, rows, D(2025, 2, 16), policy) == (month2,)
    assert months_due_for_charge(sub, rows, D(2025, 2, 17), policy) == ()
    broken = review(sub, rows, D(2025, 2, 17), policy)
    assert broken.subscription.status is SubscriptionStatus.BROKEN


def test_r_5p1_6_charge_in_flight_when_the_month_starts_is_awaited():
    sub, months = active_subscription(D(2025, 1, 15))
    month2 = begin_charge(sub, plan_next_month(sub, months, TARIFF, D(2025, 2, 14)), D(2025, 2, 14))
    assert review(sub, [*months, month2], D(2025, 2, 16)).subscription is sub
    late = on_charge_succeeded(sub, month2, D(2025, 2, 16))
    assert late.issue_ticket_for is not None and not late.refund


def test_r_5p1_6_never_charged_twice_for_one_month():
    sub, months = active_subscription(D(2025, 1, 15))
    month2 = plan_next_month(sub, months, TARIFF, D(2025, 2, 12))
    charging = begin_charge(sub, month2, D(2025, 2, 12))
    with pytest.raises(SubscriptionError):
        begin_charge(sub, charging, D(2025, 2, 12))  # already in flight
    first = on_charge_succeeded(sub, charging, D(2025, 2, 12))
    paid = first.months[0]
    again = on_charge_succeeded(first.subscription, paid, D(2025, 2, 12))
    assert again.duplicate and again.issue_ticket_for is None and again.months == ()
    assert on_charge_failed(first.subscription, paid, D(2025, 2, 12)).duplicate
    with pytest.raises(SubscriptionError):
        begin_charge(first.subscription, paid, D(2025, 2, 13))
    assert months_due_for_charge(first.subscription, [*months, paid], D(2025, 2, 13)) == ()
    # Keys: one per month, one per gateway attempt.
    assert charge_key(7, 2, 1) == "5p1:7:2:1" != charge_key(7, 1, 2)
    assert attempt_key(7, 1, 2, 1) != attempt_key(7, 1, 2, 2)
    assert attempt_key(7, 1, 2, 1).startswith(charge_key(7, 1, 2))
    with pytest.raises(ValueError):
        charge_key(7, 1, 7)
    with pytest.raises(ValueError):
        attempt_key(7, 1, 1, 0)


def test_r_5p1_6_month_6_after_a_gap_would_cost_the_normal_price():
    # Defensive rule: even if rows were inconsistent, month 6 is cheap only after paid 1-5.
    sub, months = active_subscription(D(2025, 1, 15))
    rows = list(months)
    for index in range(2, 6):
        start, end = month_period(sub.first_day, 1, index)
        state = MonthState.MISSED if index == 3 else MonthState.PAID
        rows.append(SubscriptionMonth(1, index, start, end, 8000, state))
    month6 = plan_next_month(sub, rows, TARIFF, D(2025, 6, 14))
    assert month6 is not None and month6.index == 6 and month6.price == 8000


def test_r_5p1_7_cancellation_mid_cycle_keeps_paid_tickets_and_stops_charges():
    billing = Billing.start(D(2025, 1, 15), always(True))
    billing.run(D(2025, 1, 15), D(2025, 4, 12))  # month 4 (from 15 Apr) planned on 12 Apr
    month4 = billing.months[(1, 4)]
    billing.months[(1, 4)] = SubscriptionMonth(  # as if its charge had not been made yet
        1, 4, month4.starts_on, month4.ends_on, month4.price, MonthState.DUE
    )
    billing.charges.pop()
    billing.tickets.pop()
    decision = cancel(billing.sub, list(billing.months.values()), D(2025, 4, 13))
    billing.apply(decision, D(2025, 4, 13))
    assert billing.sub.status is SubscriptionStatus.CANCELLED
    assert billing.sub.end_reason is EndReason.CANCELLED_BY_PASSENGER
    assert decision.notices == (Notice.SUBSCRIPTION_CANCELLED,)
    assert billing.months[(1, 4)].state is MonthState.CANCELLED
    charges_before = len(billing.charges)
    billing.run(D(2025, 4, 13), D(2025, 12, 31))
    assert len(billing.charges) == charges_before == 2
    assert billing.tickets == [(1, 1), (1, 2), (1, 3)]
    assert max(billing.months) == (1, 4)
    assert billing.sub.status is SubscriptionStatus.CANCELLED
    # The paid month 3 stays valid to its end.
    assert active_month_on(billing.months.values(), D(2025, 4, 14)).position == (1, 3)
    assert active_month_on(billing.months.values(), D(2025, 4, 15)) is None
    with pytest.raises(SubscriptionError):
        cancel(billing.sub, list(billing.months.values()), D(2025, 4, 14))
    with pytest.raises(SubscriptionError):
        set_auto_renew(billing.sub, True)


def test_r_5p1_7_a_charge_in_flight_at_cancellation_is_refunded():
    sub, months = active_subscription(D(2025, 1, 15))
    planned = plan_next_month(sub, months, TARIFF, D(2025, 2, 12))
    charging = begin_charge(sub, planned, D(2025, 2, 12))
    decision = cancel(sub, [*months, charging], D(2025, 2, 12), CancelReason.NOT_ELIGIBLE)
    assert decision.subscription.end_reason is EndReason.NOT_ELIGIBLE
    (cancelled_month,) = decision.months
    assert cancelled_month.state is MonthState.CANCELLED
    late = on_charge_succeeded(decision.subscription, cancelled_month, D(2025, 2, 12))
    assert late.refund and late.issue_ticket_for is None
    assert on_charge_failed(decision.subscription, cancelled_month, D(2025, 2, 12)).duplicate


def test_r_5p1_7_cancel_before_the_first_payment_completes():
    today = D(2025, 5, 1)
    sub, month = start_subscription(
        tariff=TARIFF, variant=NORMAL, first_day=today, auto_renew=True, today=today
    )
    decision = cancel(sub, [month], today)
    assert decision.subscription.status is SubscriptionStatus.CANCELLED
    assert on_charge_succeeded(decision.subscription, decision.months[0], today).refund


def test_billing_policy_rejects_nonsense():
    for kwargs in ({"charge_days_before": 0}, {"retry_every_days": 0}, {"max_attempts": 0},
                   {"late_charge_grace_days": -1}):  # fmt: skip
        with pytest.raises(ValueError):
            BillingPolicy(**kwargs)


# --------------------------------------------------------------------------- rules that lived in web/ (issue 14)


def _charging_renewal() -> tuple[Subscription, SubscriptionMonth]:
    sub = Subscription(variant=TicketVariant.NORMAL, first_day=D(2025, 3, 10), auto_renew=True,
                       status=SubscriptionStatus.ACTIVE)
    month = SubscriptionMonth(cycle=1, index=2, starts_on=D(2025, 4, 10), ends_on=D(2025, 5, 9), price=8_900,
                              state=MonthState.CHARGING, attempts=1)
    return sub, month


@pytest.mark.parametrize("code", ["token_expired", "token_removed", "card_expired"])
def test_r_5p1_6_a_decline_no_retry_can_fix_is_not_retried(code):
    sub, month = _charging_renewal()
    decision = on_charge_declined(sub, month, D(2025, 4, 7), BillingPolicy(), code)
    [failed] = decision.months
    assert failed.state is MonthState.FAILED and failed.next_attempt_on is None
    assert decision.notices == (Notice.CHARGE_FAILED_NO_RETRY,)


@pytest.mark.parametrize("code", [None, "", "insufficient_funds", "do_not_honor", "timeout"])
def test_r_5p1_6_any_other_decline_is_retried(code):
    sub, month = _charging_renewal()
    decision = on_charge_declined(sub, month, D(2025, 4, 7), BillingPolicy(), code)
    assert decision == on_charge_failed(sub, month, D(2025, 4, 7), BillingPolicy(), retryable=True)
    assert decision.months[0].next_attempt_on == D(2025, 4, 8)


@pytest.mark.parametrize("code", ["cancelled", "canceled"])
def test_r_5p1_6_a_payment_the_payer_cancelled_is_not_mailed_as_failed(code):
    sub, month = _charging_renewal()
    first = replace(sub, status=SubscriptionStatus.PENDING_FIRST_PAYMENT)
    month = replace(month, index=1, starts_on=D(2025, 3, 10), ends_on=D(2025, 4, 9))
    decision = on_charge_declined(first, month, D(2025, 3, 9), BillingPolicy(), code)
    assert decision.months[0].state is MonthState.FAILED and decision.notices == ()
    assert payer_cancelled(code) and not payer_cancelled("insufficient_funds") and not payer_cancelled(None)


@pytest.mark.parametrize("state", [MonthState.FAILED, MonthState.DUE])
def test_r_pay_1_a_payment_of_another_attempt_still_pays_the_month(state):
    sub, month = _charging_renewal()
    decision = on_payment_arrived(sub, replace(month, state=state), D(2025, 4, 7))
    assert decision.months[0].state is MonthState.PAID and decision.issue_ticket_for is not None
    assert on_payment_arrived(sub, month, D(2025, 4, 7)) == on_charge_succeeded(sub, month, D(2025, 4, 7))
    paid = decision.months[0]
    assert on_payment_arrived(sub, paid, D(2025, 4, 8)).duplicate  # a second payment: refunded by the caller


def test_r_5p1_3_a_ticket_is_valid_from_its_first_days_midnight_to_the_midnight_after_its_last_day():
    from zoneinfo import ZoneInfo

    warsaw = ZoneInfo("Europe/Warsaw")
    start, end = ticket_validity(D(2026, 3, 10), D(2026, 4, 9), warsaw)  # across the spring clock change
    assert start == datetime(2026, 3, 9, 23, 0, tzinfo=UTC)
    assert end == datetime(2026, 4, 9, 22, 0, tzinfo=UTC)  # 10 April 00:00 summer time
    start, end = ticket_validity(D(2026, 10, 10), D(2026, 11, 9), warsaw)
    assert (start, end) == (datetime(2026, 10, 9, 22, 0, tzinfo=UTC), datetime(2026, 11, 9, 23, 0, tzinfo=UTC))
