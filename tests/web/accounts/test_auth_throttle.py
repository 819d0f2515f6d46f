"""R-AUTH-1 (throttling counted atomically, before the costly check, without locking the owner out) and
R-AUTH-4 (same answer, same time), each reproducing issue 13's finding through HTTP first."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import anyio
import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from litestar.testing import TestClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from tests.conftest import BASE_URL, DEFAULT_PASSWORD, Browser, page_text, registration_form
from tests.support.redis_server import redis_server
from web.platform.ratelimit import DEVICE_COOKIE, RateLimiter
from web.platform.store import DatabaseStore, make_store

WRONG = "Zle12345"


def _login(browser, email, password=WRONG):
    return browser.submit("/login", {"email": email, "password": password})


def _post_at_once(browser: Browser, path: str, forms: list[dict[str, str]]) -> list[int]:
    """POST every form at the same moment (one thread each) from one browser; the status codes."""
    token = browser.csrf()
    with ThreadPoolExecutor(max_workers=len(forms)) as pool:
        return list(pool.map(lambda form: browser.post(path, {**form, "_csrf_token": token}).status_code, forms))


async def _count(limiter: RateLimiter, name: str, subject: str) -> int:
    return (await limiter._add(name, subject, 0))[0]


def _counted(app, name: str, subject: str) -> int:  # type: ignore[no-untyped-def]
    """The app's counter, read through a store of its own (a Redis client belongs to one event loop)."""

    async def run() -> int:
        store = make_store(app.state.settings.redis_url, app.state.engine)
        try:
            return await _count(RateLimiter(store), name, subject)
        finally:
            close = getattr(store, "_shutdown", None)
            if close is not None:
                await close()

    return anyio.run(run)


# --------------------------------------------------------------------------------------- R-AUTH-1: races


@pytest.mark.both_stores
def test_r_auth_1_concurrent_wrong_passwords_stop_at_the_limit(app, browser, users):
    users.create("jan@example.pl")
    statuses = _post_at_once(browser, "/login", [{"email": "jan@example.pl", "password": WRONG}] * 30)
    # At most 5 passwords are checked however many arrive at once (fewer when the attempts' counters,
    # each over its own limit at a different attempt, interleave); the others are told to wait.
    assert 1 <= statuses.count(401) <= 5 and statuses.count(401) + statuses.count(429) == 30
    # Every attempt was counted: none lost in a read-modify-write.
    assert _counted(app, "login.pair", "jan@example.pl\ntestclient") == 30


@pytest.mark.both_stores
def test_r_auth_1_concurrent_card_link_attempts_stop_at_the_limit(app, logged_in):
    browser, user = logged_in
    forms = [{"carrier_type": "KKM", "client_code": f"9{n:08d}"} for n in range(15)]
    statuses = _post_at_once(browser, "/cards/add", forms)
    assert 1 <= statuses.count(422) <= 5 and statuses.count(422) + statuses.count(429) == 15


@pytest.mark.both_stores
def test_r_auth_1_concurrent_registrations_stop_at_the_limit(db, browser):
    from web.accounts.models import User

    forms = [registration_form(email=f"osoba{n}@example.pl", pesel="", no_pesel="on", birth_date="1990-01-01")
             for n in range(14)]
    statuses = _post_at_once(browser, "/register", forms)
    assert statuses.count(303) == 10 and statuses.count(429) == 4
    assert db.count(User) == 10


@pytest.mark.parametrize("kind", ["database", "redis"])
def test_r_auth_1_the_store_counts_every_concurrent_attempt(engine, kind):
    """12 attempts at once leave the counter at 12 (it was left at 10); the window is kept."""

    async def run(store) -> None:  # one event loop: the Redis client belongs to it
        limiter = RateLimiter(store)
        async with anyio.create_task_group() as group:  # the database store's calls each run in a thread
            for _ in range(12):
                group.start_soon(limiter.hit, "login.account", "jan@example.pl")
        count, seconds_left = await limiter._add("login.account", "jan@example.pl", 0)
        assert count == 12
        assert 0 < seconds_left <= 15 * 60
        assert await limiter.retry_after("login.account", "jan@example.pl") > 0
        await limiter.uncount([("login.account", "jan@example.pl")] * 20)
        assert await _count(limiter, "login.account", "jan@example.pl") == 0, "never below zero"
        if kind == "redis":
            await store._redis.aclose(close_connection_pool=True)

    if kind == "database":
        anyio.run(run, DatabaseStore(engine, namespace="test-counter"))
        return
    if engine.dialect.name != "sqlite":
        pytest.skip("the Redis store is the same on either database")
    with redis_server() as url:
        anyio.run(run, make_store(url, engine))


