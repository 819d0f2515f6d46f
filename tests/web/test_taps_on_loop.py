"""Validator taps on PostgreSQL run on the event loop with asynchronous connections (web.services.taps_on_loop):
no worker thread; a lost connection retried once on a new one; a disabled device refused; a racing duplicate
answered as a replay."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy import text, update

from web import clock as web_clock
from web.db import transaction
from web.models import Device
from web.services import purse as service
from web.services import taps_on_loop
from tests.support.purse import bearer_card_and_validator as _card_and_validator, validator_tap as _tap

pytestmark = pytest.mark.parametrize("db_backend", [pytest.param("postgres", marks=pytest.mark.postgres)],
                                     indirect=True)


def _balance(engine, number: str) -> tuple[int, int]:
    with transaction(engine) as session:
        row = service.lock_card(session, number)
        assert row is not None
        return row.balance, service.ledger_sum(session, row.id)  # type: ignore[arg-type]


def test_taps_on_postgresql_use_no_worker_thread(client, engine, db_backend, monkeypatch):
    credential = _card_and_validator(engine, "9101")

    def threaded(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("a PostgreSQL tap went to a worker thread")

    monkeypatch.setattr(service, "tap_with_credential", threaded)
    body = {"event_id": uuid.uuid4().hex, "at": web_clock.now().isoformat(), "card_number": "9101",
            "vehicle_id": "BUS-1", "stop_id": "Dworzec", "buttons": {"t": 0, "b": 0, "s": False}}
    headers = {"Authorization": f"Bearer {credential}"}
    first = client.post("/api/devices/validator/taps", json=body, headers=headers)
    assert first.status_code == 200 and first.json()["accepted"], first.text
    again = client.post("/api/devices/validator/taps", json=body, headers=headers)
    assert again.json() == first.json() and again.headers["idempotent-replay"] == "true"
    balance, ledger = _balance(engine, "9101")
    assert balance == ledger == 10_000 - first.json()["amount"]


def test_a_tap_whose_async_connection_died_is_retried_once_and_booked_once(engine, db_backend):
    credential = _card_and_validator(engine, "9102")

    async def scenario() -> tuple[dict, dict]:
        pool = taps_on_loop.TapConnections(engine, size=1)
        try:
            first, _ = await taps_on_loop.tap_with_credential(pool, credential, _tap("9102"))
            [idle] = pool._idle
            with engine.connect() as admin:  # the server drops the pooled connection (restart, failover)
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": idle.info.backend_pid})
                admin.commit()
            deadline = time.monotonic() + 10
            while True:
                with engine.connect() as admin:
                    if not admin.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                                         {"pid": idle.info.backend_pid}).scalar_one():
                        break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            second, replayed = await taps_on_loop.tap_with_credential(pool, credential, _tap("9102"))
            assert not replayed and idle.closed
            return first, second
        finally:
            await pool.close()

    first, second = asyncio.run(scenario())
    assert first["accepted"] and second["accepted"]
    balance, ledger = _balance(engine, "9102")
    assert balance == ledger == 10_000 - first["amount"] - second["amount"]


def test_a_disabled_device_is_refused_on_the_loop_despite_the_cache(engine, db_backend):
    credential = _card_and_validator(engine, "9103")

    async def scenario() -> None:
        pool = taps_on_loop.TapConnections(engine)
        try:
            answer, _ = await taps_on_loop.tap_with_credential(pool, credential, _tap("9103"))  # now cached
            assert answer["accepted"]
            with engine.begin() as conn:  # `ekp devices disable` in another process
                conn.execute(update(Device).where(Device.id == int(credential.partition(".")[0]))  # type: ignore[arg-type]
                             .values(active=False))
            with pytest.raises(service.DeviceRefused):
                await taps_on_loop.tap_with_credential(pool, credential, _tap("9103"))
            with pytest.raises(service.DeviceRefused):  # no longer cached: refused by the look-up itself
                await taps_on_loop.tap_with_credential(pool, credential, _tap("9103"))
            with pytest.raises(service.DeviceRefused):  # a malformed credential
                await taps_on_loop.tap_with_credential(pool, "nonsense", _tap("9103"))
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_one_event_sent_at_once_on_many_connections_is_booked_once(engine, db_backend):
    credential = _card_and_validator(engine, "9104")
    tap = _tap("9104")

    async def scenario() -> list[tuple[dict, bool]]:
        pool = taps_on_loop.TapConnections(engine, size=8)
        try:
            return await asyncio.gather(*[taps_on_loop.tap_with_credential(pool, credential, tap) for _ in range(8)])
        finally:
            await pool.close()

    answers = asyncio.run(scenario())
    assert all(answer == answers[0][0] for answer, _ in answers)
    assert sum(1 for _, replayed in answers if not replayed) == 1
    balance, ledger = _balance(engine, "9104")
    assert balance == ledger == 10_000 - answers[0][0]["amount"]


def test_an_app_served_again_on_another_loop_gets_a_new_pool(engine, db_backend):
    credential = _card_and_validator(engine, "9105")

    async def first_loop() -> taps_on_loop.TapConnections:
        pool = taps_on_loop.TapConnections(engine)
        await taps_on_loop.tap_with_credential(pool, credential, _tap("9105"))
        return pool

    old = asyncio.run(first_loop())
    [idle] = old._idle

    async def second_loop() -> dict:
        pool = old.for_this_loop()
        assert pool is not old and pool.for_this_loop() is pool
        try:
            answer, _ = await taps_on_loop.tap_with_credential(pool, credential, _tap("9105"))
            return answer
        finally:
            await pool.close()

    assert asyncio.run(second_loop())["accepted"]
    assert idle.closed and not old._idle
