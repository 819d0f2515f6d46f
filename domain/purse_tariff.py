"""The Kołobrzeg city card (KKM) operator's price list, as data.

Every price is tariff configuration (RULES.md), never code: the web layer loads
`tariffs/kolobrzeg-purse.toml` and hands the plain dict to `purse_tariff_from_dict`, which
checks it and says exactly what is wrong. `DEFAULT_PURSE_TARIFF` holds the same public prices.

Money in a tariff dict is written as a złoty string ("2.80" or "2,80"), never as a number, so
nobody can confuse złoty with grosze or slip a float in (R-MONEY-1). Percentages are integers or
decimal strings ("12.5").

Defaults where neither the seed nor RULES.md gives a value (documented, configurable):
- parking: the minimum fee (1 zł) buys 30 minutes and each unit (0.50 zł) 15 minutes more,
  i.e. 2 zł per hour; the seed fixes only the fees, not the minutes.
- parking hours (R-PARK-4): paid Monday to Friday 08:00-18:00, at most 3 hours of paid time per ticket,
  Polish public holidays free (the `holidays` calendar; `public_holidays_free`), weekends free, no other
  free dates (the operator may list them in `free_dates`). Each of
  these may be left out of a tariff file, then these defaults apply.
- baggage/animal: one flat fare (the normal city fare), on city and suburban lines alike.
- bonus at a parking meter: RULES.md R-TOP-3 gives the bonus for personal cards without naming a
  channel, so it applies at meters too (`bonus_at_meter = true`); the seed lists it under
  service-point top-ups, and an operator who reads it that way sets `bonus_at_meter = false`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from domain.money import Grosze, MoneyFormatError, parse_pln, percent_of


class Discount(StrEnum):
    """The fare levels a validator sells (R-VAL-3: T pressed 1x..4x)."""

    NORMAL = "normal"
    OFF_30 = "off_30"
    OFF_50 = "off_50"
    OFF_75 = "off_75"


class TariffError(ValueError):
    """A tariff that cannot be used; `problems` lists every fault as "path: what is wrong"."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid purse tariff:\n" + "\n".join(f"- {p}" for p in self.problems))


@dataclass(frozen=True)
class FareTable:
    """One line type's fare for each discount level, in grosze."""

    normal: Grosze
    off_30: Grosze
    off_50: Grosze
    off_75: Grosze

    def price(self, discount: Discount) -> Grosze:
        return {
            Discount.NORMAL: self.normal,
            Discount.OFF_30: self.off_30,
            Discount.OFF_50: self.off_50,
            Discount.OFF_75: self.off_75,
        }[discount]

    def all_prices(self) -> tuple[Grosze, ...]:
        return (self.normal, self.off_30, self.off_50, self.off_75)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class ParkingTariff:
    """R-PARK-2: the first "+" costs `minimum_fee` and buys `minimum_minutes`; each next "+"
    costs `unit_fee` and buys `unit_minutes` more.

    R-PARK-4: parking is paid on `paid_weekdays` (Monday = 0) that are not in `free_dates` nor (with
    `public_holidays_free`) Polish public holidays, from
    `paid_from` to `paid_until` (minutes after local midnight, 1440 = midnight at the day's end), and one
    ticket buys at most `longest_stay_minutes` of paid time (`domain.parking_hours`)."""

    minimum_fee: Grosze = 100
    minimum_minutes: int = 30
    unit_fee: Grosze = 50
    unit_minutes: int = 15
    paid_weekdays: frozenset[int] = frozenset(range(5))
    paid_from: int = 8 * 60
    paid_until: int = 18 * 60
    longest_stay_minutes: int = 180
    free_dates: frozenset[date] = frozenset()
    public_holidays_free: bool = True  # Polish public holidays (the `holidays` calendar) are free too

    def fee(self, presses: int) -> Grosze:
        if presses <= 0:
            return 0
        return self.minimum_fee + (presses - 1) * self.unit_fee

    def minutes(self, presses: int) -> int:
        if presses <= 0:
            return 0
        return self.minimum_minutes + (presses - 1) * self.unit_minutes


@dataclass(frozen=True)
class BonusBracket:
    """A top-up of at least `from_amount` (and below the next bracket) earns `percent` bonus."""

    from_amount: Grosze
    percent: Decimal


