"""The e-purse card in a phone browser (360x800): the validator simulator taps with button selections
and shows the right amounts; a passenger tops up online with the sandbox card and sees the bonus."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from e2e.helpers import pass_second_step

PASSWORD = "Demo1234"


def log_in(page: Page, email: str, server=None) -> None:  # type: ignore[no-untyped-def]
    """Log in; staff and inspectors (demo TOTP secret) pass the second step when `server` is given (R-AUTH-3)."""
    page.goto("/login")
    page.get_by_label("Adres e-mail").fill(email)
    page.get_by_label("Hasło", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Zaloguj", exact=True).tap()
    if server is not None:
        pass_second_step(page, server, email)
    expect(page).to_have_url(re.compile(r"/home$"))


def test_validator_simulator_taps_with_button_selections(page: Page, demo_data, axe) -> None:  # type: ignore[no-untyped-def]
    log_in(page, "bok@demo.ekp", demo_data)
    page.goto("/simulators/validator")
    display = page.get_by_test_id("display")
    page.get_by_label("Numer karty").fill("70019999")  # demo bearer card
    page.get_by_label("Przystanek").fill("E2E-1")
    page.get_by_role("button", name="S", exact=True).tap()
    page.get_by_role("button", name="Przyłóż kartę").tap()
    expect(display).to_contain_text("STAN KONTA")
    balance_text = display.inner_text()
    start = int(re.search(r"Saldo: (\d+),(\d\d)", balance_text.replace("\u00a0", " ")).group(0).split(": ")[1].replace(",", ""))

    page.get_by_role("button", name="T", exact=True).tap()
    page.get_by_role("button", name="T", exact=True).tap()
    page.get_by_role("button", name="T", exact=True).tap()  # T 3x: 50 % off
    expect(page.locator("#validator-selection")).to_have_text("Wybór: ulga 50%")
    page.get_by_role("button", name="Przyłóż kartę").tap()
    expect(display).to_contain_text("POBRANO OPŁATĘ")
    expect(display).to_contain_text("Pobrano: 1,40")

    page.get_by_label("Pojazd").fill("BUS-E2E-2")
    page.get_by_role("button", name="B", exact=True).tap()
    page.get_by_role("button", name="B", exact=True).tap()  # B 2x: suburban
    page.get_by_role("button", name="Przyłóż kartę").tap()
    expect(display).to_contain_text("Pobrano: 3,40")
    left = start - 140 - 340
    expect(display).to_contain_text(f"Saldo: {left // 100},{left % 100:02d}")

    page.get_by_label("Karta obca (nie KKM)").check()
    page.get_by_role("button", name="Przyłóż kartę").tap()
    expect(display).to_contain_text("ZŁA KARTA")
    axe(page, "validator simulator")


def test_passenger_tops_up_online_and_sees_the_bonus(page: Page, demo_data, axe, console_errors) -> None:  # type: ignore[no-untyped-def]
    log_in(page, "anna@demo.ekp")
    page.get_by_role("link", name="Portmonetka").tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Portmonetka")
    card = page.locator("article.purse-card").filter(has_text="70010001")
    card.get_by_label("Kwota (zł)").fill("50,01")
    card.get_by_role("button", name="Pokaż premię").tap()
    card = page.locator("article.purse-card").filter(has_text="70010001")
    expect(card.get_by_test_id("bonus")).to_have_text(re.compile(r"5,00\s*zł"))
    axe(page, "purse with quote")
    card.get_by_role("button", name="Przejdź do płatności").tap()
    page.get_by_label("Numer karty").fill("4111 1111 1111 1111")
    page.get_by_label("Data ważności").fill("12/30")
    page.get_by_label("Kod CVC").fill("123")
    page.get_by_role("button", name=re.compile("^Zapłać")).tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Płatność przyjęta", timeout=30_000)
    page.get_by_role("link", name="Dalej").tap()
    expect(page).to_have_url(re.compile(r"/purse$"))
    history = page.locator("article.purse-card").filter(has_text="70010001").locator("table.purse-history")
    expect(history).to_contain_text("Premia za doładowanie")
    expect(history).to_contain_text(re.compile(r"\+5,00\s*zł"))
