"""Shared fixtures for every integration test: a clean database on SQLite *and* PostgreSQL, the app,
browser-like test clients that handle CSRF, the mail outbox, users, and the controllable clock.

Database: each xdist worker migrates one SQLite file and (with `EKP_TEST_POSTGRES_URL`) one PostgreSQL
database of its own once, with the real Alembic migrations; before each test every table is emptied.
Tests that take `db_url` (directly or through `engine`, `settings`, `app`, `client`, `browser`, ...) run
once per database; the PostgreSQL run carries the `postgres` marker. Without `EKP_TEST_POSTGRES_URL` the
PostgreSQL run is skipped, unless `CI=true`, where it fails.

Typical use::

    def test_something(browser, users, mails):
        users.create("ala@example.pl")
        browser.login("ala@example.pl")
        page = browser.get("/account")
        response = browser.submit("/account", {"current_password": ..., ...}, action="/account/password")
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from tests.support import DATES_BOTH_MARKER, DATES_MARKER, mark_date_sensitive, pin_clock_from_environment
from web.platform import clock as web_clock
from web.platform.db import make_engine
from web.platform.migrate import upgrade
from web.platform.settings import Settings, load_settings

DEFAULT_PASSWORD = "Haslo1234"
# Staff, inspector and admin accounts made by the `users` fixture are enrolled with this TOTP secret (R-AUTH-3);
# `Browser.login` passes the second step with it.
TEST_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
BASE_URL = "http://testserver.local"
TEST_IP_HEADER = "x-test-client-ip"
SECRET_KEY_HEX = "11" * 32
PESEL_KEY_HEX = "22" * 32

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


STORES_MARKER = ("both_stores: run on the database store and on Redis (fixture `store_backend`; the Redis run on "
                 "SQLite only, the store does not touch the database then)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", DATES_MARKER)
    config.addinivalue_line("markers", DATES_BOTH_MARKER)
    config.addinivalue_line("markers", STORES_MARKER)
    config.addinivalue_line("markers", "multinode: starts several `ekp run` nodes on PostgreSQL and Redis "
                            "(tests/production; part of scripts/test and .ci/run)")
    pin_clock_from_environment()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_stores") and "store_backend" in metafunc.fixturenames:
        metafunc.parametrize("store_backend", ["database", "redis"], indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_date_sensitive(items, config.rootpath)
    # Redis in front of PostgreSQL tests the same store code as in front of SQLite: one run is enough.
    dropped = [item for item in items if getattr(item, "callspec", None) is not None
               and item.callspec.params.get("store_backend") == "redis" and item.callspec.params.get("db_backend") == "postgres"]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


# --------------------------------------------------------------------------- databases


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _base_env(var_dir: Path, database_url: str) -> dict[str, str]:
    return {
        "EKP_ENV": "test",
        "EKP_VAR_DIR": str(var_dir),
        "EKP_DATABASE_URL": database_url,
        "EKP_BASE_URL": BASE_URL,
        "EKP_SECRET_KEY": SECRET_KEY_HEX,
        "EKP_PESEL_KEY": PESEL_KEY_HEX,
        "EKP_SCHEDULER": "false",
        # EKP_DEV_PAGES is left to its default: on in test mode, and refused where a test sets EKP_ENV=production.
    }


@dataclass
class MigratedDatabase:
    url: str
    engine: Engine
    tables: list[str]

    def empty(self) -> None:
        """Delete every row of every table (the schema and `alembic_version` stay)."""
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as conn:
                if self.tables:
                    names = ", ".join(f'"{name}"' for name in self.tables)
                    conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return
        # SQLite: foreign keys are a setting of each connection, and SQLite ignores the pragma inside a
        # transaction. Switch them off and on again on the one connection that deletes: switching them on
        # on whichever connection the pool hands out next once left another pooled connection without
        # them, and a later test on it saw no ON DELETE behaviour (an erased user's card stayed linked).
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
            try:
                for name in self.tables:
                    conn.execute(text(f'DELETE FROM "{name}"'))
                if inspect(conn).has_table("sqlite_sequence"):
                    conn.execute(text("DELETE FROM sqlite_sequence"))
                conn.commit()
            finally:
                conn.rollback()
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def _migrate(url: str, var_dir: Path) -> MigratedDatabase:
    upgrade(load_settings(_base_env(var_dir, url)))
    engine = make_engine(url)
    tables = [name for name in inspect(engine).get_table_names() if name != "alembic_version"]
    return MigratedDatabase(url=url, engine=engine, tables=tables)


def _postgres_worker_url(base_url: str) -> str:
    """Create (afresh) this worker's own database next to the one in `EKP_TEST_POSTGRES_URL`."""
    base = make_url(base_url)
    name = f"{base.database or 'ekp_test'}_{_worker()}".lower()
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def _databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Per worker: backend name -> MigratedDatabase, created lazily on first use."""
    created: dict[str, Any] = {}

    def get(backend: str) -> MigratedDatabase:
        if backend not in created:
            root = tmp_path_factory.mktemp(f"db-{backend}")
            if backend == "sqlite":
                url = f"sqlite:///{root / 'ekp-test.db'}"
            else:
                url = _postgres_worker_url(os.environ["EKP_TEST_POSTGRES_URL"])
            created[backend] = _migrate(url, root / "var")
        return created[backend]

    yield {"get": get}
    for database in created.values():
        database.engine.dispose()


def _postgres_available() -> None:
    if os.environ.get("EKP_TEST_POSTGRES_URL"):
        return
    reason = "EKP_TEST_POSTGRES_URL is not set (scripts/test starts a PostgreSQL server and sets it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + "; on CI the PostgreSQL run must not be skipped", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(params=BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    """'sqlite' or 'postgres'; every test depending on it runs once per database."""
    if request.param == "postgres":
        _postgres_available()
    return request.param


@pytest.fixture
def _database(db_backend: str, _databases: dict[str, Any]) -> MigratedDatabase:
    database = _databases["get"](db_backend)
    database.empty()
    return database


@pytest.fixture
def db_url(_database: MigratedDatabase) -> str:
    """URL of a migrated, empty database (SQLite file or PostgreSQL)."""
    return _database.url


@pytest.fixture
def engine(_database: MigratedDatabase) -> Engine:
    return _database.engine


class Db:
    """Small helpers to look into the database from a test."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session
            session.commit()

    def count(self, model: Any, *where: Any) -> int:
        with Session(self.engine) as session:
            return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    def all(self, model: Any, *where: Any) -> list[Any]:
        with Session(self.engine, expire_on_commit=False) as session:
            return list(session.scalars(select(model).where(*where)))

    def one(self, model: Any, *where: Any) -> Any:
        rows = self.all(model, *where)
        assert len(rows) == 1, f"expected one {model.__name__}, found {len(rows)}"
        return rows[0]

    def user(self, email: str) -> Any:
        from web.accounts.models import User

        rows = self.all(User, User.email == email.lower())
        return rows[0] if rows else None

    def dump(self) -> list[tuple[str, tuple[Any, ...]]]:
        """Every row of every table, for 'never stored in clear text' checks."""
        rows: list[tuple[str, tuple[Any, ...]]] = []
        with self.engine.connect() as conn:
            for name in inspect(conn).get_table_names():
                for row in conn.execute(text(f'SELECT * FROM "{name}"')):
                    rows.append((name, tuple(row)))
        return rows


