"""R-ACC-1..4 end to end on a phone: register, receive the activation mail over real SMTP, activate,
log in, see the masked PESEL, log out; the no-PESEL path; errors next to their fields; axe checks."""

from __future__ import annotations

import re
import uuid
from datetime import date

import pytest
from playwright.sync_api import Page, expect

from e2e.helpers import assert_no_horizontal_scroll, html_of, link_from_mail, make_pesel, with_check_digit

pytestmark = pytest.mark.e2e

PASSWORD = "Tramwaj2024"


def unique_email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.pl"


def fill_common(page: Page, first: str, last: str, email: str) -> None:
    page.get_by_label("Imię", exact=True).fill(first)
    page.get_by_label("Nazwisko", exact=True).fill(last)
    page.get_by_label("Adres e-mail (będzie Twoim loginem)").fill(email)
    page.get_by_label("Powtórz adres e-mail").fill(email)
    page.get_by_label("Hasło", exact=True).fill(PASSWORD)
    page.get_by_label("Powtórz hasło").fill(PASSWORD)
    page.get_by_role("checkbox", name=re.compile("RODO")).check()
    page.get_by_role("checkbox", name=re.compile("Regulamin")).check()


def submit_registration(page: Page) -> None:
    page.get_by_role("button", name="Zarejestruj").tap()
    expect(page).to_have_url(re.compile(r"/register/done$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sprawdź pocztę")


def activate_from_mail(page: Page, live_server, wait_for_mail, email: str) -> None:  # type: ignore[no-untyped-def]
    mail = wait_for_mail(email)
    assert "Aktywuj" in str(mail["Subject"])
    link = link_from_mail(mail, live_server.url, "/activate/")
    assert link in html_of(mail), "the HTML part should carry the same activation link"
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Konto aktywne")
    # R-ACC-3: the link works once.
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Link został już użyty")


def log_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Adres e-mail").fill(email)
    page.get_by_label("Hasło", exact=True).fill(password)
    page.get_by_role("button", name="Zaloguj", exact=True).tap()
    expect(page).to_have_url(re.compile(r"/home$"))  # the start page (issue 15)


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Wyloguj").tap()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_text("Wylogowano.")).to_be_visible()
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/login\?next=/account$"))


def test_r_acc_register_activate_login_logout_with_pesel(page: Page, live_server, wait_for_mail, axe) -> None:  # type: ignore[no-untyped-def]
    email = unique_email("anna")
    pesel = make_pesel(date(1985, 3, 9), female=True)

    page.goto("/register")
    assert_no_horizontal_scroll(page)
    axe(page, "register page")
    fill_common(page, "Zofia", "Wiśniewska-Kowal", email)
    page.get_by_label("Numer PESEL").fill(pesel)
    assert_no_horizontal_scroll(page)
    submit_registration(page)

    activate_from_mail(page, live_server, wait_for_mail, email)

    page.goto("/login")
    assert_no_horizontal_scroll(page)
    axe(page, "login page")
    log_in(page, email)
    expect(page.get_by_text("Witaj, Zofia!")).to_be_visible()
    page.get_by_role("link", name="Konto").tap()
    masked = pesel[:2] + "\u2022" * 7 + pesel[-2:]
    expect(page.locator(".facts")).to_contain_text(masked)
    expect(page.locator(".facts")).to_contain_text("Zofia Wiśniewska-Kowal")
    expect(page.locator(".facts")).to_contain_text(email)
    assert pesel not in page.content(), "the full PESEL must never reach the page"
    assert_no_horizontal_scroll(page)
    axe(page, "account page")

    log_out(page)


def test_r_acc_1_no_pesel_path_asks_for_date_of_birth(page: Page, live_server, wait_for_mail, axe) -> None:  # type: ignore[no-untyped-def]
    email = unique_email("olena")
    page.goto("/register")
    birth_date = page.get_by_label("Data urodzenia")
    expect(birth_date).to_be_hidden()
    page.get_by_label("Nie mam numeru PESEL").check()
    expect(birth_date).to_be_visible()
    expect(page.get_by_label("Numer PESEL")).to_be_hidden()
    fill_common(page, "Olena", "Szewczenko", email)
    birth_date.fill("1990-05-17")
    assert_no_horizontal_scroll(page)
    axe(page, "register page, no-PESEL path")
    submit_registration(page)

    activate_from_mail(page, live_server, wait_for_mail, email)
    log_in(page, email)
    page.goto("/account")
    expect(page.locator(".facts")).to_contain_text("17.05.1990")
    log_out(page)


def test_r_acc_errors_are_shown_next_to_their_fields(page: Page, live_server, axe) -> None:  # type: ignore[no-untyped-def]
    page.goto("/register")
    page.get_by_label("Imię", exact=True).fill("Jan")
    page.get_by_label("Nazwisko", exact=True).fill("Kowalski")
    page.get_by_label("Numer PESEL").fill("44051401459")  # R-ACC-2: wrong check digit
    page.get_by_label("Adres e-mail (będzie Twoim loginem)").fill("jan@example.pl")
    page.get_by_label("Powtórz adres e-mail").fill("jan@example.com")
    page.get_by_label("Hasło", exact=True).fill("krotkie")
    page.get_by_label("Powtórz hasło").fill("inne")
    # The page is /register before and after: wait for the answer to the form, not for the URL (the inline
    # PESEL check has already filled #pesel-errors on the page being left).
    with page.expect_navigation():
        page.get_by_role("button", name="Zarejestruj").tap()

    expect(page).to_have_url(re.compile(r"/register$"))
    expected = {
        "pesel": "błędną cyfrę kontrolną",
        "email_repeat": "Adresy e-mail nie są takie same.",
        "password": "co najmniej 8 znaków",
        "password_repeat": "Hasła nie są takie same.",
        "accept_terms": "zaakceptuj Regulamin EKP",
        "gdpr_seen": "RODO",
    }
    for name, text in expected.items():
        expect(page.locator(f"#{name}-errors")).to_contain_text(text)
        described_by = page.locator(f"#{name}").get_attribute("aria-describedby") or ""
        assert f"{name}-errors" in described_by.split(), f"#{name} is not described by its error"
        expect(page.locator(f"#{name}")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#first_name-errors")).to_be_empty()
    # The form keeps what was typed, except passwords.
    expect(page.get_by_label("Imię", exact=True)).to_have_value("Jan")
    expect(page.get_by_label("Numer PESEL")).to_have_value("44051401459")
    expect(page.get_by_label("Powtórz adres e-mail")).to_have_value("jan@example.com")
    expect(page.get_by_label("Hasło", exact=True)).to_have_value("")
    assert_no_horizontal_scroll(page)
    axe(page, "register page with errors")

    # The no-PESEL choice without a date asks for the date, next to the date field.
    page.get_by_label("Nie mam numeru PESEL").check()
    page.get_by_role("button", name="Zarejestruj").tap()
    expect(page.locator("#birth_date-errors")).to_contain_text("Podaj datę urodzenia.")
    expect(page.get_by_label("Data urodzenia")).to_be_visible()


def test_r_acc_2_inline_pesel_check_over_htmx(page: Page, live_server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/register")
    pesel = page.get_by_label("Numer PESEL")
    pesel.fill(with_check_digit("4405320145"))  # a correct check digit, but 32 May does not exist
    pesel.blur()
    expect(page.locator("#pesel-errors")).to_contain_text("nieistniejącą datę")
    pesel.fill("44051401458")
    pesel.blur()
    expect(page.locator("#pesel-errors")).to_be_empty()


def test_r_acc_3_inactive_account_cannot_log_in(page: Page, live_server, wait_for_mail) -> None:  # type: ignore[no-untyped-def]
    email = unique_email("piotr")
    page.goto("/register")
    fill_common(page, "Piotr", "Zieliński", email)
    page.get_by_label("Numer PESEL").fill(make_pesel(date(2001, 11, 30), female=False))
    submit_registration(page)
    page.goto("/login")
    page.get_by_label("Adres e-mail").fill(email)
    page.get_by_label("Hasło", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Zaloguj", exact=True).tap()
    expect(page.get_by_role("alert")).to_contain_text("nie zostało jeszcze aktywowane")
    expect(page.get_by_role("link", name="Wyślij link aktywacyjny ponownie")).to_be_visible()


def test_demo_passenger_logs_in(page: Page, demo_data, axe) -> None:  # type: ignore[no-untyped-def]
    log_in(page, "anna@demo.ekp", "Demo1234")
    page.goto("/account")
    expect(page.locator(".facts")).to_contain_text("44\u2022\u2022\u2022\u2022\u2022\u2022\u202258")
    log_out(page)
