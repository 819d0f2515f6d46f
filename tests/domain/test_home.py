"""The start page's reminders (domain.home): a resident status that ends soon."""

from __future__ import annotations

from datetime import date, timedelta

from domain import home

TODAY = date(2027, 3, 1)


def test_status_ending_within_30_days_is_pointed_out_with_the_days_left() -> None:
    assert home.STATUS_WARNING_DAYS == 30
    assert home.status_days_left(TODAY, TODAY) == 0
    assert home.status_days_left(TODAY + timedelta(days=30), TODAY) == 30
    assert home.status_days_left(TODAY + timedelta(days=31), TODAY) is None
    assert home.status_days_left(TODAY - timedelta(days=1), TODAY) is None  # ended: not "expiring"
    assert home.status_days_left(None, TODAY) is None
