"""Validator taps: the one way a tap is booked, on the event loop, on SQLite and PostgreSQL.

A tap is a few statements (`purse.tap_steps`: lock and read the card with the device check and the replay look-up,
then the writes), compiled once for the engine's dialect with SQLAlchemy's type conversions and run on the driver's
cursor (`purse.driver_statement`), in one transaction, right on the event loop: no hand-over to a worker thread and
back (`benchmarks/taps.py --breakdown`: that hand-over cost more CPU than the tap itself on PostgreSQL). The device
API (`/api/devices/validator/*`) and the validator simulator both call `tap_with_credential` / `tap_as` here.

- **PostgreSQL**: a small pool of asynchronous psycopg connections owned by the app; the loop serves other requests
  during each round trip. A racing duplicate of the event (the remembered response's unique key) is answered from
  the stored response on a second attempt; a connection lost under a tap is dropped and the tap retried once on a
  new one (the event id makes that safe even if the lost one committed).
- **SQLite**: no network, well under a millisecond of CPU: the transaction runs synchronously on the loop, one tap
  at a time. It never blocks the loop waiting for another writer: the writer turn (a lock per process and a `flock`
  on a file next to the database across worker processes) is only tried, and the connection has no busy timeout;
  a tap that finds another writer at work (another process, a page's transaction in a worker thread) waits
  asynchronously (sleeps of 0.5 ms growing to 5 ms, at most `SQLITE_WAIT_SECONDS`) and tries again.
"""

from __future__ import annotations

import asyncio
import abc
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the per-process lock alone
    fcntl = None  # type: ignore[assignment]

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from domain.purse_tariff import PurseTariff
from web.platform.db import make_engine
from web.purse import service as purse
from web.purse.service import DeviceRefused, KnownDevice, Tap, TapStep, driver_statement

POOL_SIZE = 8  # PostgreSQL connections at most; a tap holds one for its round trips
SQLITE_WAIT_SECONDS = 30.0  # as long as the app's other SQLite connections wait for a writer (busy_timeout)

TapResult = tuple[dict[str, Any], bool]
Execute = Callable[[TapStep], Awaitable[Any]]  # run one step, give its first row (or None)
Work = Callable[[Execute], Awaitable[TapResult]]


class TapConnections(abc.ABC):
    """Where taps run for one engine and the event loop it was made on (`tap_connections` picks the database's
    kind; `for_this_loop` makes another for another loop, e.g. an app served again in tests)."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.dialect = engine, engine.dialect
        self.loop = asyncio.get_running_loop()
        self._closed = False

    def for_this_loop(self) -> TapConnections:
        if self.loop is asyncio.get_running_loop():
            return self
        self._drop_idle()
        return tap_connections(self.engine)

    def _drop_idle(self) -> None:
        self._closed = True

    @abc.abstractmethod
    async def run(self, work: Work) -> TapResult:
        """Run one tap's steps on this database's connections (PostgreSQL: the async pool; SQLite: inline)."""

    async def close(self) -> None:
        self._closed = True


def tap_connections(engine: Engine, size: int = POOL_SIZE) -> TapConnections:
    """The taps' connections for `engine` on the running loop."""
    if engine.dialect.name == "postgresql":
        return PostgresTapConnections(engine, size)
    return SqliteTapConnections(engine)


# --------------------------------------------------------------------------- PostgreSQL


class PostgresTapConnections(TapConnections):
    """A small pool of asynchronous psycopg connections to the engine's database."""

    def __init__(self, engine: Engine, size: int = POOL_SIZE) -> None:
        super().__init__(engine)
        self.size = size
        self.conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)

    def _drop_idle(self) -> None:
        """Close the idle connections at once, without their loop (it may be gone)."""
        super()._drop_idle()
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.pgconn.finish()

    async def _take(self) -> psycopg.AsyncConnection[Any]:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                return conn
            await conn.close()
        return await psycopg.AsyncConnection.connect(self.conninfo)

    async def _once(self, work: Work) -> TapResult:
        """`work` in one transaction: committed if it returns, rolled back if it raises. A connection that failed
        (lost, or left in a bad state) is closed, not given back."""
        async with self._slots:
            conn = await self._take()

            async def execute(step: TapStep) -> Any:
                statement, params, column_keys = step
                compiled = driver_statement(statement, self.dialect, column_keys)
                async with conn.cursor() as cursor:
                    await cursor.execute(compiled.sql, compiled.parameters(params))
                    found = await cursor.fetchone() if compiled.row is not None else None
                return compiled.first_row(found)

            healthy = False
            try:
                result = await work(execute)
                await conn.commit()
                healthy = True
                return result
            except BaseException:
                if not conn.closed and not conn.broken:
                    try:
                        await conn.rollback()
                        healthy = True
                    except psycopg.Error:
                        healthy = False
                raise
            finally:
                if healthy and not self._closed:
                    self._idle.append(conn)
                else:
                    await conn.close()

    async def run(self, work: Work) -> TapResult:
        try:
            return await self._once(work)
        except psycopg.errors.IntegrityError:
            return await self._once(work)  # a racing duplicate: now a replay
        except psycopg.OperationalError:
            return await self._once(work)  # the connection was lost: once more on a new one

    async def close(self) -> None:
        await super().close()
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


# --------------------------------------------------------------------------- SQLite

