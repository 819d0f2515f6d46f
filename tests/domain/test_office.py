"""Back-office rules (issue 17): spreadsheet-safe CSV exports, the dashboards' period, fare types, a meter's cash."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from domain.office import (MAX_PERIOD_DAYS, CashDay, Period, cash_days, csv_text, fare_category, read_period,
                           safe_cell)

TODAY = date(2027, 3, 15)


@pytest.mark.parametrize("value", ["=1+1", "+48 600", "-2", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")'])
def test_export_cells_a_spreadsheet_would_run_as_a_formula_are_neutralised(value):
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value, shown", [("BUS 7", "BUS 7"), (12, "12"), (None, ""), (2.5, "2.5"), ("a=b", "a=b")])
def test_ordinary_cells_are_left_alone(value, shown):
    assert safe_cell(value) == shown


def test_csv_export_is_bounded_and_every_cell_safe():
    text = csv_text(["=name", "n"], ([f"-{i}", i] for i in range(10)), max_rows=3)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["'=name", "n"], ["'-0", "0"], ["'-1", "1"], ["'-2", "2"]]
    assert len(safe_cell("x" * 5000)) == 1000


def test_period_defaults_to_the_last_30_days_and_is_checked():
    period, problems = read_period("", "", TODAY)
    assert problems == {} and period == Period(date(2027, 2, 14), TODAY) and period.days == 30
    assert read_period("2027-01-01", "2027-01-31", TODAY) == (Period(date(2027, 1, 1), date(2027, 1, 31)), {})
    assert read_period("2027-02-30", "", TODAY)[1] == {"from": "office.date_format"}
    assert read_period("x" * 5000, "", TODAY)[1] == {"from": "office.date_format"}
    assert read_period("2027-02-01", "2027-01-01", TODAY)[1] == {"to": "office.period_reversed"}
    assert read_period("2025-01-01", "2027-01-01", TODAY)[1] == {"from": "office.period_too_long"}
    assert read_period("2026-01-01", "2026-12-31", TODAY)[0].days == 365 <= MAX_PERIOD_DAYS


@pytest.mark.parametrize("kind, detail, category", [
    ("fare", "city:normal", "normal"), ("fare", "city:off_50", "reduced"), ("fare", "city:free", "reduced"),
    ("credit_ride", "city:normal", "normal"), ("fare", "short:normal", "short"), ("fare", "suburban:off_30", "suburban"),
    ("companion", "baggage", "companion"), ("companion", "city:normal", "companion"), ("fare", "", "normal"),
])
def test_fare_types(kind, detail, category):
    assert fare_category(kind, detail) == category


def test_meter_cash_difference_is_flagged_either_way_and_missing_counts_are_not():
    days = cash_days({date(2027, 3, 1): 700, date(2027, 3, 2): 500, date(2027, 3, 3): 200},
                     {date(2027, 3, 1): 650, date(2027, 3, 2): 500, date(2027, 3, 4): 100})
    assert days == [CashDay(date(2027, 3, 4), 0, 100), CashDay(date(2027, 3, 3), 200, None),
                    CashDay(date(2027, 3, 2), 500, 500), CashDay(date(2027, 3, 1), 700, 650)]
    assert [d.flagged for d in days] == [True, False, False, True]
    assert days[3].difference == -50 and days[1].difference is None
