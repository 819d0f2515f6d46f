"""Issue 18, observable: `/healthz` and `/readyz`, Prometheus metrics at `/metrics` (HTTP and business numbers,
protected), request ids on answers, error pages and log lines, and logs that never carry PESEL, passwords,
tokens or card data."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
from typing import Any

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import (
    BASE_URL,
    DEFAULT_PASSWORD,
    TEST_IP_HEADER,
    VALID_PESEL,
    Browser,
    registration_form,
)
from tests.support.purse import bearer_card_and_validator, tap
from tests.support.shop import GOOD_CARD, add_card, settings_env, shop  # noqa: F401  (fixtures)
from web.platform.db import make_engine, transaction
from web.platform.models import OutboxMail
from web.payment_records.models import Payment

LOOPBACK = {TEST_IP_HEADER: "127.0.0.1"}
TOKEN = "m" * 40


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: dict, name: str, **labels: str) -> float:
    """The sum of `name` over every sample whose labels include `labels`."""
    return sum(value for (sample, sample_labels), value in samples.items()
               if sample == name and set(labels.items()) <= set(sample_labels))


def _scrape(client: TestClient, headers: dict[str, str] | None = None) -> dict:
    response = client.get("/metrics", headers=headers if headers is not None else LOOPBACK)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/plain")
    return _samples(response.text)


# ------------------------------------------------------------------------------------------- health, readiness


def test_healthz_answers_without_the_database_and_readyz_names_the_database(make_settings, fast_password_hashing):
    from web.app import create_app

    unreachable = f"postgresql+psycopg://ekp@127.0.0.1:{_closed_port()}/ekp?connect_timeout=2"
    engine = make_engine(unreachable)
    try:
        app = create_app(make_settings(EKP_DATABASE_URL=unreachable), engine, start_jobs=False)
        with TestClient(app, base_url=BASE_URL) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            ready = client.get("/readyz")
    finally:
        engine.dispose()
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable" and ready.json()["failed"] == ["database"]
    assert "127.0.0.1" not in ready.text and "psycopg" not in ready.text, "what failed, not where"


@pytest.mark.both_stores
def test_readyz_checks_database_redis_and_gateway(client, redis_url):
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    expected = {"database": "ok", "gateway": "ok", **({"redis": "ok"} if redis_url else {})}
    assert ready.json() == {"status": "ok", "checks": expected, "failed": []}


def test_readyz_fails_when_redis_does_not_answer(make_app):
    app = make_app(EKP_REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0")
    with TestClient(app, base_url=BASE_URL) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["failed"] == ["redis"]
    assert ready.json()["checks"]["database"] == "ok"


def test_probes_and_metrics_have_no_session_or_csrf_cookie(client):
    for path in ("/healthz", "/readyz", "/metrics"):
        response = client.get(path, headers=LOOPBACK)
        assert response.status_code == 200, path
        assert not response.headers.get_list("set-cookie"), path


# ------------------------------------------------------------------------------------------------- metrics


def test_metrics_count_requests_by_route_and_status(client):
    before = _scrape(client)
    for _ in range(3):
        assert client.get("/login").status_code == 200
    assert client.get("/nie-ma-takiej").status_code == 404
    after = _scrape(client)
    labels = {"path": "/login", "method": "GET", "status_code": "200"}
    assert _value(after, "ekp_requests_total", **labels) - _value(before, "ekp_requests_total", **labels) == 3
    assert _value(after, "ekp_request_duration_seconds_count", **labels) - \
        _value(before, "ekp_request_duration_seconds_count", **labels) == 3
    assert not any(dict(sample_labels).get("path") == "/nie-ma-takiej" for _, sample_labels in after), \
        "paths no route answers never become labels"


def test_metrics_show_business_numbers(client, engine, users, settings_env):  # noqa: F811
    user = users.create("jan@example.pl")
    with transaction(engine) as session:
        for n, (status, kind) in enumerate([("pending", "hosted"), ("held_for_review", "hosted"),
                                            ("held_for_review", "token"), ("paid", "token"), ("failed", "token")]):
            session.add(Payment(reference=f"ref-{n}", purpose="5p1_month", subject_id=n, user_id=user.id, kind=kind,
                                amount=1000, status=status))
        session.add(OutboxMail(to_address="jan@example.pl", subject="Test", text_body="x", html_body="x"))
    credential = bearer_card_and_validator(engine, "70019999")
    before = _scrape(client)
    assert tap(client, credential, "70019999", t=1).status_code == 200
    assert tap(client, credential, "70019999", event_id="x" * 65).status_code == 400  # not a tap at all
    assert CliRunner().invoke(__import__("web.cli", fromlist=["main"]).main, ["billing", "run"],
                              env=settings_env).exit_code == 0
    after = _scrape(client)
    assert _value(after, "ekp_payments", status="pending") == 1
    assert _value(after, "ekp_payments", status="held_for_review") == 2  # R-PAY-2
    assert _value(after, "ekp_charges", outcome="paid") == 1 and _value(after, "ekp_charges", outcome="failed") == 1
    assert _value(after, "ekp_outbox_backlog") == 1
    assert _value(after, "ekp_taps_total", outcome="booked") - _value(before, "ekp_taps_total", outcome="booked") == 1
    assert _value(after, "ekp_job_runs_total", job="billing") == 1
    assert _value(after, "ekp_job_failures_total", job="billing") == 0
    assert _value(after, "ekp_job_last_success_timestamp_seconds", job="billing") > 0


def test_metrics_need_the_token_or_a_direct_loopback_client(make_app):
    with TestClient(make_app(), base_url=BASE_URL) as client:
        assert client.get("/metrics").status_code == 403  # another machine
        assert client.get("/metrics", headers={**LOOPBACK, "x-forwarded-for": "203.0.113.9"}).status_code == 403
        assert client.get("/metrics", headers=LOOPBACK).status_code == 200
    with TestClient(make_app(EKP_METRICS_TOKEN=TOKEN), base_url=BASE_URL) as client:
        assert client.get("/metrics", headers=LOOPBACK).status_code == 403, "with a token, only the token"
        assert client.get("/metrics", headers={"authorization": "Bearer " + "n" * 40}).status_code == 403
        assert client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_metrics_token_is_checked_at_start(make_settings):
    from web.platform.settings import SettingsError

    with pytest.raises(SettingsError) as bad:
        make_settings(EKP_METRICS_TOKEN="short")
    assert any(problem.startswith("EKP_METRICS_TOKEN") for problem in bad.value.problems)


# ---------------------------------------------------------------------------------------------- request ids


def test_every_answer_has_a_request_id_and_error_pages_show_it(client):
    first, second = client.get("/"), client.get("/")
    assert re.fullmatch(r"[0-9a-f]{16}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    missing = client.get("/nie-ma-takiej")
    assert missing.status_code == 404
    assert missing.headers["x-request-id"] in missing.text, "a passenger can quote it"
    # Not from the client: without trusted proxies, a request id a client sends is replaced.
    assert client.get("/", headers={"x-request-id": "client-chosen-id-1"}).headers["x-request-id"] != "client-chosen-id-1"


def test_request_id_from_a_trusted_proxy_is_kept_if_it_is_a_plain_token(make_app):
    with TestClient(make_app(EKP_TRUSTED_PROXIES="10.0.0.5"), base_url=BASE_URL) as client:
        assert client.get("/", headers={"x-request-id": "proxy-id-12345678"}).headers["x-request-id"] == "proxy-id-12345678"
        odd = client.get("/", headers={"x-request-id": "<script>alert(1)</script>"}).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{16}", odd)


def test_server_errors_are_logged_with_the_request_id_in_json(client, monkeypatch):
    from web.pages import controllers as pages
    from web.platform.observe import configure_logging

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(pages, "page", broken)
    buffer = io.StringIO()
    handler = configure_logging("json", "INFO", stream=buffer, force=True)
    try:
        failed = client.get("/")
    finally:
        logging.getLogger().removeHandler(handler)  # type: ignore[arg-type]
    assert failed.status_code == 500
    rid = failed.headers["x-request-id"]
    assert rid in failed.text and "boom" not in failed.text
    [line] = [json.loads(line) for line in buffer.getvalue().splitlines() if "unhandled" in line]
    assert line["request_id"] == rid and line["level"] == "ERROR" and "RuntimeError" in line["error"]


# ------------------------------------------------------------------------------- no personal data in the logs


def test_logs_at_debug_carry_no_pesel_password_token_or_card_data(app, client, shop, db, engine, mails, caplog):  # noqa: F811
    """Registration, activation, login, card link and a card payment with every logger at DEBUG: neither the
    JSON log lines nor the raw records hold the PESEL, the password, the activation link's token, the
    session or CSRF cookie, or the payment card's number and CVC."""
    from web.platform.observe import configure_logging

    buffer = io.StringIO()
    handler = configure_logging("json", "DEBUG", stream=buffer, force=True)
    caplog.set_level(logging.DEBUG)
    password = "Tajne" + "Haslo" + "987"
    pesel = VALID_PESEL
    try:
        browser = Browser(client)
        registered = browser.register(**registration_form(email="ala@example.pl", password=password, pesel=pesel))
        assert registered.status_code == 303, registered.text[:1000]
        link = mails.last("ala@example.pl").link("/activate")
        assert browser.get(link).status_code == 200
        assert browser.login("ala@example.pl", password).status_code == 303
        ala = db.user("ala@example.pl")
        card = add_card(engine, ala, client_code="555666777")
        purchase = shop.pay(browser, shop.buy(browser, card))
        shop.come_back(browser, purchase)
        assert browser.get("/login").status_code == 200
    finally:
        logging.getLogger().removeHandler(handler)  # type: ignore[arg-type]
    cookies = [value for value in (client.cookies.get("ekp_session"), client.cookies.get("csrftoken")) if value]
    token = link.rsplit("/", 1)[-1].split("=")[-1]
    secrets_ = [pesel, password, token, GOOD_CARD, GOOD_CARD.replace(" ", ""), *cookies]
    written = buffer.getvalue()
    assert written, "the DEBUG run logged something"
    for line in written.splitlines():
        json.loads(line)
    raw = "\n".join(record.getMessage() + (str(record.exc_info) if record.exc_info else "") for record in caplog.records)
    for secret in secrets_:
        assert len(secret) >= 8
        assert secret not in written, f"{secret[:3]}… in the log output"
        assert secret not in raw, f"{secret[:3]}… in a log record"
    assert "123" not in re.findall(r"cvc\W+(\w+)", written + raw, flags=re.IGNORECASE)


def test_redaction_catches_what_slips_into_a_message():
    from web.platform.observe import redact

    line = redact(f"pesel {VALID_PESEL} card 4111 1111 1111 1111 password=Sekret123 Authorization: Bearer abc.def "
                  f"token=xyz session: s3cr3t")
    for secret in (VALID_PESEL, "4111 1111 1111 1111", "Sekret123", "abc.def", "xyz", "s3cr3t"):
        assert secret not in line, line
    assert DEFAULT_PASSWORD not in redact(f"password: {DEFAULT_PASSWORD}")