# One SQLite transaction writes at a time. Taps take turns on a lock per process and a `flock` on a file next to
# the database across worker processes, both only tried (never blocking the loop); other writers keep SQLite's
# busy handler.
_writer_lock = threading.Lock()
_writer_files: dict[str, int] = {}
_no_wait_engines: dict[str, Engine] = {}


def _writer_file(engine: Engine) -> int | None:
    """The descriptor of the file whose `flock` is the writer turn across processes (None: an in-memory database)."""
    path = engine.url.database or ""
    fd = _writer_files.get(path)
    if fd is None and fcntl is not None and path and path != ":memory:" and not path.startswith("file:"):
        fd = _writer_files[path] = os.open(f"{path}-writer-turn", os.O_RDWR | os.O_CREAT, 0o600)
    return fd


def _no_wait_engine(engine: Engine) -> Engine:
    """An engine on the same database file whose connections never wait in SQLite's busy handler (an in-memory
    database has one shared connection: the engine itself)."""
    if _writer_file(engine) is None:
        return engine
    url = engine.url.render_as_string(hide_password=False)
    found = _no_wait_engines.get(url)
    if found is None:
        found = make_engine(url)

        @event.listens_for(found, "connect")
        def _never_wait(dbapi_conn: Any, _record: Any) -> None:  # after make_engine's pragmas
            dbapi_conn.execute("PRAGMA busy_timeout=0")

        _no_wait_engines[url] = found
    return found


def _would_wait(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _on_driver(conn: Connection, step: TapStep) -> Any:
    """Run a step's statement on the driver's cursor of `conn` and return its first row, or None; driver errors
    are raised as SQLAlchemy's (IntegrityError for a racing duplicate event)."""
    statement, params, column_keys = step
    compiled = driver_statement(statement, conn.dialect, column_keys)
    arguments = compiled.parameters(params)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(compiled.sql, arguments)
        found = cursor.fetchone() if compiled.row is not None else None
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(compiled.sql, arguments, exc, conn.dialect.loaded_dbapi.Error,
                                  dialect=conn.dialect) from exc
    finally:
        cursor.close()
    return compiled.first_row(found)


class SqliteTapConnections(TapConnections):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.no_wait = _no_wait_engine(engine)
        self._turn = asyncio.Lock()  # this loop's taps queue here, in order

    def _try_turn(self) -> bool:
        if not _writer_lock.acquire(blocking=False):
            return False
        fd = _writer_file(self.engine)
        if fd is None:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            _writer_lock.release()
            return False

    def _end_turn(self) -> None:
        fd = _writer_file(self.engine)
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        _writer_lock.release()

    async def run(self, work: Work) -> TapResult:
        deadline = time.monotonic() + SQLITE_WAIT_SECONDS
        delay, duplicate = 0.0005, False
        async with self._turn:
            while True:
                if self._try_turn():
                    try:
                        with self.no_wait.connect() as conn, conn.begin():
                            async def execute(step: TapStep) -> Any:
                                return _on_driver(conn, step)

                            return await work(execute)  # never suspends: the statements are synchronous
                    except IntegrityError:
                        if duplicate:
                            raise
                        duplicate = True  # a duplicate that raced (another process): now a replay
                        continue
                    except DBAPIError as exc:
                        if not _would_wait(exc) or time.monotonic() > deadline:
                            raise
                    finally:
                        self._end_turn()
                elif time.monotonic() > deadline:
                    raise TimeoutError("the SQLite writer turn was not free in time")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.005)


# --------------------------------------------------------------------------- the tap


async def tap_with_credential(pool: TapConnections, credential: str, tap: Tap, tariff: PurseTariff) -> TapResult:
    """A validator tap as the device API receives it, in one transaction: authenticate the credential (cached per
    process, confirmed in the transaction), lock the card, answer a replay or book the tap; returns (what the
    display shows, whether it is a replay). Raises `DeviceRefused` when the credential is not an active
    validator's, `purse.TapProblem` for an event refused as a whole (R-VAL-7, R-VAL-8). `tariff`: the settings'
    (EKP_TARIFF_PURSE, read at start-up)."""
    return await _run(pool, credential, None, tap, tariff)


async def tap_as(pool: TapConnections, device: KnownDevice, tap: Tap, tariff: PurseTariff) -> TapResult:
    """`tap_with_credential` for a device the server acts as (the validator simulator), confirmed in the tap's
    transaction; a simulator taps only demo cards or no city card (`purse.SimulatorCardRefused`)."""
    return await _run(pool, "", device, tap, tariff)


async def _run(pool: TapConnections, credential: str, device: KnownDevice | None, tap: Tap,
               tariff: PurseTariff) -> TapResult:
    async def work(execute: Execute) -> TapResult:
        known = device if device is not None else purse.cached_device(credential, "validator")
        if known is None:
            lookup = purse.device_lookup(credential, "validator")
            found = await execute((*lookup, None)) if lookup is not None else None
            known = purse.remember_device(credential, "validator", found)
            if known is None:
                raise DeviceRefused(credential.partition(".")[0])
        steps = purse.tap_steps(pool.dialect.name, known, tap, tariff)
        row = None
        try:
            while True:
                row = await execute(steps.send(row))
        except StopIteration as done:
            result: TapResult = done.value
            return result

    return await pool.run(work)
