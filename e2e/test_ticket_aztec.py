"""R-5P1-8 end to end in Chromium: the passenger binds a mobile ticket to the phone, the phone draws
the device-signed Aztec code itself (zxing-wasm writer); a screenshot decodes with zxing-cpp and
verifies with the issuer key, online and again with the network cut off; an old code is stale. The
inspector's page reads a code from a (fake) camera with zxing-wasm and verifies it offline."""

from __future__ import annotations

import io
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from sqlmodel import Session

from domain import ticket_record as tr
from e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE
from e2e.helpers import DEMO_TOTP_SECRET, pass_second_step
from tests.support import barcodes
from web.platform import clock
from web.platform.db import make_engine
from web.cards.models import Card
from web.tickets.models import Ticket
from web.tickets import service
from web.accounts.people import create_active_user
from web.accounts.twofactor import set_secret
from web.platform.settings import load_settings

pytestmark = pytest.mark.e2e

PASSWORD = "Tramwaj2024"
BIRTH = date(1990, 5, 17)


def _engine(live_server: Any) -> Any:
    return make_engine(load_settings(live_server.env).database_url)


def make_account(live_server: Any, role: str) -> str:
    email = f"{role}-{uuid.uuid4().hex[:10]}@example.pl"
    settings = load_settings(live_server.env)
    engine = _engine(live_server)
    with Session(engine) as session:
        user = create_active_user(session, settings, role=role, email=email, first_name="Łucja", last_name="Żak",
                                  password=PASSWORD, birth_date=BIRTH)
        if role in ("staff", "inspector"):  # enrolled with the demo secret: log_in passes the second step (R-AUTH-3)
            set_secret(session, settings, user, DEMO_TOTP_SECRET)
        session.commit()
    engine.dispose()
    return email


def make_mobile_ticket(live_server: Any, email: str | None) -> int:
    """A mKK card and a 5+1 ticket valid from two days ago for four weeks (rows written directly)."""
    engine = _engine(live_server)
    today = clock.today()
    with Session(engine) as session:
        from sqlmodel import select

        from web.accounts.models import User

        user = session.exec(select(User).where(User.email == email)).first() if email else None
        card = Card(carrier_type="mKK", client_code=uuid.uuid4().hex[:12], holder_name="Łucja Żak",
                    pesel_hash="0" * 64, account_id=user.id if user else None)
        session.add(card)
        session.flush()
        ticket = Ticket(user_id=user.id if user else None, card_id=card.id, product="5P1", variant="normal",
                        holder_name="Łucja Żak", valid_from=today - timedelta(days=2),
                        valid_until=today + timedelta(days=26), price=8900)
        session.add(ticket)
        session.commit()
        ticket_id = ticket.id
    engine.dispose()
    assert ticket_id is not None
    return ticket_id


