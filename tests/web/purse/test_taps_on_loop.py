"""Validator taps have one path (web.purse.taps_on_loop): on the event loop, on SQLite and PostgreSQL alike, never
in a worker thread; a lost connection retried once on a new one (PostgreSQL); a SQLite tap that finds another
writer at work waits without blocking the loop; a disabled device refused; a racing duplicate answered as a
replay; the validator simulator taps through the same path, its demo-card check in the tap's own transaction."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy import text, update

from web.platform import clock as web_clock
from web.platform.db import transaction
from web.purse.models import Device
from web.purse import service
from web.purse import taps_on_loop
from tests.support.purse import bearer_card_and_validator as _card_and_validator, purse_tariff, validator_tap as _tap

POSTGRES_ONLY = pytest.mark.parametrize("db_backend", [pytest.param("postgres", marks=pytest.mark.postgres)],
                                        indirect=True)
SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)


def _balance(engine, number: str) -> tuple[int, int]:
    with transaction(engine) as session:
        row = service.lock_card(session, number)
        assert row is not None
        return row.balance, service.ledger_sum(session, row.id)  # type: ignore[arg-type]


def test_taps_through_the_device_api_run_on_the_event_loop_on_both_databases(client, engine, db_backend, monkeypatch):
    credential = _card_and_validator(engine, "9101")
    steps = service.tap_steps

    def on_the_loop(*args, **kwargs):  # noqa: ANN002, ANN003
        asyncio.get_running_loop()  # RuntimeError in a worker thread
        return steps(*args, **kwargs)

    monkeypatch.setattr(service, "tap_steps", on_the_loop)
    body = {"event_id": uuid.uuid4().hex, "at": web_clock.now().isoformat(), "card_number": "9101",
            "vehicle_id": "BUS-1", "stop_id": "Dworzec", "buttons": {"t": 0, "b": 0, "s": False}}
    headers = {"Authorization": f"Bearer {credential}"}
    first = client.post("/api/devices/validator/taps", json=body, headers=headers)
    assert first.status_code == 200 and first.json()["accepted"], first.text
    again = client.post("/api/devices/validator/taps", json=body, headers=headers)
    assert again.json() == first.json() and again.headers["idempotent-replay"] == "true"
    batch = client.post("/api/devices/validator/batch", headers=headers,
                        json={"taps": [body, {**body, "event_id": uuid.uuid4().hex}]})
    assert batch.status_code == 200, batch.text
    assert [line["replayed"] for line in batch.json()["results"]] == [True, False]
    balance, ledger = _balance(engine, "9101")
    assert balance == ledger == 10_000 - first.json()["amount"] - batch.json()["results"][1]["amount"]


@POSTGRES_ONLY
def test_a_tap_whose_async_connection_died_is_retried_once_and_booked_once(engine, db_backend):
    credential = _card_and_validator(engine, "9102")

    async def scenario() -> tuple[dict, dict]:
        pool = taps_on_loop.tap_connections(engine, size=1)
        assert isinstance(pool, taps_on_loop.PostgresTapConnections)
        try:
            first, _ = await taps_on_loop.tap_with_credential(pool, credential, _tap("9102"), purse_tariff())
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
            second, replayed = await taps_on_loop.tap_with_credential(pool, credential, _tap("9102"), purse_tariff())
            assert not replayed and idle.closed
            return first, second
        finally:
            await pool.close()

    first, second = asyncio.run(scenario())
    assert first["accepted"] and second["accepted"]
    balance, ledger = _balance(engine, "9102")
    assert balance == ledger == 10_000 - first["amount"] - second["amount"]


def test_a_disabled_device_is_refused_despite_the_cache(engine, db_backend):
    credential = _card_and_validator(engine, "9103")

    async def scenario() -> None:
        pool = taps_on_loop.tap_connections(engine)
        try:
            answer, _ = await taps_on_loop.tap_with_credential(pool, credential, _tap("9103"), purse_tariff())  # now cached
            assert answer["accepted"]
            with engine.begin() as conn:  # `ekp devices disable` in another process
                conn.execute(update(Device).where(Device.id == int(credential.partition(".")[0]))  # type: ignore[arg-type]
                             .values(active=False))
            with pytest.raises(service.DeviceRefused):
                await taps_on_loop.tap_with_credential(pool, credential, _tap("9103"), purse_tariff())
            with pytest.raises(service.DeviceRefused):  # no longer cached: refused by the look-up itself
                await taps_on_loop.tap_with_credential(pool, credential, _tap("9103"), purse_tariff())
            with pytest.raises(service.DeviceRefused):  # a malformed credential
                await taps_on_loop.tap_with_credential(pool, "nonsense", _tap("9103"), purse_tariff())
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_one_event_sent_at_once_many_times_is_booked_once(engine, db_backend):
    credential = _card_and_validator(engine, "9104")
    tap = _tap("9104")

    async def scenario() -> list[tuple[dict, bool]]:
        pool = taps_on_loop.tap_connections(engine, size=8)
        try:
            return await asyncio.gather(*[taps_on_loop.tap_with_credential(pool, credential, tap, purse_tariff()) for _ in range(8)])
        finally:
            await pool.close()

    answers = asyncio.run(scenario())
    assert all(answer == answers[0][0] for answer, _ in answers)
    assert sum(1 for _, replayed in answers if not replayed) == 1
    balance, ledger = _balance(engine, "9104")
    assert balance == ledger == 10_000 - answers[0][0]["amount"]


@POSTGRES_ONLY
def test_an_app_served_again_on_another_loop_gets_a_new_pool(engine, db_backend):
    credential = _card_and_validator(engine, "9105")

    async def first_loop() -> taps_on_loop.PostgresTapConnections:
        pool = taps_on_loop.tap_connections(engine)
        await taps_on_loop.tap_with_credential(pool, credential, _tap("9105"), purse_tariff())
        assert isinstance(pool, taps_on_loop.PostgresTapConnections)
        return pool

    old = asyncio.run(first_loop())
    [idle] = old._idle

    async def second_loop() -> dict:
        pool = old.for_this_loop()
        assert pool is not old and pool.for_this_loop() is pool
        try:
            answer, _ = await taps_on_loop.tap_with_credential(pool, credential, _tap("9105"), purse_tariff())
            return answer
        finally:
            await pool.close()

    assert asyncio.run(second_loop())["accepted"]
    assert idle.closed and not old._idle


@SQLITE_ONLY
def test_sqlite_tap_waits_for_another_writer_without_blocking_the_loop(engine, db_backend):
    credential = _card_and_validator(engine, "9106")

    async def scenario() -> tuple[dict, int]:
        pool = taps_on_loop.tap_connections(engine)
        other = engine.connect()  # a page's transaction (or another process) holds SQLite's write lock
        other.exec_driver_sql("BEGIN IMMEDIATE")
        ticks = 0

        async def ticking() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        ticker = asyncio.create_task(ticking())
        tapping = asyncio.create_task(taps_on_loop.tap_with_credential(pool, credential, _tap("9106"), purse_tariff()))
        await asyncio.sleep(0.2)
        assert not tapping.done()  # waiting for the writer...
        other.rollback()
        other.close()
        answer, replayed = await asyncio.wait_for(tapping, 5)
        ticker.cancel()
        assert not replayed
        return answer, ticks

    answer, ticks = asyncio.run(scenario())
    assert answer["accepted"] and ticks > 20  # ...while the loop went on serving
    balance, ledger = _balance(engine, "9106")
    assert balance == ledger == 10_000 - answer["amount"]


def test_the_simulator_taps_a_real_card_never_even_if_its_device_is_at_hand(engine, db_backend):
    """The demo-card check (domain.trust.simulator_may_use) is made again in the tap's own transaction."""
    _card_and_validator(engine, "9107")  # a real (not demo) card
    with transaction(engine) as session:
        simulator = service.simulator_device(session, "validator")
        assert simulator is not None and simulator.id is not None
        device = service.KnownDevice(simulator.id, simulator.name, "validator", simulator.secret_hash, simulator=True)

    async def scenario() -> None:
        pool = taps_on_loop.tap_connections(engine)
        try:
            with pytest.raises(service.SimulatorCardRefused):
                await taps_on_loop.tap_as(pool, device, _tap("9107"), purse_tariff())
            with pytest.raises(service.SimulatorCardRefused):  # a number no card has (yet)
                await taps_on_loop.tap_as(pool, device, _tap("9999999"), purse_tariff())
            answer, _ = await taps_on_loop.tap_as(pool, device, service.Tap(  # no city card at all
                event_id=uuid.uuid4().hex, at=web_clock.now(), card_number=None, vehicle_id="BUS-1", stop_id="D"), purse_tariff())
            assert not answer["accepted"]
        finally:
            await pool.close()

    asyncio.run(scenario())
    assert _balance(engine, "9107") == (10_000, 10_000)
