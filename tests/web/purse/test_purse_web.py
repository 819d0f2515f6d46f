"""The e-purse card through the web layer, on SQLite and PostgreSQL: the device API (auth, idempotent
replay, offline batches, every display, ZŁA KARTA, credit ride and its repayment, parking), the
passenger's "Portmonetka" (linking, online top-up with the bonus brackets, loss report) and the
simulators. After every money movement the cached balance equals the ledger sum (R-MONEY-2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import page_text
from tests.support.purse import assert_balance_is_ledger_sum, balance_of, make_card, meter, tap, tap_body
from web.platform import clock as web_clock
from web.platform.db import transaction
from web.payment_records.models import Payment
from web.purse.models import DeviceEvent, PurseCardRow, PurseLedgerEntry
from web.payment_records import service as records
from web.purse import service
from domain.purse import CardKind, RegisteredFare

NBSP = "\u00a0"


def zl(text: str) -> str:
    """As devices get it in JSON (page_text() turns the no-break space into a space)."""
    return text.replace(" zł", f"{NBSP}zł")


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def devices(engine) -> dict[str, str]:
    with transaction(engine) as session:
        _v, validator = service.add_device(session, "validator", "Kasownik testowy")
        _m, meter = service.add_device(session, "parking-meter", "Parkometr Rynek")
    return {"validator": validator, "meter": meter}


# --------------------------------------------------------------------------- device API: auth and schema


def test_device_api_needs_the_devices_own_credential(client, devices, engine, settings):
    make_card(engine, settings, "1001", balance=1000)
    missing = client.post("/api/devices/validator/taps", json=tap_body("1001"))
    assert missing.status_code == 401
    assert missing.json()["detail"].startswith("Urządzenie nie jest zarejestrowane")
    device_id = devices["validator"].split(".")[0]
    for credential in (f"{device_id}.wrong-token", devices["meter"], "garbage", f"999.{devices['validator'].split('.')[1]}"):
        assert tap(client, credential, "1001").status_code == 401
    assert tap(client, devices["validator"], "1001").status_code == 200
    assert balance_of(engine, "1001") == 1000 - 280


def test_device_errors_are_json_in_polish(client, devices):
    bad = client.post("/api/devices/validator/taps", json={"event_id": "x"},
                      headers={"Authorization": f"Bearer {devices['validator']}"})
    assert bad.status_code == 400
    assert bad.json()["detail"] == "Nieprawidłowe dane zdarzenia."
    empty = client.post("/api/devices/validator/taps", json={**tap_body("1"), "event_id": "  "},
                        headers={"Authorization": f"Bearer {devices['validator']}"})
    assert empty.status_code == 422 and empty.json()["code"] == "purse.device.invalid"


def test_device_api_is_in_the_openapi_schema(client):
    schema = client.get("/schema/openapi.json").json()
    for path in ("/api/devices/validator/taps", "/api/devices/validator/batch", "/api/devices/meter/insert",
                 "/api/devices/meter/quote", "/api/devices/meter/accept", "/api/devices/meter/top-up",
                 "/api/devices/meter/cancel"):
        assert path in schema["paths"], path


# --------------------------------------------------------------------------- validator displays


def test_r_val_1_tap_charges_the_registered_fare_and_shows_amount_and_balance(client, devices, engine, settings):
    make_card(engine, settings, "2001", balance=1000, fare=RegisteredFare.OFF_50)
    body = tap(client, devices["validator"], "2001").json()
    assert body["accepted"] and body["code"] == "charged" and body["signal"] == "short_beep"
    assert (body["amount"], body["balance"]) == (140, 860)
    assert body["display"] == ["POBRANO OPŁATĘ", zl("Pobrano: 1,40 zł"), zl("Saldo: 8,60 zł")]
    assert_balance_is_ledger_sum(engine)


def test_r_val_1_free_ride_is_recorded_at_zero(client, devices, engine, settings, db):
    make_card(engine, settings, "2002", fare=RegisteredFare.FREE)
    body = tap(client, devices["validator"], "2002").json()
    assert body["code"] == "free_ride" and body["amount"] == 0 and body["message"] == "PRZEJAZD BEZPŁATNY"
    [entry] = db.all(PurseLedgerEntry)
    assert (entry.kind, entry.amount, entry.place) == ("fare", 0, "BUS-7 / Dworzec")


@pytest.mark.parametrize(("buttons", "amount"), [
    ({"t": 1}, 280), ({"t": 2}, 200), ({"t": 3}, 140), ({"t": 4}, 70), ({"t": 5}, 280),
    ({"b": 2}, 340), ({"b": 2, "t": 3}, 170), ({"b": 3}, 140), ({"b": 3, "t": 4}, 35),
])
def test_r_val_3_buttons_choose_the_fare(client, devices, engine, settings, buttons, amount):
    make_card(engine, settings, "2003", balance=2000)
    body = tap(client, devices["validator"], "2003", **buttons).json()
    assert body["accepted"] and body["amount"] == amount and body["balance"] == 2000 - amount


def test_r_val_2_s_shows_the_balance_without_charging(client, devices, engine, settings, db):
    make_card(engine, settings, "2004", balance=1234)
    body = tap(client, devices["validator"], "2004", s=True).json()
    assert body["code"] == "balance" and body["balance"] == 1234 and body["amount"] is None
    assert body["display"] == ["STAN KONTA", zl("Saldo: 12,34 zł")]
    assert db.count(PurseLedgerEntry, PurseLedgerEntry.kind != "topup") == 0


def test_r_val_4_companion_and_baggage_only_after_the_holders_fare_at_that_stop(client, devices, engine, settings):
    make_card(engine, settings, "2005", balance=2000, fare=RegisteredFare.OFF_75)
    first = tap(client, devices["validator"], "2005", b=1).json()
    assert not first["accepted"] and first["message"] == "NAJPIERW SKASUJ PRZEJAZD POSIADACZA"
    assert tap(client, devices["validator"], "2005").json()["amount"] == 70
    companion = tap(client, devices["validator"], "2005").json()
    assert companion["accepted"] and companion["amount"] == 280  # a companion pays the normal fare
    baggage = tap(client, devices["validator"], "2005", b=1).json()
    assert baggage["accepted"] and baggage["amount"] == 280
    elsewhere = tap(client, devices["validator"], "2005", b=1, stop="Ratusz").json()
    assert not elsewhere["accepted"]
    assert balance_of(engine, "2005") == 2000 - 70 - 280 - 280
    assert_balance_is_ledger_sum(engine)


def test_r_park_1_a_foreign_card_is_zla_karta_on_both_devices(client, devices):
    body = tap(client, devices["validator"], None).json()
    assert body == {**body, "accepted": False, "code": "wrong_card", "message": "ZŁA KARTA", "signal": "error"}
    unknown = tap(client, devices["validator"], "99999").json()
    assert unknown["message"] == "ZŁA KARTA"
    inserted = meter(client, devices["meter"], "insert", {"at": web_clock.now().isoformat(), "card_number": None}).json()
    assert inserted["display"] == ["ZŁA KARTA"] and inserted["card_returned"]


# --------------------------------------------------------------------------- idempotency and batches


def test_the_same_event_twice_is_booked_once_with_the_same_response(client, devices, engine, settings, db):
    make_card(engine, settings, "3001", balance=1000)
    body = tap_body("3001")
    headers = {"Authorization": f"Bearer {devices['validator']}"}
    first = client.post("/api/devices/validator/taps", json=body, headers=headers)
    again = client.post("/api/devices/validator/taps", json=body, headers=headers)
    assert first.json() == again.json()
    assert (first.headers["idempotent-replay"], again.headers["idempotent-replay"]) == ("false", "true")
    assert db.count(PurseLedgerEntry, PurseLedgerEntry.kind == "fare") == 1
    assert db.count(DeviceEvent) == 1
    assert balance_of(engine, "3001") == 720


def test_offline_batch_is_applied_in_order_and_can_be_uploaded_again(client, devices, engine, settings, db):
    make_card(engine, settings, "3002", balance=1000)
    start = web_clock.now() - timedelta(hours=2)
    taps = [tap_body("3002", at=start),  # the holder
            tap_body("3002", at=start + timedelta(seconds=5)),  # a companion at the same stop
            tap_body("3002", at=start + timedelta(minutes=30), stop="Ratusz", s=True),
            tap_body(None, at=start + timedelta(minutes=31))]
    headers = {"Authorization": f"Bearer {devices['validator']}"}
    results = client.post("/api/devices/validator/batch", json={"taps": taps}, headers=headers).json()["results"]
    assert [r["code"] for r in results] == ["charged", "charged", "balance", "wrong_card"]
    assert [r["balance"] for r in results[:3]] == [720, 440, 440]
    assert [e.kind for e in db.all(PurseLedgerEntry)] == ["topup", "fare", "companion"]
    again = client.post("/api/devices/validator/batch", json={"taps": taps}, headers=headers).json()["results"]
    assert all(r["replayed"] for r in again)
    assert [{k: v for k, v in r.items() if k != "replayed"} for r in again] == \
        [{k: v for k, v in r.items() if k != "replayed"} for r in results]
    assert balance_of(engine, "3002") == 440
    assert_balance_is_ledger_sum(engine)


# --------------------------------------------------------------------------- credit ride (R-VAL-5, R-TOP-4)


def test_r_val_5_credit_ride_then_r_top_4_repaid_from_the_meter_top_up(client, devices, engine, settings, db):
    make_card(engine, settings, "4001", kind=CardKind.BEARER, balance=500)
    assert tap(client, devices["validator"], "4001").json()["balance"] == 220
    credit = tap(client, devices["validator"], "4001", vehicle="BUS-9").json()
    assert credit["code"] == "credit_ride" and credit["amount"] == 280 and credit["balance"] == -60
    refused = tap(client, devices["validator"], "4001", vehicle="BUS-10").json()
    assert not refused["accepted"] and refused["message"] == "NIESPŁACONY KREDYT — DOŁADUJ KARTĘ"
    at = web_clock.now().isoformat()
    inserted = meter(client, devices["meter"], "insert", {"at": at, "card_number": "4001"}).json()
    assert inserted["card"]["credit_outstanding"] == 60
    receipt = meter(client, devices["meter"], "top-up",
                    {"event_id": "m-1", "at": at, "card_number": "4001", "coins": [200, 100, 1000]}).json()
    assert receipt["accepted"] and receipt["payment"] == 300 and receipt["credit_repaid"] == 60
    assert receipt["coins_returned"] == 1000  # a 10 zł coin is not accepted
    assert receipt["balance"] == 240 and receipt["bonus"] == 0
    assert [e.kind for e in db.all(PurseLedgerEntry)][-2:] == ["credit_repayment", "topup"]
    assert_balance_is_ledger_sum(engine)


def test_r_top_2_meter_minimum_and_cancel_return_the_coins(client, devices, engine, settings):
    make_card(engine, settings, "4002", balance=500)
    at = web_clock.now().isoformat()
    low = meter(client, devices["meter"], "top-up", {"event_id": "m-2", "at": at, "card_number": "4002", "coins": [100, 50, 20, 20]}).json()
    assert not low["accepted"] and low["message"] == "ZA NISKA KWOTA DOŁADOWANIA" and low["coins_returned"] == 190
    cancelled = meter(client, devices["meter"], "cancel", {"coins": [200, 50]}).json()
    assert cancelled["coins_returned"] == 250 and cancelled["card_returned"]
    assert balance_of(engine, "4002") == 500


# --------------------------------------------------------------------------- parking (R-PARK-2, R-PARK-3)


def test_r_park_2_3_plus_quotes_to_the_minute_and_accept_prints_the_ticket(client, devices, engine, settings, db, clock):
    make_card(engine, settings, "5001", balance=1000)
    inserted_at = datetime(2026, 7, 1, 10, 7, 42, tzinfo=web_clock.WARSAW)
    clock.travel(inserted_at + timedelta(seconds=20) - clock.now())  # the meter's events happen now, whatever today is
    quote = meter(client, devices["meter"], "quote", {"at": inserted_at.isoformat(), "card_number": "5001", "presses": 3}).json()
    assert (quote["fee"], quote["minutes"], quote["paid_until"]) == (200, 60, "2026-07-01T11:07+02:00")
    assert quote["display"] == [zl("OPŁATA: 2,00 zł"), "OPŁACONO ZA: 60 min (11:07)"]
    body = {"event_id": "p-1", "at": inserted_at.isoformat(), "card_number": "5001", "presses": 3}
    ticket = meter(client, devices["meter"], "accept", body).json()
    assert ticket["accepted"] and ticket["balance"] == 800
    assert "Ważny do: 2026-07-01 11:07" in ticket["ticket"]
    assert meter(client, devices["meter"], "accept", body).json() == ticket
    [parking] = db.all(PurseLedgerEntry, PurseLedgerEntry.kind == "parking")
    assert parking.amount == -200 and parking.place == "Parkometr Rynek"
    nothing = meter(client, devices["meter"], "accept", {**body, "event_id": "p-2", "presses": 0}).json()
    assert not nothing["accepted"] and nothing["code"] == "nothing_selected"
    too_much = meter(client, devices["meter"], "quote", {"at": inserted_at.isoformat(), "card_number": "5001", "presses": 40}).json()
    assert too_much["code"] == "longest_stay" and too_much["fee"] == 600  # 3 h (R-PARK-4) before the balance runs out
    make_card(engine, settings, "5002", kind=CardKind.BEARER, balance=500)
    broke = meter(client, devices["meter"], "quote", {"at": inserted_at.isoformat(), "card_number": "5002", "presses": 40}).json()
    assert broke["code"] == "insufficient_funds" and broke["fee"] == 500


# --------------------------------------------------------------------------- passenger


@pytest.fixture
def passenger(browser, users, engine, settings):
    user = users.create()
    card_id = make_card(engine, settings, "7001", balance=1000)
    browser.login(user.email)
    linked = browser.submit("/purse", {"number": "7001"}, action="/purse/link")
    assert linked.status_code == 303, linked.text[:1500]
    return browser, card_id


def test_linking_needs_the_accounts_pesel(browser, users, engine, settings):
    users.create()
    make_card(engine, settings, "7002", pesel="02270803624")
    browser.login("jan@example.pl")
    refused = browser.submit("/purse", {"number": "7002"}, action="/purse/link")
    assert refused.status_code == 422
    assert "zarejestrowanej na Twój PESEL" in page_text(refused.text)


def test_portmonetka_shows_balance_credit_and_history_with_places(passenger, client, devices, engine):
    browser, _card_id = passenger
    tap(client, devices["validator"], "7001", vehicle="BUS-3", stop="Plac Ratuszowy")
    tap(client, devices["validator"], "7001", vehicle="BUS-4", stop="Dworzec")
    tap(client, devices["validator"], "7001", vehicle="BUS-5", stop="Port")
    text = page_text(browser.get("/purse").text)
    assert "Portmonetka" in text and "7001" in text
    assert "Przejazd (miejska, normalny)" in text and "BUS-3 / Plac Ratuszowy" in text
    assert "Doładowanie" in text


def test_credit_outstanding_is_shown(passenger, client, devices, engine):
    browser, _card_id = passenger
    for vehicle in ("A", "B", "C", "D"):
        tap(client, devices["validator"], "7001", vehicle=vehicle)
    assert balance_of(engine, "7001") == 1000 - 3 * 280 - 280
    text = page_text(browser.get("/purse").text)
    assert "Kredyt do spłaty 1,20 zł" in text


@pytest.mark.parametrize(("amount", "bonus"), [
    ("20,00", "0,00"), ("20,01", "1,00"), ("50,00", "2,50"), ("50,01", "5,00"), ("100,00", "10,00"), ("100,01", "15,00"),
])
def test_r_top_3_online_bonus_shown_before_paying(passenger, amount, bonus):
    browser, card_id = passenger
    shown = browser.submit("/purse", {"amount": amount, "action": "quote"}, action=f"/purse/{card_id}/top-up")
    assert shown.status_code == 200
    assert f"Premia: {bonus} zł" in page_text(shown.text)


def test_r_top_1_online_minimum(passenger):
    browser, card_id = passenger
    low = browser.submit("/purse", {"amount": "4,99", "action": "quote"}, action=f"/purse/{card_id}/top-up")
    assert low.status_code == 422 and "Najmniejsza kwota doładowania to 5,00 zł." in page_text(low.text)
    assert browser.submit("/purse", {"amount": "5,00", "action": "quote"}, action=f"/purse/{card_id}/top-up").status_code == 200


def test_online_top_up_books_payment_and_bonus_once_on_confirmation(passenger, engine, db, purposes):
    browser, card_id = passenger
    sent = browser.submit("/purse", {"amount": "50,01", "action": "pay"}, action=f"/purse/{card_id}/top-up")
    assert sent.status_code == 303 and "/sandbox-pay/" in sent.headers["location"]
    payment = db.one(Payment, Payment.purpose == "purse_topup")
    assert payment.amount == 5001 and payment.subject_id == card_id
    assert balance_of(engine, "7001") == 1000  # nothing before the confirmation
    outcome = records.Outcome(reference=payment.reference, status="paid", amount=5001)
    for _ in range(2):
        with transaction(engine) as session:
            records.apply_outcome(session, purposes, outcome, "webhook")
    assert balance_of(engine, "7001") == 1000 + 5001 + 500
    assert sorted(e.kind for e in db.all(PurseLedgerEntry, PurseLedgerEntry.payment_id == payment.id)) == ["bonus", "topup"]
    text = page_text(browser.get("/purse").text)
    assert "Premia za doładowanie" in text and "+5,00 zł" in text
    assert_balance_is_ledger_sum(engine)


def test_r_kkm_7_loss_report_blocks_from_8_next_day(passenger, client, devices, engine, clock):
    browser, card_id = passenger
    reported = web_clock.to_local(web_clock.now())
    done = browser.submit("/purse", {"confirm": "on"}, action=f"/purse/{card_id}/loss")
    assert done.status_code == 303
    with transaction(engine) as session:
        row = session.get(PurseCardRow, card_id)
        blocked_from = web_clock.to_local(row.blocked_from)
    assert blocked_from.date() == reported.date() + timedelta(days=1) and (blocked_from.hour, blocked_from.minute) == (8, 0)
    assert "zgłoszona jako utracona" in page_text(browser.get("/purse").text)
    # Devices may not date taps in the future (R-VAL-8): move on to just past the block, in real time. (Two
    # Warsaw times subtract as wall-clock times: across the October clock change that is an hour short.)
    clock.travel(blocked_from.astimezone(UTC) - web_clock.now() + timedelta(minutes=1))
    before = tap(client, devices["validator"], "7001", at=blocked_from - timedelta(minutes=1)).json()
    assert before["accepted"]
    after = tap(client, devices["validator"], "7001", at=blocked_from, vehicle="BUS-2").json()
    assert not after["accepted"] and after["message"] == "KARTA ZABLOKOWANA"


def test_loss_report_needs_confirmation(passenger, db):
    browser, card_id = passenger
    refused = browser.submit("/purse", {}, action=f"/purse/{card_id}/loss")
    assert refused.status_code == 422
    assert db.one(PurseCardRow).blocked_from is None


# --------------------------------------------------------------------------- disabling a device
# (the simulators and their trust boundary: tests/web/purse/test_simulators.py)


def test_a_disabled_device_is_refused_on_its_next_tap(client, engine, settings, devices, settings_env, monkeypatch):
    """`ekp devices disable ID`: the credential is refused at once, even though it was cached a moment ago."""
    from click.testing import CliRunner

    from web.cli import main

    make_card(engine, settings, "70030001", balance=1000)
    assert tap(client, devices["validator"], "70030001").status_code == 200  # the credential is now cached
    for key, value in settings_env.items():
        monkeypatch.setenv(key, value)
    device_id = devices["validator"].split(".")[0]
    result = CliRunner().invoke(main, ["devices", "disable", device_id])
    assert result.exit_code == 0, result.output
    assert tap(client, devices["validator"], "70030001").status_code == 401
    assert CliRunner().invoke(main, ["devices", "disable", device_id]).exit_code != 0


# --------------------------------------------------------------------------- paid hours and the longest stay (R-PARK-4)


def _meter_at(clock, local: datetime) -> str:
    """Move the app's clock to `local` (Warsaw time) and return it as the meter sends it."""
    clock.travel(local.astimezone(web_clock.WARSAW) - web_clock.now())
    return local.isoformat()


