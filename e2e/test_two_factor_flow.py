"""Two-step sign-in on a phone-sized screen (360x800, R-AUTH-3): a staff account made by `ekp users add`
enrols at its first sign-in by scanning the QR code (decoded here from a screenshot with zxing-cpp), sees
its recovery codes once, reaches the desk, and signs in again later with a fresh code."""

from __future__ import annotations

import io
import re
import uuid
from urllib.parse import parse_qs, urlsplit

import zxingcpp
from PIL import Image
from playwright.sync_api import Page, expect

from e2e.helpers import pass_second_step, totp_code_for

PASSWORD = "Haslo1234"


def qr_secret(page: Page) -> str:
    png = page.get_by_test_id("totp-qr").locator("svg").screenshot()
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    assert found, "zxing-cpp found no QR code in the screenshot"
    uri = found[0].text
    assert uri.startswith("otpauth://totp/"), uri
    query = parse_qs(urlsplit(uri).query)
    assert query["issuer"] == ["EKP"]
    return query["secret"][0]


def test_r_auth_3_staff_enrols_by_scanning_the_qr_code_and_signs_in_with_it(page: Page, live_server, axe) -> None:  # type: ignore[no-untyped-def]
    email = f"bok-{uuid.uuid4().hex[:8]}@example.pl"
    out = live_server.cli("users", "add", "--role", "staff", "--email", email, "--first-name", "Ewa",
                          "--last-name", "Nowicka", "--password", PASSWORD)
    assert "first sign-in" in out
    page.goto("/login")
    page.get_by_label("Adres e-mail").fill(email)
    page.get_by_label("Hasło", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Zaloguj", exact=True).tap()
    expect(page).to_have_url(re.compile(r"/login/enrol$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Skonfiguruj logowanie dwuetapowe")
    axe(page, "enrolment")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    # The password alone opens no staff page.
    page.goto("/desk")
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto("/login/enrol")
    secret = qr_secret(page)
    assert page.get_by_test_id("totp-secret").inner_text().replace(" ", "") == secret
    page.get_by_label("Kod z aplikacji").fill(totp_code_for(live_server, email, secret))
    page.get_by_role("button", name="Włącz logowanie dwuetapowe").tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Zapisz kody odzyskiwania")
    codes = page.get_by_test_id("recovery-codes").locator("li").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", code) for code in codes)
    axe(page, "recovery codes")
    page.get_by_role("link", name="Zapisałem kody — dalej").tap()
    expect(page).to_have_url(re.compile(r"/home$"))  # let that navigation finish before the next one
    page.goto("/desk")
    expect(page.get_by_role("heading", level=1)).to_have_text("Obsługa klienta (BOK/POK)")
    page.get_by_role("button", name="Wyloguj").tap()
    expect(page).to_have_url(re.compile(r"/login$"))
    # Later: password, then a fresh code from the same secret.
    page.get_by_label("Adres e-mail").fill(email)
    page.get_by_label("Hasło", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Zaloguj", exact=True).tap()
    expect(page).to_have_url(re.compile(r"/login/code$"))
    axe(page, "second step")
    pass_second_step(page, live_server, email, secret)
    page.goto("/desk")
    expect(page.get_by_role("heading", level=1)).to_have_text("Obsługa klienta (BOK/POK)")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
