"""The 5+1 tariff as data (R-5P1-2): versioned prices, never hard-coded in the rules.

A cycle is six consecutive monthly tickets: months 1–5 cost the monthly price, month 6 costs the
"+1" price. Each has a normal and a reduced (ulgowy) amount; the reduced amounts default to
`reduced_percent` (50 %) of the normal ones, rounded half-up to the grosz, unless given explicitly.

Prices change over time, so a tariff is a list of price periods, each in force from its
`effective_from` day until the next period's `effective_from` (the last one is open-ended).

Which period prices a month (the rule, stated once):
    **A monthly ticket costs what the period in force on its first day of validity says.**
So a price change effective on 1 March applies to every month that *starts* on or after 1 March,
even when that month is charged a few days earlier (months are charged `charge_days_before` their
start); a month that started before the change keeps the price it was charged at, and a month's
price is fixed on its row when the month is planned and never recomputed afterwards. The full
cycle schedule shown before paying already uses any announced future period.

The web layer loads `tariffs/krakow-5plus1.toml` and passes the plain dict to
`tariff_5p1_from_dict` (or the text to `tariff_5p1_from_toml`), which validates it and reports all
problems at once in a `TariffError`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from domain.money import Grosze, MoneyFormatError, parse_pln, percent_of

CYCLE_LENGTH = 6
PLUS_ONE_MONTH_INDEX = 6


class TicketVariant(StrEnum):
    """Chosen at purchase (R-5P1-2)."""

    NORMAL = "normal"
    REDUCED = "reduced"  # ulgowy


@dataclass(frozen=True)
class PricePeriod:
    """Prices in force from `effective_from` (inclusive) until the next period starts."""

    effective_from: date
    monthly_normal: Grosze
    monthly_reduced: Grosze
    plus_one_normal: Grosze
    plus_one_reduced: Grosze
    source: str = ""
    """Where the prices come from (the price list, resolution or announcement; "unverified" if unchecked)."""

    def monthly(self, variant: TicketVariant) -> Grosze:
        return self.monthly_normal if variant is TicketVariant.NORMAL else self.monthly_reduced

    def plus_one(self, variant: TicketVariant) -> Grosze:
        return self.plus_one_normal if variant is TicketVariant.NORMAL else self.plus_one_reduced


@dataclass(frozen=True)
class Tariff5p1:
    """A 5+1 tariff: price periods sorted by `effective_from`, strictly increasing."""

    name: str
    periods: tuple[PricePeriod, ...]

    def __post_init__(self) -> None:
        if not self.periods:
            raise ValueError("a tariff needs at least one price period")
        days = [p.effective_from for p in self.periods]
        if any(b <= a for a, b in zip(days, days[1:], strict=False)):
            raise ValueError("price periods must be in strictly increasing effective_from order")

    @property
    def in_force_from(self) -> date:
        return self.periods[0].effective_from


class TariffNotInForce(LookupError):
    """No price period covers the day asked about (it is before the first period)."""


def period_in_force(tariff: Tariff5p1, day: date) -> PricePeriod:
    """The price period in force on `day`: the last one with `effective_from <= day`."""
    found: PricePeriod | None = None
    for period in tariff.periods:
        if period.effective_from <= day:
            found = period
        else:
            break
    if found is None:
        raise TariffNotInForce(
            f"tariff {tariff.name!r} has no prices before {tariff.in_force_from}"
        )
    return found


def price_for_month(
    tariff: Tariff5p1, variant: TicketVariant, month_index: int, month_start: date
) -> Grosze:
    """Price of month `month_index` (1..6) of a cycle whose ticket starts on `month_start`.

    Months 1–5 cost the monthly price, month 6 the "+1" price (R-5P1-2), both taken from the
    price period in force on `month_start` (see the module docstring for why). Whether month 6
    has been *earned* (no gap in months 1–5, R-5P1-6) is decided by the subscription rules, not
    here.
    """
    if not 1 <= month_index <= CYCLE_LENGTH:
        raise ValueError(f"month index must be 1..{CYCLE_LENGTH}, got {month_index}")
    period = period_in_force(tariff, month_start)
    if month_index == PLUS_ONE_MONTH_INDEX:
        return period.plus_one(variant)
    return period.monthly(variant)


class TariffError(ValueError):
    """A tariff file that does not describe a usable 5+1 tariff. `problems` lists every issue."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid 5+1 tariff: " + "; ".join(self.problems))


_TOP_KEYS = {"name", "reduced_percent", "prices"}
_PERIOD_KEYS = {
    "effective_from",
    "monthly_normal",
    "monthly_reduced",
    "plus_one_normal",
    "plus_one_reduced",
    "source",
}
SOURCE_MAX_LENGTH = 500