def test_r_park_4_one_request_never_buys_beyond_the_longest_stay(client, devices, engine, settings, db, clock):
    at = _meter_at(clock, datetime(2027, 3, 3, 10, 7, 42, tzinfo=web_clock.WARSAW))  # a Wednesday
    make_card(engine, settings, "5101", kind=CardKind.BEARER, balance=50_000)
    quote = meter(client, devices["meter"], "quote", {"at": at, "card_number": "5101", "presses": 500}).json()
    assert quote["code"] == "longest_stay" and quote["message"] == "MAKSYMALNY CZAS POSTOJU"
    assert (quote["presses"], quote["minutes"], quote["fee"]) == (11, 180, 600)
    assert quote["paid_until"] == "2027-03-03T13:07+01:00"
    assert quote["display"] == ["MAKSYMALNY CZAS POSTOJU", zl("OPŁATA: 6,00 zł"), "OPŁACONO ZA: 180 min (13:07)"]
    ticket = meter(client, devices["meter"], "accept",
                   {"event_id": "long-1", "at": at, "card_number": "5101", "presses": 500}).json()
    assert ticket["accepted"] and (ticket["minutes"], ticket["fee"]) == (180, 600)
    assert ticket["paid_until"] == "2027-03-03T13:07+01:00" and "Ważny do: 2027-03-03 13:07" in ticket["ticket"]
    assert balance_of(engine, "5101") == 50_000 - 600
    assert_balance_is_ledger_sum(engine)