@pytest.fixture
def db(engine: Engine) -> Db:
    return Db(engine)


# --------------------------------------------------------------------------- stores (sessions, rate limits)


@pytest.fixture(scope="session")
def _redis_url() -> Iterator[dict[str, Any]]:
    """Per worker: the Redis database for the Redis store runs, started lazily on first use."""
    from contextlib import ExitStack

    from tests.support.redis_server import redis_server

    with ExitStack() as stack:
        found: dict[str, Any] = {}

        def get() -> str:
            if "url" not in found:
                found["url"] = stack.enter_context(redis_server())
            return found["url"]

        yield {"get": get}


@pytest.fixture
def store_backend(request: pytest.FixtureRequest, _redis_url: dict[str, Any]) -> str:
    """'database' (the default) or 'redis' for tests marked `both_stores`: where sessions and rate limits live."""
    backend = getattr(request, "param", "database")
    if backend == "redis":
        from tests.support.redis_server import flush

        flush(_redis_url["get"]())
    return backend


@pytest.fixture
def redis_url(store_backend: str, _redis_url: dict[str, Any]) -> str:
    """The Redis URL of this run ("" on the database store)."""
    return _redis_url["get"]() if store_backend == "redis" else ""


class StoredEntries:
    """What the store (database table `kv_store`, or Redis) holds, as the tests read it."""

    def __init__(self, engine: Engine, redis_url: str) -> None:
        self.engine = engine
        self.redis_url = redis_url

    def values(self, containing: str) -> list[bytes]:
        """The values of every live entry whose key contains `containing`."""
        if self.redis_url:
            import redis

            client = redis.Redis.from_url(self.redis_url)
            try:
                return [client.get(key) or b"" for key in client.scan_iter(match=f"*{containing}*", count=1000)]
            finally:
                client.close()
        from web.platform.models import StoreEntry

        with Session(self.engine) as session:
            return [bytes(entry.value) for entry in session.scalars(select(StoreEntry).where(StoreEntry.key.contains(containing)))]  # type: ignore[attr-defined]


