"""Helpers for the end-to-end tests: a collecting SMTP server, mail parsing, PESEL numbers, axe checks."""

from __future__ import annotations

import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage
from urllib.parse import urlsplit

from aiosmtpd.controller import Controller
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

SERIOUS_IMPACTS = ("serious", "critical")
PESEL_WEIGHTS = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
_URL = re.compile(r"https?://[^\s<>\"']+")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ReceivedMail:
    recipients: list[str]
    message: EmailMessage


@dataclass
class MailBox:
    """An aiosmtpd handler that keeps every message it receives; tests wait on it."""

    received: list[ReceivedMail] = field(default_factory=list)
    port: int = 0
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # aiosmtpd hook
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self._arrived:
            self.received.append(ReceivedMail([r.lower() for r in envelope.rcpt_tos], message))  # type: ignore[arg-type]
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, to: str, timeout: float = 30.0, subject_contains: str = "") -> EmailMessage:
        """The first message to `to` (optionally whose subject contains the text); fails after `timeout` s."""
        to = to.lower()
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for mail in self.received:
                    if to in mail.recipients and subject_contains in str(mail.message["Subject"] or ""):
                        return mail.message
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(m.recipients, str(m.message["Subject"])) for m in self.received]
                    raise AssertionError(f"no mail to {to} within {timeout} s; the SMTP server got: {seen}")
                self._arrived.wait(left)

    def all_to(self, to: str) -> list[EmailMessage]:
        with self._arrived:
            return [m.message for m in self.received if to.lower() in m.recipients]


def start_smtp(mailbox: MailBox) -> Controller:
    """Start an SMTP server on a free loopback port that puts every message into `mailbox`."""
    mailbox.port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port, ready_timeout=10)
    controller.start()
    return controller


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "the mail has no text/plain part"
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None, "the mail has no text/html part"
    return str(part.get_content())


def link_from_mail(message: EmailMessage, base_url: str = "", path_contains: str = "") -> str:
    """The first link in the plain-text part (starting with `base_url`, containing `path_contains`)."""
    for url in _URL.findall(text_of(message)):
        url = url.rstrip(".,;)")
        if url.startswith(base_url) and path_contains in url:
            return url
    raise AssertionError(f"no link starting with {base_url!r} containing {path_contains!r} in:\n{text_of(message)}")


def make_pesel(born: date, female: bool, rng: random.Random | None = None) -> str:
    """A valid PESEL (R-ACC-2) for a birth date, with a random serial."""
    rng = rng or random.Random()
    century_offset = {18: 80, 19: 0, 20: 20, 21: 40, 22: 60}[born.year // 100]
    digits = f"{born.year % 100:02d}{born.month + century_offset:02d}{born.day:02d}"
    digits += f"{rng.randrange(1000):03d}"
    digits += str(rng.choice([0, 2, 4, 6, 8] if female else [1, 3, 5, 7, 9]))
    return with_check_digit(digits)


def with_check_digit(first_ten: str) -> str:
    """Append the R-ACC-2 check digit to ten digits (even if they encode no real date)."""
    check = (10 - sum(int(d) * w for d, w in zip(first_ten, PESEL_WEIGHTS, strict=True)) % 10) % 10
    return first_ten + str(check)


def serious_violations(results: dict) -> list[dict]:  # type: ignore[type-arg]
    return [v for v in results.get("violations", []) if v.get("impact") in SERIOUS_IMPACTS]


def describe_violations(violations: list[dict]) -> str:  # type: ignore[type-arg]
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']}  [{v.get('helpUrl', '')}]")
        for node in v.get("nodes", []):
            lines.append(f"    at {', '.join(map(str, node.get('target', [])))}")
            lines.append(f"       {node.get('html', '').strip()[:200]}")
            summary = (node.get("failureSummary") or "").replace("\n", "\n       ")
            if summary:
                lines.append(f"       {summary}")
    return "\n".join(lines)


def assert_accessible(page, label: str = "") -> None:  # type: ignore[no-untyped-def]
    """Run axe-core on the page as it is now; fail listing every serious or critical violation."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page).response
    bad = serious_violations(results)
    where = label or page.url
    assert not bad, f"axe found {len(bad)} serious/critical accessibility problem(s) on {where}:\n{describe_violations(bad)}"


def assert_no_horizontal_scroll(page, width: int = 360) -> None:  # type: ignore[no-untyped-def]
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{page.url} scrolls sideways at {width} px: scrollWidth is {scroll_width}"


DEMO_TOTP_SECRET = "EKPDEMOTOTPSECRETFORDEVELOPMENT2"  # web.simulators.demo.DEMO_TOTP_SECRET (R-AUTH-3)


def totp_code_for(live_server, email: str, secret: str = DEMO_TOTP_SECRET) -> str:  # type: ignore[no-untyped-def]
    """A code the live server accepts now for `email` (R-AUTH-3): of the server's current 30-s step, away from
    its edges (our estimate of the server's clock may be a second or two off), and newer than the step this
    account used last (a code is accepted once), using the allowed drift of one step before waiting."""
    from domain import twofactor

    while True:
        now = live_server.now()
        into = now.timestamp() % twofactor.INTERVAL
        if 4 <= into <= twofactor.INTERVAL - 4:
            step = twofactor.step_at(now)
            last = live_server.totp_steps.get(email)
            for candidate in (step - 1, step, step + 1):
                if last is None or candidate > last:
                    live_server.totp_steps[email] = candidate
                    return twofactor.code_at_step(secret, candidate)
        time.sleep(1)


def pass_second_step(page, live_server, email: str, secret: str = DEMO_TOTP_SECRET) -> None:  # type: ignore[no-untyped-def]
    """After the password: type the authenticator code when the app asks for one (staff, inspectors)."""
    page.wait_for_url(lambda url: urlsplit(url).path != "/login")
    if urlsplit(page.url).path != "/login/code":
        return
    for attempt in range(3):
        page.get_by_label("Kod z aplikacji").fill(totp_code_for(live_server, email, secret))
        page.get_by_role("button", name="Potwierdź kod").tap()
        try:
            page.wait_for_url(lambda url: "/login" not in url, timeout=20_000)
            return
        except PlaywrightTimeoutError:
            # Refused (a code is accepted once, and our estimate of the server's 30-s step may be off on a
            # loaded machine): the next call gives a newer step's code.
            if attempt == 2:
                raise
