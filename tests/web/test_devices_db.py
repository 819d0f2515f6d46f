"""The device API's database connections on PostgreSQL: pooled connections are not pinged on every checkout
(a round trip per tap), so a connection that died in the pool is caught by a ping after idling, or, under a tap,
by one retry on a new connection (safe: the event id books a tap once)."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import text, update

from domain.purse import CardKind
from tests.support.purse import bearer_card_and_validator, validator_tap
from web import clock as web_clock
from web import db as web_db
from web.db import make_engine, transaction
from web.models import Device
from web.services import purse as service

POSTGRES_ONLY = pytest.mark.parametrize("db_backend", [pytest.param("postgres", marks=pytest.mark.postgres)],
                                        indirect=True)


def _backend_pid(engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(engine, pid: int) -> None:
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        conn.commit()
        deadline = time.monotonic() + 10
        while conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).scalar_one():
            assert time.monotonic() < deadline, "the backend did not exit"
            time.sleep(0.05)
            conn.commit()


@POSTGRES_ONLY
def test_a_pooled_connection_is_pinged_only_after_idling_and_replaced_when_dead(engine, db_url, db_backend, monkeypatch):
    pool_engine = make_engine(db_url)
    try:
        pid = _backend_pid(pool_engine)
        assert _backend_pid(pool_engine) == pid  # the same pooled connection, handed out again
        _terminate(engine, pid)
        monkeypatch.setattr(web_db, "PING_AFTER_IDLE_SECONDS", 0.0)
        assert _backend_pid(pool_engine) != pid  # the ping found it dead: a new connection
    finally:
        pool_engine.dispose()


@POSTGRES_ONLY
def test_a_tap_whose_connection_died_in_the_pool_is_retried_and_booked_once(engine, db_url, db_backend, monkeypatch):
    with transaction(engine) as session:
        service.issue_card(session, number="9003", kind=CardKind.BEARER, issued_on=web_clock.today())
        service.top_up_at_service_point(session, "9003", 10_000)
        credential = service.add_device(session, "validator", "Kasownik")[1]
    monkeypatch.setattr(web_db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    pool_engine = make_engine(db_url)
    try:
        _terminate(engine, _backend_pid(pool_engine))
        tap = service.Tap(event_id=uuid.uuid4().hex, at=web_clock.now(), card_number="9003", vehicle_id="BUS-1",
                          stop_id="Dworzec")
        answer, replayed = service.tap_with_credential(pool_engine, credential, tap)
        assert answer["accepted"] and not replayed
        assert service.tap_with_credential(pool_engine, credential, tap) == (answer, True)
        # again with the credential cached: the first statement is then the card's, on the driver's cursor
        pool_engine.dispose()  # from here on one pooled connection
        assert service.tap_with_credential(pool_engine, credential, tap) == (answer, True)
        _terminate(engine, _backend_pid(pool_engine))
        second = service.Tap(event_id=uuid.uuid4().hex, at=web_clock.now(), card_number="9003", vehicle_id="BUS-2",
                             stop_id="Dworzec")
        again, replayed = service.tap_with_credential(pool_engine, credential, second)
        assert again["accepted"] and not replayed
    finally:
        pool_engine.dispose()
    with transaction(engine) as session:
        row = service.lock_card(session, "9003")
        assert row is not None and row.balance == again["balance"] == 10_000 - answer["amount"] - again["amount"]
        assert service.ledger_sum(session, row.id) == row.balance  # type: ignore[arg-type]


SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_sqlite_tap_on_the_event_loop_never_waits_for_another_writer(engine, db_backend):
    credential = bearer_card_and_validator(engine, "9004")
    tap = validator_tap("9004")
    with engine.connect() as other:  # a page's transaction (or another process) holds SQLite's write lock
        other.exec_driver_sql("BEGIN IMMEDIATE")
        started = time.monotonic()
        assert service.tap_if_free(engine, credential, tap) is None  # handed over to a worker thread instead
        assert time.monotonic() - started < 1.0
        other.rollback()
    with service.writer_turn(engine):  # another tap's worker thread holds the writer turn
        assert service.tap_if_free(engine, credential, tap) is None
    answer, replayed = service.tap_if_free(engine, credential, tap)  # type: ignore[misc]
    assert answer["accepted"] and not replayed
    assert service.tap_with_credential(engine, credential, tap) == (answer, True)
    with transaction(engine) as session:
        row = service.lock_card(session, "9004")
        assert row is not None and row.balance == 10_000 - answer["amount"] == service.ledger_sum(session, row.id)  # type: ignore[arg-type]


@SQLITE_ONLY
def test_sqlite_tap_on_the_event_loop_refuses_a_disabled_device(engine, db_backend):
    credential = bearer_card_and_validator(engine, "9005")
    assert service.tap_if_free(engine, credential, validator_tap("9005")) is not None  # now cached in this process
    with engine.begin() as conn:  # `ekp devices disable` in another process: this one's cache still has it
        conn.execute(update(Device).where(Device.id == int(credential.partition(".")[0])).values(active=False))  # type: ignore[arg-type]
    with pytest.raises(service.DeviceRefused):
        service.tap_if_free(engine, credential, validator_tap("9005"))
