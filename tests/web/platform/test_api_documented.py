"""Issue 13, item 12, by hand: each finding about the device and inspection APIs reproduced first (the
fuzzing itself is in test_api_fuzz.py). On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.support.purse import make_card, meter, tap_body
from web.platform.db import transaction
from web.purse.models import DeviceEvent, PurseLedgerEntry
from web.purse import service

PROBLEM_KEYS = {"status", "title", "detail", "code"}
DEVICE_OPERATIONS = ["validator/taps", "validator/batch", "meter/insert", "meter/quote", "meter/accept", "meter/top-up",
                     "meter/cancel"]


@pytest.fixture
def devices(engine) -> dict[str, str]:
    with transaction(engine) as session:
        _v, validator = service.add_device(session, "validator", "Kasownik")
        _m, meter_credential = service.add_device(session, "parking-meter", "Parkometr")
    return {"validator": validator, "meter": meter_credential}


def _credential_for(devices: dict[str, str], operation: str) -> str:
    return devices["validator" if operation.startswith("validator") else "meter"]


@pytest.mark.parametrize("operation", DEVICE_OPERATIONS)
@pytest.mark.parametrize("authorization", [None, "Basic abc", "Bearer "])
def test_a_bad_body_without_a_credential_is_401_first(client, operation, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    for body in ({"at": 0}, {"taps": "x", "coins": "x"}):
        response = client.post(f"/api/devices/{operation}", json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert set(response.json()) == PROBLEM_KEYS
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("operation", ["verify", "log"])
def test_inspection_api_without_a_session_is_401_with_the_problem_body(client, operation):
    response = client.post(f"/api/inspection/{operation}", content=b"not json", headers={"content-type": "text/plain"})
    assert response.status_code == 401
    assert set(response.json()) == PROBLEM_KEYS


def test_at_0_is_not_a_date(client, devices, engine, settings, db):
    make_card(engine, settings, "7401", balance=1000)
    body = {**tap_body("7401"), "at": 0}
    response = client.post("/api/devices/validator/taps", json=body, headers={"Authorization": f"Bearer {devices['validator']}"})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "purse.device.invalid"
    assert meter(client, devices["meter"], "insert", {"at": 0, "card_number": "7401"}).status_code == 400
    assert db.count(DeviceEvent) == 0


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59", "0001-01-01T00:30:00+01:00",
                                "0001-01-01T00:00:00"])
def test_a_device_time_at_the_calendars_ends_is_422_not_500_on_every_device_operation(client, devices, engine, settings,
                                                                                      db, at):
    make_card(engine, settings, "7402", balance=5000)
    booked = db.count(PurseLedgerEntry)
    bodies = {
        "validator/taps": {**tap_body("7402"), "at": at},
        "validator/batch": {"taps": [{**tap_body("7402"), "at": at}]},
        "meter/insert": {"at": at, "card_number": "7402"},
        "meter/quote": {"at": at, "card_number": "7402", "presses": 1},
        "meter/accept": {"event_id": "a1", "at": at, "card_number": "7402", "presses": 1},
        "meter/top-up": {"event_id": "t1", "at": at, "card_number": "7402", "coins": [500]},
    }
    for operation, body in bodies.items():
        response = client.post(f"/api/devices/{operation}", json=body,
                               headers={"Authorization": f"Bearer {_credential_for(devices, operation)}"})
        assert response.status_code == 422, (operation, response.text)
        assert response.json()["code"] == ("purse.device.future_event" if at.startswith("9999") else "purse.device.invalid")
    assert db.count(DeviceEvent) == 0
    assert db.count(PurseLedgerEntry) == booked


def test_405_names_the_allowed_methods(client):
    for path in ("/api/devices/validator/taps", "/api/inspection/verify"):
        response = client.get(path)
        assert response.status_code == 405
        assert "POST" in response.headers["allow"].split(", ")
        assert set(response.json()) == PROBLEM_KEYS
    assert client.delete("/login").headers["allow"]


@pytest.mark.parametrize("body", [{"taps": []}, {"taps": [tap_body("1")] * 501}])
def test_batch_size_is_bounded_and_documented(client, devices, body):
    response = client.post("/api/devices/validator/batch", json=body, headers={"Authorization": f"Bearer {devices['validator']}"})
    assert response.status_code == 400
    schema = client.get("/schema/openapi.json").json()["components"]["schemas"]
    assert (schema["TapBatchIn"]["properties"]["taps"]["minItems"], schema["TapBatchIn"]["properties"]["taps"]["maxItems"]) == (1, 500)


def test_the_document_describes_the_api_as_it_answers(client):
    document = client.get("/schema/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert set(schemas["Problem"]["required"]) == PROBLEM_KEYS
    assert set(document["components"]["securitySchemes"]) == {"device", "inspector"}
    tap = schemas["TapIn"]["properties"]
    assert (tap["event_id"]["maxLength"], tap["vehicle_id"]["maxLength"], tap["at"]["format"]) == (64, 32, "date-time")
    coins = schemas["MeterTopUpIn"]["properties"]["coins"]
    assert (coins["maxItems"], coins["items"]["maximum"]) == (2000, 100_000)
    for path, item in document["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in item.items():
            errors = {code: answer for code, answer in operation["responses"].items() if code.startswith("4")}
            assert {"400", "401", "405"} <= set(errors) or method == "get", (path, errors)
            for answer in errors.values():
                assert answer["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
            assert operation["security"], path
            if method == "post":
                assert operation["requestBody"]["content"]["application/json"]["schema"], path
    verify = document["paths"]["/api/inspection/verify"]["post"]
    assert "415" in verify["responses"]
    assert verify["requestBody"]["content"]["application/json"]["schema"]["properties"]["code"]["maxLength"] == 1024


def test_the_schema_page_loads_nothing_from_other_origins(client):
    page = client.get("/schema")
    assert page.status_code == 200
    assert "html" not in page.headers["content-type"]
    assert page.json()["openapi"].startswith("3.")
    for path in ("/schema/redoc", "/schema/swagger", "/schema/elements", "/schema/rapidoc"):
        assert client.get(path).status_code == 404
