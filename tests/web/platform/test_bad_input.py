"""Issue 13, item 8: bad input found by an attacker gave 500s. Every input from outside is bounded and
refused with a clear message (no 5xx, no stack trace, nothing half-written), on SQLite and PostgreSQL."""

from __future__ import annotations


import pytest
from click.testing import CliRunner

from tests.support.purse import make_card, meter, tap_body
from web.platform.db import transaction
from web.platform.models import OutboxMail
from web.accounts.models import User
from web.purse.models import DeviceEvent, PurseLedgerEntry
from web.purse import service

BEYOND_INT32 = 2**31  # the first id no INTEGER column (PostgreSQL) can hold
HUGE = 10**20  # beyond SQLite's 64-bit integers too

BAD_AMOUNTS = ["nan", "inf", "-inf", "NaN", "1e20", "1e9", "999999999", "99999999999999999999", "1" * 200,
               "12\x00", "١٢", "0", "-5", "1 000"]


@pytest.fixture
def passenger_with_card(browser, users, engine, settings):
    user = users.create()
    card_id = make_card(engine, settings, "7101", balance=1000)
    browser.login(user.email)
    linked = browser.submit("/purse", {"number": "7101"}, action="/purse/link")
    assert linked.status_code == 303, linked.text[:1500]
    return browser, card_id


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_passenger_top_up_refuses_every_bad_amount_next_to_the_field(passenger_with_card, db, amount):
    browser, card_id = passenger_with_card
    for action in ("quote", "pay"):
        response = browser.submit("/purse", {"amount": amount, "action": action}, action=f"/purse/{card_id}/top-up")
        assert response.status_code == 422, response.text[:1500]
        assert 'class="field-error' in response.text or "field-error" in response.text
    assert db.count(PurseLedgerEntry) == 1  # only the initial top-up


@pytest.mark.parametrize("amount", ["nan", "inf", "1e20", "1e9", "999999999", "99999999999999999999", "1" * 200])
def test_desk_top_up_refuses_every_bad_amount(browser, users, engine, settings, db, amount):
    make_card(engine, settings, "70030001")
    users.create("bok@example.pl", role="staff", pesel=None)
    browser.login("bok@example.pl")
    response = browser.submit("/desk/purse/70030001", {"amount": amount}, action="/desk/purse/70030001/top-up")
    assert response.status_code == 422, response.text[:1500]
    # a bad second confirmation is no confirmation: the desk asks again, nothing is booked
    again = browser.submit("/desk/purse/70030001", {"amount": "300", "confirmed_amount": amount},
                           action="/desk/purse/70030001/top-up")
    assert again.status_code < 500 and "Traceback" not in again.text
    assert db.count(PurseLedgerEntry) == 0


@pytest.mark.parametrize("number", ["9" * 5000, "70%0001", "%00", "70%C2%A001"])
def test_desk_card_number_is_bounded(browser, users, number):
    users.create("bok@example.pl", role="staff", pesel=None)
    browser.login("bok@example.pl")
    assert browser.get(f"/desk/purse/{number}").status_code == 400
    assert browser.get(f"/desk?number={number}").status_code == 404
    for action in ("top-up", "loss", "replace"):
        response = browser.submit("/desk", {"amount": "20", "identity_checked": "on", "new_number": number},
                                  action=f"/desk/purse/{number}/{action}")
        assert response.status_code == 400, response.text[:500]
        assert "Nieprawidłowe żądanie" in response.text


@pytest.mark.parametrize("ident", [BEYOND_INT32, HUGE, 0, -1])
def test_path_ids_beyond_the_databases_integer_range_are_refused(passenger_with_card, mails, ident):
    browser, _card_id = passenger_with_card
    for path in (f"/cards/{ident}/unlink", f"/tickets/{ident}/show", f"/dev/mail/{ident}"):
        response = browser.get(path)
        assert response.status_code in (400, 404), (path, response.status_code, response.text[:500])
        assert "Traceback" not in response.text
    for path in (f"/cards/{ident}/unlink", f"/purse/{ident}/top-up", f"/purse/{ident}/loss", f"/5plus1/pay/{ident}",
                 f"/tickets/devices/{ident}/unbind"):
        response = browser.post(path, {"amount": "20", "confirm": "on"})
        assert response.status_code in (400, 404), (path, response.status_code, response.text[:500])
    for path in (f"/tickets/{ident}/devices", f"/tickets/{ident}/devices/refresh"):
        response = browser.client.post(path, json={}, headers={"x-csrftoken": browser.csrf()})
        assert response.status_code in (400, 404), (path, response.status_code, response.text[:500])


@pytest.mark.parametrize("email", ["jan\x00@example.pl", "\x00", "a@exa\x00mple.pl"])
def test_nul_byte_in_an_email_is_refused_without_a_500(browser, db, email):
    login = browser.submit("/login", {"email": email, "password": "Haslo1234"})
    assert login.status_code in (401, 422), login.text[:1000]
    forgot = browser.submit("/password/forgot", {"email": email})
    assert forgot.status_code == 422, forgot.text[:1000]
    resend = browser.submit("/activate/resend", {"email": email})
    assert resend.status_code == 422, resend.text[:1000]
    from tests.conftest import registration_form

    registered = browser.submit("/register", registration_form(email=email))
    assert registered.status_code == 422, registered.text[:1000]
    assert db.count(User) == 0 and db.count(OutboxMail) == 0


@pytest.fixture
def device_credentials(engine) -> dict[str, str]:
    with transaction(engine) as session:
        _v, validator = service.add_device(session, "validator", "Kasownik")
        _m, meter_credential = service.add_device(session, "parking-meter", "Parkometr")
    return {"validator": validator, "meter": meter_credential}


@pytest.mark.parametrize("field", ["event_id", "card_number", "vehicle_id", "stop_id"])
def test_nul_byte_in_a_device_text_is_refused_with_422(client, device_credentials, engine, settings, db, field):
    make_card(engine, settings, "7201", balance=1000)
    body = {**tap_body("7201"), field: "ab\x00cd"}
    headers = {"Authorization": f"Bearer {device_credentials['validator']}"}
    single = client.post("/api/devices/validator/taps", json=body, headers=headers)
    assert single.status_code == 422, single.text
    assert single.json()["code"] == "purse.device.invalid"
    batch = client.post("/api/devices/validator/batch", json={"taps": [body]}, headers=headers)
    assert batch.status_code == 422, batch.text
    top_up = meter(client, device_credentials["meter"], "top-up",
                   {"event_id": "ab\x00cd" if field == "event_id" else "e1", "at": body["at"],
                    "coins": [500], "card_number": "72\x0001" if field == "card_number" else "7201"})
    assert top_up.status_code in (200, 422), top_up.text
    if field in ("event_id", "card_number"):
        assert top_up.status_code == 422
    assert db.count(DeviceEvent) == 0 or field not in ("event_id", "card_number")


def test_a_128_kb_csv_field_is_a_line_problem_not_a_traceback(tmp_path, settings_env, monkeypatch):
    from web.cli import main

    csv_file = tmp_path / "cards.csv"
    csv_file.write_text("type,client_code,pesel,holder_name\n"
                        f"KKM,100200300,44051401458,{'A' * 200_000}\n"
                        "KKM,100200301,44051401458,Anna Nowak\n", encoding="utf-8")
    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["cards", "import", str(csv_file)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "line 2:" in result.output
    assert "Traceback" not in result.output
