"""The seed helpers build months through the domain's rules, on every day of the year (issue 11: a seed
that made 30-day months broke the billing tests whenever month 2 fell in a 31-day month)."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.five_plus_one import BillingPolicy, month_period
from tests.support.seeds import due_month_layout, first_day_for


def _every_day(first: date, last: date):
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def test_r_5p1_3_seeded_months_follow_the_rule_on_every_day_of_four_years() -> None:
    """2026-2029 (2028 a leap year): the due month starts in the charge window, the months before it
    are the domain's, one after another with no gap and no overlap, each anchored to the first day."""
    window = BillingPolicy().charge_days_before
    for today in _every_day(date(2026, 1, 1), date(2029, 12, 31)):
        first_day, due_index = due_month_layout(today, starts_in_days=2, charge_days_before=window)
        periods = [month_period(first_day, 1, index) for index in range(1, due_index + 1)]
        due_start = periods[-1][0]
        assert today < due_start <= today + timedelta(days=window), today
        assert periods[0][0] == first_day
        for (_, end), (start, _) in zip(periods, periods[1:]):
            assert start == end + timedelta(days=1), today
        for start, _ in periods:
            assert start.day == first_day.day or (start.day == 1 and first_day.day > 28), (today, first_day)


def test_seeded_month_2_is_the_one_asked_for_when_a_month_2_starts_that_day() -> None:
    assert due_month_layout(date(2026, 11, 29), 2) == (date(2026, 11, 1), 2)  # the day issue 11 was red
    assert due_month_layout(date(2027, 1, 30), 2) == (date(2027, 1, 1), 2)
    # No month 2 starts on 29, 30 or 31 March 2027 (from 29-31 January month 2 starts on 1 March): a month 3.
    assert due_month_layout(date(2027, 3, 28), 2) == (date(2027, 1, 30), 3)


@given(day=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)), offset=st.integers(1, 12))
def test_first_day_for_inverts_the_month_rule(day: date, offset: int) -> None:
    first_day = first_day_for(day, offset)
    if first_day is not None:
        assert month_period(first_day, 1 + offset // 6, offset % 6 + 1)[0] == day