@pytest.fixture
def stored(engine: Engine, redis_url: str) -> StoredEntries:
    return StoredEntries(engine, redis_url)


# --------------------------------------------------------------------------- clock


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    """Each test starts from the run's clock (EKP_TEST_TODAY or the real time) and leaves it so: its travel
    and any pin it set (`clock.start_at`) are undone, or a later test — or the e2e server started after it in
    the same worker — would run at that test's date."""
    web_clock.reset()
    saved = web_clock.state()
    yield
    web_clock.restore(saved)


@pytest.fixture(autouse=True)
def _forget_cached_users() -> Iterator[None]:
    """Tables are emptied between tests and ids start again at 1: no user may outlive its test."""
    from web.platform import http

    http._user_cache.clear()
    yield
    http._user_cache.clear()


class _ClockWithRedis:
    """`web.platform.clock` whose `travel` also ages the Redis store's keys (Redis expires them on its own clock)."""

    def __init__(self, redis_url: str) -> None:
        self._redis_url = redis_url

    def __getattr__(self, name: str) -> Any:
        return getattr(web_clock, name)

    def travel(self, by: timedelta) -> None:
        from tests.support.redis_server import shift_expiries

        web_clock.travel(by)
        shift_expiries(self._redis_url, by.total_seconds())


@pytest.fixture
def clock(store_backend: str, _redis_url: dict[str, Any]) -> Any:
    """`web.platform.clock`: `clock.travel(timedelta(hours=3))` moves the app's time; reset after each test."""
    if store_backend == "redis":
        return _ClockWithRedis(_redis_url["get"]())
    return web_clock


# --------------------------------------------------------------------------- settings and app


@pytest.fixture
def settings_env(db_url: str, tmp_path: Path, redis_url: str) -> dict[str, str]:
    """The EKP_* environment the test app is built from; override this fixture to change settings."""
    env = _base_env(tmp_path / "var", db_url)
    if redis_url:
        env["EKP_REDIS_URL"] = redis_url
    return env


@pytest.fixture
def make_settings(settings_env: dict[str, str]) -> Callable[..., Settings]:
    """`make_settings(EKP_SESSION_HOURS="1")` -> Settings from the test environment plus overrides."""

    def make(**overrides: str) -> Settings:
        return load_settings({**settings_env, **overrides})

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def purposes(settings: Settings) -> Any:
    """What each payment purpose settles and reverses, built from the test settings as the app factory and
    `ekp` build it (`web.purposes.payment_purposes`); pass it to `apply_outcome(s)`."""
    from web.purposes import payment_purposes

    return payment_purposes(settings)


