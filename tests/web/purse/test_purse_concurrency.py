"""16 clients tapping one e-purse card at once through the device API, against PostgreSQL served by
uvicorn on a loopback port: no update is lost (the final balance is exact, R-MONEY-2) and replaying
every event afterwards changes nothing."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn

from web.platform import clock as web_clock
from web.platform.db import transaction
from web.purse import service
from domain.purse import CardKind
from tests.support.purse import purse_tariff

CLIENTS = 16
TAPS_PER_CLIENT = 12
START_BALANCE = 100_000  # enough for every tap: no credit ride muddles the arithmetic
FARE = 280


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_app(app):
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize("db_backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_r_money_2_sixteen_concurrent_clients_tap_one_card_exactly(live_app, engine, db_backend):
    with transaction(engine) as session:
        service.issue_card(session, number="9001", kind=CardKind.BEARER, issued_on=web_clock.today())
        service.top_up_at_service_point(session, "9001", START_BALANCE, tariff=purse_tariff())
        credentials = [service.add_device(session, "validator", f"Kasownik {i}")[1] for i in range(CLIENTS)]

    def client_taps(index: int) -> list[tuple[str, dict, dict]]:
        sent = []
        with httpx.Client(base_url=live_app, timeout=30,
                          headers={"Authorization": f"Bearer {credentials[index]}"}) as http:
            for n in range(TAPS_PER_CLIENT):
                # every tap on its own bus, so each one is the holder's fare (no companion rules)
                body = {"event_id": uuid.uuid4().hex, "at": web_clock.now().isoformat(), "card_number": "9001",
                        "vehicle_id": f"BUS-{index}-{n}", "stop_id": "Dworzec", "buttons": {"t": 0, "b": 0, "s": False}}
                response = http.post("/api/devices/validator/taps", json=body)
                assert response.status_code == 200, response.text
                sent.append((credentials[index], body, response.json()))
        return sent

    with ThreadPoolExecutor(CLIENTS) as pool:
        sent = [item for batch in pool.map(client_taps, range(CLIENTS)) for item in batch]

    total = CLIENTS * TAPS_PER_CLIENT
    assert all(answer["accepted"] for _c, _b, answer in sent)
    final = START_BALANCE - total * FARE
    # Every balance shown is distinct: each tap saw the one before it.
    assert sorted(answer["balance"] for _c, _b, answer in sent) == list(range(final, START_BALANCE, FARE))
    with transaction(engine) as session:
        row = service.lock_card(session, "9001")
        assert row is not None and row.balance == final
        assert service.ledger_sum(session, row.id) == final  # type: ignore[arg-type]

    def replay(item: tuple[str, dict, dict]) -> bool:
        credential, body, answer = item
        again = httpx.post(f"{live_app}/api/devices/validator/taps", json=body, timeout=30,
                           headers={"Authorization": f"Bearer {credential}"})
        return again.json() == answer and again.headers["idempotent-replay"] == "true"

    with ThreadPoolExecutor(CLIENTS) as pool:
        assert all(pool.map(replay, sent))
    with transaction(engine) as session:
        row = service.lock_card(session, "9001")
        assert row is not None and row.balance == final and service.ledger_sum(session, row.id) == final  # type: ignore[arg-type]


@pytest.mark.parametrize("db_backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_one_event_sent_by_sixteen_connections_at_once_is_booked_once(live_app, engine, db_backend):
    """A validator's retries racing each other: the card lock makes them wait for the first, the event's unique
    key sends every other one to the stored response (the replay check reads the snapshot taken before the lock)."""
    with transaction(engine) as session:
        service.issue_card(session, number="9002", kind=CardKind.BEARER, issued_on=web_clock.today())
        service.top_up_at_service_point(session, "9002", START_BALANCE, tariff=purse_tariff())
        credential = service.add_device(session, "validator", "Kasownik")[1]
    body = {"event_id": uuid.uuid4().hex, "at": web_clock.now().isoformat(), "card_number": "9002",
            "vehicle_id": "BUS-1", "stop_id": "Dworzec", "buttons": {"t": 0, "b": 0, "s": False}}
    start = threading.Barrier(CLIENTS)

    def send(_index: int) -> tuple[int, dict, str]:
        with httpx.Client(base_url=live_app, timeout=30, headers={"Authorization": f"Bearer {credential}"}) as http:
            start.wait()
            response = http.post("/api/devices/validator/taps", json=body)
            return response.status_code, response.json(), response.headers["idempotent-replay"]

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(send, range(CLIENTS)))
    assert {status for status, _a, _r in answers} == {200}
    assert all(answer == answers[0][1] for _s, answer, _r in answers)
    assert sorted(replayed for _s, _a, replayed in answers) == ["false"] + ["true"] * (CLIENTS - 1)
    with transaction(engine) as session:
        row = service.lock_card(session, "9002")
        assert row is not None and row.balance == START_BALANCE - FARE
        assert service.ledger_sum(session, row.id) == START_BALANCE - FARE  # type: ignore[arg-type]