def log_in(page: Page, email: str, server: Any = None) -> None:
    page.goto("/login")
    page.get_by_label("Adres e-mail").fill(email)
    page.get_by_label("Hasło", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Zaloguj", exact=True).tap()
    if server is not None:
        pass_second_step(page, server, email)
    expect(page).not_to_have_url(re.compile(r"/login"))


def issuer_keys(live_server: Any) -> dict[int, Any]:
    return service.issuer_keys(Path(live_server.var_dir)).public


def wait_until(page: Page, function: str, timeout: float = 20.0) -> None:
    """Poll a JS function with page.evaluate (wait_for_function would need 'unsafe-eval' under our CSP)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(function):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {function}")
        time.sleep(0.2)


def wait_for_new_code(page: Page, after: int = 0) -> int:
    wait_until(page, f"() => Number(document.getElementById('aztec').dataset.timestamp || 0) > {after}")
    return int(page.locator("#aztec").get_attribute("data-timestamp") or 0)


def screenshot_code(page: Page) -> bytes:
    png = page.locator("#aztec").screenshot()
    payload = barcodes.decode_aztec_image(png)
    assert payload is not None, "zxing-cpp found no Aztec code in the screenshot"
    return payload


def test_r_5p1_8_phone_draws_a_code_that_verifies_online_offline_and_goes_stale(page: Page, live_server: Any,
                                                                                axe: Any) -> None:
    email = make_account(live_server, "passenger")
    ticket_id = make_mobile_ticket(live_server, email)
    log_in(page, email)
    page.goto("/tickets")
    expect(page.get_by_role("heading", level=1)).to_have_text("Bilety")
    page.get_by_role("link", name="Pokaż bilet do kontroli").tap()
    expect(page).to_have_url(re.compile(rf"/tickets/{ticket_id}/show$"))
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.get_by_role("button", name="Przypisz bilet do tego telefonu").tap()
    expect(page.locator("#pass-status")).to_have_text("Telefon przypisany do biletu.")
    first_ts = wait_for_new_code(page)
    expect(page.get_by_text("co 30 s", exact=False)).to_be_visible()
    expect(page.locator("#pass-countdown")).to_have_text(re.compile(r"^\d+$"))
    clock_before = page.locator("#pass-clock").inner_text()
    assert re.fullmatch(r"\d\d:\d\d:\d\d", clock_before)
    wait_until(page, f"() => document.getElementById('pass-clock').textContent !== '{clock_before}'")

    axe(page, "Pokaż bilet do kontroli")
    payload = screenshot_code(page)
    now = clock.now()
    verdict = tr.verify(payload, issuer_keys(live_server), frozenset(), now)
    assert verdict.valid, verdict.code
    assert verdict.ticket is not None
    assert verdict.ticket.ticket_id == ticket_id
    assert verdict.ticket.holder_initials == "ŁŻ" and verdict.ticket.birth_year == BIRTH.year
    presented = tr.decode(payload).timestamp
    assert presented == first_ts and abs(presented - now.timestamp()) < 30

    # A code older than the freshness window is refused: a screenshot stops working.
    later = datetime.fromtimestamp(presented + tr.DEFAULT_FRESHNESS_SECONDS + 1, UTC)
    assert tr.verify(payload, issuer_keys(live_server), frozenset(), later).code == "stale"

    # The page, the record (IndexedDB) and the scripts/wasm are kept for offline use.
    wait_until(page,
        "() => Promise.all([caches.match(location.pathname), caches.match('/static/vendor/zxing/writer/zxing_writer.wasm'),"
        " caches.match('/static/js/ticket-record.js', {ignoreSearch: true})]).then((hits) => hits.every(Boolean))")
    page.context.set_offline(True)
    try:
        page.reload()
        expect(page.get_by_role("heading", level=1)).to_have_text("Pokaż bilet do kontroli")
        offline_ts = wait_for_new_code(page)
        offline_payload = screenshot_code(page)
        offline_verdict = tr.verify(offline_payload, issuer_keys(live_server), frozenset(), clock.now())
        assert offline_verdict.valid, offline_verdict.code
        assert tr.decode(offline_payload).timestamp == offline_ts >= first_ts
        # Same record, new device signature: the static part is unchanged.
        assert tr.decode(offline_payload).record.raw == tr.decode(payload).record.raw
    finally:
        page.context.set_offline(False)


def y4m_from_png(png: bytes, path: Path, width: int = 640, height: int = 480, frames: int = 10) -> Path:
    """A raw YUV4MPEG2 (4:2:0) clip showing the PNG centred on white, for Chromium's fake camera."""
    code = Image.open(io.BytesIO(png)).convert("L")
    scale = max(1, min((width - 40) // code.width, (height - 40) // code.height))
    code = code.resize((code.width * scale, code.height * scale), Image.Resampling.NEAREST)
    canvas = Image.new("L", (width, height), 255)
    canvas.paste(code, ((width - code.width) // 2, (height - code.height) // 2))
    y_plane = canvas.tobytes()
    chroma = bytes([128]) * ((width // 2) * (height // 2))
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + y_plane + chroma + chroma)
    return path


@pytest.fixture
def camera_browser(browser: Any) -> Iterator[Any]:
    """camera_browser(video) -> another Chromium (same Playwright) whose fake camera plays `video`."""
    launched: list[Any] = []

    def launch(video: Path) -> Any:
        other = browser.browser_type.launch(executable_path=CHROMIUM, headless=True, args=[
            *CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}"])
        launched.append(other)
        return other

    try:
        yield launch
    finally:
        for other in launched:
            other.close()


def scan_with_camera(camera_browser: Any, live_server: Any, inspector_email: str, video: Path) -> Page:
    browser = camera_browser(video)
    context = browser.new_context(base_url=live_server.url, permissions=["camera"], **PHONE)
    if clock.is_pinned():
        context.clock.install(time=clock.now())
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, inspector_email, live_server)
    page.get_by_role("link", name="Kontrola", exact=True).tap()  # the bottom tab
    expect(page.get_by_role("heading", level=1)).to_have_text("Kontrola biletów")
    expect(page.locator("#trust-state")).to_contain_text("Lista kluczy")
    wait_until(page, "() => localStorage.getItem('ekp-trust-list') !== null")
    # Load the reader's wasm while online, then cut the network: the check happens on the phone.
    wait_until(page, "() => caches.match('/static/vendor/zxing/reader/zxing_reader.wasm').then(Boolean)")
    context.set_offline(True)
    page.get_by_role("button", name="Skanuj kod").tap()
    expect(page.locator("#verdict")).to_be_visible(timeout=30_000)
    assert not errors, errors
    return page


def signed_code(live_server: Any, ticket_id: int, at: datetime) -> bytes:
    keys = service.issuer_keys(Path(live_server.var_dir))
    engine = _engine(live_server)
    with Session(engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        phone = tr.generate_private_key()
        record = service.sign_ticket_record(ticket, BIRTH.year, tr.compressed_device_key(phone.public_key()), keys)
    engine.dispose()
    return tr.sign_presentation(phone, record, int(at.timestamp()))


def test_r_5p1_8_inspector_scans_a_code_from_the_camera_offline(camera_browser: Any, live_server: Any,
                                                                tmp_path: Path) -> None:
    passenger = make_account(live_server, "passenger")
    inspector = make_account(live_server, "inspector")
    ticket_id = make_mobile_ticket(live_server, passenger)
    code = signed_code(live_server, ticket_id, clock.now())
    video = y4m_from_png(barcodes.render_aztec_png(code, scale=1), tmp_path / "valid.y4m")
    page = scan_with_camera(camera_browser, live_server, inspector, video)
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-code", "valid")
    expect(verdict).to_have_class(re.compile("verdict-valid"))
    expect(page.locator("#verdict-title")).to_have_text("WAŻNY")
    details = page.locator("#verdict-details")
    expect(details).to_contain_text("ŁŻ")
    expect(details).to_contain_text(str(BIRTH.year))
    expect(details).to_contain_text("Bilet 5plus1 normalny")
    expect(details).to_contain_text(str(ticket_id))


def test_r_5p1_8_inspector_sees_a_stale_screenshot_in_red(camera_browser: Any, live_server: Any, tmp_path: Path) -> None:
    passenger = make_account(live_server, "passenger")
    inspector = make_account(live_server, "inspector")
    ticket_id = make_mobile_ticket(live_server, passenger)
    old = clock.now() - timedelta(seconds=tr.DEFAULT_FRESHNESS_SECONDS + 60)
    video = y4m_from_png(barcodes.render_aztec_png(signed_code(live_server, ticket_id, old), scale=1), tmp_path / "stale.y4m")
    page = scan_with_camera(camera_browser, live_server, inspector, video)
    expect(page.locator("#verdict")).to_have_attribute("data-code", "stale")
    expect(page.locator("#verdict")).to_have_class(re.compile("verdict-invalid"))
    expect(page.locator("#verdict-reason")).to_contain_text("zrzut ekranu")
