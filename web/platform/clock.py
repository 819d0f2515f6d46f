"""The one place the web layer reads the time, so tests can travel in time instead of sleeping.

All times are timezone-aware UTC (the database keeps them in UTC). `today()` is the calendar date in Poland (Europe/Warsaw).

A run can be *pinned* to a moment (`EKP_TEST_TODAY=2027-01-30` or `2027-03-27T23:30`, Warsaw time unless
an offset is given): the clock then starts at that moment and runs on from it, so a test run (and the
browser tests' server, and `ekp` commands started by tests) sees the same calendar on every day it is
run. `travel` moves the clock on from there; `reset` goes back to the pinned start (or to the real time).
Production refuses a pin (see `web.platform.settings`).
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

WARSAW = ZoneInfo("Europe/Warsaw")
PIN_VARIABLE = "EKP_TEST_TODAY"
DEFAULT_PIN_TIME = (12, 0)  # a date alone pins to noon in Warsaw: away from midnight and the clock changes

class _Clock:
    """The process's clock: where it was pinned and how far tests travelled. The one process-wide value the web
    layer keeps on purpose (time itself is process-wide); changed only by `pin`, `travel`, `reset`, `restore`."""

    __slots__ = ("pinned_at", "offset")

    def __init__(self) -> None:
        self.pinned_at: tuple[datetime, float] | None = None  # (the pinned moment, time.monotonic() when pinned)
        self.offset = timedelta(0)


_clock = _Clock()


def now() -> datetime:
    """Current time, aware UTC (from the pinned moment if any, shifted by `travel` in tests)."""
    pinned_at, offset = _clock.pinned_at, _clock.offset
    if pinned_at is None:
        return datetime.now(timezone.utc) + offset
    moment, since = pinned_at
    return moment + timedelta(seconds=time.monotonic() - since) + offset


def today() -> date:
    return to_local(now()).date()


def to_local(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(WARSAW)


def travel(by: timedelta) -> None:
    """Move the clock forward (or back); used by tests."""
    _clock.offset += by


def reset() -> None:
    """Undo every `travel`: back to the pinned moment (plus the time run since) or to the real time."""
    _clock.offset = timedelta(0)


def parse_pin(text: str) -> datetime:
    """`YYYY-MM-DD` (noon in Warsaw) or an ISO date and time (Warsaw time unless it carries an offset),
    as an aware UTC datetime. Raises ValueError for anything else."""
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        local = datetime(day.year, day.month, day.day, *DEFAULT_PIN_TIME, tzinfo=WARSAW)
    else:
        local = datetime.fromisoformat(text)
        if local.tzinfo is None:
            local = local.replace(tzinfo=WARSAW)
    if not 2000 <= local.year <= 2100:
        raise ValueError(f"{text!r}: a year between 2000 and 2100 is expected")
    return local.astimezone(timezone.utc)


def pin(moment: datetime | None) -> None:
    """Start the clock at `moment` (aware) from now on; `None` returns to the real time. Clears travel."""
    if moment is not None and moment.tzinfo is None:
        raise ValueError("pin() needs an aware datetime")
    _clock.pinned_at = None if moment is None else (moment.astimezone(timezone.utc), time.monotonic())
    reset()


def start_at(moment: datetime | None) -> None:
    """Pin to a configured moment once per process (`Settings.test_clock`); a second call with the same
    moment (the CLI, then the app factory in the same process) does not restart the clock."""
    if moment is None or (_clock.pinned_at is not None and _clock.pinned_at[0] == moment):
        return
    pin(moment)


ClockState = tuple[tuple[datetime, float] | None, timedelta]


def state() -> ClockState:
    """The clock's whole state (pin and travel), for a test harness to put back with `restore`."""
    return _clock.pinned_at, _clock.offset


def restore(saved: ClockState) -> None:
    """Put back a state taken by `state()`: a test that pinned or travelled leaves no trace for the next."""
    _clock.pinned_at, _clock.offset = saved


def is_pinned() -> bool:
    return _clock.pinned_at is not None


def pin_text() -> str:
    """The current time as `EKP_TEST_TODAY` text, to hand the same clock (travel included) to a child process."""
    return now().isoformat()