def test_r_auth_1_a_database_counter_starts_afresh_after_its_window(engine, clock):
    limiter = RateLimiter(DatabaseStore(engine, namespace="test-window"))
    for _ in range(6):
        anyio.run(limiter.hit, "login.pair", "x")
    assert anyio.run(limiter.retry_after, "login.pair", "x") == 15 * 60
    clock.travel(timedelta(minutes=15))
    assert anyio.run(limiter.count, ("login.pair", "x")) == 0
    assert anyio.run(_count, limiter, "login.pair", "x") == 1


# ------------------------------------------------------------------------ R-AUTH-1: no denial of service


@pytest.mark.both_stores
def test_r_auth_1_wrong_passwords_from_elsewhere_do_not_lock_the_owner_out(new_browser, users):
    users.create("jan@example.pl", role="staff")
    attacker = new_browser(ip="10.0.0.1")
    for _ in range(5):
        assert _login(attacker, "jan@example.pl").status_code == 401
    assert _login(attacker, "jan@example.pl", DEFAULT_PASSWORD).status_code == 429, "the attacker's address waits"
    assert _login(new_browser(ip="10.0.0.2"), "jan@example.pl", DEFAULT_PASSWORD).status_code == 303


@pytest.mark.both_stores
def test_r_auth_1_a_known_device_signs_in_during_an_attack_from_many_addresses(new_browser, users, clock):
    users.create("jan@example.pl", role="staff")
    owner = new_browser(ip="10.0.9.9")
    owner.login("jan@example.pl")
    assert owner.client.cookies.get(DEVICE_COOKIE)
    owner.logout()
    for n in range(12):  # each address below its own limit; together over the account's
        assert _login(new_browser(ip=f"10.0.1.{n}"), "jan@example.pl").status_code in (401, 429)
    stranger = _login(new_browser(ip="10.0.2.1"), "jan@example.pl", DEFAULT_PASSWORD)
    assert stranger.status_code == 429, "a browser never signed in here waits"
    assert "Zbyt wiele prób" in page_text(stranger.text)
    assert _login(owner, "jan@example.pl", DEFAULT_PASSWORD).status_code == 303, "the owner's browser does not"
    owner.logout()
    # A known device is still limited for guessing: its own counter.
    for _ in range(5):
        assert _login(owner, "jan@example.pl").status_code == 401
    assert _login(owner, "jan@example.pl", DEFAULT_PASSWORD).status_code == 429
    # A forged cookie is just an unknown device.
    forged = new_browser(ip="10.0.2.2")
    forged.client.cookies.set(DEVICE_COOKIE, "A" * 32)
    assert _login(forged, "jan@example.pl", DEFAULT_PASSWORD).status_code == 429
    clock.travel(timedelta(minutes=15))
    assert _login(forged, "jan@example.pl", DEFAULT_PASSWORD).status_code == 303


@pytest.mark.both_stores
def test_r_auth_1_bad_logins_from_one_address_do_not_lock_out_known_devices_behind_it(new_browser, users):
    users.create("jan@example.pl")
    colleague = new_browser(ip="192.0.2.10")  # same NAT / load balancer address as the attacker
    colleague.login("jan@example.pl")
    colleague.logout()
    attacker = new_browser(ip="192.0.2.10")
    for n in range(20):
        assert _login(attacker, f"ofiara{n}@example.pl").status_code == 401
    assert _login(attacker, "jan@example.pl", DEFAULT_PASSWORD).status_code == 429
    assert _login(colleague, "jan@example.pl", DEFAULT_PASSWORD).status_code == 303


