"""A Kołobrzeg card's whole life in phone browsers (360x800, issue 16): a passenger applies online with a photo
(R-KKM-3), pays the 12 zł deposit on the sandbox payment page (R-KKM-2); staff (signed in with the demo TOTP
secret) accept the application, mark the card made and hand it over (R-KKM-4); the passenger sees it in
Portmonetka, and a tap on the validator simulator charges its fare (R-VAL-1)."""

from __future__ import annotations

import io
import random
import re

from PIL import Image
from playwright.sync_api import Page, expect

from e2e.conftest import PHONE
from e2e.helpers import assert_no_horizontal_scroll
from e2e.test_purse_flow import log_in


def portrait_jpeg() -> bytes:
    image = Image.new("RGB", (900, 1200), (180, 150, 120))
    for x in range(300, 600):  # something face-like in the middle, so the crop has content
        for y in range(350, 750, 4):
            image.putpixel((x, y), (90, 60, 40))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def test_r_kkm_3_apply_pay_collect_and_ride_with_the_new_card(page: Page, browser, demo_data, axe) -> None:  # type: ignore[no-untyped-def]
    number = f"7005{random.randrange(10**4):04d}"
    # The passenger (Olena: no card yet, R-KKM-1) applies from Portmonetka.
    log_in(page, "olena@demo.ekp")
    page.get_by_role("link", name="Portmonetka").tap()
    page.get_by_role("link", name=re.compile("Wnioski o kartę z portmonetką")).tap()
    page.get_by_role("link", name="Złóż wniosek o kartę").tap()
    expect(page.get_by_test_id("applicant")).to_have_text("Olena Shevchenko")
    page.get_by_label("Rodzaj karty").select_option("normal")
    page.get_by_label("Zdjęcie (karta imienna)").set_input_files(
        files=[{"name": "zdjecie.jpg", "mimeType": "image/jpeg", "buffer": portrait_jpeg()}])
    page.get_by_label("Odbiór karty w punkcie").select_option("solna")
    axe(page, "card application form")
    assert_no_horizontal_scroll(page)
    page.get_by_role("button", name="Złóż wniosek i zapłać kaucję").tap()

    # The deposit on the sandbox payment page.
    expect(page.get_by_text(re.compile(r"12,00\s*zł")).first).to_be_visible()
    page.get_by_label("Numer karty").fill("4111 1111 1111 1111")
    page.get_by_label("Data ważności").fill("12/30")
    page.get_by_label("Kod CVC").fill("123")
    page.get_by_role("button", name=re.compile("^Zapłać")).tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Płatność przyjęta", timeout=30_000)
    page.get_by_role("link", name="Dalej").tap()
    expect(page).to_have_url(re.compile(r"/card-applications/\d+$"))
    application_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_test_id("status")).to_have_text("złożony")
    expect(page.get_by_test_id("collect-by")).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("Zdjęcie tak, jak zostanie wydrukowane"))).to_be_visible()
    axe(page, "card application status")
    assert_no_horizontal_scroll(page)

    # Staff at the desk, in their own browser.
    desk_context = browser.new_context(base_url=demo_data.url, **PHONE)
    desk_context.set_default_timeout(15_000)
    desk = desk_context.new_page()
    try:
        log_in(desk, "bok@demo.ekp", demo_data)
        desk.get_by_role("navigation", name="Menu główne").get_by_role("link", name="Obsługa klienta").tap()
        desk.get_by_role("link", name="Wnioski o karty KKM (kolejka)").tap()
        desk.get_by_role("link", name=application_id, exact=True).tap()
        expect(desk.get_by_role("heading", level=1)).to_contain_text("Olena Shevchenko")
        expect(desk.get_by_role("img", name="Zdjęcie")).to_be_visible()
        axe(desk, "desk: the application")
        assert_no_horizontal_scroll(desk)
        desk.get_by_role("button", name="Przyjmij wniosek").tap()
        expect(desk.get_by_test_id("status")).to_have_text("przyjęty — karta w produkcji")
        desk.get_by_label("Numer wykonanej karty").fill("12ab")
        desk.get_by_role("button", name="Karta wykonana").tap()
        expect(desk.locator("#number-errors")).to_contain_text("Numer karty to od 4 do 20 cyfr.")
        desk.get_by_label("Numer wykonanej karty").fill(number)
        desk.get_by_role("button", name="Karta wykonana").tap()
        expect(desk.get_by_test_id("status")).to_have_text("karta gotowa do odbioru")
        desk.get_by_role("button", name="Wydaj kartę").tap()
        expect(desk.locator("#identity_checked-errors")).to_contain_text("dokument tożsamości")
        desk.get_by_label("Sprawdzono dokument tożsamości ze zdjęciem").check()
        desk.get_by_role("button", name="Wydaj kartę").tap()
        expect(desk.get_by_test_id("status")).to_have_text("karta odebrana")
        axe(desk, "desk: card handed over")

        # Loaded with cash at collection (the seed recommends it), then tapped on the validator simulator.
        desk.goto(f"/desk/purse/{number}")
        desk.get_by_label("Kwota (zł)").fill("20")
        desk.get_by_role("button", name="Doładuj i wydrukuj paragon").tap()
        expect(desk.get_by_role("status").filter(has_text="Paragon fiskalny")).to_be_visible()
        desk.goto("/simulators/validator")
        desk.get_by_label("Numer karty").fill(number)
        desk.get_by_label("Przystanek").fill("E2E-KKM")
        desk.get_by_label("Pojazd").fill("BUS-E2E-KKM")
        desk.get_by_role("button", name="Przyłóż kartę").tap()
        display = desk.get_by_test_id("display")
        expect(display).to_contain_text("Pobrano: 2,80")
        expect(display).to_contain_text("Saldo: 17,20")
    finally:
        desk_context.close()

    # The passenger: the card in Portmonetka with the ride, the application closed.
    page.goto(f"/card-applications/{application_id}")
    expect(page.get_by_test_id("status")).to_have_text("karta odebrana")
    page.goto("/purse")
    card = page.locator("article.purse-card").filter(has_text=number)
    expect(card).to_be_visible()
    expect(card.get_by_test_id("balance")).to_have_text(re.compile(r"17,20\s*zł"))
    expect(card).to_contain_text("Olena Shevchenko")
    axe(page, "purse with the new card")
    assert_no_horizontal_scroll(page)
