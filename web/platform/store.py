"""Key/value stores for sessions and rate limits: the database by default, Redis in production."""

from __future__ import annotations

import threading
from datetime import timedelta

import anyio
from litestar.stores.base import NamespacedStore
from sqlalchemy import BigInteger, Integer, LargeBinary, Text, case, cast, delete, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from web.platform import clock
from web.platform.models import StoreEntry


def _seconds(expires_in: int | timedelta | None) -> int | None:
    if expires_in is None:
        return None
    return int(expires_in.total_seconds()) if isinstance(expires_in, timedelta) else int(expires_in)


class DatabaseStore(NamespacedStore):
    """A Litestar store kept in the `kv_store` table, so one SQLite file is all the embedded app needs."""

    def __init__(self, engine: Engine, namespace: str = "ekp") -> None:
        super().__init__()
        self.engine = engine
        self.namespace = namespace
        dialect = engine.dialect
        column = StoreEntry.__table__.c.expires_at  # type: ignore[attr-defined]
        placeholder = "?" if dialect.paramstyle == "qmark" else "%s"
        self._read_sql = f"SELECT value, expires_at FROM kv_store WHERE key = {placeholder}"
        self._read_expiry = column.type.dialect_impl(dialect).result_processor(dialect, None)
        # SQLite reads are answered from the file without waiting for writers (WAL), in microseconds:
        # cheaper than sending them to a worker thread. Other databases are a network round trip away.
        # Each thread reading inline (the event loop's) has its own connection, outside the engine's pool,
        # so it never waits for a pooled connection that worker threads hold.
        self._read_inline = dialect.name == "sqlite" and (engine.url.database or ":memory:") != ":memory:"
        self._inline = threading.local()

    def with_namespace(self, namespace: str) -> DatabaseStore:
        return DatabaseStore(self.engine, f"{self.namespace}:{namespace}")

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def _set(self, key: str, value: bytes, seconds: int | None) -> None:
        expires_at = clock.now() + timedelta(seconds=seconds) if seconds is not None else None
        with Session(self.engine) as session:
            entry = session.get(StoreEntry, key)
            if entry is None:
                session.add(StoreEntry(key=key, value=value, expires_at=expires_at))
            else:
                entry.value, entry.expires_at = value, expires_at
            session.commit()

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        raw = value.encode() if isinstance(value, str) else value
        await anyio.to_thread.run_sync(self._set, self._key(key), raw, _seconds(expires_in))

    def _inline_connection(self):
        conn = getattr(self._inline, "conn", None)
        if conn is None:
            dialect = self.engine.dialect
            args, kwargs = dialect.create_connect_args(self.engine.url)
            conn = dialect.loaded_dbapi.connect(*args, **kwargs)
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA query_only=ON")
            self._inline.conn = conn
        return conn

    def _fetch(self, conn, key: str):
        cursor = conn.cursor()
        try:
            cursor.execute(self._read_sql, (key,))
            return cursor.fetchone()
        finally:
            cursor.close()

    def _read(self, key: str, inline: bool = False) -> bytes | None:
        """The hot path (a session read on every request): one SELECT on a DBAPI connection. Building an
        SQLAlchemy statement and result for it cost ten times more than the query."""
        if inline:
            row = self._fetch(self._inline_connection(), key)
        else:
            conn = self.engine.raw_connection()
            try:
                row = self._fetch(conn, key)
            finally:
                conn.close()
        if row is None:
            return None
        expires_at = self._read_expiry(row[1]) if self._read_expiry is not None else row[1]
        if expires_at is not None and expires_at <= clock.now():
            return None  # gone; the scheduler's purge_expired deletes the row (no write on this path)
        return bytes(row[0])

    def _get(self, key: str, renew: int | None) -> bytes | None:
        """The one read (`_read`); with `renew`, a value that expires gets `renew` seconds from now by one
        UPDATE. An expired value is not renewed, just absent (the purge deletes its row)."""
        value = self._read(key)
        if value is not None and renew is not None:
            with self.engine.begin() as conn:
                conn.execute(update(StoreEntry).where(col(StoreEntry.key) == key, col(StoreEntry.expires_at).is_not(None))
                             .values(expires_at=clock.now() + timedelta(seconds=renew)))
        return value

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        if renew_for is None and self._read_inline:
            return self._read(self._key(key), inline=True)
        return await anyio.to_thread.run_sync(self._get, self._key(key), _seconds(renew_for))

    def _delete(self, key: str) -> None:
        with Session(self.engine) as session:
            session.exec(delete(StoreEntry).where(col(StoreEntry.key) == key))
            session.commit()

    async def delete(self, key: str) -> None:
        await anyio.to_thread.run_sync(self._delete, self._key(key))

    def _delete_all(self) -> None:
        with Session(self.engine) as session:
            session.exec(delete(StoreEntry).where(col(StoreEntry.key).startswith(self.namespace + ":")))
            session.commit()

    async def delete_all(self) -> None:
        await anyio.to_thread.run_sync(self._delete_all)

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    def _expires_in(self, key: str) -> int | None:
        with Session(self.engine) as session:
            row = session.exec(select(col(StoreEntry.expires_at)).where(col(StoreEntry.key) == key)).first()  # type: ignore[call-overload]
            if row is None or row[0] is None:
                return None
            return max(0, int((row[0] - clock.now()).total_seconds()))

    async def expires_in(self, key: str) -> int | None:
        return await anyio.to_thread.run_sync(self._expires_in, self._key(key))

    def _incr(self, key: str, delta: int, seconds: int) -> tuple[int, float]:
        """One upsert: a counter in a fixed window, started afresh when the window is over (R-AUTH-1).

        The count is kept as decimal digits in `value`. Concurrent calls queue on the row, so none is lost."""
        table = StoreEntry.__table__  # type: ignore[attr-defined]
        now = clock.now()
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert

            count = cast(func.convert_from(table.c.value, "UTF8"), BigInteger)

            def as_value(number):
                return func.convert_to(cast(number, Text), "UTF8")
        else:
            from sqlalchemy.dialects.sqlite import insert

            count = cast(cast(table.c.value, Text), Integer)

            def as_value(number):
                return cast(cast(number, Text), LargeBinary)

        statement = insert(table).values(key=key, value=str(max(delta, 0)).encode(),
                                         expires_at=now + timedelta(seconds=seconds))
        expired = or_(table.c.expires_at.is_(None), table.c.expires_at <= now)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "value": case((expired, statement.excluded.value),
                              (count + delta < 0, as_value(0)), else_=as_value(count + delta)),
                "expires_at": case((expired, statement.excluded.expires_at), else_=table.c.expires_at),
            },
        ).returning(table.c.value, table.c.expires_at)
        with self.engine.begin() as conn:
            value, expires_at = conn.execute(statement).one()
        return int(bytes(value)), max(0.0, (expires_at - now).total_seconds())

    async def incr(self, key: str, delta: int, window_seconds: int) -> tuple[int, float]:
        """Add `delta` to the counter `key` atomically; (the new count, seconds left in its window)."""
        return await anyio.to_thread.run_sync(self._incr, self._key(key), delta, window_seconds)

    def purge_expired(self) -> int:
        with Session(self.engine) as session:
            result = session.exec(delete(StoreEntry).where(col(StoreEntry.expires_at) <= clock.now()))
            session.commit()
            return result.rowcount or 0


# INCRBY and the window's expiry in one step (a script runs atomically), so concurrent attempts are all
# counted and a counter never outlives its window.
_INCR_SCRIPT = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n < 0 then redis.call('SET', KEYS[1], 0, 'KEEPTTL'); n = 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]); ttl = tonumber(ARGV[2]) end
return {n, ttl}
"""


def make_store(redis_url: str, engine: Engine) -> NamespacedStore:
    if redis_url:
        from litestar.stores.redis import RedisStore

        class CountingRedisStore(RedisStore):
            """Litestar's Redis store with the atomic counter the rate limits use (R-AUTH-1)."""

            async def incr(self, key: str, delta: int, window_seconds: int) -> tuple[int, float]:
                script = getattr(self, "_incr_script", None)
                if script is None:
                    script = self._incr_script = self._redis.register_script(_INCR_SCRIPT)
                count, ttl_ms = await script(keys=[self._make_key(key)], args=[delta, window_seconds * 1000])
                return int(count), int(ttl_ms) / 1000

        return CountingRedisStore.with_client(url=redis_url, namespace="ekp")
    return DatabaseStore(engine)
