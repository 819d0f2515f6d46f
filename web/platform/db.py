"""Database engine and sessions; one transaction per request or job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine


# A pooled server connection that sat idle this long is pinged before it is handed out (a dead one is replaced,
# and every connection pooled before it too). Connections in steady use are not: pinging each checkout cost a
# round trip per transaction. A connection that died while in use (the server restarted) fails the statement,
# and SQLAlchemy then discards the whole pool; an idempotent caller may retry once (`is_lost_connection`).
PING_AFTER_IDLE_SECONDS = 5.0
RECYCLE_AFTER_SECONDS = 3600


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        kwargs: dict = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if url in {"sqlite://", "sqlite:///:memory:"}:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - exercised on connect
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    engine = create_engine(url, pool_size=20, max_overflow=20, pool_recycle=RECYCLE_AFTER_SECONDS)

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
            dbapi_conn.rollback()  # hand it out idle, as the pool keeps it (the ping began a transaction)
        except Exception as exc:  # the pool replaces this connection and those pooled before it
            raise InvalidatePoolError(f"pooled connection did not answer a ping: {exc}") from exc

    return engine


def is_lost_connection(exc: BaseException) -> bool:
    """The database connection broke under a statement (SQLAlchemy has already discarded it)."""
    return bool(getattr(exc, "connection_invalidated", False))


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def affected(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched: its cursor's rowcount (typed: `Session.execute` says `Result`)."""
    return cast("CursorResult[Any]", result).rowcount