@dataclass(frozen=True)
class TopUpLimits:
    """R-TOP-1 / R-TOP-2 limits and R-TOP-3 bonus brackets (ascending by `from_amount`)."""

    service_point_minimum: Grosze = 500
    meter_minimum: Grosze = 200
    meter_maximum: Grosze = 20000
    meter_coins: tuple[Grosze, ...] = (10, 20, 50, 100, 200, 500)
    bonus_brackets: tuple[BonusBracket, ...] = (
        BonusBracket(500, Decimal(0)),
        BonusBracket(2001, Decimal(5)),
        BonusBracket(5001, Decimal(10)),
        BonusBracket(10001, Decimal(15)),
    )
    bonus_at_meter: bool = True

    def bonus_percent(self, payment: Grosze) -> Decimal:
        percent = Decimal(0)
        for bracket in self.bonus_brackets:
            if payment >= bracket.from_amount:
                percent = bracket.percent
        return percent

    def bonus_for(self, payment: Grosze) -> Grosze:
        """Bonus on a personal card's top-up of `payment` (half-up to the grosz, R-MONEY-1)."""
        return percent_of(payment, self.bonus_percent(payment))


@dataclass(frozen=True)
class PurseTariff:
    """The whole e-purse price list (RULES.md: validator fares, parking, top-ups)."""

    city: FareTable = field(default_factory=lambda: FareTable(280, 200, 140, 70))
    suburban: FareTable = field(default_factory=lambda: FareTable(340, 240, 170, 90))
    short_ride_percent: Decimal = Decimal(50)
    baggage_fare: Grosze = 280
    no_ticket_surcharge: Grosze = 22000
    parking: ParkingTariff = field(default_factory=ParkingTariff)
    top_up: TopUpLimits = field(default_factory=TopUpLimits)

    def short_ride_fare(self, discount: Discount) -> Grosze:
        """R-VAL-3: a short ride costs `short_ride_percent` of the passenger's city fare."""
        return percent_of(self.city.price(discount), self.short_ride_percent)

    @property
    def largest_ride_fare(self) -> Grosze:
        """The most one ride can cost the holder: the ceiling of a credit ride (R-VAL-5)."""
        shorts = tuple(self.short_ride_fare(d) for d in Discount)
        return max(self.city.all_prices() + self.suburban.all_prices() + shorts)


DEFAULT_PURSE_TARIFF = PurseTariff()


# --------------------------------------------------------------------------- loading a dict

_TOP_KEYS = {"fares", "parking", "top_up"}
_FARES_KEYS = {"city", "suburban", "short_ride_percent", "baggage", "no_ticket_surcharge"}
_TABLE_KEYS = {"normal", "off_30", "off_50", "off_75"}
_PARKING_KEYS = {"minimum_fee", "minimum_minutes", "unit_fee", "unit_minutes", "paid_days", "paid_hours",
                 "longest_stay_minutes", "free_dates", "public_holidays_free"}
# R-PARK-4 settings a tariff may leave out (defaults: Mon-Fri 08:00-18:00, 3 h, no free dates).
_PARKING_OPTIONAL = {"paid_days", "paid_hours", "longest_stay_minutes", "free_dates", "public_holidays_free"}
_TOP_UP_KEYS = {
    "service_point_minimum",
    "meter_minimum",
    "meter_maximum",
    "meter_coins",
    "bonus_at_meter",
    "bonus",
}
_BRACKET_KEYS = {"from", "percent"}


