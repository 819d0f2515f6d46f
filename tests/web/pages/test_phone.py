"""Issue 15, the passenger's phone (items 1-3): the start page (`/home`, the installed app's start_url), the
bottom tab bar by role, the ticket at inspection (one tap from home, the manifest's shortcut, phones named
and renamed), and the pages the service worker keeps offline per account. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import update

from domain import ticket_phones
from tests.conftest import Browser, page_text
from tests.support.purse import make_card
from tests.support.tickets import bind, make_ticket
from web.platform import clock
from web.platform.db import transaction
from web.cards.models import Card
from web.purse.models import PurseCardRow
from web.tickets.models import TicketDevice

ANDROID_CHROME = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/131.0.0.0 Mobile Safari/537.36")


def passenger(browser: Browser, users: Any, email: str = "jan@example.pl") -> Any:
    user = users.create(email)
    browser.login(email)
    return user


def tabs(html: str) -> dict[str, bool]:
    """The bottom tab bar's tabs: label -> whether it is marked as the current page."""
    bar = re.search(r'<nav class="tabbar".*?</nav>', html, re.DOTALL)
    assert bar, "no bottom tab bar on the page"
    found = {}
    for attrs, inner in re.findall(r'<a href="[^"]*" class="tab"([^>]*)>(.*?)</a>', bar.group(0), re.DOTALL):
        found[page_text(inner)] = 'aria-current="page"' in attrs
    return found


# --------------------------------------------------------------------------- item 1: the start page


def test_login_lands_on_the_start_page_not_the_account_settings(browser: Browser, users: Any) -> None:
    users.create("jan@example.pl")
    response = browser.login("jan@example.pl")
    assert response.headers["location"] == "/home"
    assert browser.get("/", follow_redirects=False).headers["location"] == "/home"
    assert browser.get("/login", follow_redirects=False).headers["location"] == "/home"
    home = browser.get("/home")
    assert home.status_code == 200 and "Witaj, Jan" in home.text
    assert "Usuń konto" not in page_text(home.text)


