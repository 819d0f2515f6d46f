"""The one place the web layer reads the time, so tests can travel in time instead of sleeping.

All times are timezone-aware UTC (the database keeps them in UTC). `today()` is the calendar date in Poland (Europe/Warsaw).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

WARSAW = ZoneInfo("Europe/Warsaw")
_offset = timedelta(0)


def now() -> datetime:
    """Current time, aware UTC (shifted by `travel` in tests)."""
    return datetime.now(timezone.utc) + _offset


def today() -> date:
    return to_local(now()).date()


def to_local(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(WARSAW)


def travel(by: timedelta) -> None:
    """Move the clock forward (or back); used by tests and the `--clock-offset` dev option."""
    global _offset
    _offset += by


def reset() -> None:
    global _offset
    _offset = timedelta(0)