def _with_test_client_ip(app: Litestar) -> Litestar:
    """Let a test client pose as another IP address (header `x-test-client-ip`), for per-IP limits."""
    inner = app.asgi_handler

    async def handler(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            for name, value in scope.get("headers", []):
                if name == TEST_IP_HEADER.encode():
                    scope["client"] = (value.decode("latin-1"), 50000)
        await inner(scope, receive, send)

    app.asgi_handler = handler
    return app


@pytest.fixture
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with small cost parameters, so tests that log in many times stay quick.

    Still the app's own code path (`web.accounts.service.hasher`); only memory/time costs are lowered.
    """
    from argon2 import PasswordHasher

    from web.accounts import service

    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(service, "hasher", fast)
    monkeypatch.setattr(service, "_DUMMY_HASH", fast.hash("not-a-real-password-0"))


@pytest.fixture
def make_app(engine: Engine, make_settings: Callable[..., Settings], fast_password_hashing: None) -> Callable[..., Litestar]:
    """`make_app(EKP_PASSWORD_MIN_LENGTH="12")` -> an app on the test database with these overrides."""

    def make(**overrides: str) -> Litestar:
        from web.app import create_app

        return _with_test_client_ip(create_app(make_settings(**overrides), engine, start_jobs=False))

    return make


@pytest.fixture
def app(make_app: Callable[..., Litestar]) -> Litestar:
    return make_app()


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient]:
    """Litestar's TestClient on the app (raw: no CSRF help; see `browser`)."""
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


_CSRF_INPUT = re.compile(r'<input[^>]*name="_csrf_token"[^>]*>')
_VALUE = re.compile(r'value="([^"]*)"')


def csrf_token_in(html: str) -> str | None:
    """The CSRF token of the first form on the page (`<input name="_csrf_token" value=...>`)."""
    match = _CSRF_INPUT.search(html)
    if not match:
        return None
    value = _VALUE.search(match.group(0))
    return unescape(value.group(1)) if value else None


class Browser:
    """A test client that behaves like one person's browser: cookies, CSRF tokens, its own IP address.

    `get(path)` remembers the page's CSRF token (and follows redirects unless told not to);
    `post(path, data)` sends the token with the form and does not follow the redirect, so the test sees
    the 303; `submit(page, data, action=...)` opens `page` first (fresh token) and posts the form.
    """

    def __init__(self, client: TestClient, ip: str | None = None) -> None:
        self.client = client
        self.headers = {TEST_IP_HEADER: ip} if ip else {}
        self.token: str | None = None
        self._totp_steps: dict[str, int] = {}

    # Plain HTTP -------------------------------------------------------------
    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.get(path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)
        token = csrf_token_in(response.text) if "html" in response.headers.get("content-type", "") else None
        if token:
            self.token = token
        return response

    def csrf(self) -> str:
        """A valid CSRF token for this browser (opens the home page if none is known yet)."""
        if self.token is None:
            self.get("/")
        assert self.token, "no CSRF token found on the page"
        return self.token

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kwargs: Any) -> httpx.Response:
        form = dict(data or {})
        if csrf:
            form.setdefault("_csrf_token", self.csrf())
        kwargs.setdefault("follow_redirects", False)
        response = self.client.post(path, data=form, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)
        token = csrf_token_in(response.text) if "html" in response.headers.get("content-type", "") else None
        if token:
            self.token = token
        return response

    def htmx(self, path: str, data: dict[str, Any] | None = None) -> httpx.Response:
        """A POST as htmx sends it: the token in the `x-csrftoken` header, `HX-Request: true`."""
        return self.client.post(path, data=data or {}, headers={**self.headers, "hx-request": "true", "x-csrftoken": self.csrf()})

    def submit(self, page: str, data: dict[str, Any], *, action: str | None = None, follow: bool = False) -> httpx.Response:
        """Open `page`, then post `data` to `action` (default: the page itself) with the page's token."""
        opened = self.get(page)
        assert opened.status_code < 400, f"GET {page} -> {opened.status_code}"
        token = csrf_token_in(opened.text)
        assert token, f"no form with a CSRF token on {page}"
        return self.post(action or page, {**data, "_csrf_token": token}, follow_redirects=follow)

    # The accounts flow --------------------------------------------------------
    def login(self, email: str, password: str = DEFAULT_PASSWORD, *, remember: bool = False,
              totp_secret: str = TEST_TOTP_SECRET) -> httpx.Response:
        """Log in; an account with a second factor (R-AUTH-3) gets the code of `totp_secret` on the second step."""
        data = {"email": email, "password": password}
        if remember:
            data["remember"] = "on"
        response = self.submit("/login", data)
        assert response.status_code == 303, f"login failed: {response.status_code}\n{response.text[:2000]}"
        if response.headers["location"] == "/login/code":
            response = self.submit("/login/code", {"code": self.next_totp_code(email, totp_secret)})
            assert response.status_code == 303, f"second step failed: {response.status_code}\n{response.text[:2000]}"
        return response

    def next_totp_code(self, email: str, secret: str = TEST_TOTP_SECRET) -> str:
        """A code the app accepts now and newer than the last step the account used (so several logins within
        30 s pass too; from the third on, the test clock moves on by 30 s)."""
        from domain import twofactor
        from web.platform.db import transaction
        from web.accounts.models import User

        app = getattr(self.client, "app", None)
        if app is not None:
            with transaction(app.state.engine) as session:
                last = session.scalars(select(User.totp_last_step).where(User.email == email.lower())).first()
        else:  # a plain HTTP client to a server in another process: what this browser used itself
            last = self._totp_steps.get(email.lower())
        now = twofactor.step_at(web_clock.now())
        if last is not None and last >= now + twofactor.DRIFT_STEPS:
            # Both codes the app takes now are used up (a third login within 30 s): move the test clock on.
            web_clock.travel(timedelta(seconds=twofactor.INTERVAL * (last - now)))
            now = twofactor.step_at(web_clock.now())
        # The current step or the next: still accepted if the server's check falls into the next 30 s.
        step = now if last is None or now > last else now + 1
        self._totp_steps[email.lower()] = step
        return twofactor.code_at_step(secret, step)

    def logout(self) -> httpx.Response:
        return self.post("/logout")

    def register(self, **fields: str) -> httpx.Response:
        return self.submit("/register", registration_form(**fields))

    @property
    def cookies(self) -> httpx.Cookies:
        return self.client.cookies