def test_the_start_page_needs_signing_in(browser: Browser) -> None:
    response = browser.get("/home", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/login?next=/home")
    assert "Załóż konto" in browser.get("/").text  # the landing page for everyone else


def test_home_shows_the_active_ticket_with_one_tap_to_the_code_and_the_purse(browser: Browser, users: Any, db: Any,
                                                                            engine: Any, settings: Any) -> None:
    user = passenger(browser, users)
    ticket = make_ticket(db, user, client_code="MK4405140")
    make_card(engine, settings, "70010001", balance=2000)
    with transaction(engine) as session:
        session.execute(update(PurseCardRow).where(PurseCardRow.number == "70010001").values(account_id=user.id))
    home = browser.get("/home")
    text = page_text(home.text)
    assert f'href="/tickets/{ticket.id}/show"' in home.text
    assert "Pokaż bilet do kontroli" in text and "Kontrola biletu" not in text
    assert "Bilet 5plus1 normalny" in text and "MK4405140" in text
    assert (ticket.valid_from.strftime("%d.%m.%Y") + " – " + ticket.valid_until.strftime("%d.%m.%Y")) in text
    assert "70010001" in text and "20,00 zł" in text
    assert "Stan z " + clock.to_local(clock.now()).strftime("%d.%m.%Y") in text  # when it was last updated


def test_home_carries_the_ticket_view_so_a_tap_shows_the_code_without_loading_a_page(browser: Browser, users: Any,
                                                                                     db: Any) -> None:
    """Issue 15, a tap to a scannable code in < 300 ms: the start page holds the ticket's code view (hidden; home.js
    shows it in place at the ticket page's URL when this phone holds the ticket), with the ticket page's code,
    clock, countdown, brightness and full-screen controls and the refresh of the record, not the phones' list."""
    user = passenger(browser, users)
    ticket = make_ticket(db, user, client_code="MK4405140")
    html = browser.get("/home").text
    view = re.search(r'<section class="panel ticket-pass home-pass" id="home-pass" hidden[^>]*>(.*?)</section>', html,
                     re.DOTALL)
    assert view, "no in-page ticket view on the start page"
    assert f'data-ticket-id="{ticket.id}"' in view.group(0)
    assert f'data-refresh-url="/tickets/{ticket.id}/devices/refresh"' in view.group(0)
    assert 'data-refresh-seconds="30"' in view.group(0) and 'data-csrf="' in view.group(0)
    for part in ('id="aztec"', 'id="pass-clock"', 'id="pass-countdown"', 'id="pass-bright"', 'id="pass-fullscreen"',
                 'id="pass-status"', 'id="pass-texts"'):
        assert view.group(1).count(part) == 1, part
    assert "Pokaż bilet do kontroli" in page_text(view.group(1)) and "MK4405140" in view.group(1)
    assert f'href="/tickets/{ticket.id}/show" data-offline-ticket data-ticket-id="{ticket.id}"' in html
    assert html.count('id="aztec"') == 1  # one code per page
    # The ticket page (the manifest's shortcut and a reload of the view's URL) still draws the same code.
    show = browser.get(f"/tickets/{ticket.id}/show").text
    assert 'id="aztec"' in show and 'id="pass-bind"' in show and "ticket-show.js" in show


def test_home_of_a_plastic_card_ticket_says_the_card_is_read_by_a_reader(browser: Browser, users: Any, db: Any) -> None:
    user = passenger(browser, users)
    make_ticket(db, user, carrier_type="KKM", client_code="100200300")
    text = page_text(browser.get("/home").text)
    assert "Pokaż bilet do kontroli" not in text
    assert "podaj kartę, kontroler sprawdzi ją czytnikiem" in text
    assert 'id="home-pass"' not in browser.get("/home").text  # no code to show, no code view


def test_home_points_out_an_expiring_resident_status(browser: Browser, users: Any, db: Any) -> None:
    user = passenger(browser, users)
    with db.session() as session:
        session.add(Card(carrier_type="KKM", client_code="100200300", holder_name="Jan Kowalski", pesel_hash="x" * 64,
                         account_id=user.id, has_resident_status=True, resident_until=clock.today() + timedelta(days=5)))
    text = page_text(browser.get("/home").text)
    assert "Wymaga uwagi" in text
    assert "Status Karty Krakowskiej na karcie KKM 100200300 kończy się za 5 dni." in text


def test_home_and_tickets_are_kept_offline_under_a_key_of_the_account(new_browser: Any, users: Any, db: Any) -> None:
    """The service worker files offline pages by `X-EKP-Cache-Key`: one account's key never is another's."""
    anna, jan = new_browser(), new_browser()
    anna_user = passenger(anna, users, "anna@example.pl")
    passenger(jan, users, "jan@example.pl")
    ticket = make_ticket(db, anna_user)
    home_a, home_j = anna.get("/home"), jan.get("/home")
    for response in (home_a, home_j):
        assert response.headers["x-ekp-offline"] == "1"
        assert response.headers["cache-control"] == "no-store"
        assert re.fullmatch(r"[0-9a-f]{24}", response.headers["x-ekp-cache-key"])
    assert home_a.headers["x-ekp-cache-key"] != home_j.headers["x-ekp-cache-key"]
    show = anna.get(f"/tickets/{ticket.id}/show")
    assert show.headers["x-ekp-cache-key"] == home_a.headers["x-ekp-cache-key"]
    assert jan.get(f"/tickets/{ticket.id}/show").status_code == 404


def test_manifest_starts_on_home_and_has_a_shortcut_to_the_ticket(client: Any) -> None:
    manifest = json.loads(client.get("/manifest.webmanifest").text)
    assert manifest["start_url"].startswith("/home")
    [shortcut] = manifest["shortcuts"]
    assert shortcut["name"] == "Pokaż bilet do kontroli" and shortcut["url"].startswith("/tickets/current")
    worker = client.get("/sw.js").text
    assert "X-EKP-Cache-Key" in worker and "/tickets/current" in worker


def test_the_shortcut_opens_the_valid_mobile_ticket(browser: Browser, users: Any, db: Any) -> None:
    user = passenger(browser, users)
    assert browser.get("/tickets/current", follow_redirects=False).headers["location"] == "/tickets"
    make_ticket(db, user, carrier_type="KKM", client_code="100200300")  # plastic: no code to show
    ticket = make_ticket(db, user, client_code="MK4405140")
    assert browser.get("/tickets/current", follow_redirects=False).headers["location"] == f"/tickets/{ticket.id}/show"


def test_the_offline_page_leads_to_the_ticket_and_names_no_account(logged_in: Any) -> None:
    browser, _user = logged_in
    text = browser.get("/offline").text
    assert 'href="/tickets/current"' in text and "Pokaż bilet do kontroli" in text
    assert "Zaloguj" not in page_text(text) and "Wyloguj" not in page_text(text) and "tabbar" not in text


# --------------------------------------------------------------------------- item 2: the bottom tab bar


def test_bottom_tab_bar_for_passengers_marks_the_current_page(browser: Browser, users: Any) -> None:
    passenger(browser, users)
    assert tabs(browser.get("/home").text) == {"Start": True, "Bilety": False, "Karty": False, "Portmonetka": False, "Konto": False}
    assert tabs(browser.get("/tickets").text)["Bilety"] is True
    assert tabs(browser.get("/5plus1").text)["Bilety"] is True
    assert tabs(browser.get("/cards").text)["Karty"] is True
    assert tabs(browser.get("/purse").text)["Portmonetka"] is True
    account = browser.get("/account").text
    assert tabs(account)["Konto"] is True and sum(tabs(account).values()) == 1


def test_bottom_tab_bar_by_role(new_browser: Any, users: Any) -> None:
    inspector, staff, anonymous = new_browser(), new_browser(), new_browser()
    users.create("kontroler@example.pl", role="inspector")
    users.create("bok@example.pl", role="staff")
    inspector.login("kontroler@example.pl")
    staff.login("bok@example.pl")
    assert list(tabs(inspector.get("/home").text)) == ["Start", "Kontrola", "Konto"]
    assert "Obsługa klienta" in tabs(staff.get("/home").text) and "Karty" not in tabs(staff.get("/home").text)
    assert 'class="tabbar"' not in anonymous.get("/").text


# --------------------------------------------------------------------------- item 3: phones holding a ticket


def test_r_tkt_1_a_bound_phone_is_named_by_its_browser_and_counted_at_once(browser: Browser, users: Any, db: Any) -> None:
    user = passenger(browser, users)
    ticket = make_ticket(db, user)
    browser.client.headers["user-agent"] = ANDROID_CHROME
    try:
        assert bind(browser, ticket.id, ec.generate_private_key(ec.SECP256R1()), label="").status_code == 201
    finally:
        del browser.client.headers["user-agent"]
    box = browser.get(f"/tickets/{ticket.id}/devices")
    assert box.status_code == 200
    assert 'id="pass-device-count">1<' in box.text and "Chrome · Android" in box.text
    [device] = db.all(TicketDevice)
    assert device.label == "Chrome · Android"
    show = browser.get(f"/tickets/{ticket.id}/show").text
    assert 'id="pass-device-count">1</span>/2)' in show and "ten telefon" in show


def test_r_tkt_1_a_phone_can_be_renamed_within_bounds_and_the_name_is_escaped(browser: Browser, users: Any, db: Any) -> None:
    user = passenger(browser, users)
    ticket = make_ticket(db, user)
    bind(browser, ticket.id, ec.generate_private_key(ec.SECP256R1()))
    [device] = db.all(TicketDevice)
    renamed = browser.submit("/tickets", {"label": "<b>Telefon Ani</b>", "next": f"/tickets/{ticket.id}/show"},
                             action=f"/tickets/devices/{device.id}/rename")
    assert (renamed.status_code, renamed.headers["location"]) == (303, f"/tickets/{ticket.id}/show")
    page = browser.get(f"/tickets/{ticket.id}/show").text
    assert "&lt;b&gt;Telefon Ani&lt;/b&gt;" in page and "<b>Telefon Ani</b>" not in page
    for bad in ("", "   ", "x" * (ticket_phones.PHONE_NAME_MAX + 1), "Ania\u202eexe"):
        refused = browser.submit("/tickets", {"label": bad}, action=f"/tickets/devices/{device.id}/rename")
        assert refused.status_code == 422
        assert "Podaj nazwę telefonu: od 1 do 40 znaków" in page_text(refused.text)
    assert db.one(TicketDevice).label == "<b>Telefon Ani</b>"


def test_r_tkt_1_nobody_renames_someone_elses_phone(new_browser: Any, users: Any, db: Any) -> None:
    owner, other = new_browser(), new_browser()
    owner_user = passenger(owner, users, "anna@example.pl")
    passenger(other, users, "jan@example.pl")
    ticket = make_ticket(db, owner_user)
    bind(owner, ticket.id, ec.generate_private_key(ec.SECP256R1()))
    [device] = db.all(TicketDevice)
    for label in ("Mój", ""):
        assert other.submit("/tickets", {"label": label}, action=f"/tickets/devices/{device.id}/rename").status_code == 404
    assert other.get(f"/tickets/{ticket.id}/devices").status_code == 404
    assert db.one(TicketDevice).label == "Telefon"


HTMX_ACTION = re.compile(r"\shx-(get|post|put|patch|delete|trigger|boost)=")


def test_pages_without_htmx_actions_do_not_load_htmx(browser: Browser, users: Any, db: Any, client: Any) -> None:
    """Issue 15, warm LCP < 0.5 s: htmx (52 KB of script run before DOMContentLoaded) only where a page has htmx
    actions; every page that has one still loads it."""
    for path in ("/", "/login"):
        html = client.get(path).text
        assert "htmx.min.js" not in html and not HTMX_ACTION.search(html), path
    register = client.get("/register").text  # its fields are checked inline by htmx
    assert HTMX_ACTION.search(register) and "htmx.min.js" in register
    user = passenger(browser, users)
    ticket = make_ticket(db, user, client_code="MK4405140")
    for path in ("/home", "/account", "/tickets", f"/tickets/{ticket.id}/show", "/purse"):
        html = browser.get(path).text
        assert "htmx.min.js" not in html and not HTMX_ACTION.search(html), path
    cards = browser.get("/cards/add").text
    assert HTMX_ACTION.search(cards) and "htmx.min.js" in cards
