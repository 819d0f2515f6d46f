"""Device events: R-VAL-7 (event identity) and R-VAL-8 (device time, blocks by the event's time)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from domain.purse import (
    FUTURE_TOLERANCE,
    LIVE_LAG,
    OFFLINE_WINDOW,
    CardKind,
    EventFlag,
    EventTiming,
    PurseCard,
    Refusal,
    RideKind,
    ValidatorPanel,
    event_timing,
    is_replay,
    tap,
    tap_fingerprint,
)

WARSAW = ZoneInfo("Europe/Warsaw")
RECEIVED = datetime(2027, 3, 10, 9, 0, tzinfo=WARSAW)
BLOCKED_FROM = datetime(2027, 3, 10, 8, 0, tzinfo=WARSAW)
CARD = PurseCard(number="K-1", kind=CardKind.PERSONAL, issued_on=date(2027, 1, 4))
BLOCKED = PurseCard(number="K-2", kind=CardKind.PERSONAL, issued_on=date(2027, 1, 4), blocked_from=BLOCKED_FROM)


def do_tap(card: PurseCard, at: datetime, received: datetime | None = RECEIVED):
    return tap(card, balance=1000, panel=ValidatorPanel(), vehicle_id="bus-1", stop_id="s-1", now=at,
               boarding=None, received_at=received)


# --------------------------------------------------------------------------- R-VAL-8 timing


@pytest.mark.parametrize(("lag", "timing"), [
    (-FUTURE_TOLERANCE - timedelta(seconds=1), EventTiming.FUTURE),
    (-FUTURE_TOLERANCE, EventTiming.LIVE),
    (timedelta(0), EventTiming.LIVE),
    (LIVE_LAG, EventTiming.LIVE),
    (LIVE_LAG + timedelta(seconds=1), EventTiming.OFFLINE),
    (OFFLINE_WINDOW, EventTiming.OFFLINE),
    (OFFLINE_WINDOW + timedelta(seconds=1), EventTiming.STALE),
])
def test_r_val_8_event_timing_against_its_arrival(lag: timedelta, timing: EventTiming) -> None:
    assert event_timing(RECEIVED - lag, RECEIVED) is timing


def test_r_val_8_times_before_1900_are_not_times_and_1970_is_stale() -> None:
    assert event_timing(datetime(1, 1, 1, tzinfo=timezone.utc), RECEIVED) is EventTiming.IMPOSSIBLE
    assert event_timing(datetime(1970, 1, 1, tzinfo=timezone.utc), RECEIVED) is EventTiming.STALE
    assert event_timing(datetime(9999, 12, 31, tzinfo=timezone.utc), RECEIVED) is EventTiming.FUTURE


def test_r_val_8_future_events_are_refused_before_the_rules() -> None:
    with pytest.raises(ValueError):
        do_tap(CARD, RECEIVED + timedelta(hours=1))


def test_r_val_8_an_event_older_than_the_offline_window_is_booked_but_flagged() -> None:
    d = do_tap(CARD, datetime(1970, 1, 1, tzinfo=timezone.utc))
    assert d.accepted and d.ride is RideKind.OWN and d.charged == 280 and d.flag is EventFlag.STALE
    recent = do_tap(CARD, RECEIVED - timedelta(days=1))
    assert recent.accepted and recent.flag is None


def test_r_val_8_a_block_applies_from_its_own_time() -> None:
    live = do_tap(BLOCKED, RECEIVED)
    assert live.refusal is Refusal.BLOCKED and live.flag is None  # seen live: refused on the display
    before = do_tap(BLOCKED, BLOCKED_FROM - timedelta(minutes=1))  # offline, before the block: the holder's ride
    assert before.accepted and before.flag is None


def test_r_val_8_an_offline_tap_on_a_card_blocked_at_its_time_is_refused_and_reported() -> None:
    d = do_tap(BLOCKED, BLOCKED_FROM + timedelta(minutes=10))
    assert not d.accepted and d.refusal is Refusal.BLOCKED and not d.entries and d.flag is EventFlag.BLOCKED_CARD


def test_r_val_8_a_backdated_clock_does_not_get_past_a_block() -> None:
    d = do_tap(BLOCKED, datetime(1970, 1, 1, tzinfo=timezone.utc))
    assert d.refusal is Refusal.BLOCKED and not d.entries and d.flag is EventFlag.BLOCKED_CARD
    later = BLOCKED_FROM + OFFLINE_WINDOW + timedelta(hours=2)  # stale: checked at arrival, blocked by then
    assert do_tap(BLOCKED, BLOCKED_FROM - timedelta(hours=1), received=later).refusal is Refusal.BLOCKED


def test_r_val_8_without_an_arrival_time_the_tap_is_live() -> None:
    assert do_tap(CARD, RECEIVED, received=None).flag is None
    assert do_tap(BLOCKED, RECEIVED, received=None).flag is None


# --------------------------------------------------------------------------- R-VAL-7 identity


def test_r_val_7_the_fingerprint_is_the_events_content() -> None:
    base = tap_fingerprint("K-1", RECEIVED, "bus-1", "s-1", 0, 0, False)
    assert base == tap_fingerprint("K-1", RECEIVED.astimezone(timezone.utc), "bus-1", "s-1", 0, 0, False)
    others = {
        tap_fingerprint("K-2", RECEIVED, "bus-1", "s-1", 0, 0, False),
        tap_fingerprint(None, RECEIVED, "bus-1", "s-1", 0, 0, False),
        tap_fingerprint("K-1", RECEIVED + timedelta(microseconds=1), "bus-1", "s-1", 0, 0, False),
        tap_fingerprint("K-1", RECEIVED, "bus-2", "s-1", 0, 0, False),
        tap_fingerprint("K-1", RECEIVED, "bus-1", "s-2", 0, 0, False),
        tap_fingerprint("K-1", RECEIVED, "bus-1", "s-1", 1, 0, False),
        tap_fingerprint("K-1", RECEIVED, "bus-1", "s-1", 0, 1, False),
        tap_fingerprint("K-1", RECEIVED, "bus-1", "s-1", 0, 0, True),
        tap_fingerprint("K-1", RECEIVED, "bus-1s", "-1", 0, 0, False),  # fields cannot run into each other
    }
    assert base not in others and len(others) == 9


def test_r_val_7_a_repeat_is_a_replay_another_event_is_not() -> None:
    fingerprint = tap_fingerprint("K-1", RECEIVED, "bus-1", "s-1", 0, 0, False)
    assert is_replay(fingerprint, fingerprint)
    assert not is_replay(tap_fingerprint("K-2", RECEIVED, "bus-1", "s-1", 0, 0, False), fingerprint)
    assert is_replay(None, fingerprint)  # stored before fingerprints were kept


def test_r_val_8_a_backdated_tap_never_makes_the_card_void() -> None:
    from domain.purse import CardState, card_validity, last_used_after

    assert last_used_after(CARD, date(1970, 1, 1)) == CARD.issued_on
    assert last_used_after(CARD, date(2027, 3, 1)) == date(2027, 3, 1)
    used = PurseCard(number="K-3", kind=CardKind.PERSONAL, issued_on=date(2027, 1, 4), last_used_on=date(2027, 3, 5))
    assert last_used_after(used, date(2027, 3, 1)) == date(2027, 3, 5)  # never back
    after = PurseCard(number="K-1", kind=CardKind.PERSONAL, issued_on=CARD.issued_on,
                      last_used_on=last_used_after(CARD, date(1970, 1, 1)))
    assert card_validity(after, RECEIVED).state is CardState.ACTIVE


def test_r_val_7_a_meter_events_fingerprint_is_its_content() -> None:
    from datetime import datetime, timedelta, timezone

    from domain.purse import meter_fingerprint

    at = datetime(2027, 3, 28, 1, 30, tzinfo=timezone.utc)
    same_moment = at.astimezone(timezone(timedelta(hours=2)))
    base = meter_fingerprint("top_up", "4101", at, (500, 500))
    assert meter_fingerprint("top_up", "4101", same_moment, (500, 500)) == base  # one moment, any offset
    for other in (meter_fingerprint("top_up", "4102", at, (500, 500)), meter_fingerprint("park", "4101", at, (500, 500)),
                  meter_fingerprint("top_up", "4101", at, (500,)), meter_fingerprint("top_up", "4101", at, (50, 0, 500)),
                  meter_fingerprint("top_up", "4101", at + timedelta(seconds=1), (500, 500)),
                  meter_fingerprint("top_up", None, at, (500, 500))):
        assert other != base
