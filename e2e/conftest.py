"""End-to-end fixtures: a real EKP server per test session (per xdist worker), its own SMTP server,
and Debian's Chromium at a phone viewport.

    live_server   the running app: .url, .mailbox, .var_dir, .env, .log_path
    demo_data     loads the demo people into that server's database (anna@demo.ekp / Demo1234, ...)
    browser       one headless Chromium per session
    page          a fresh context per test: 360x800, device scale 2, touch, pl-PL; console errors fail the test
    wait_for_mail wait_for_mail(to, timeout=30) -> email.message.EmailMessage
    axe           axe(page, label="") asserts no serious/critical axe-core violations

Chromium comes from EKP_E2E_CHROMIUM (default /usr/bin/chromium); `playwright install` is not needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from e2e.helpers import MailBox, assert_accessible, free_port, start_smtp
from tests.support import DATES_BOTH_MARKER, DATES_MARKER, mark_date_sensitive, pin_clock_from_environment
from web.platform import clock as web_clock

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("EKP_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {
    "viewport": {"width": 360, "height": 800},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "pl-PL",
    "timezone_id": "Europe/Warsaw",
}
START_TIMEOUT = 60.0
# Mail leaves the outbox in a scheduler round every 5 s; allow a few rounds on a busy machine.
MAIL_TIMEOUT = 30.0


@dataclass
class LiveServer:
    url: str
    port: int
    var_dir: Path
    env: dict[str, str]
    mailbox: MailBox
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    started: float = field(default_factory=time.monotonic, repr=False)  # when the server process was spawned
    totp_steps: dict[str, int] = field(default_factory=dict, repr=False)  # last TOTP step used per account

    def now(self) -> datetime:
        """The server's clock, as near as we know it: a pinned run (EKP_TEST_TODAY) starts the server's clock at
        the pinned moment when its process starts; otherwise it is the real time."""
        if web_clock.is_pinned():
            return web_clock.parse_pin(web_clock.pin_text()) + timedelta(seconds=time.monotonic() - self.started)
        return datetime.now(timezone.utc)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def cli(self, *args: str) -> str:
        """Run an `ekp` command against this server's database; return its output."""
        done = subprocess.run([sys.executable, "-m", "web.cli", *args], cwd=PROJECT_ROOT, env=self.env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"ekp {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout


def _server_env(var_dir: Path, port: int, smtp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EKP_")}
    env.update(
        EKP_ENV="test",
        EKP_VAR_DIR=str(var_dir),
        EKP_HOST="127.0.0.1",
        EKP_PORT=str(port),
        EKP_BASE_URL=f"http://127.0.0.1:{port}",
        EKP_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
        EKP_DEV_PAGES="true",
        EKP_PAYMENTS="sandbox",
        PYTHONUNBUFFERED="1",
    )
    if web_clock.is_pinned():  # the server's clock is the tests' (EKP_TEST_TODAY)
        env[web_clock.PIN_VARIABLE] = web_clock.pin_text()
    return env


def _wait_healthy(server: LiveServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last_error = ""
    while time.monotonic() < deadline:
        assert server.process is not None
        if server.process.poll() is not None:
            pytest.fail(f"EKP exited with code {server.process.returncode} before it was ready:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last_error = repr(exc)
        time.sleep(0.2)
    pytest.fail(f"EKP did not answer /healthz within {START_TIMEOUT} s ({last_error}):\n{server.log_tail()}")


@pytest.fixture(scope="session")
def mailbox() -> Iterator[MailBox]:
    box = MailBox()
    controller = start_smtp(box)
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, mailbox: MailBox) -> Iterator[LiveServer]:
    """`ekp run --no-demo` in a subprocess on a free loopback port, with a fresh SQLite database."""
    var_dir = tmp_path_factory.mktemp("ekp-var")
    port = free_port()
    env = _server_env(var_dir, port, mailbox.port)
    server = LiveServer(url=f"http://127.0.0.1:{port}", port=port, var_dir=var_dir, env=env, mailbox=mailbox,
                        log_path=var_dir / "server.log")
    with server.log_path.open("wb") as log:
        server.started = time.monotonic()
        server.process = subprocess.Popen([sys.executable, "-m", "web.cli", "run", "--no-demo"], cwd=PROJECT_ROOT,
                                          env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(server)
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)


@pytest.fixture(scope="session")
def demo_data(live_server: LiveServer) -> LiveServer:
    """The demo people (`ekp demo load`) in the live server's database."""
    live_server.cli("demo", "load")
    return live_server


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        reason = f"no Chromium at {CHROMIUM} (install Debian's chromium or set EKP_E2E_CHROMIUM)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI must run the browser tests")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def console_errors() -> list[str]:
    """What the page logged as errors (console.error, uncaught exceptions, CSP violations)."""
    return []


@pytest.fixture
def page(browser, live_server: LiveServer, console_errors: list[str]) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url, **PHONE)
    if web_clock.is_pinned():  # the page's Date is the server's: from the pinned moment, running on
        context.clock.install(time=web_clock.now())
    context.set_default_timeout(15_000)
    tab = context.new_page()
    documents: set[str] = set()

    def on_request(request) -> None:  # type: ignore[no-untyped-def]
        if request.resource_type == "document":
            documents.add(request.url)

    def on_console(msg) -> None:  # type: ignore[no-untyped-def]
        if msg.type != "error":
            return
        # A page deliberately answered 4xx (expired link, 422 form) is not a browser error;
        # a failing stylesheet, script or icon is.
        if msg.text.startswith("Failed to load resource") and msg.location.get("url") in documents:
            return
        console_errors.append(f"console.error: {msg.text} at {msg.location.get('url')}")

    tab.on("request", on_request)
    tab.on("console", on_console)
    tab.on("pageerror", lambda exc: console_errors.append(f"uncaught: {exc}"))
    try:
        yield tab
    finally:
        context.close()
    assert not console_errors, "the browser reported errors:\n" + "\n".join(console_errors)


@pytest.fixture
def wait_for_mail(live_server: LiveServer) -> Callable[..., EmailMessage]:
    def wait(to: str, timeout: float = MAIL_TIMEOUT, subject_contains: str = "") -> EmailMessage:
        try:
            return live_server.mailbox.wait_for(to, timeout, subject_contains)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nserver log:\n{live_server.log_tail()}") from None

    return wait


@pytest.fixture
def axe() -> Callable[..., None]:
    return assert_accessible


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", DATES_MARKER)
    config.addinivalue_line("markers", DATES_BOTH_MARKER)
    pin_clock_from_environment()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_date_sensitive(items, config.rootpath)
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
