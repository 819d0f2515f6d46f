"""The device simulators and the trust boundary around them (issue 12, item 1), on SQLite and PostgreSQL.

An inspector or staff member once found a real device credential in the simulator page (`data-credential`)
and minted money with `POST /api/devices/meter/top-up`. Now no page hands out a device credential: the
simulator pages post to their own server-side endpoints, which act as a simulator device, only for staff,
only where dev pages are on, only on demo cards; the device API refuses simulator devices outright; a
disabled simulator device stays disabled.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from domain.purse import CardKind
from tests.support.purse import assert_balance_is_ledger_sum, balance_of, make_card, meter, tap, tap_body
from web.platform import clock as web_clock
from web.platform.db import transaction
from web.purse.models import Device, PurseCardRow, PurseLedgerEntry
from web.purse import service

REAL_CARD = "70020001"
DEMO_CARD = "70029999"
# `<device id>.<token>` as `ekp devices add` prints it, and the old simulator's hex token
CREDENTIAL_SHAPE = re.compile(r"\b\d{1,12}\.[A-Za-z0-9_\-]{20,}")
SKIP = ("/static/", "/logout", "/sandbox-pay/")


def _top_up_body(number: str) -> dict:
    return {"event_id": uuid.uuid4().hex, "at": web_clock.now().isoformat(), "card_number": number,
            "coins": [500] * 40}


def _demo_card(engine, settings, number: str = DEMO_CARD, balance: int = 1000) -> None:
    make_card(engine, settings, number, kind=CardKind.BEARER, balance=balance)
    with transaction(engine) as session:
        session.scalars(select(PurseCardRow).where(PurseCardRow.number == number)).one().demo = True


def _crawl(browser, start: list[str], limit: int = 80) -> dict[str, str]:
    """Every same-site page reachable by links from `start` (GET only), with its HTML."""
    seen: dict[str, str] = {}
    queue = list(start)
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen or any(path.startswith(prefix) for prefix in SKIP):
            continue
        response = browser.get(path)
        assert response.status_code < 500, (path, response.status_code)
        seen[path] = response.text
        for href in re.findall(r'href="([^"]+)"', response.text):
            parts = urlsplit(href)
            if parts.netloc or not parts.path.startswith("/"):
                continue
            queue.append(parts.path)
    return seen


def _simulator_call(browser, path: str, body: dict):
    return browser.client.post(path, json=body, headers={"x-csrftoken": browser.csrf()})


@pytest.mark.parametrize("role", ["inspector", "staff"])
def test_no_page_hands_an_inspector_or_staff_member_a_device_credential(role, browser, users, client, engine, settings):
    """Every page they can reach is scanned for credentials; each one found is tried on a real card."""
    make_card(engine, settings, REAL_CARD, balance=1000)
    users.create(f"{role}@example.pl", role=role, pesel=None)
    browser.login(f"{role}@example.pl")
    pages = _crawl(browser, ["/", "/account", "/inspect", "/desk", "/purse", "/simulators/validator",
                             "/simulators/meter", "/dev/mail"])
    assert len(pages) >= 5, sorted(pages)
    found = set()
    for html in pages.values():
        found.update(CREDENTIAL_SHAPE.findall(html))
    for credential in found:  # the attack: invented coins on a real card with whatever the pages gave away
        meter(client, credential, "top-up", _top_up_body(REAL_CARD))
        tap(client, credential, REAL_CARD)
    assert balance_of(engine, REAL_CARD) == 1000, f"money moved with a credential from a page: {found}"
    assert not found
    assert not [path for path, html in pages.items() if "data-credential" in html]


def test_simulators_never_touch_a_real_cards_money(browser, users, engine, settings):
    make_card(engine, settings, REAL_CARD, balance=1000)
    users.create("bok@example.pl", role="staff", pesel=None)
    browser.login("bok@example.pl")
    page = browser.get("/simulators/meter")
    assert page.status_code == 200 and "AKCEPTUJ" in page.text and "data-credential" not in page.text
    top_up = _simulator_call(browser, "/simulators/meter/top-up", _top_up_body(REAL_CARD))
    assert top_up.status_code == 403
    assert top_up.json()["detail"] == "Symulator działa tylko na kartach demonstracyjnych."
    for action, body in (("insert", {"at": web_clock.now().isoformat(), "card_number": REAL_CARD}),
                         ("accept", {"event_id": uuid.uuid4().hex, "at": web_clock.now().isoformat(),
                                     "card_number": REAL_CARD, "presses": 3})):
        assert _simulator_call(browser, f"/simulators/meter/{action}", body).status_code == 403
    tapped = _simulator_call(browser, "/simulators/validator/tap", tap_body(REAL_CARD))
    assert tapped.status_code == 403
    assert balance_of(engine, REAL_CARD) == 1000
    with transaction(engine) as session:
        assert len(session.scalars(select(PurseLedgerEntry)).all()) == 1  # the opening top-up only


def test_simulators_drive_demo_cards_like_real_devices(browser, users, engine, settings):
    _demo_card(engine, settings, balance=1000)
    users.create("bok@example.pl", role="staff", pesel=None)
    browser.login("bok@example.pl")
    page = browser.get("/simulators/validator").text
    assert 'src="/static/js/validator-sim.js' in page and "<script>" not in page and "data-credential" not in page
    body = tap_body(DEMO_CARD)
    tapped = _simulator_call(browser, "/simulators/validator/tap", body)
    assert tapped.status_code == 200 and tapped.json()["accepted"], tapped.text
    assert tapped.json()["balance"] == 720
    again = _simulator_call(browser, "/simulators/validator/tap", body)  # the same event: booked once
    assert again.json()["balance"] == 720 and again.headers["Idempotent-Replay"] == "true"
    inserted = _simulator_call(browser, "/simulators/meter/insert", {"at": web_clock.now().isoformat(),
                                                                      "card_number": DEMO_CARD})
    assert inserted.status_code == 200 and inserted.json()["accepted"]
    topped = _simulator_call(browser, "/simulators/meter/top-up", {**_top_up_body(DEMO_CARD), "coins": [500]})
    assert topped.status_code == 200 and topped.json()["accepted"], topped.text
    assert balance_of(engine, DEMO_CARD) == 1220
    foreign = _simulator_call(browser, "/simulators/validator/tap", tap_body(None))
    assert foreign.status_code == 200 and foreign.json()["message"] == "ZŁA KARTA"
    cancelled = _simulator_call(browser, "/simulators/meter/cancel", {"coins": [200]})
    assert cancelled.status_code == 200
    assert_balance_is_ledger_sum(engine)


def test_simulator_endpoints_need_a_csrf_token_and_bounded_input(browser, users, engine, settings):
    _demo_card(engine, settings)
    users.create("bok@example.pl", role="staff", pesel=None)
    browser.login("bok@example.pl")
    browser.get("/simulators/meter")
    no_token = browser.client.post("/simulators/meter/top-up", json=_top_up_body(DEMO_CARD))
    assert no_token.status_code == 403
    too_long = _simulator_call(browser, "/simulators/meter/top-up", {**_top_up_body(DEMO_CARD), "card_number": "7" * 500})
    # the device API's limits are part of its body schema now (issue 13, item 12): outside them is 400
    assert too_long.status_code == 400 and too_long.json()["detail"] == "Nieprawidłowe dane zdarzenia."
    garbage = _simulator_call(browser, "/simulators/validator/tap", {"event_id": 5})
    assert garbage.status_code == 400 and "detail" in garbage.json()
    assert balance_of(engine, DEMO_CARD) == 1000


def test_simulators_are_for_staff_only(browser, users, engine, settings):
    _demo_card(engine, settings)
    for email, role in (("kontroler@example.pl", "inspector"), ("anna@demo.ekp", "passenger")):
        users.create(email, role=role, pesel=None, birth_date=web_clock.today().replace(year=1980))
        browser.login(email)
        assert browser.get("/simulators/validator").status_code == 403
        assert browser.get("/simulators/meter").status_code == 403
        assert "/simulators/" not in browser.get("/account").text
        refused = _simulator_call(browser, "/simulators/validator/tap", tap_body(DEMO_CARD))
        assert refused.status_code == 403
        browser.logout()
    assert browser.get("/simulators/validator", follow_redirects=False).status_code == 303  # to the login page
    assert balance_of(engine, DEMO_CARD) == 1000


def test_simulators_exist_only_where_dev_pages_are_on(make_app, users):
    from litestar.testing import TestClient

    from tests.conftest import BASE_URL, Browser

    users.create("bok@example.pl", role="staff", pesel=None)
    app = make_app(EKP_DEV_PAGES="false")
    with TestClient(app, base_url=BASE_URL) as client:
        browser = Browser(client)
        browser.login("bok@example.pl")
        assert browser.get("/simulators/validator").status_code == 404
        assert "/simulators/" not in browser.get("/account").text


def test_the_device_api_refuses_simulator_devices(client, engine, settings):
    """A credential of a simulator device (as the old pages handed out) buys nothing, even on a demo card."""
    make_card(engine, settings, REAL_CARD, balance=1000)
    _demo_card(engine, settings)
    token = hmac.new(settings.secret_key, b"ekp:simulator:1", hashlib.sha256).hexdigest()
    with transaction(engine) as session:
        for kind in ("parking-meter", "validator"):
            device = Device(kind=kind, name="Symulator", simulator=True,
                            secret_hash=hashlib.sha256(token.encode()).hexdigest())
            session.add(device)
            session.flush()
            if kind == "parking-meter":
                meter_credential = f"{device.id}.{token}"
            else:
                validator_credential = f"{device.id}.{token}"
    for number in (REAL_CARD, DEMO_CARD):
        assert meter(client, meter_credential, "top-up", _top_up_body(number)).status_code == 401
        assert tap(client, validator_credential, number).status_code == 401
    assert (balance_of(engine, REAL_CARD), balance_of(engine, DEMO_CARD)) == (1000, 1000)


def test_a_disabled_simulator_device_is_not_re_created(browser, users, engine, settings, settings_env, monkeypatch):
    from click.testing import CliRunner

    from web.cli import main

    _demo_card(engine, settings)
    users.create("bok@example.pl", role="staff", pesel=None)
    browser.login("bok@example.pl")
    assert _simulator_call(browser, "/simulators/validator/tap", tap_body(DEMO_CARD)).status_code == 200
    with transaction(engine) as session:
        simulator = session.scalars(select(Device).where(Device.simulator.is_(True))).one()
        device_id = simulator.id
    for key, value in settings_env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(main, ["devices", "disable", str(device_id)])
    assert result.exit_code == 0, result.output
    page = browser.get("/simulators/validator")
    assert page.status_code == 200 and "Symulator wyłączony" in page.text
    refused = _simulator_call(browser, "/simulators/validator/tap", tap_body(DEMO_CARD))
    assert refused.status_code == 403 and refused.json()["detail"].startswith("Symulator wyłączony")
    with transaction(engine) as session:
        assert [d.id for d in session.scalars(select(Device).where(Device.kind == "validator"))] == [device_id]
    assert balance_of(engine, DEMO_CARD) == 1000 - 280