@pytest.fixture
def new_browser(app: Litestar, client: TestClient) -> Callable[..., Browser]:
    """`new_browser(ip="10.0.0.7")` -> another independent browser (own cookies) on the same running app.

    It shares the event loop (portal) of `client`, so the app's lifespan runs once for all browsers.
    """

    def make(ip: str | None = None) -> Browser:
        test_client = TestClient(app, base_url=BASE_URL)
        test_client.blocking_portal = client.blocking_portal
        return Browser(test_client, ip)

    return make


@pytest.fixture
def browser(client: TestClient) -> Browser:
    return Browser(client)


# --------------------------------------------------------------------------- mail


_URL = re.compile(r"https?://[^\s\"'<>]+")


@dataclass
class Mail:
    to: str
    subject: str
    text: str
    html: str

    def links(self) -> list[str]:
        found = _URL.findall(self.text) + [unescape(u) for u in _URL.findall(self.html)]
        return list(dict.fromkeys(found))

    def link(self, containing: str) -> str:
        """The path (with query) of the link that contains `containing`, as the test client needs it."""
        for url in self.links():
            if containing in url:
                parts = urlsplit(url)
                return parts.path + (f"?{parts.query}" if parts.query else "")
        raise AssertionError(f"no link with {containing!r} in mail {self.subject!r}:\n{self.text}")


