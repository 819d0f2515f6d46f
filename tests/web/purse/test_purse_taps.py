"""Validator taps through the device API, on SQLite and PostgreSQL: companions only at the holder's boarding
stop (R-VAL-4), event ids that cannot be reused for another event (R-VAL-7) and device clocks (R-VAL-8).
After every money movement the cached balance equals the ledger sum (R-MONEY-2)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from domain.purse import RegisteredFare
from tests.support.purse import assert_balance_is_ledger_sum, balance_of, make_card, tap, tap_body
from web.platform import clock as web_clock
from web.platform.db import transaction
from web.purse.models import DeviceEvent, PurseCardRow, PurseLedgerEntry
from web.purse import service

BOARDING_STOP_ONLY = "PRZEJAZD JUŻ SKASOWANY — DOPŁATY TYLKO NA PRZYSTANKU WSIADANIA"


@pytest.fixture
def validator(engine) -> str:
    with transaction(engine) as session:
        return service.add_device(session, "validator", "Kasownik BUS-7")[1]


def _row(engine, number: str) -> PurseCardRow:
    with transaction(engine) as session:
        row = service.lock_card(session, number)
        assert row is not None
        session.expunge(row)
        return row


# --------------------------------------------------------------------------- R-VAL-4 companions


def test_r_val_4_nothing_is_added_for_companions_at_a_later_stop_and_the_boarding_stop_never_moves(
        client, validator, engine, settings, db):
    make_card(engine, settings, "21001", balance=2000, fare=RegisteredFare.OFF_75)
    start = web_clock.now() - timedelta(minutes=10)
    holder = tap(client, validator, "21001", stop="Dworzec", at=start).json()
    assert holder["accepted"] and holder["amount"] == 70
    # the next stop of the same bus: a co-passenger (T pressed), baggage (B once), or a plain tap
    for n, buttons in enumerate(({"t": 1}, {"b": 1}, {}, {"t": 4}, {"b": 2})):
        late = tap(client, validator, "21001", stop="Ratusz", at=start + timedelta(minutes=2, seconds=n), **buttons)
        assert late.status_code == 200
        body = late.json()
        assert not body["accepted"] and body["code"] == "boarding_stop_only", buttons
        assert body["message"] == BOARDING_STOP_ONLY and body["signal"] == "error"
        assert body["balance"] == 2000 - 70
    assert (_row(engine, "21001").boarding_vehicle, _row(engine, "21001").boarding_stop) == ("BUS-7", "Dworzec")
    assert balance_of(engine, "21001") == 2000 - 70
    assert db.count(PurseLedgerEntry, PurseLedgerEntry.kind == "companion") == 0
    assert_balance_is_ledger_sum(engine)


def test_r_val_4_companions_and_baggage_at_the_boarding_stop_after_the_holders_own_fare(client, validator, engine,
                                                                                         settings, db):
    make_card(engine, settings, "21002", balance=2000, fare=RegisteredFare.OFF_50)
    start = web_clock.now() - timedelta(minutes=10)
    baggage_first = tap(client, validator, "21002", b=1, at=start).json()
    assert not baggage_first["accepted"] and baggage_first["code"] == "holder_fare_first"
    own = tap(client, validator, "21002", t=4, at=start + timedelta(seconds=5)).json()  # T: the holder's own discount
    assert own["accepted"] and own["amount"] == 70
    # the device reports the stop it is at, or the one it last left: still the boarding stop between stops
    companion = tap(client, validator, "21002", t=2, at=start + timedelta(seconds=40)).json()
    baggage = tap(client, validator, "21002", b=1, at=start + timedelta(seconds=50)).json()
    assert (companion["amount"], baggage["amount"]) == (200, 280)
    assert balance_of(engine, "21002") == 2000 - 70 - 200 - 280
    assert [e.kind for e in db.all(PurseLedgerEntry)][-3:] == ["fare", "companion", "companion"]
    assert_balance_is_ledger_sum(engine)


def test_r_val_4_another_vehicle_or_a_time_gap_makes_a_new_boarding(client, validator, engine, settings):
    make_card(engine, settings, "21003", balance=2000)
    start = web_clock.now() - timedelta(hours=2)
    assert tap(client, validator, "21003", stop="Dworzec", at=start).json()["amount"] == 280
    other_bus = tap(client, validator, "21003", vehicle="BUS-8", stop="Ratusz", at=start + timedelta(minutes=5)).json()
    assert other_bus["accepted"] and other_bus["code"] == "charged"
    assert (_row(engine, "21003").boarding_vehicle, _row(engine, "21003").boarding_stop) == ("BUS-8", "Ratusz")
    companion = tap(client, validator, "21003", vehicle="BUS-8", stop="Ratusz", at=start + timedelta(minutes=5, seconds=9))
    assert companion.json()["accepted"]
    # the first bus again, after the gap: the holder's new ride, a new boarding stop
    back = tap(client, validator, "21003", stop="Ratusz", at=start + timedelta(minutes=40)).json()
    assert back["accepted"] and back["amount"] == 280
    assert (_row(engine, "21003").boarding_vehicle, _row(engine, "21003").boarding_stop) == ("BUS-7", "Ratusz")
    assert balance_of(engine, "21003") == 2000 - 4 * 280
    assert_balance_is_ledger_sum(engine)


# --------------------------------------------------------------------------- R-VAL-7 event identity


def test_r_val_7_an_event_id_reused_for_another_event_is_refused_never_answered_with_the_first(
        client, validator, engine, settings, db):
    make_card(engine, settings, "22001", balance=1000)
    make_card(engine, settings, "22002", balance=1000)
    headers = {"Authorization": f"Bearer {validator}"}
    original = tap_body("22001", event_id="evt-1")
    first = client.post("/api/devices/validator/taps", json=original, headers=headers)
    assert first.status_code == 200 and first.json()["accepted"]
    changed = [{**original, "card_number": "22002"}, {**original, "buttons": {"t": 3, "b": 0, "s": False}},
               {**original, "stop_id": "Ratusz"}, {**original, "vehicle_id": "BUS-9"},
               {**original, "at": (datetime.fromisoformat(original["at"]) - timedelta(minutes=1)).isoformat()}]
    for body in changed:
        refused = client.post("/api/devices/validator/taps", json=body, headers=headers)
        assert refused.status_code == 409, body
        problem = refused.json()
        assert problem["code"] == "purse.device.event_id_reused" and "amount" not in problem
        assert problem["detail"].startswith("Identyfikator zdarzenia został już użyty")
    # the same event again (the time in another zone is the same moment) is a replay
    same_moment = {**original, "at": datetime.fromisoformat(original["at"]).astimezone(timezone(timedelta(hours=5))).isoformat()}
    again = client.post("/api/devices/validator/taps", json=same_moment, headers=headers)
    assert again.status_code == 200 and again.json() == first.json() and again.headers["idempotent-replay"] == "true"
    assert balance_of(engine, "22002") == 1000 and balance_of(engine, "22001") == 720
    assert db.count(DeviceEvent) == 1
    # in an offline batch the reused id is refused on its own line; the other taps are booked
    batch = client.post("/api/devices/validator/batch", headers=headers, json={"taps": [
        {**original, "card_number": "22002"}, tap_body("22002", event_id="evt-2", vehicle="BUS-2")]})
    assert batch.status_code == 200
    reused, booked = batch.json()["results"]
    assert reused["accepted"] is False and reused["status"] == 409 and reused["code"] == "event_id_reused"
    assert reused["event_id"] == "evt-1" and reused["message"].startswith("Identyfikator zdarzenia")
    assert booked["accepted"] and not booked["replayed"]
    assert balance_of(engine, "22002") == 720
    assert_balance_is_ledger_sum(engine)


# --------------------------------------------------------------------------- R-VAL-8 device time


def test_r_val_8_an_event_dated_in_the_future_beyond_the_tolerance_is_refused(client, validator, engine, settings, db):
    make_card(engine, settings, "23001", balance=1000)
    headers = {"Authorization": f"Bearer {validator}"}
    for at in (web_clock.now() + timedelta(hours=1), datetime(9999, 12, 31, 23, 59, tzinfo=timezone.utc)):
        refused = client.post("/api/devices/validator/taps", json=tap_body("23001", at=at), headers=headers)
        assert refused.status_code == 422
        assert refused.json()["code"] == "purse.device.future_event"
        assert refused.json()["detail"].startswith("Czas zdarzenia jest późniejszy niż czas serwera")
    assert db.count(DeviceEvent) == 0 and balance_of(engine, "23001") == 1000
    slightly_ahead = tap(client, validator, "23001", at=web_clock.now() + timedelta(minutes=2)).json()
    assert slightly_ahead["accepted"]  # a clock a little fast is within the tolerance
    batch = client.post("/api/devices/validator/batch", headers=headers, json={"taps": [
        tap_body("23001", at=web_clock.now() + timedelta(days=1)), tap_body("23001", vehicle="BUS-2")]}).json()
    future, booked = batch["results"]
    assert future["status"] == 422 and future["code"] == "future_event" and not future["accepted"]
    assert booked["accepted"]
    assert balance_of(engine, "23001") == 1000 - 2 * 280
    assert_balance_is_ledger_sum(engine)


def test_r_val_8_an_event_older_than_the_offline_window_is_booked_and_flagged_for_staff(client, validator, engine,
                                                                                        settings, db):
    make_card(engine, settings, "23002", balance=1000)
    ancient = tap(client, validator, "23002", at=datetime(1970, 1, 1, 1, 0), event_id="clock-reset").json()
    assert ancient["accepted"] and ancient["amount"] == 280
    recent = tap(client, validator, "23002", at=web_clock.now() - timedelta(hours=20), vehicle="BUS-2",
                 event_id="last-night").json()
    assert recent["accepted"], recent
    flags = {e.event_id: (e.flag, e.card_number) for e in db.all(DeviceEvent)}
    assert flags == {"clock-reset": ("stale", "23002"), "last-night": (None, "23002")}
    [entry] = db.all(PurseLedgerEntry, PurseLedgerEntry.at < datetime(2000, 1, 1, tzinfo=timezone.utc))
    assert entry.amount == -280  # booked at the time the device recorded
    assert balance_of(engine, "23002") == 1000 - 2 * 280
    assert_balance_is_ledger_sum(engine)


def _blocked_card(engine, settings, number: str, balance: int = 1000) -> datetime:
    make_card(engine, settings, number, balance=balance)
    blocked_from = web_clock.now() - timedelta(hours=5)
    with transaction(engine) as session:
        row = service.lock_card(session, number)
        assert row is not None
        row.blocked_from = blocked_from
        session.add(row)
    return blocked_from


def test_r_val_8_a_block_applies_from_its_own_time_and_a_backdated_clock_does_not_get_past_it(
        client, validator, engine, settings, db):
    blocked_from = _blocked_card(engine, settings, "23003")
    live = tap(client, validator, "23003", event_id="live").json()
    assert not live["accepted"] and live["message"] == "KARTA ZABLOKOWANA"
    # a validator whose clock went back to 1970 (older than the offline window: its time proves nothing)
    backdated = tap(client, validator, "23003", at=datetime(1970, 1, 1, 1, 0), event_id="backdated").json()
    assert not backdated["accepted"] and backdated["code"] == "blocked"
    # a ride buffered offline before the block is the holder's (the operator answers from the block on)
    before = tap(client, validator, "23003", at=blocked_from - timedelta(minutes=1), vehicle="BUS-2",
                 event_id="before").json()
    assert before["accepted"] and before["amount"] == 280
    flags = {e.event_id: e.flag for e in db.all(DeviceEvent)}
    assert flags == {"live": None, "backdated": "blocked_card", "before": None}
    assert balance_of(engine, "23003") == 1000 - 280
    assert_balance_is_ledger_sum(engine)


def test_r_val_8_an_offline_tap_on_a_card_blocked_at_its_time_is_uploaded_later_refused_and_reported(
        client, validator, engine, settings, db):
    blocked_from = _blocked_card(engine, settings, "23004")
    headers = {"Authorization": f"Bearer {validator}"}
    taps = [tap_body("23004", at=blocked_from - timedelta(minutes=30), event_id="off-1"),
            tap_body("23004", at=blocked_from + timedelta(minutes=30), vehicle="BUS-3", event_id="off-2")]
    results = client.post("/api/devices/validator/batch", json={"taps": taps}, headers=headers).json()["results"]
    assert [r["accepted"] for r in results] == [True, False]
    assert results[1]["code"] == "blocked"
    flagged = db.one(DeviceEvent, DeviceEvent.event_id == "off-2")
    assert (flagged.flag, flagged.card_number) == ("blocked_card", "23004")
    assert flagged.event_at == blocked_from + timedelta(minutes=30)
    assert balance_of(engine, "23004") == 1000 - 280
    assert_balance_is_ledger_sum(engine)


def test_r_val_8_ekp_devices_flagged_lists_the_events_for_staff(client, validator, engine, settings, settings_env,
                                                                 monkeypatch):
    from click.testing import CliRunner

    from web.cli import main

    _blocked_card(engine, settings, "23005")
    make_card(engine, settings, "23006", balance=1000)
    assert tap(client, validator, "23006", at=datetime(1970, 1, 1, 1, 0), event_id="reset-clock").json()["accepted"]
    assert not tap(client, validator, "23005", at=web_clock.now() - timedelta(hours=1), event_id="buffered").json()["accepted"]
    assert tap(client, validator, "23006", vehicle="BUS-2", event_id="fine").json()["accepted"]
    for key, value in settings_env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(main, ["devices", "flagged"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-1] == "2 flagged event(s) in the last 7 day(s)"
    assert "blocked_card" in lines[0] and "event buffered" in lines[0] and "card 23005" in lines[0]
    assert "answered blocked" in lines[0]
    assert "stale" in lines[1] and "event reset-clock" in lines[1] and "device time 1970-01-01T01:00:00+01:00" in lines[1]
    assert "answered charged" in lines[1] and "fine" not in result.output