class _Reader:
    """Collects every problem instead of stopping at the first one."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def table(self, data: Any, path: str, allowed: set[str], optional: set[str] = set()) -> Mapping[str, Any]:  # noqa: B006
        if data is None:  # the missing table was already reported by its parent
            return {}
        if not isinstance(data, Mapping):
            self.problems.append(f"{path or 'tariff'}: must be a table")
            return {}
        for key in sorted(set(data) - allowed, key=str):
            self.problems.append(f"{_join(path, str(key))}: unknown setting")
        for key in sorted(allowed - optional - set(data)):
            self.problems.append(f"{_join(path, key)}: missing")
        return data

    def money(self, data: Mapping[str, Any], key: str, path: str, *, positive: bool = True) -> Grosze:
        where = _join(path, key)
        if key not in data:
            return 0
        value = data[key]
        if not isinstance(value, str):
            self.problems.append(f'{where}: write money as a złoty string such as "2.80", not {value!r}')
            return 0
        try:
            amount = parse_pln(value)
        except MoneyFormatError:
            self.problems.append(f"{where}: {value!r} is not an amount in złoty")
            return 0
        if amount < 0 or (positive and amount == 0):
            self.problems.append(f"{where}: must be more than 0 zł, got {value!r}")
        return amount

    def minutes(self, data: Mapping[str, Any], key: str, path: str) -> int:
        where = _join(path, key)
        if key not in data:
            return 0
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self.problems.append(f"{where}: must be a whole number of minutes above 0, got {value!r}")
            return 0
        return value

    def percent(self, data: Mapping[str, Any], key: str, path: str) -> Decimal:
        where = _join(path, key)
        if key not in data:
            return Decimal(0)
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            self.problems.append(f'{where}: write a percentage as a whole number or a string such as "12.5", not {value!r}')
            return Decimal(0)
        try:
            percent = Decimal(str(value).strip())
        except InvalidOperation:
            self.problems.append(f"{where}: {value!r} is not a percentage")
            return Decimal(0)
        if not percent.is_finite() or percent < 0 or percent > 100:
            self.problems.append(f"{where}: must be between 0 and 100, got {value!r}")
            return Decimal(0)
        return percent

    def flag(self, data: Mapping[str, Any], key: str, path: str) -> bool:
        if key not in data:
            return False
        value = data[key]
        if not isinstance(value, bool):
            self.problems.append(f"{_join(path, key)}: must be true or false, got {value!r}")
            return False
        return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _fare_table(reader: _Reader, data: Any, path: str) -> FareTable:
    table = reader.table(data, path, _TABLE_KEYS)
    known_problems = len(reader.problems)
    fares = FareTable(*(reader.money(table, key, path) for key in ("normal", "off_30", "off_50", "off_75")))
    if table and len(reader.problems) == known_problems and not fares.normal >= fares.off_30 >= fares.off_50 >= fares.off_75:
        reader.problems.append(f"{path}: fares must not grow with the discount (normal >= off_30 >= off_50 >= off_75)")
    return fares


def purse_tariff_from_dict(data: Mapping[str, Any]) -> PurseTariff:
    """Check a plain dict (as read from the tariff TOML file) and build the tariff.

    Raises `TariffError` listing every problem found, each as "path: what is wrong".
    """
    reader = _Reader()
    top = reader.table(data, "", _TOP_KEYS)

    fares = reader.table(top.get("fares"), "fares", _FARES_KEYS)
    city = _fare_table(reader, fares.get("city"), "fares.city")
    suburban = _fare_table(reader, fares.get("suburban"), "fares.suburban")
    known_problems = len(reader.problems)
    short_ride_percent = reader.percent(fares, "short_ride_percent", "fares")
    if "short_ride_percent" in fares and short_ride_percent == 0 and len(reader.problems) == known_problems:
        reader.problems.append("fares.short_ride_percent: must be more than 0")
    baggage = reader.money(fares, "baggage", "fares")
    surcharge = reader.money(fares, "no_ticket_surcharge", "fares")

    parking_data = reader.table(top.get("parking"), "parking", _PARKING_KEYS, _PARKING_OPTIONAL)
    parking = ParkingTariff(
        minimum_fee=reader.money(parking_data, "minimum_fee", "parking"),
        minimum_minutes=reader.minutes(parking_data, "minimum_minutes", "parking"),
        unit_fee=reader.money(parking_data, "unit_fee", "parking"),
        unit_minutes=reader.minutes(parking_data, "unit_minutes", "parking"),
        **_paid_hours(reader, parking_data),
    )

    top_up_data = reader.table(top.get("top_up"), "top_up", _TOP_UP_KEYS)
    service_point_minimum = reader.money(top_up_data, "service_point_minimum", "top_up")
    meter_minimum = reader.money(top_up_data, "meter_minimum", "top_up")
    meter_maximum = reader.money(top_up_data, "meter_maximum", "top_up")
    if meter_minimum and meter_maximum and meter_minimum > meter_maximum:
        reader.problems.append("top_up: meter_minimum must not be above meter_maximum")

    coins: list[Grosze] = []
    raw_coins = top_up_data.get("meter_coins")
    if raw_coins is None:
        pass  # reported as missing above
    elif not isinstance(raw_coins, list) or not raw_coins:
        reader.problems.append("top_up.meter_coins: must be a non-empty list of coin values such as \"0.50\"")
    else:
        for index, raw in enumerate(raw_coins):
            coins.append(_coin_value(reader, raw, f"top_up.meter_coins[{index}]"))
        if len(set(coins)) != len(coins):
            reader.problems.append("top_up.meter_coins: a coin is listed twice")

    brackets: list[BonusBracket] = []
    raw_brackets = top_up_data.get("bonus")
    if raw_brackets is None:
        pass  # reported as missing above
    elif not isinstance(raw_brackets, list) or not raw_brackets:
        reader.problems.append("top_up.bonus: must be a non-empty list of {from, percent} brackets")
    else:
        for index, raw in enumerate(raw_brackets):
            path = f"top_up.bonus[{index}]"
            if not isinstance(raw, Mapping):
                reader.problems.append(f"{path}: must be a table with 'from' and 'percent'")
                continue
            bracket = reader.table(raw, path, _BRACKET_KEYS)
            from_amount = reader.money(bracket, "from", path, positive=False)
            percent = reader.percent(bracket, "percent", path)
            brackets.append(BonusBracket(from_amount, percent))
        froms = [b.from_amount for b in brackets]
        if froms != sorted(set(froms)):
            reader.problems.append("top_up.bonus: brackets must be listed with strictly ascending 'from' amounts")

    bonus_at_meter = reader.flag(top_up_data, "bonus_at_meter", "top_up")

    if reader.problems:
        raise TariffError(reader.problems)
    return PurseTariff(
        city=city,
        suburban=suburban,
        short_ride_percent=short_ride_percent,
        baggage_fare=baggage,
        no_ticket_surcharge=surcharge,
        parking=parking,
        top_up=TopUpLimits(
            service_point_minimum=service_point_minimum,
            meter_minimum=meter_minimum,
            meter_maximum=meter_maximum,
            meter_coins=tuple(sorted(coins)),
            bonus_brackets=tuple(brackets),
            bonus_at_meter=bonus_at_meter,
        ),
    )


def _coin_value(reader: _Reader, value: Any, where: str) -> Grosze:
    if not isinstance(value, str):
        reader.problems.append(f'{where}: write a coin as a złoty string such as "0.50", not {value!r}')
        return 0
    try:
        amount = parse_pln(value)
    except MoneyFormatError:
        reader.problems.append(f"{where}: {value!r} is not an amount in złoty")
        return 0
    if amount <= 0:
        reader.problems.append(f"{where}: must be more than 0 zł, got {value!r}")
    return amount


_DEFAULT_PARKING = ParkingTariff()


def _clock_minutes(text: Any) -> int | None:
    """"08:00" -> 480, "24:00" -> 1440; None for anything else."""
    if not isinstance(text, str) or len(text) != 5 or text[2] != ":" or not (text[:2] + text[3:]).isdigit():
        return None
    hours, minutes = int(text[:2]), int(text[3:])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        return None
    return hours * 60 + minutes


def _paid_hours(reader: _Reader, data: Mapping[str, Any]) -> dict[str, Any]:
    """R-PARK-4 settings of [parking] (each optional, see `ParkingTariff` for the defaults)."""
    found: dict[str, Any] = {}
    if "paid_days" in data:
        days = data["paid_days"]
        if not isinstance(days, list) or not days or any(d not in WEEKDAYS for d in days) or len(set(days)) != len(days):
            reader.problems.append(f"parking.paid_days: must be a list of different days from {', '.join(WEEKDAYS)}, "
                                   f"got {days!r}")
        else:
            found["paid_weekdays"] = frozenset(WEEKDAYS.index(d) for d in days)
    if "paid_hours" in data:
        hours = data["paid_hours"]
        bounds = [_clock_minutes(h) for h in hours] if isinstance(hours, list) and len(hours) == 2 else [None]
        if None in bounds or bounds[0] >= bounds[1] or bounds[0] >= 1440:  # type: ignore[operator]
            reader.problems.append(f'parking.paid_hours: must be ["HH:MM", "HH:MM"], the end after the start '
                                   f'(at most "24:00"), got {hours!r}')
        else:
            found["paid_from"], found["paid_until"] = bounds
    if "longest_stay_minutes" in data:
        found["longest_stay_minutes"] = reader.minutes(data, "longest_stay_minutes", "parking")
    if "free_dates" in data:
        raw = data["free_dates"]
        dates: set[date] = set()
        if not isinstance(raw, list):
            reader.problems.append("parking.free_dates: must be a list of dates such as 2027-11-11")
        else:
            for index, value in enumerate(raw):
                if type(value) is date:  # a bare TOML date
                    dates.add(value)
                    continue
                try:
                    dates.add(date.fromisoformat(value))
                except (TypeError, ValueError):
                    reader.problems.append(f"parking.free_dates[{index}]: must be a date such as 2027-11-11, got {value!r}")
        found["free_dates"] = frozenset(dates)
    if "public_holidays_free" in data:
        if not isinstance(data["public_holidays_free"], bool):
            reader.problems.append(f"parking.public_holidays_free: must be true or false, got {data['public_holidays_free']!r}")
        else:
            found["public_holidays_free"] = data["public_holidays_free"]
    longest = found.get("longest_stay_minutes", _DEFAULT_PARKING.longest_stay_minutes)
    minimum = data.get("minimum_minutes")
    if longest and isinstance(minimum, int) and not isinstance(minimum, bool) and 0 < longest < minimum:
        reader.problems.append("parking.longest_stay_minutes: must not be shorter than minimum_minutes")
    if found.get("longest_stay_minutes") == 0:  # reported above
        del found["longest_stay_minutes"]
    return found