class Outbox:
    """The mail_outbox table, as the tests read it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def all(self, to: str | None = None) -> list[Mail]:
        from web.platform.models import OutboxMail

        query = select(OutboxMail).order_by(OutboxMail.id)  # type: ignore[arg-type]
        if to is not None:
            query = query.where(OutboxMail.to_address == to.lower())
        with Session(self.engine) as session:
            return [Mail(m.to_address, m.subject, m.text_body, m.html_body) for m in session.scalars(query)]

    def to(self, address: str) -> list[Mail]:
        return self.all(address)

    def last(self, to: str | None = None) -> Mail:
        found = self.all(to)
        assert found, f"no mail to {to}" if to else "the outbox is empty"
        return found[-1]

    def count(self, to: str | None = None) -> int:
        return len(self.all(to))


@pytest.fixture
def mails(engine: Engine) -> Outbox:
    return Outbox(engine)


# --------------------------------------------------------------------------- people


VALID_PESEL = "44051401359"  # born 1944-05-14, male
_PESEL_WEIGHTS = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)


def with_check_digit(first_ten: str) -> str:
    """Complete ten PESEL digits with the R-ACC-2 check digit (the date is not checked)."""
    return first_ten + str((10 - sum(int(d) * w for d, w in zip(first_ten, _PESEL_WEIGHTS)) % 10) % 10)


def make_pesel(born: date, serial: int = 123, male: bool = True) -> str:
    """A valid PESEL for a date of birth in 1800-2299 (R-ACC-2), built independently of domain code."""
    century = born.year - born.year % 100
    month = born.month + {1800: 80, 1900: 0, 2000: 20, 2100: 40, 2200: 60}[century]
    return with_check_digit(f"{born.year % 100:02d}{month:02d}{born.day:02d}{serial % 1000:03d}{(serial % 5) * 2 + int(male)}")


def registration_form(**fields: str) -> dict[str, str]:
    """A complete, valid registration form; pass fields to change them (value "" leaves one out)."""
    data = {
        "first_name": "Anna",
        "last_name": "Nowak-Wiśniewska",
        "pesel": VALID_PESEL,
        "email": "anna@example.pl",
        "email_repeat": "anna@example.pl",
        "password": DEFAULT_PASSWORD,
        "password_repeat": DEFAULT_PASSWORD,
        "accept_terms": "on",
        "gdpr_seen": "on",
    }
    data.update(fields)
    if "email" in fields and "email_repeat" not in fields:
        data["email_repeat"] = fields["email"]
    if "password" in fields and "password_repeat" not in fields:
        data["password_repeat"] = fields["password"]
    return {key: value for key, value in data.items() if value is not None}


class Users:
    """Creates accounts straight in the database (fast, no mail sent); passwords hashed like the app does."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def create(
        self,
        email: str = "jan@example.pl",
        password: str = DEFAULT_PASSWORD,
        *,
        first_name: str = "Jan",
        last_name: str = "Kowalski",
        pesel: str | None = VALID_PESEL,
        birth_date: date | None = None,
        active: bool = True,
        role: str = "passenger",
        language: str = "pl",
        totp_secret: str | None = None,
    ) -> Any:
        """`totp_secret`: enrol a second factor (R-AUTH-3); staff and inspectors get TEST_TOTP_SECRET unless
        given "" (not enrolled: they enrol at their first sign-in)."""
        from domain.accounts import read_pesel
        from web.platform.db import transaction
        from web.accounts.models import User
        from web.platform.protect import encrypt_pesel, pesel_hash
        from web.accounts import service

        born = birth_date or (read_pesel(pesel).birth_date if pesel else date(1990, 1, 1))
        key = self.settings.pesel_key
        user = User(
            email=email.lower(),
            first_name=first_name,
            last_name=last_name,
            password_hash=service.hash_password(password),
            pesel_hash=pesel_hash(key, pesel) if pesel else None,
            pesel_encrypted=encrypt_pesel(key, pesel) if pesel else None,
            birth_date=born,
            language=language,
            role=role,
            activated_at=web_clock.now() if active else None,
        )
        if totp_secret is None and role in ("staff", "inspector", "admin"):
            totp_secret = TEST_TOTP_SECRET
        with transaction(self.engine) as session:
            session.add(user)
            session.flush()
            if totp_secret:
                from web.accounts.twofactor import set_secret

                set_secret(session, self.settings, user, totp_secret)
                session.flush()
            session.refresh(user)
            session.expunge(user)
        return user


@pytest.fixture
def users(engine: Engine, settings: Settings, fast_password_hashing: None) -> Users:
    return Users(engine, settings)


@pytest.fixture
def logged_in(browser: Browser, users: Users) -> tuple[Browser, Any]:
    """A browser logged in as a fresh active passenger `jan@example.pl` (password DEFAULT_PASSWORD)."""
    user = users.create()
    browser.login(user.email)
    return browser, user


# --------------------------------------------------------------------------- reading pages


def page_text(html: str) -> str:
    """The visible text of a page: tags dropped, entities decoded, whitespace collapsed."""
    without_scripts = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S | re.I)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", without_scripts))).strip()


def field_errors(html: str, name: str) -> list[str]:
    """The error messages shown next to field `name` (the `#<name>-errors` block of partials/forms.html)."""
    match = re.search(rf'<div class="field-errors" id="{re.escape(name)}-errors"[^>]*>(.*?)</div>', html, flags=re.S)
    if not match:
        return []
    return [page_text(m) for m in re.findall(r'<p class="error">(.*?)</p>', match.group(1), flags=re.S)]


def all_field_errors(html: str) -> dict[str, list[str]]:
    names = re.findall(r'<div class="field-errors" id="([\w-]+)-errors"', html)
    return {name: errors for name in names if (errors := field_errors(html, name))}


def input_tag(html: str, name: str) -> str | None:
    match = re.search(rf'<input\b[^>]*\bname="{re.escape(name)}"[^>]*>', html)
    return match.group(0) if match else None


def input_value(html: str, name: str) -> str | None:
    """The `value` the page puts in input `name` (None: no input or no value attribute)."""
    tag = input_tag(html, name)
    if tag is None:
        return None
    value = re.search(r'\bvalue="([^"]*)"', tag)
    return unescape(value.group(1)) if value else None


def is_checked(html: str, name: str) -> bool:
    tag = input_tag(html, name)
    return tag is not None and re.search(r"\bchecked\b", tag) is not None


def set_cookie_headers(response: httpx.Response, name: str) -> list[str]:
    return [value for value in response.headers.get_list("set-cookie") if value.startswith(f"{name}=")]
