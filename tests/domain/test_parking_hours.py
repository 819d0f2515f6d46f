"""R-PARK-4: paid hours and the longest stay, over times (Hypothesis), with the Warsaw clock changes of
2027-03-28 (02:00 -> 03:00) and 2027-10-31 (03:00 -> 02:00)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.parking_hours import is_paid_at, paid_minutes_between, paid_until
from domain.purse import CardKind, MeterSession, ParkingTicket, PurseCard, Refusal, accept, insert_card, press_plus
from domain.purse_tariff import DEFAULT_PURSE_TARIFF, ParkingTariff, PurseTariff, TariffError, purse_tariff_from_dict

WARSAW = ZoneInfo("Europe/Warsaw")
UTC = timezone.utc
KOLOBRZEG = DEFAULT_PURSE_TARIFF.parking  # Mon-Fri 08:00-18:00, 3 h
# Zones paid every day, holidays included (2027-03-28, a clock-change night, is Easter Sunday)
EVERY_HOUR = ParkingTariff(paid_weekdays=frozenset(range(7)), paid_from=0, paid_until=1440, longest_stay_minutes=600,
                           public_holidays_free=False)
NIGHT = ParkingTariff(paid_weekdays=frozenset(range(7)), paid_from=60, paid_until=4 * 60, longest_stay_minutes=300,
                      public_holidays_free=False)
TARIFFS = [KOLOBRZEG, EVERY_HOUR, NIGHT, ParkingTariff(free_dates=frozenset({date(2027, 3, 29)}))]
CARD = PurseCard(number="K-1", kind=CardKind.BEARER, issued_on=date(2027, 1, 4))


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=WARSAW)  # type: ignore[misc]


def meter(at: datetime, parking: ParkingTariff = KOLOBRZEG, balance: int = 100_000) -> MeterSession:
    session = insert_card(CARD, balance=balance, now=at, tariff=PurseTariff(parking=parking))
    assert isinstance(session, MeterSession)
    return session


def plus(session: MeterSession, times: int) -> MeterSession:
    for _ in range(times):
        session = press_plus(session)
    return session


# Minutes around both clock changes of 2027, as real instants (UTC) shown in Warsaw time.
_AROUND = st.sampled_from([datetime(2027, 3, 24, tzinfo=UTC), datetime(2027, 10, 27, tzinfo=UTC),
                           datetime(2027, 6, 30, tzinfo=UTC)])
moments = st.builds(lambda base, minutes: (base + timedelta(minutes=minutes)).astimezone(WARSAW),
                    _AROUND, st.integers(min_value=0, max_value=8 * 24 * 60))


def _paid_minutes_by_walking(start: datetime, end: datetime, tariff: ParkingTariff) -> int:
    """An oracle for `paid_until`: real minutes from start to end whose local time is paid."""
    count, cursor = 0, start.astimezone(UTC)
    while cursor < end.astimezone(UTC):
        count += is_paid_at(cursor.astimezone(WARSAW), tariff)
        cursor += timedelta(minutes=1)
    return count


# --------------------------------------------------------------------------- examples


def test_r_park_4_paid_on_working_days_from_8_to_18() -> None:
    assert is_paid_at(local(2027, 3, 5, 8, 0), KOLOBRZEG) and is_paid_at(local(2027, 3, 5, 17, 59), KOLOBRZEG)
    for free in (local(2027, 3, 5, 7, 59), local(2027, 3, 5, 18, 0), local(2027, 3, 6, 12, 0), local(2027, 3, 7, 12, 0)):
        assert not is_paid_at(free, KOLOBRZEG), free


def test_r_park_4_purchase_at_17_30_for_an_hour_ends_at_8_30_the_next_working_day() -> None:
    assert paid_until(local(2027, 3, 4, 17, 30), 60, KOLOBRZEG) == local(2027, 3, 5, 8, 30)  # Thursday -> Friday
    assert paid_until(local(2027, 3, 5, 17, 30), 60, KOLOBRZEG) == local(2027, 3, 8, 8, 30)  # Friday -> Monday
    assert paid_until(local(2027, 3, 5, 17, 30), 30, KOLOBRZEG) == local(2027, 3, 5, 18, 0)  # ends with the window
    holiday = ParkingTariff(free_dates=frozenset({date(2027, 3, 8)}))
    assert paid_until(local(2027, 3, 5, 17, 30), 60, holiday) == local(2027, 3, 9, 8, 30)


def test_r_park_4_screen_and_ticket_show_the_end_inside_paid_hours() -> None:
    session = plus(meter(local(2027, 3, 5, 17, 30, 42)), 3)
    assert (session.minutes_paid, session.paid_until) == (60, local(2027, 3, 8, 8, 30))
    ticket = accept(session)
    assert isinstance(ticket, ParkingTicket) and ticket.paid_until == local(2027, 3, 8, 8, 30) and ticket.fee == 200


def test_r_park_4_no_plus_beyond_the_longest_stay() -> None:
    session = plus(meter(local(2027, 3, 3, 9, 0)), 11)
    assert (session.minutes_paid, session.fee, session.notice) == (180, 600, None)
    refused = press_plus(session)
    assert refused.presses == 11 and refused.notice is Refusal.LONGEST_STAY


def test_r_park_4_nothing_sold_outside_paid_hours_even_by_a_forged_session() -> None:
    session = meter(local(2027, 3, 6, 10, 0))  # Saturday
    assert press_plus(session).notice is Refusal.FREE_PARKING and press_plus(session).presses == 0
    from dataclasses import replace

    forged = accept(replace(session, presses=500))
    assert isinstance(forged, MeterSession) and forged.notice is Refusal.FREE_PARKING
    too_long = accept(replace(meter(local(2027, 3, 3, 10, 0)), presses=12))
    assert isinstance(too_long, MeterSession) and too_long.notice is Refusal.LONGEST_STAY


def test_r_park_4_a_paid_window_across_the_clock_change_sells_real_minutes() -> None:
    # 01:00-04:00 on 2027-03-28 lasts two real hours (02:00 -> 03:00), on 2027-10-31 four
    assert paid_until(local(2027, 3, 28, 1, 30), 90, NIGHT) == local(2027, 3, 28, 4, 0)
    assert paid_until(local(2027, 3, 28, 1, 30), 120, NIGHT) == local(2027, 3, 29, 1, 30)
    assert paid_until(local(2027, 3, 28, 1, 30), 60, NIGHT) == local(2027, 3, 28, 3, 30)
    late = paid_until(local(2027, 10, 31, 1, 30), 120, NIGHT)
    assert late.astimezone(UTC) == datetime(2027, 10, 31, 1, 30, tzinfo=UTC)  # 02:30 CET, after the repeat
    assert paid_until(local(2027, 10, 31, 1, 30), 210, NIGHT) == local(2027, 10, 31, 4, 0)


# --------------------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(start=moments, minutes=st.integers(min_value=1, max_value=600), tariff=st.sampled_from(TARIFFS))
def test_r_park_4_time_bought_runs_only_through_paid_hours(start: datetime, minutes: int, tariff: ParkingTariff) -> None:
    start = start.replace(second=0, microsecond=0)
    if not is_paid_at(start, tariff):
        return
    end = paid_until(start, minutes, tariff)
    assert end.astimezone(UTC) > start.astimezone(UTC)
    assert paid_minutes_between(start, end, tariff) == minutes
    assert _paid_minutes_by_walking(start, end, tariff) == minutes
    # the end is inside paid hours, or the very end of a paid window
    assert is_paid_at(end, tariff) or is_paid_at((end.astimezone(UTC) - timedelta(minutes=1)).astimezone(WARSAW), tariff)
    # buying more never ends earlier
    assert paid_until(start, minutes + 1, tariff).astimezone(UTC) > end.astimezone(UTC)


@settings(max_examples=150, deadline=None)
@given(at=moments, presses=st.integers(min_value=0, max_value=500), tariff=st.sampled_from(TARIFFS))
def test_r_park_4_a_meter_never_sells_outside_paid_hours_or_beyond_the_longest_stay(
    at: datetime, presses: int, tariff: ParkingTariff
) -> None:
    at = at + timedelta(seconds=presses % 60)
    session = meter(at, tariff)
    for _ in range(presses):
        session = press_plus(session)
        if session.notice is not None:
            break
    outcome = accept(session)
    start = at.replace(second=0, microsecond=0)
    if not is_paid_at(start, tariff):
        assert session.presses == 0 and isinstance(outcome, MeterSession)
        assert outcome.notice is Refusal.FREE_PARKING
        return
    assert session.minutes_paid <= tariff.longest_stay_minutes
    if isinstance(outcome, ParkingTicket):
        assert outcome.minutes == session.minutes_paid <= tariff.longest_stay_minutes
        assert paid_minutes_between(start, outcome.paid_until, tariff) == outcome.minutes
    else:
        assert presses == 0 and outcome.notice is Refusal.NOTHING_SELECTED


# --------------------------------------------------------------------------- the tariff file


def _parking(**changes: object) -> dict[str, object]:
    import tomllib
    from pathlib import Path

    data = tomllib.loads((Path(__file__).resolve().parents[2] / "tariffs" / "kolobrzeg-purse.toml").read_text("utf-8"))
    data["parking"].update(changes)
    return data


def test_r_park_4_tariff_file_states_the_defaults() -> None:
    assert purse_tariff_from_dict(_parking()).parking == KOLOBRZEG
    assert (KOLOBRZEG.paid_weekdays, KOLOBRZEG.paid_from, KOLOBRZEG.paid_until, KOLOBRZEG.longest_stay_minutes) == (
        frozenset(range(5)), 480, 1080, 180)
    parking = purse_tariff_from_dict(_parking(paid_days=["sat"], paid_hours=["00:00", "24:00"], longest_stay_minutes=60,
                                              free_dates=["2027-11-11", date(2027, 12, 25)])).parking
    assert (parking.paid_weekdays, parking.paid_from, parking.paid_until, parking.longest_stay_minutes) == (
        frozenset({5}), 0, 1440, 60)
    assert parking.free_dates == frozenset({date(2027, 11, 11), date(2027, 12, 25)})
    data = _parking()
    for key in ("paid_days", "paid_hours", "longest_stay_minutes", "free_dates"):
        del data["parking"][key]
    assert purse_tariff_from_dict(data).parking == KOLOBRZEG  # each may be left out


@pytest.mark.parametrize(("changes", "problem"), [
    ({"paid_days": ["mon", "mon"]}, "parking.paid_days"),
    ({"paid_days": []}, "parking.paid_days"),
    ({"paid_days": ["monday"]}, "parking.paid_days"),
    ({"paid_hours": ["18:00", "08:00"]}, "parking.paid_hours"),
    ({"paid_hours": ["08:00"]}, "parking.paid_hours"),
    ({"paid_hours": ["8:00", "18:00"]}, "parking.paid_hours"),
    ({"paid_hours": ["08:00", "24:30"]}, "parking.paid_hours"),
    ({"longest_stay_minutes": 0}, "parking.longest_stay_minutes"),
    ({"longest_stay_minutes": 20}, "parking.longest_stay_minutes: must not be shorter"),
    ({"free_dates": ["11.11.2027"]}, "parking.free_dates[0]"),
    ({"free_dates": "2027-11-11"}, "parking.free_dates"),
])
def test_r_park_4_bad_paid_hours_are_reported(changes: dict[str, object], problem: str) -> None:
    with pytest.raises(TariffError) as caught:
        purse_tariff_from_dict(_parking(**changes))
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_r_park_4_polish_public_holidays_are_free_from_the_holidays_calendar() -> None:
    """Kołobrzeg's zone is paid on working days: 11 November 2027 (Independence Day, a Thursday), Easter
    Monday 2028 (17 April) and Corpus Christi 2028 (15 June) are free without listing them; the next working
    day is paid. A tariff may turn this off (`public_holidays_free = false`)."""
    from dataclasses import replace as _replace
    from datetime import date as _date

    from domain.parking_hours import is_paid_day
    from domain.purse_tariff import ParkingTariff

    tariff = ParkingTariff()
    for holiday in (_date(2027, 11, 11), _date(2028, 4, 17), _date(2028, 6, 15), _date(2027, 12, 24)):
        assert not is_paid_day(holiday, tariff), holiday
    assert is_paid_day(_date(2027, 11, 12), tariff)  # Friday after Independence Day
    assert is_paid_day(_date(2027, 11, 11), _replace(tariff, public_holidays_free=False))
