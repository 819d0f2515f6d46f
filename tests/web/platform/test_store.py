"""The shared store (`web.platform.store`): the same behaviour from the database store and from Redis — what sessions
and rate limits rely on (`both_stores`: every test runs on both)."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from web.platform.ratelimit import RateLimiter
from web.platform.store import DatabaseStore, make_store

pytestmark = pytest.mark.both_stores


def _run(engine, redis_url, check) -> None:  # type: ignore[no-untyped-def]
    """Run `check(store)` on one event loop (a Redis client belongs to it), then close the store."""

    async def run() -> None:
        store = make_store(redis_url, engine)
        assert isinstance(store, DatabaseStore) == (not redis_url)
        try:
            await check(store)
        finally:
            close = getattr(store, "_shutdown", None)
            if close is not None:
                await close()

    anyio.run(run)


def test_store_keeps_reads_renews_and_deletes_values(engine, redis_url):
    async def check(store) -> None:  # type: ignore[no-untyped-def]
        assert await store.get("session:nobody") is None
        await store.set("session:a", "tekst ąę", expires_in=600)
        await store.set("session:b", b"\x00\xff", expires_in=timedelta(hours=1))
        assert await store.get("session:a") == "tekst ąę".encode()
        assert await store.get("session:b") == b"\x00\xff"
        assert await store.exists("session:a") and not await store.exists("session:c")
        assert 590 <= (await store.expires_in("session:a") or 0) <= 600
        assert await store.get("session:a", renew_for=3600) == "tekst ąę".encode()
        assert 3590 <= (await store.expires_in("session:a") or 0) <= 3600
        await store.set("session:a", "nowe", expires_in=600)  # overwritten in place
        assert await store.get("session:a") == b"nowe"
        await store.delete("session:a")
        await store.delete("session:a")  # deleting what is gone is fine
        assert await store.get("session:a") is None and await store.get("session:b") == b"\x00\xff"

    _run(engine, redis_url, check)


def test_store_values_expire_with_the_clock(engine, redis_url, clock):
    async def put(store) -> None:  # type: ignore[no-untyped-def]
        await store.set("session:short", "x", expires_in=60)
        await store.set("session:long", "y", expires_in=3600)

    async def after(store) -> None:  # type: ignore[no-untyped-def]
        assert await store.get("session:short") is None
        assert await store.get("session:long") == b"y"

    _run(engine, redis_url, put)
    clock.travel(timedelta(seconds=61))
    _run(engine, redis_url, after)


def test_store_renews_only_live_values_that_expire(engine, redis_url, clock):
    """A read with `renew_for` is the same read as without it, plus a new expiry: an expired value stays
    gone, a value that never expires keeps never expiring."""
    async def put(store) -> None:  # type: ignore[no-untyped-def]
        await store.set("session:short", "x", expires_in=60)
        await store.set("session:forever", "y")

    async def after(store) -> None:  # type: ignore[no-untyped-def]
        assert await store.get("session:short", renew_for=3600) is None
        assert await store.get("session:short") is None
        assert await store.get("session:forever", renew_for=3600) == b"y"
        assert (await store.expires_in("session:forever") or 0) <= 0  # no expiry (Redis says -1, the database None)

    _run(engine, redis_url, put)
    clock.travel(timedelta(seconds=61))
    _run(engine, redis_url, after)


def test_store_namespaces_are_apart(engine, redis_url):
    async def check(store) -> None:  # type: ignore[no-untyped-def]
        one, two = store.with_namespace("one"), store.with_namespace("two")
        await one.set("k", "1")
        await two.set("k", "2")
        assert await one.get("k") == b"1" and await two.get("k") == b"2"
        await one.delete_all()
        assert await one.get("k") is None and await two.get("k") == b"2"

    _run(engine, redis_url, check)


def test_r_auth_1_store_counters_count_within_their_window_and_never_below_zero(engine, redis_url, clock):
    async def count(store) -> None:  # type: ignore[no-untyped-def]
        limiter = RateLimiter(store)
        for _ in range(6):
            await limiter.hit("login.pair", "jan@example.pl\n10.0.0.1")
        assert await limiter.retry_after("login.pair", "jan@example.pl\n10.0.0.1") > 0
        number, seconds_left = await store.incr("test-counter", 0, 900)
        assert number == 0 and seconds_left > 0
        number, _ = await store.incr("test-counter", -5, 900)
        assert number == 0, "never below zero"

    async def later(store) -> None:  # type: ignore[no-untyped-def]
        limiter = RateLimiter(store)
        assert await limiter.retry_after("login.pair", "jan@example.pl\n10.0.0.1") == 0, "a new window"
        assert await limiter.count(("login.pair", "jan@example.pl\n10.0.0.1")) == 0

    _run(engine, redis_url, count)
    clock.travel(timedelta(minutes=15, seconds=1))
    _run(engine, redis_url, later)


def test_known_devices_are_remembered_in_the_store(engine, redis_url):
    async def check(store) -> None:  # type: ignore[no-untyped-def]
        limiter = RateLimiter(store)
        assert not await limiter.is_known_device("jan@example.pl", "t" * 32)
        await limiter.remember_device("jan@example.pl", "t" * 32)
        assert await limiter.is_known_device("jan@example.pl", "t" * 32)
        assert not await limiter.is_known_device("ala@example.pl", "t" * 32)

    _run(engine, redis_url, check)
