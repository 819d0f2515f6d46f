"""R-CARD-2/3/4 end to end on a phone (360x800): a passenger with PESEL logs in, opens "Moje karty", adds a
card with a wrong client code (refused), then the right one, confirms "Tak", sees the card with its
resident status, and unlinks it; axe checks on /cards and /cards/add."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta

import pytest
from playwright.sync_api import Page, expect

from e2e.helpers import assert_no_horizontal_scroll, link_from_mail, make_pesel
from web.platform import clock as web_clock

pytestmark = pytest.mark.e2e

PASSWORD = "Tramwaj2024"
MISMATCH = "Podane dane nie są zgodne z danymi w rejestrze kart."


def register_and_activate(page: Page, live_server, wait_for_mail, email: str, pesel: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/register")
    page.get_by_label("Imię", exact=True).fill("Katarzyna")
    page.get_by_label("Nazwisko", exact=True).fill("Mazur")
    page.get_by_label("Numer PESEL").fill(pesel)
    page.get_by_label("Adres e-mail (będzie Twoim loginem)").fill(email)
    page.get_by_label("Powtórz adres e-mail").fill(email)
    page.get_by_label("Hasło", exact=True).fill(PASSWORD)
    page.get_by_label("Powtórz hasło").fill(PASSWORD)
    page.get_by_role("checkbox", name=re.compile("RODO")).check()
    page.get_by_role("checkbox", name=re.compile("Regulamin")).check()
    page.get_by_role("button", name="Zarejestruj").tap()
    expect(page).to_have_url(re.compile(r"/register/done$"))
    page.goto(link_from_mail(wait_for_mail(email), live_server.url, "/activate/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Konto aktywne")


def log_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Adres e-mail").fill(email)
    page.get_by_label("Hasło", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Zaloguj", exact=True).tap()
    expect(page).to_have_url(re.compile(r"/home$"))


def test_r_card_add_wrong_code_then_right_code_confirm_list_unlink(page: Page, live_server, wait_for_mail, axe, tmp_path) -> None:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:8]
    email = f"karty-{tag}@example.pl"
    pesel = make_pesel(date(1987, 6, 15), female=True)
    code = f"7{int(tag, 16) % 10**8:08d}"  # this test's own card, whatever else the registry holds
    until = web_clock.today() + timedelta(days=400)
    registry = tmp_path / "rejestr.csv"
    registry.write_text(
        "type;client_code;pesel;holder_name;resident_from;resident_until;blocked\n"
        f"KKM;{code};{pesel};Katarzyna Mazur;{web_clock.today() - timedelta(days=10)};{until.strftime('%d.%m.%Y')};nie\n",
        encoding="utf-8",
    )
    assert "1 added" in live_server.cli("cards", "import", str(registry))

    register_and_activate(page, live_server, wait_for_mail, email, pesel)
    log_in(page, email)

    page.get_by_role("navigation", name="Menu główne").get_by_role("link", name="Karty").tap()
    expect(page).to_have_url(re.compile(r"/cards$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Moje karty")
    expect(page.get_by_text("Nie masz jeszcze kart przypisanych do konta.")).to_be_visible()
    assert_no_horizontal_scroll(page)
    axe(page, "/cards (empty)")

    page.get_by_role("link", name="Dodaj kartę").tap()
    expect(page).to_have_url(re.compile(r"/cards/add$"))
    assert_no_horizontal_scroll(page)
    axe(page, "/cards/add")

    # A wrong client code: refused, without saying which field was wrong (htmx swaps the step in place).
    page.get_by_label("Typ karty").select_option("KKM")
    page.get_by_label("Kod klienta").fill(code[:-1] + str((int(code[-1]) + 1) % 10))
    page.get_by_role("button", name="Szukaj karty").tap()
    expect(page.get_by_role("alert")).to_contain_text(MISMATCH)
    expect(page).to_have_url(re.compile(r"/cards/add$"))
    axe(page, "/cards/add with the mismatch message")

    # The right code, typed as printed with spaces: the summary and the question.
    page.get_by_label("Kod klienta").fill(f"{code[:3]} {code[3:6]} {code[6:]}")
    page.get_by_role("button", name="Szukaj karty").tap()
    expect(page.get_by_text("Czy dodać kartę do konta?")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Znaleziono kartę")
    expect(page.locator("dl.facts")).to_contain_text(code)
    expect(page.locator("dl.facts")).to_contain_text("Katarzyna Mazur")
    axe(page, "the confirmation step")
    page.get_by_role("button", name="Tak", exact=True).tap()

    expect(page).to_have_url(re.compile(r"/cards$"))
    expect(page.get_by_text("Karta została dodana do Twojego konta.")).to_be_visible()
    item = page.locator("li.card-item")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("Krakowska Karta Miejska")
    expect(item).to_contain_text("plastikowa")
    expect(item).to_contain_text(code)
    expect(item).to_contain_text("Karta Krakowska")
    expect(item).to_contain_text("ważny do")
    assert_no_horizontal_scroll(page)
    axe(page, "/cards with a card")

    item.get_by_role("link", name=re.compile("Odłącz kartę")).tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Odłączyć kartę od konta?")
    page.get_by_role("button", name="Tak, odłącz").tap()
    expect(page).to_have_url(re.compile(r"/cards$"))
    expect(page.get_by_text("Karta została odłączona od konta.")).to_be_visible()
    expect(page.locator("li.card-item")).to_have_count(0)
