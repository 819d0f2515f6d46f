"""The app's database connections on PostgreSQL: pooled connections are not pinged on every checkout (a round
trip per transaction), so a connection that died in the pool is caught by a ping after idling. (Taps run on their
own connections: tests/web/purse/test_taps_on_loop.py.)"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from web.platform import db as web_db
from web.platform.db import make_engine

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
