"""Issue 14, library rails: every /api body is typed and bounded (msgspec Structs); random JSON thrown at the
device API and the inspection API is answered 200 or a 4xx problem (application/problem+json), never a 5xx
and never an unhandled error in the log. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.support.purse import make_card
from web.platform.db import transaction
from web.purse import service

DEVICE_OPERATIONS = ["validator/taps", "validator/batch", "meter/insert", "meter/quote", "meter/accept", "meter/top-up",
                     "meter/cancel"]
FIELDS = ["event_id", "at", "vehicle_id", "stop_id", "card_number", "buttons", "presses", "coins", "taps", "t", "b",
          "s", "code", "scans", "ticket_id"]

scalars = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
           | st.floats(allow_nan=False) | st.text(max_size=80)
           | st.sampled_from(["2026-07-01T12:00:00+02:00", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00", "7501",
                              "AAAA", ""]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), inner, max_size=6),
                           max_leaves=25)
bodies = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=7) | json_values


def _assert_answered(response: Any, body: Any, caplog: Any) -> None:
    assert response.status_code < 500, (body, response.text[:500])
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), response.headers
        assert {"status", "title", "detail", "code"} <= set(response.json())
    unhandled = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not unhandled, (body, unhandled)


def test_random_json_at_the_device_api_is_never_a_5xx(client, engine, settings, caplog):
    with transaction(engine) as session:
        _v, validator = service.add_device(session, "validator", "Kasownik")
        _m, meter = service.add_device(session, "parking-meter", "Parkometr")
    make_card(engine, settings, "7501", balance=1000)

    @given(operation=st.sampled_from(DEVICE_OPERATIONS), body=bodies)
    @hypothesis_settings(max_examples=150, deadline=None, database=None, derandomize=True,
                         suppress_health_check=list(HealthCheck))
    def post(operation: str, body: Any) -> None:
        caplog.clear()
        credential = validator if operation.startswith("validator") else meter
        response = client.post(f"/api/devices/{operation}", content=json.dumps(body).encode(),
                               headers={"Authorization": f"Bearer {credential}", "content-type": "application/json"})
        _assert_answered(response, body, caplog)

    post()


def test_random_json_at_the_inspection_api_is_never_a_5xx(browser, users, caplog):
    users.create("kontroler@example.pl", role="inspector")
    browser.login("kontroler@example.pl")

    @given(operation=st.sampled_from(["verify", "log"]), body=bodies)
    @hypothesis_settings(max_examples=60, deadline=None, database=None, derandomize=True,
                         suppress_health_check=list(HealthCheck))
    def post(operation: str, body: Any) -> None:
        caplog.clear()
        response = browser.client.post(f"/api/inspection/{operation}", content=json.dumps(body).encode(),
                                       headers={"content-type": "application/json"})
        _assert_answered(response, body, caplog)

    post()


def test_inspection_bodies_are_bounded(browser, users):
    users.create("kontroler@example.pl", role="inspector")
    browser.login("kontroler@example.pl")
    post = browser.client.post
    assert post("/api/inspection/verify", json={"code": "A" * 1025}).json()["code"] == "inspection.no_code"
    assert post("/api/inspection/verify", json={"code": 12}).status_code == 400
    assert post("/api/inspection/log", json={"scans": [{}] * 201}).json()["code"] == "inspection.bad_scans"
    logged = post("/api/inspection/log", json={"scans": [
        {"code": "x" * 65, "at": 1_780_000_000},  # a verdict code over 64 characters: skipped
        {"code": "valid", "at": True},  # a boolean is not a time: skipped
        "not an entry",
    ]})
    assert logged.status_code == 200 and logged.json() == {"logged": 0}
