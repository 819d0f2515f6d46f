"""Issue 14, library rails: every /api error is one shape, RFC 9457 problem details made by Litestar's
problem-details plugin (`application/problem+json`, `{status, title, detail, code}`), for each status the
device API and the inspection API give, and for an unexpected error. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.purse import make_card, tap_body
from web.platform.db import transaction
from web.purse import service

PROBLEM_KEYS = {"status", "title", "detail", "code"}


@pytest.fixture
def validator(engine) -> str:
    with transaction(engine) as session:
        _device, credential = service.add_device(session, "validator", "Kasownik")
    return credential


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == "application/problem+json", response.headers
    problem = response.json()
    assert set(problem) == PROBLEM_KEYS and problem["status"] == status, problem
    assert problem["title"] and problem["detail"] and "Traceback" not in response.text
    if code is not None:
        assert problem["code"] == code, problem
    return problem


def test_device_api_400_401_409_422_are_problem_details(client, validator, engine, settings):
    headers = {"Authorization": f"Bearer {validator}"}
    assert_problem(client.post("/api/devices/validator/taps", json={"at": 0}, headers=headers), 400,
                   "purse.device.invalid")
    assert_problem(client.post("/api/devices/validator/taps", content=b"{not json", headers=headers), 400)
    unauthorized = assert_problem(client.post("/api/devices/validator/taps", json={}), 401, "purse.device.unauthorized")
    assert unauthorized["title"] == "Brak dostępu"
    make_card(engine, settings, "7501", balance=1000)
    first = tap_body("7501", event_id="evt-p")
    assert client.post("/api/devices/validator/taps", json=first, headers=headers).status_code == 200
    assert_problem(client.post("/api/devices/validator/taps", json={**first, "vehicle_id": "BUS-9"}, headers=headers),
                   409, "purse.device.event_id_reused")
    future = {**tap_body("7501", event_id="evt-f"), "at": "9999-12-31T23:59:59Z"}
    assert_problem(client.post("/api/devices/validator/taps", json=future, headers=headers), 422,
                   "purse.device.future_event")


def test_api_404_405_413_are_problem_details(client, validator):
    assert_problem(client.get("/api/devices/no-such-operation"), 404, "http.not_found")
    assert_problem(client.get("/api/nothing/here"), 404, "http.not_found")
    not_allowed = assert_problem(client.get("/api/devices/validator/taps"), 405, "http.method_not_allowed")
    assert not_allowed  # and `Allow` is kept:
    assert "POST" in client.get("/api/inspection/verify").headers["allow"]
    too_big = b'{"taps": "' + b"x" * (11 * 1024 * 1024) + b'"}'
    response = client.post("/api/devices/validator/batch", content=too_big,
                           headers={"Authorization": f"Bearer {validator}", "content-type": "application/json"})
    assert_problem(response, 413)


def test_inspection_api_401_403_415_400_are_problem_details(client, browser, users):
    assert_problem(client.post("/api/inspection/verify", json={"code": "AAAA"}), 401, "inspection.unauthorized")
    users.create()
    browser.login("jan@example.pl")
    assert_problem(browser.client.post("/api/inspection/verify", json={"code": "AAAA"}), 403, "inspection.forbidden")
    assert_problem(browser.client.get("/api/inspection/trust-list"), 403, "inspection.forbidden")


def test_inspection_api_bad_bodies_are_problem_details(browser, users):
    users.create("kontroler@example.pl", role="inspector")
    browser.login("kontroler@example.pl")
    verify = browser.client.post
    assert_problem(verify("/api/inspection/verify", content=b"x", headers={"content-type": "text/plain"}), 415,
                   "inspection.not_json")
    assert_problem(verify("/api/inspection/verify", json={"code": ""}), 400, "inspection.no_code")
    assert_problem(verify("/api/inspection/verify", json={"code": "!!!!"}), 400, "inspection.bad_base64")
    assert_problem(verify("/api/inspection/log", json={"scans": "x"}), 400, "inspection.bad_scans")


def test_an_unexpected_api_error_is_a_500_problem_without_details(client, validator, monkeypatch, caplog):
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(service, "meter_cancel", broken)
    with transaction_free_meter(client) as meter_credential:
        response = client.post("/api/devices/meter/cancel", json={"coins": []},
                               headers={"Authorization": f"Bearer {meter_credential}"})
    problem = assert_problem(response, 500, "http.server_error")
    assert "secret internals" not in response.text and problem["title"] == "Coś poszło nie tak"


class transaction_free_meter:
    """A parking meter's credential (made before the use case is broken)."""

    def __init__(self, client: Any) -> None:
        self.engine = client.app.state.engine

    def __enter__(self) -> str:
        with transaction(self.engine) as session:
            _device, credential = service.add_device(session, "parking-meter", "Parkometr")
        return credential

    def __exit__(self, *exc: object) -> None:
        return None
