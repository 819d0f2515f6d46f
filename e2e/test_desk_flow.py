"""The customer-service desk on a phone-sized screen (360x800): staff finds an e-purse card, takes a cash
top-up and sees the receipt with the bonus (R-TOP-1, R-TOP-3)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from e2e.test_purse_flow import log_in


def test_staff_tops_up_a_card_in_cash_and_sees_the_receipt(page: Page, demo_data, axe) -> None:  # type: ignore[no-untyped-def]
    log_in(page, "bok@demo.ekp", demo_data)
    page.get_by_role("navigation", name="Menu główne").get_by_role("link", name="Obsługa klienta").tap()
    expect(page).to_have_url(re.compile(r"/desk$"))
    axe(page, "desk")
    page.get_by_label("Numer karty").fill("70010002")
    page.get_by_role("button", name="Znajdź kartę").tap()
    expect(page.get_by_role("heading", level=1)).to_contain_text("70010002")
    page.get_by_label("Kwota (zł)").fill("4")
    page.get_by_role("button", name="Doładuj i wydrukuj paragon").tap()
    expect(page.locator("#amount-errors")).to_contain_text("ZA NISKA KWOTA")
    page.get_by_label("Kwota (zł)").fill("120")
    page.get_by_role("button", name="Doładuj i wydrukuj paragon").tap()
    receipt = page.get_by_role("status").filter(has_text="Paragon fiskalny")
    expect(receipt).to_be_visible()
    expect(page.get_by_test_id("bonus")).to_have_text(re.compile(r"18,00\s*zł"))  # 15 % over 100 zł
    axe(page, "desk card with receipt")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_r_top_5_staff_confirms_a_large_cash_top_up_a_second_time(page: Page, demo_data, axe) -> None:  # type: ignore[no-untyped-def]
    log_in(page, "bok@demo.ekp", demo_data)
    page.goto("/desk/purse/70019999")
    page.get_by_label("Kwota (zł)").fill("250")
    page.get_by_role("button", name="Doładuj i wydrukuj paragon").tap()
    confirm = page.get_by_role("button", name=re.compile(r"Potwierdź wpłatę 250,00\s*zł"))
    expect(confirm).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Paragon fiskalny")).to_have_count(0)
    axe(page, "desk asks to confirm a large top-up")
    confirm.tap()
    expect(page.get_by_role("status").filter(has_text="Paragon fiskalny")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