def test_r_park_4_time_bought_runs_only_through_paid_hours(client, devices, engine, settings, clock):
    at = _meter_at(clock, datetime(2027, 3, 5, 17, 30, tzinfo=web_clock.WARSAW))  # a Friday
    make_card(engine, settings, "5102", balance=1000)
    quote = meter(client, devices["meter"], "quote", {"at": at, "card_number": "5102", "presses": 3}).json()
    assert quote["accepted"] and (quote["minutes"], quote["fee"]) == (60, 200)
    assert quote["paid_until"] == "2027-03-08T08:30+01:00"  # Monday: the weekend is free
    assert quote["display"] == [zl("OPŁATA: 2,00 zł"), "OPŁACONO ZA: 60 min (do 08.03 08:30)"]
    ticket = meter(client, devices["meter"], "accept",
                   {"event_id": "late-1", "at": at, "card_number": "5102", "presses": 3}).json()
    assert ticket["accepted"] and "Ważny do: 2027-03-08 08:30" in ticket["ticket"]
    assert balance_of(engine, "5102") == 800


@pytest.mark.parametrize("local", [datetime(2027, 3, 6, 11, 0), datetime(2027, 3, 4, 18, 0),
                                   datetime(2027, 3, 4, 7, 59, 59), datetime(2027, 3, 28, 2, 30),
                                   datetime(2027, 10, 31, 2, 30)])
def test_r_park_4_nothing_is_sold_outside_paid_hours(client, devices, engine, settings, db, clock, local):
    at = _meter_at(clock, local.replace(tzinfo=web_clock.WARSAW))
    make_card(engine, settings, "5103", balance=1000)
    quote = meter(client, devices["meter"], "quote", {"at": at, "card_number": "5103", "presses": 1}).json()
    assert not quote["accepted"] and quote["code"] == "free_parking" and quote["message"] == "POSTÓJ BEZPŁATNY"
    assert (quote["presses"], quote["fee"], quote["minutes"]) == (0, 0, 0)
    refused = meter(client, devices["meter"], "accept",
                    {"event_id": "free-1", "at": at, "card_number": "5103", "presses": 4}).json()
    assert not refused["accepted"] and refused["code"] == "free_parking"
    assert balance_of(engine, "5103") == 1000 and db.count(PurseLedgerEntry, PurseLedgerEntry.kind == "parking") == 0
