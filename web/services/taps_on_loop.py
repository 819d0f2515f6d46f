"""Validator taps on PostgreSQL, on the event loop: asynchronous psycopg connections, no worker threads.

A tap is four round trips to PostgreSQL (BEGIN and the card's lock-and-read, the writes, COMMIT) and a little
CPU. In a worker thread each round trip is a hand-over of Python's global lock between sixteen threads, which
cost more CPU than the tap itself (`benchmarks/taps.py --breakdown`: 0.6 ms of 1.2 ms per tap). Here the same
steps (`purse.tap_steps`, the statements compiled once for the engine's dialect with the same type
conversions) run on asynchronous connections from a small pool owned by the app, while the loop serves other
requests during each round trip.

Guarantees are those of the threaded path: each tap in its own transaction; a racing duplicate of the event
(the unique key) is answered from the stored response on a second attempt; a connection lost under a tap is
dropped and the tap retried once on a new one (the event id makes that safe even if the lost one committed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from sqlalchemy.engine import Engine

from web.services import purse
from web.services.purse import DeviceRefused, Tap, driver_statement

POOL_SIZE = 8  # connections at most; a tap holds one for its four round trips


class TapConnections:
    """A small pool of asynchronous psycopg connections to the engine's database, for the event loop it was
    made on (`for_this_loop` makes another for another loop)."""

    def __init__(self, engine: Engine, size: int = POOL_SIZE) -> None:
        url = engine.url.set(drivername="postgresql")
        self.engine, self.size = engine, size
        self.conninfo = url.render_as_string(hide_password=False)
        self.dialect = engine.dialect
        self.loop = asyncio.get_running_loop()
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)
        self._closed = False

    def for_this_loop(self) -> TapConnections:
        """This pool, or a new one if the running loop is another (an app served again, e.g. in tests); the old
        pool's idle connections are closed at once (their loop may be gone)."""
        if self.loop is asyncio.get_running_loop():
            return self
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.pgconn.finish()
        return TapConnections(self.engine, self.size)

    async def _take(self) -> psycopg.AsyncConnection[Any]:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                return conn
            await conn.close()
        return await psycopg.AsyncConnection.connect(self.conninfo)

    async def run(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[Any]]) -> Any:
        """`work(connection)` in one transaction: committed if it returns, rolled back if it raises. A connection
        that failed (lost, or left in a bad state) is closed, not given back."""
        async with self._slots:
            conn = await self._take()
            healthy = False
            try:
                result = await work(conn)
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

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


async def _first_row(conn: psycopg.AsyncConnection[Any], dialect: Any, step: purse.TapStep) -> Any:
    statement, params, column_keys = step
    compiled = driver_statement(statement, dialect, column_keys)
    async with conn.cursor() as cursor:
        await cursor.execute(compiled.sql, compiled.parameters(params))
        found = await cursor.fetchone() if compiled.row is not None else None
    return compiled.first_row(found)


async def _tap(pool: TapConnections, credential: str, tap: Tap) -> tuple[dict[str, Any], bool]:
    async def work(conn: psycopg.AsyncConnection[Any]) -> tuple[dict[str, Any], bool]:
        device = purse.cached_device(credential, "validator")
        if device is None:
            lookup = purse.device_lookup(credential, "validator")
            found = await _first_row(conn, pool.dialect, (*lookup, None)) if lookup is not None else None
            device = purse.remember_device(credential, "validator", found)
            if device is None:
                raise DeviceRefused(credential.partition(".")[0])
        steps = purse.tap_steps("postgresql", device, tap)
        row = None
        try:
            while True:
                row = await _first_row(conn, pool.dialect, steps.send(row))
        except StopIteration as done:
            return done.value

    return await pool.run(work)


async def tap_with_credential(pool: TapConnections, credential: str, tap: Tap) -> tuple[dict[str, Any], bool]:
    """`purse.tap_with_credential` on the event loop (PostgreSQL). Raises `DeviceRefused` as it does."""
    try:
        return await _tap(pool, credential, tap)
    except psycopg.errors.IntegrityError:
        return await _tap(pool, credential, tap)  # a racing duplicate: now a replay
    except psycopg.OperationalError:
        return await _tap(pool, credential, tap)  # the connection was lost: once more on a new one
