"""The current user: read once per request, cached per process for a moment, loaded once for many."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from web.platform import http


class FakeState(dict):
    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return self[name]

    def __setattr__(self, name, value):  # type: ignore[no-untyped-def]
        self[name] = value


def _load_account(session, user_id):  # type: ignore[no-untyped-def]  # the app factory's loader (never reached here)
    raise AssertionError("the tests replace in_transaction")


APP = SimpleNamespace(state=SimpleNamespace(account_loader=_load_account))


def _request(uid: int) -> SimpleNamespace:
    return SimpleNamespace(app=APP, state=FakeState(), scope={"session": {"uid": uid, "pwd": "stamp"}})


def test_concurrent_requests_of_one_user_wait_for_one_load(monkeypatch):
    loads = []

    async def slow_load(request, use_case, loader, *key):  # type: ignore[no-untyped-def]
        assert loader is _load_account  # the loader the app put in its state
        loads.append(key)
        await asyncio.sleep(0.05)
        return SimpleNamespace(id=key[0])

    monkeypatch.setattr(http, "in_transaction", slow_load)
    http._user_cache.clear()

    async def many():  # type: ignore[no-untyped-def]
        return await asyncio.gather(*[http.current_user(_request(7)) for _ in range(30)],
                                    http.current_user(_request(8)))

    users = asyncio.run(many())
    assert [u.id for u in users] == [7] * 30 + [8]
    assert sorted(loads) == [(7, "stamp"), (8, "stamp")]
    assert not http._user_loads
    http._user_cache.clear()


def test_a_failed_load_reaches_every_waiting_request_and_is_not_cached(monkeypatch):
    async def broken(request, use_case, *key):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.01)
        raise RuntimeError("database down")

    monkeypatch.setattr(http, "in_transaction", broken)
    http._user_cache.clear()

    async def many():  # type: ignore[no-untyped-def]
        return await asyncio.gather(*[http.current_user(_request(9)) for _ in range(5)], return_exceptions=True)

    results = asyncio.run(many())
    assert all(isinstance(r, RuntimeError) for r in results)
    assert not http._user_cache and not http._user_loads


@pytest.mark.parametrize("uid", [None, "7"])
def test_no_user_without_a_valid_session(uid):
    request = SimpleNamespace(app=APP, state=FakeState(), scope={"session": {"uid": uid} if uid else {}})
    assert asyncio.run(http.current_user(request)) is None
