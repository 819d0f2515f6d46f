"""The operator's back office (issue 17): rules its dashboards and exports follow. Pure: today's date, the
rows and amounts are arguments.

- Exports are safe to open in a spreadsheet: a cell a spreadsheet would read as a formula (starting with
  `=`, `+`, `-`, `@`, a tab or a carriage return) is neutralised with a leading apostrophe; an export holds
  at most `MAX_EXPORT_ROWS` rows.
- A dashboard covers a period of whole days (Warsaw calendar), at most `MAX_PERIOD_DAYS` long.
- A parking meter's cash: the coins booked as top-ups on a day against the cash staff collected from its
  box for that day; any difference is flagged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

MAX_EXPORT_ROWS = 50_000
MAX_PERIOD_DAYS = 366
DEFAULT_PERIOD_DAYS = 30
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MAX_CELL = 1000


def safe_cell(value: object) -> str:
    """A value as a CSV cell no spreadsheet runs as a formula: text starting with = + - @ tab or CR gets a
    leading apostrophe (negative numbers too: an export shows them as text, never as a formula). Bounded."""
    text = "" if value is None else str(value)
    text = text[:MAX_CELL]
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]], *, max_rows: int = MAX_EXPORT_ROWS) -> str:
    """The CSV document (comma-separated, CRLF lines as RFC 4180) of at most `max_rows` rows, every cell safe."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(h) for h in header])
    for count, row in enumerate(rows):
        if count >= max_rows:
            break
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()


@dataclass(frozen=True)
class Period:
    first: date
    last: date  # inclusive

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def each_day(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range(self.days)]


def _day(text: str) -> date | None:
    text = text.strip()
    if len(text) != 10:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def read_period(first_text: str, last_text: str, today: date) -> tuple[Period, dict[str, str]]:
    """The period a dashboard shows, from the form's `from` and `to` (YYYY-MM-DD, both optional: the last
    DEFAULT_PERIOD_DAYS days up to today). Returns the period to show and problem codes per field; with a
    problem the default period is shown."""
    default = Period(today - timedelta(days=DEFAULT_PERIOD_DAYS - 1), today)
    problems: dict[str, str] = {}
    first = default.first if not first_text.strip() else _day(first_text[:40])
    last = default.last if not last_text.strip() else _day(last_text[:40])
    if first is None:
        problems["from"] = "office.date_format"
    if last is None:
        problems["to"] = "office.date_format"
    if problems:
        return default, problems
    assert first is not None and last is not None
    if last < first:
        return default, {"to": "office.period_reversed"}
    if (last - first).days + 1 > MAX_PERIOD_DAYS:
        return default, {"from": "office.period_too_long"}
    return Period(first, last), {}


def fare_category(kind: str, detail: str) -> str:
    """The fare type of a ride entry of the e-purse ledger: companions (co-passengers, baggage, animals),
    short, suburban, reduced (any discount or free ride) or normal. `detail` is `zone:discount`."""
    if kind == "companion":
        return "companion"
    zone, _, discount = detail.partition(":")
    if zone in ("short", "suburban"):
        return zone
    if discount and discount != "normal":
        return "reduced"
    return "normal"


FARE_CATEGORIES = ("normal", "reduced", "short", "suburban", "companion")


@dataclass(frozen=True)
class CashDay:
    day: date
    booked: int  # grosze of coin top-ups booked by the meter that day
    collected: int | None  # grosze staff counted from the box for that day; None: not entered yet

    @property
    def difference(self) -> int | None:
        return None if self.collected is None else self.collected - self.booked

    @property
    def flagged(self) -> bool:
        """A difference between the booked coins and the cash collected (either way) is flagged."""
        return self.difference not in (None, 0)


def cash_days(booked: dict[date, int], collected: dict[date, int]) -> list[CashDay]:
    """Every day with booked coins or a collection, newest first."""
    days = sorted(set(booked) | set(collected), reverse=True)
    return [CashDay(day, booked.get(day, 0), collected.get(day)) for day in days]


MAX_COLLECTED = 10_000_000  # grosze (100 000 zł) a meter's box cannot hold more