@pytest.mark.both_stores
def test_r_auth_1_reset_requests_by_others_do_not_block_the_owners_reset(new_browser, users, mails):
    users.create("jan@example.pl")
    for n in range(12):  # a mail bomb from many addresses
        assert new_browser(ip=f"10.0.3.{n}").submit("/password/forgot", {"email": "jan@example.pl"}).status_code == 200
    assert mails.count("jan@example.pl") == 10, "mail stops at the account's hourly allowance"
    owner = new_browser(ip="10.0.4.1")
    asked = owner.submit("/password/forgot", {"email": "jan@example.pl"})
    assert asked.status_code == 200 and "wysłaliśmy na niego link" in asked.text, "the same answer"
    # Every link already mailed still works: the owner resets the password.
    link = mails.last("jan@example.pl").link("/password/reset/")
    done = owner.post(link, {"password": "NoweHaslo9", "password_repeat": "NoweHaslo9"}, csrf=True)
    assert done.status_code == 303
    assert owner.client.cookies.get(DEVICE_COOKIE), "the link proved the owner: this browser is known now"


@pytest.mark.both_stores
def test_r_auth_1_reset_from_one_address_is_limited_per_account(new_browser, users, mails):
    users.create("jan@example.pl")
    browser = new_browser(ip="10.0.5.1")
    for _ in range(3):
        assert browser.submit("/password/forgot", {"email": "jan@example.pl"}).status_code == 200
    blocked = browser.submit("/password/forgot", {"email": "jan@example.pl"})
    assert blocked.status_code == 429
    assert "Zbyt wiele prób. Spróbuj ponownie za 60 minut." in page_text(blocked.text)
    assert new_browser(ip="10.0.5.2").submit("/password/forgot", {"email": "jan@example.pl"}).status_code == 200
    assert mails.count("jan@example.pl") == 4


# ------------------------------------------------------------------------ R-AUTH-1: client addresses


def test_r_auth_1_ekp_run_trusts_forwarded_for_only_from_the_configured_proxies(monkeypatch, settings_env):
    import uvicorn

    from web import cli

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    runner = CliRunner()
    env = {**settings_env, "EKP_DEV_PAGES": "false"}
    assert runner.invoke(cli.main, ["run", "--no-migrate", "--no-demo"], env=env).exit_code == 0
    assert seen["proxy_headers"] is False and "forwarded_allow_ips" not in seen
    seen.clear()
    env["EKP_TRUSTED_PROXIES"] = "10.0.0.5, 10.1.0.0/16"
    assert runner.invoke(cli.main, ["run", "--no-migrate", "--no-demo"], env=env).exit_code == 0
    assert seen["proxy_headers"] is True and seen["forwarded_allow_ips"] == "10.0.0.5,10.1.0.0/16"
    env["EKP_TRUSTED_PROXIES"] = "load-balancer"
    refused = runner.invoke(cli.main, ["run", "--no-migrate", "--no-demo"], env=env)
    assert refused.exit_code != 0 and "EKP_TRUSTED_PROXIES" in refused.output


@pytest.mark.both_stores
@pytest.mark.parametrize("trusted", ["", "10.0.0.5"])
def test_r_auth_1_a_spoofed_forwarded_for_does_not_reset_the_address_counter(make_app, users, trusted):
    """Served as `ekp run` serves it: the proxy at 10.0.0.5 appends the real client to X-Forwarded-For;
    the client's own (spoofed) entries never name another address."""
    from web.cli import proxy_options
    from web.platform.settings import load_settings

    app = make_app(EKP_TRUSTED_PROXIES=trusted)
    options = proxy_options(load_settings({"EKP_TRUSTED_PROXIES": trusted}))
    inner = app.asgi_handler
    served = ProxyHeadersMiddleware(inner, trusted_hosts=options["forwarded_allow_ips"]) if options["proxy_headers"] else inner

    async def from_proxy(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            scope["client"] = ("10.0.0.5", 40000)
        await served(scope, receive, send)

    app.asgi_handler = from_proxy
    with TestClient(app, base_url=BASE_URL) as client:
        browser = Browser(client)
        statuses = [
            browser.post("/login", {"email": f"ofiara{n}@example.pl", "password": WRONG},
                         headers={"x-forwarded-for": f"203.0.113.{n}, 198.51.100.7"}).status_code
            for n in range(21)  # the client's spoofed entry changes every time; the proxy's does not
        ]
    assert statuses == [401] * 20 + [429]
