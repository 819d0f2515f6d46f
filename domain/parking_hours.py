"""R-PARK-4: the paid-parking hours of a zone and how bought time runs through them.

Pure: the zone's hours come from the tariff (`ParkingTariff`: paid weekdays, a daily window, dates that
are free, the longest stay) and every moment is an argument. Moments are local (Kołobrzeg) time; an aware
moment is measured in real elapsed time, so a paid window that spans a clock change (none of Kołobrzeg's
does: the changes come on Sunday nights) still sells exactly the minutes paid for. A naive moment is read
as wall-clock time.

Readings made here (documented, configurable in the tariff):
- Paid windows are half-open: [paid_from, paid_until). A card inserted at 18:00 (or at 07:59) buys nothing:
  the meter says parking is free now, it never sells time outside the paid hours.
- The longest stay bounds the paid minutes one ticket buys; time bought at 17:30 runs 30 minutes today and
  the rest from 08:00 the next paid day (17:30 + 1 h ends at 08:30 the next working day).
- Polish public holidays are free (the `holidays` package's calendar for Poland, e.g. 11 November, Easter
  Monday, Corpus Christi, and from 2025 Christmas Eve), like weekends; `public_holidays_free = false` in the
  tariff turns that off, and `free_dates` adds the operator's own free days.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone, tzinfo

from domain.public_holidays import polish_public_holidays
from domain.purse_tariff import ParkingTariff

# How far ahead a purchase may carry: a zone with no paid day in this many days sells nothing.
_HORIZON_DAYS = 400


def _real(moment: datetime) -> datetime:
    """An instant comparable and subtractable in real elapsed time (aware -> UTC; naive stays wall-clock)."""
    return moment if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _back(moment: datetime, zone: tzinfo | None) -> datetime:
    return moment if zone is None else moment.astimezone(zone)


def _at(day: date, minute_of_day: int, zone: tzinfo | None) -> datetime:
    """Local wall-clock time `minute_of_day` minutes after midnight of `day` (1440 = the next midnight)."""
    extra, minute = divmod(minute_of_day, 1440)
    return datetime.combine(day + timedelta(days=extra), time(minute // 60, minute % 60), tzinfo=zone)


def is_paid_day(day: date, tariff: ParkingTariff) -> bool:
    if day.weekday() not in tariff.paid_weekdays or day in tariff.free_dates:
        return False
    return not (tariff.public_holidays_free and day in polish_public_holidays(day.year))


def paid_window(day: date, tariff: ParkingTariff, zone: tzinfo | None = None) -> tuple[datetime, datetime] | None:
    """The paid window [start, end) of local `day`, or None when the day is free."""
    if not is_paid_day(day, tariff):
        return None
    return _at(day, tariff.paid_from, zone), _at(day, tariff.paid_until, zone)


def is_paid_at(moment: datetime, tariff: ParkingTariff) -> bool:
    """Whether parking is paid at `moment` (local)."""
    window = paid_window(moment.date(), tariff, moment.tzinfo)
    return window is not None and _real(window[0]) <= _real(moment) < _real(window[1])


def paid_until(start: datetime, minutes: int, tariff: ParkingTariff) -> datetime:
    """When `minutes` of paid time bought at `start` (inside the paid hours) run out: the time runs only
    through paid windows, so what is left at a window's end continues at the next window's start."""
    if minutes <= 0:
        return start
    zone = start.tzinfo
    remaining = timedelta(minutes=minutes)
    cursor = _real(start)
    for offset in range(_HORIZON_DAYS):
        window = paid_window(start.date() + timedelta(days=offset), tariff, zone)
        if window is None:
            continue
        begin, end = max(cursor, _real(window[0])), _real(window[1])
        if begin >= end:
            continue
        if remaining <= end - begin:
            return _back(begin + remaining, zone)
        remaining -= end - begin
    raise ValueError(f"no paid parking within {_HORIZON_DAYS} days of {start}")


def paid_minutes_between(start: datetime, end: datetime, tariff: ParkingTariff) -> int:
    """Whole minutes of paid time between two local moments (the inverse of `paid_until`)."""
    total = timedelta(0)
    day = start.date()
    while day <= end.date():
        window = paid_window(day, tariff, start.tzinfo)
        if window is not None:
            begin, finish = max(_real(start), _real(window[0])), min(_real(end), _real(window[1]))
            if begin < finish:
                total += finish - begin
        day += timedelta(days=1)
    return int(total.total_seconds() // 60)
