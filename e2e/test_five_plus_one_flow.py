"""The 5+1 ticket end to end on a phone (360x800) against a live server with the embedded sandbox:
notifications travel over real HTTP from the sandbox to /payments/notify.

A resident (demo Anna) links her card, meets the sandbox's decline, 3-D Secure deny and approve, then
buys 5+1 with the good card, returns, and sees the confirmation, the active ticket and the next charge.
A non-resident (demo Jan) is refused with the reason. axe checks on the tab.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from e2e.helpers import assert_no_horizontal_scroll, text_of
from tests.support.shop import tariff_price, zl
from web.platform import clock as web_clock

pytestmark = pytest.mark.e2e

GOOD_CARD = "4111 1111 1111 1111"
DECLINED_CARD = "4000 0000 0000 0002"
THREE_DS_CARD = "4000 0000 0000 3220"


def log_in(page: Page, email: str, password: str = "Demo1234") -> None:
    page.goto("/login")
    page.get_by_label("Adres e-mail").fill(email)
    page.get_by_label("Hasło", exact=True).fill(password)
    page.get_by_role("button", name="Zaloguj", exact=True).tap()
    expect(page).not_to_have_url(re.compile(r"/login"))


def link_card(page: Page, carrier: str, code: str) -> None:
    page.goto("/cards/add")
    page.get_by_label("Typ karty").select_option(carrier)
    page.get_by_label("Kod klienta").fill(code)
    page.get_by_role("button", name="Szukaj karty").tap()
    page.get_by_role("button", name="Tak", exact=True).tap()
    expect(page).to_have_url(re.compile(r"/cards$"))
    expect(page.get_by_text(code).first).to_be_visible()


def start_purchase(page: Page) -> None:
    page.goto("/5plus1")
    expect(page.get_by_role("heading", name="Kup bilet 5plus1")).to_be_visible()
    page.get_by_label("Normalny").check()
    expect(page.locator("#schedule table tbody tr")).to_have_count(6)  # the schedule, before paying
    page.get_by_label("Ponawiaj subskrypcję automatycznie").check()
    page.get_by_label(re.compile("Zgadzam się na comiesięczne obciążanie")).check()
    page.get_by_role("button", name="Kup bilet i przejdź do płatności").tap()
    expect(page.get_by_role("heading", name="Płatność testowa")).to_be_visible()
    assert "/sandbox-pay/pay/" in page.url


def try_again(page: Page) -> None:
    """From the failure page: back to the tab, where one message offers one step - paying again."""
    page.get_by_role("link", name="Wróć i spróbuj ponownie").tap()
    expect(page).to_have_url(re.compile(r"/5plus1$"))
    expect(page.locator("#first-payment")).to_contain_text("nie powiodła się")
    expect(page.get_by_role("alert")).to_have_count(1)
    page.get_by_role("button", name="Spróbuj ponownie").tap()
    expect(page.get_by_role("heading", name="Płatność testowa")).to_be_visible()


def type_card(page: Page, number: str) -> None:
    page.get_by_label("Numer karty").fill(number)
    page.get_by_label("Data ważności").fill("12/30")
    page.get_by_label("Kod CVC").fill("123")
    page.get_by_role("button", name=re.compile(r"^Zapłać")).tap()


def test_resident_meets_decline_and_3ds_then_buys_5plus1(page: Page, demo_data, axe, wait_for_mail) -> None:  # type: ignore[no-untyped-def]
    log_in(page, "anna@demo.ekp")
    link_card(page, "KKM", "100200300")
    page.goto("/5plus1")
    expect(page.get_by_role("heading", name="Kup bilet 5plus1")).to_be_visible()
    axe(page, "5plus1 tab, buying")
    assert_no_horizontal_scroll(page)

    # Declined card: back with a failure, nothing bought; one message and one next step.
    start_purchase(page)
    type_card(page, DECLINED_CARD)
    expect(page.get_by_role("heading", level=1)).to_have_text("Płatność nieudana")
    try_again(page)

    # 3-D Secure, denied.
    type_card(page, THREE_DS_CARD)
    expect(page.get_by_role("heading", name=re.compile("3-D Secure"))).to_be_visible()
    page.get_by_role("button", name="Odrzucam płatność").tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Płatność nieudana")
    try_again(page)

    # 3-D Secure, approved: paid. Then cancelled, to buy again with the good card below.
    type_card(page, THREE_DS_CARD)
    page.get_by_role("button", name="Potwierdzam płatność").tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Płatność przyjęta", timeout=30_000)
    page.goto("/5plus1")
    expect(page.get_by_role("heading", name="Aktywny bilet")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Anuluj subskrypcję").tap()
    expect(page.get_by_text("Subskrypcja została anulowana")).to_be_visible()

    # The good card: confirmation, the active ticket and the next charge on the tab, and the mail.
    # (Buying again the same day is allowed after a cancellation; paid tickets stay valid.)
    start_purchase(page)
    type_card(page, GOOD_CARD)
    expect(page.get_by_role("heading", level=1)).to_have_text("Płatność przyjęta", timeout=30_000)
    monthly = zl(tariff_price(1, web_clock.today()))  # the first day defaults to today: the price in force then
    expect(page.get_by_text(f"Zapłacono {monthly}")).to_be_visible()
    page.get_by_role("link", name="Zobacz bilet").tap()  # a plastic card: the ticket list (a mobile one: its code)
    expect(page).to_have_url(re.compile(r"/tickets$"))
    page.goto("/5plus1")
    expect(page.get_by_role("heading", name="Aktywny bilet")).to_be_visible()
    expect(page.get_by_text("miesiąc 1 z 6")).to_be_visible()
    expect(page.get_by_text(re.compile("Następne obciążenie"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"Visa •••• 1111"))).to_be_visible()
    axe(page, "5plus1 tab, active ticket")
    assert_no_horizontal_scroll(page)

    mail = wait_for_mail("anna@demo.ekp", subject_contains="Potwierdzenie zakupu biletu 5+1")
    assert monthly in text_of(mail) and "20,00" in text_of(mail)


def test_non_resident_is_refused_with_the_reason(page: Page, demo_data, axe) -> None:  # type: ignore[no-untyped-def]
    log_in(page, "jan@demo.ekp")
    link_card(page, "KKM", "200300400")
    page.goto("/5plus1")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("mogą kupić wyłącznie mieszkańcy ze statusem Karty Krakowskiej")
    expect(page.get_by_role("link", name="Przejdź do Moich kart")).to_be_visible()
    expect(page.get_by_role("button", name="Kup bilet i przejdź do płatności")).to_have_count(0)
    axe(page, "5plus1 tab, refused")
    assert_no_horizontal_scroll(page)
