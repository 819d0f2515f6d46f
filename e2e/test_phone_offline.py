"""Issue 15 in Chromium at 360x800: the installed app started offline (after one online visit) opens the start
page from the service worker's cache, reaches the ticket in one tap and draws a code that zxing-cpp decodes
and the verifier accepts; the manifest's shortcut does the same; signing out leaves nothing of the account
offline; the start page shows the active ticket; the bottom tab bar is on every passenger page."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from domain import ticket_record as tr
from e2e.helpers import assert_no_horizontal_scroll
from e2e.test_ticket_aztec import (
    issuer_keys,
    log_in,
    make_account,
    make_mobile_ticket,
    screenshot_code,
    wait_for_new_code,
    wait_until,
)
from web.platform import clock

pytestmark = pytest.mark.e2e

PASSENGER_PAGES = ("/home", "/tickets", "/5plus1", "/cards", "/purse", "/account", "/payments")


def assert_code_verifies(page: Page, live_server: Any) -> None:
    wait_for_new_code(page)
    payload = screenshot_code(page)
    verdict = tr.verify(payload, issuer_keys(live_server), frozenset(), clock.now())
    assert verdict.valid, verdict.code


def test_installed_app_started_offline_reaches_the_ticket_and_shows_a_valid_code(page: Page, live_server: Any, axe: Any) -> None:
    email = make_account(live_server, "passenger")
    ticket_id = make_mobile_ticket(live_server, email)
    log_in(page, email)
    expect(page).to_have_url(re.compile(r"/home$"))  # signing in lands on the start page
    home = page.get_by_test_id("home-ticket")
    expect(home).to_contain_text("Bilet 5plus1 normalny")
    expect(home.get_by_role("link", name="Pokaż bilet do kontroli")).to_be_visible()
    axe(page, "start page")
    start_url = json.loads(page.request.get("/manifest.webmanifest").text())["start_url"]

    # The first online visit: bind this phone to the ticket (one tap from home) and let the worker keep it all.
    home.get_by_role("link", name="Pokaż bilet do kontroli").tap()
    expect(page).to_have_url(re.compile(rf"/tickets/{ticket_id}/show$"))
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.get_by_role("button", name="Przypisz bilet do tego telefonu").tap()
    expect(page.locator("#pass-status")).to_have_text("Telefon przypisany do biletu.")
    expect(page.locator("#pass-device-count")).to_have_text("1")  # counted at once, without a reload
    expect(page.locator("#pass-devices .this-phone")).to_be_visible()  # "ten telefon"
    assert_code_verifies(page, live_server)
    page.evaluate("window.scrollTo(0, 0)")
    for part in ("#aztec", "#pass-clock", "#pass-countdown"):  # above the fold at 360x800
        box = page.locator(part).bounding_box()
        assert box and box["y"] + box["height"] <= 800, (part, box)
    axe(page, "ticket at inspection")
    page.get_by_role("link", name="Start").tap()
    expect(page.get_by_test_id("home-ticket")).to_be_visible()
    wait_until(page, "() => Promise.all([caches.match('/home'), caches.match(location.origin + '/tickets/"
               f"{ticket_id}/show'), caches.match('/static/vendor/zxing/writer/zxing_writer.wasm')])"
               ".then((hits) => hits.every(Boolean))")

    page.context.set_offline(True)
    try:
        page.goto(start_url)
        expect(page.locator("#home-offline")).to_be_visible()  # says it is the last saved state
        expect(page.get_by_text(re.compile(r"Stan z \d\d\.\d\d\.\d{4}"))).to_be_visible()
        expect(page.get_by_role("link", name="Zaloguj")).to_have_count(0)
        page.get_by_test_id("home-ticket").get_by_role("link", name="Pokaż bilet do kontroli").tap()
        expect(page.get_by_role("heading", level=1)).to_have_text("Pokaż bilet do kontroli")
        assert_code_verifies(page, live_server)
        # The manifest's shortcut, offline too.
        page.goto("/tickets/current?source=pwa-shortcut")
        expect(page.get_by_role("heading", level=1)).to_have_text("Pokaż bilet do kontroli")
        assert_code_verifies(page, live_server)
    finally:
        page.context.set_offline(False)

    # Signing out leaves nothing of the account for the next person offline.
    page.goto("/home")
    page.get_by_role("button", name="Wyloguj").tap()
    expect(page).to_have_url(re.compile(r"/login$"))
    wait_until(page, "() => document.documentElement.dataset.browserCleared === '1'")
    wait_until(page, "() => Promise.all([caches.keys().then((names) => !names.some((n) => n.startsWith('ekp-pages-'))),"
               f" caches.match(location.origin + '/tickets/{ticket_id}/show').then((hit) => !hit)]).then((ok) => ok.every(Boolean))")
    page.context.set_offline(True)
    try:
        try:
            page.goto(start_url)
        except PlaywrightError as error:  # Clear-Site-Data "storage" also unregistered the worker: the browser's own page
            assert "ERR_INTERNET_DISCONNECTED" in str(error), error
        else:
            expect(page.get_by_role("heading", level=1)).to_have_text("Brak połączenia z internetem")
        expect(page.get_by_test_id("home-ticket")).to_have_count(0)
    finally:
        page.context.set_offline(False)


def test_a_bound_phone_shows_the_code_from_home_without_loading_a_page(page: Page, live_server: Any) -> None:
    """Issue 15, a tap to a scannable code in < 300 ms: once this phone holds the ticket, the start page's button
    shows the code in place (no page load) at the ticket page's URL; back closes it; that URL opens the page."""
    email = make_account(live_server, "passenger")
    ticket_id = make_mobile_ticket(live_server, email)
    log_in(page, email)
    page.goto(f"/tickets/{ticket_id}/show")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.get_by_role("button", name="Przypisz bilet do tego telefonu").tap()
    wait_for_new_code(page)

    page.goto("/home")
    wait_until(page, "() => document.getElementById('home-pass').dataset.ready === 'yes'")
    page.evaluate("window.ekpSamePage = true")  # gone if the tap loaded another page
    page.get_by_test_id("home-ticket").get_by_role("link", name="Pokaż bilet do kontroli").tap()
    expect(page).to_have_url(re.compile(rf"/tickets/{ticket_id}/show$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Pokaż bilet do kontroli")
    expect(page.get_by_test_id("home-ticket")).to_be_hidden()
    assert_code_verifies(page, live_server)
    assert page.evaluate("window.ekpSamePage === true")
    page.evaluate("window.scrollTo(0, 0)")
    for part in ("#aztec", "#pass-clock", "#pass-countdown"):  # above the fold at 360x800
        box = page.locator(part).bounding_box()
        assert box and box["y"] + box["height"] <= 800, (part, box)
    page.get_by_role("button", name="Jasny ekran").tap()
    expect(page.locator("#home-pass")).to_have_class(re.compile(r"pass-bright"))

    page.go_back()  # back closes the code and the bright screen
    expect(page).to_have_url(re.compile(r"/home$"))
    expect(page.get_by_test_id("home-ticket")).to_be_visible()
    expect(page.locator("#home-pass")).to_be_hidden()
    assert page.evaluate("!document.documentElement.classList.contains('pass-bright-page') && window.ekpSamePage")

    page.go_forward()
    expect(page.locator("#home-pass")).to_be_visible()
    page.reload()  # the view's URL is the ticket page itself
    expect(page.locator("#pass-devices .this-phone")).to_be_visible()
    assert_code_verifies(page, live_server)


def test_bottom_tab_bar_on_every_passenger_page(page: Page, live_server: Any) -> None:
    email = make_account(live_server, "passenger")
    log_in(page, email)
    for path in PASSENGER_PAGES:
        page.goto(path)
        bar = page.get_by_role("navigation", name="Menu główne")
        expect(bar).to_be_visible()
        expect(bar.get_by_role("link")).to_have_count(5)
        current = bar.locator("[aria-current=page]")
        expect(current).to_have_count(1)
        for link in bar.get_by_role("link").all():
            box = link.bounding_box()
            assert box and box["height"] >= 44 and box["width"] >= 44, (path, box)
        header = page.locator(".site-header").bounding_box()
        assert header and header["height"] <= 64, (path, header)  # one line at 360 px
        assert_no_horizontal_scroll(page)
    page.goto("/tickets")
    expect(page.get_by_role("navigation", name="Menu główne").locator("[aria-current=page]")).to_have_text("Bilety")