def _amount(raw: Any, where: str, problems: list[str], *, required: bool) -> Grosze | None:
    if raw is None:
        if required:
            problems.append(f"{where}: missing")
        return None
    if not isinstance(raw, str):
        problems.append(f'{where}: must be an amount in zł written as a string, e.g. "80.00"')
        return None
    try:
        value = parse_pln(raw)
    except MoneyFormatError:
        problems.append(f"{where}: {raw!r} is not an amount in zł")
        return None
    if value <= 0:
        problems.append(f"{where}: must be more than 0 zł")
        return None
    return value


def _day(raw: Any, where: str, problems: list[str]) -> date | None:
    if type(raw) is date:  # a TOML local date; a datetime is not a day
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    problems.append(f"{where}: must be a date like 2025-01-01")
    return None


def _percent(raw: Any, problems: list[str]) -> Decimal | None:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        problems.append('reduced_percent: must be an integer or a decimal string such as "50"')
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        problems.append(f"reduced_percent: {raw!r} is not a number")
        return None
    if not value.is_finite() or not 0 < value <= 100:
        problems.append("reduced_percent: must be more than 0 and at most 100")
        return None
    return value


def tariff_5p1_from_dict(data: Mapping[str, Any]) -> Tariff5p1:
    """Build and validate a tariff from a plain dict (e.g. parsed TOML).

    Shape::

        name = "Bilet 5+1"                # optional
        reduced_percent = 50              # optional, default 50
        [[prices]]
        effective_from = 2025-01-01       # TOML date or "YYYY-MM-DD"
        monthly_normal = "80.00"          # zł as a string (never a float)
        plus_one_normal = "20.00"
        monthly_reduced = "40.00"         # optional: default reduced_percent of normal
        plus_one_reduced = "10.00"        # optional: default reduced_percent of normal
        source = "uchwała …"              # optional: where the prices come from

    Raises `TariffError` listing every problem found.
    """
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise TariffError(["the tariff must be a table of keys"])
    for key in sorted(set(data) - _TOP_KEYS):
        problems.append(f"{key}: unknown key")

    name = data.get("name", "Bilet 5+1")
    if not isinstance(name, str) or not name.strip():
        problems.append("name: must be a non-empty string")
        name = "Bilet 5+1"

    percent = _percent(data.get("reduced_percent", 50), problems)

    raw_prices = data.get("prices")
    if not isinstance(raw_prices, list) or not raw_prices:
        problems.append("prices: at least one [[prices]] period is required")
        raw_prices = []

    periods: list[PricePeriod] = []
    for i, raw in enumerate(raw_prices):
        where = f"prices[{i}]"
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: must be a table")
            continue
        before = len(problems)
        for key in sorted(set(raw) - _PERIOD_KEYS):
            problems.append(f"{where}.{key}: unknown key")
        day = _day(raw.get("effective_from"), f"{where}.effective_from", problems)
        m_norm = _amount(
            raw.get("monthly_normal"), f"{where}.monthly_normal", problems, required=True
        )
        p_norm = _amount(
            raw.get("plus_one_normal"), f"{where}.plus_one_normal", problems, required=True
        )
        m_red = _amount(
            raw.get("monthly_reduced"), f"{where}.monthly_reduced", problems, required=False
        )
        p_red = _amount(
            raw.get("plus_one_reduced"), f"{where}.plus_one_reduced", problems, required=False
        )
        source = raw.get("source", "")
        if not isinstance(source, str) or len(source) > SOURCE_MAX_LENGTH:
            problems.append(f"{where}.source: must be a text of at most {SOURCE_MAX_LENGTH} characters")
            source = ""
        if len(problems) > before or day is None or m_norm is None or p_norm is None:
            continue
        if percent is None:
            continue
        if m_red is None:
            m_red = percent_of(m_norm, percent)
        if p_red is None:
            p_red = percent_of(p_norm, percent)
        if m_red <= 0 or p_red <= 0:
            problems.append(f"{where}: reduced prices must be more than 0 zł")
            continue
        if m_red > m_norm or p_red > p_norm:
            problems.append(f"{where}: a reduced price may not exceed the normal one")
        if p_norm > m_norm or p_red > m_red:
            problems.append(f'{where}: the "+1" month may not cost more than a normal month')
        periods.append(PricePeriod(day, m_norm, m_red, p_norm, p_red, source.strip()))

    periods.sort(key=lambda p: p.effective_from)
    for a, b in zip(periods, periods[1:], strict=False):
        if a.effective_from == b.effective_from:
            problems.append(f"prices: two periods start on {a.effective_from}")

    if problems:
        raise TariffError(problems)
    return Tariff5p1(name=name.strip(), periods=tuple(periods))


def tariff_5p1_from_toml(text: str) -> Tariff5p1:
    """Parse TOML text (already read by the caller) into a validated tariff."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TariffError([f"not valid TOML: {exc}"]) from exc
    return tariff_5p1_from_dict(data)
