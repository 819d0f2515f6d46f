"""Issue 15 (the passenger's phone), items 5–8: forms, finish, the operator profile, content, compression."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import page_text
from web.platform.clock import WARSAW
from web.platform.templating import TEMPLATE_DIRS


def _travel_to(clock, year: int, month: int, day: int) -> None:  # type: ignore[no-untyped-def]
    clock.travel(datetime(year, month, day, 12, tzinfo=WARSAW).astimezone(UTC) - clock.now())


@pytest.mark.parametrize(("day", "monthly"), [((2024, 7, 31), "80,00"), ((2024, 8, 1), "90,00"),
                                              ((2026, 3, 1), "90,00"), ((2026, 3, 2), "99,00")])
def test_r_5p1_2_landing_page_states_the_prices_in_force(browser, clock, day, monthly):
    _travel_to(clock, *day)
    text = page_text(browser.get("/").text)
    assert "za połowę" not in text
    assert f"Pięć miesięcy po {monthly} zł, szósty za 20,00 zł" in text


# --------------------------------------------------------------------------- compression and caching


@pytest.mark.parametrize("path", ["/", "/login", "/terms"])
def test_pages_with_a_csrf_token_are_never_compressed_breach(client, path):
    """Every page carries the CSRF token (the body's hx-headers, forms) next to text the visitor chose (a
    search, an e-mail typed back into a form): compressed, the answer's size would leak the token a byte
    at a time (BREACH). Pages stay uncompressed — 4-8 KB each, within the phone's budget — and the files,
    which hold no secret, are compressed."""
    response = client.get(path, headers={"accept-encoding": "gzip"})
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert "<!doctype html>" in response.text.lower()


@pytest.mark.parametrize("path", ["/static/css/app.css", "/static/vendor/htmx/htmx.min.js", "/sw.js"])
def test_files_are_sent_compressed(client, path):
    response = client.get(path, headers={"accept-encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers.get("content-encoding") == "gzip"
    assert "accept-encoding" in response.headers.get("vary", "").lower()


def test_pages_not_compressed_for_clients_that_do_not_ask(client):
    response = client.get("/login", headers={"accept-encoding": "identity"})
    assert response.status_code == 200 and "content-encoding" not in response.headers


@pytest.mark.parametrize("path", ["/static/css/app.css", "/static/js/app.js", "/static/vendor/htmx/htmx.min.js",
                                  "/manifest.webmanifest", "/favicon.ico", "/sw.js"])
def test_static_files_set_no_cookie(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert "set-cookie" not in response.headers, response.headers.get_list("set-cookie")


def test_static_assets_are_hashed_cached_for_a_year_and_compressed(client):
    html = client.get("/register").text  # a page with htmx actions (/login no longer loads htmx)
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert assets and any("htmx" in asset for asset in assets)
    for asset in assets:
        assert re.search(r"\?v=[0-9a-f]{10}$", asset), asset  # a new file is a new URL
        response = client.get(asset.replace("&amp;", "&"), headers={"accept-encoding": "gzip"})
        assert response.status_code == 200, asset
        assert "max-age=31536000" in response.headers["cache-control"], asset
        if asset.endswith((".css", ".js")) or ".js?" in asset or ".css?" in asset:
            assert response.headers.get("content-encoding") == "gzip", asset


# --------------------------------------------------------------------------- item 5: forms


def _templates() -> list[tuple[str, str]]:  # every area's templates (web/*/templates), by the names pages use
    return [(str(p.relative_to(folder)), p.read_text(encoding="utf-8"))
            for folder in TEMPLATE_DIRS for p in sorted(folder.rglob("*.html"))]


def test_every_htmx_form_shows_progress_and_cannot_be_sent_twice():
    forms = [(name, tag) for name, text in _templates() for tag in re.findall(r"<form\b[^>]*>", text, re.DOTALL)
             if "hx-post" in tag or "hx-get" in tag]
    assert forms
    for name, tag in forms:
        assert "hx-disabled-elt=" in tag and "hx-indicator=" in tag, (name, tag)


def test_pages_run_no_inline_script_and_load_the_forms_script(browser, users):
    users.create()
    browser.login("jan@example.pl")
    for path in ("/", "/register", "/login", "/purse", "/5plus1", "/account"):
        html = browser.get(path).text
        assert "js/phone.js?v=" in html, path
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, (path, tag)  # CSP script-src 'self': no inline scripts


def test_scrollable_tables_are_reachable_by_keyboard():
    wraps = [(name, tag) for name, text in _templates() for tag in re.findall(r'<div class="table-wrap"[^>]*>', text)]
    assert wraps
    for name, tag in wraps:
        assert 'tabindex="0"' in tag and 'role="region"' in tag and "aria-label=" in tag, (name, tag)


@pytest.fixture
def purse_passenger(browser, users, engine, settings):
    from tests.support.purse import make_card

    users.create()
    card_id = make_card(engine, settings, "7001", balance=1000)
    browser.login("jan@example.pl")
    assert browser.submit("/purse", {"number": "7001"}, action="/purse/link").status_code == 303
    return browser, card_id


def test_r_top_3_quick_amount_buttons_quote_the_amount_with_its_bonus(purse_passenger):
    browser, card_id = purse_passenger
    page = browser.get("/purse").text
    for amount in ("20", "50", "100"):
        assert f'name="quick" value="{amount}"' in page
    quoted = browser.submit("/purse", {"quick": "100", "amount": ""}, action=f"/purse/{card_id}/top-up")
    assert quoted.status_code == 200
    text = page_text(quoted.text)
    assert "Wpłata: 100,00 zł" in text and "Premia: 10,00 zł" in text  # R-TOP-3: 10 % for 50.01–100.00


@pytest.mark.parametrize("quick", ["abc", "-5", "0", "99999999999999999999", "1e3", "4,99"])
def test_quick_amounts_are_checked_on_the_server_like_typed_ones(purse_passenger, quick, db):
    from web.payment_records.models import Payment

    browser, card_id = purse_passenger
    refused = browser.submit("/purse", {"quick": quick, "action": "pay"}, action=f"/purse/{card_id}/top-up")
    assert refused.status_code == 422
    assert page_text(refused.text).count("Portmonetka") >= 1 and "Traceback" not in refused.text
    assert db.count(Payment) == 0


# --------------------------------------------------------------------------- item 6: finish


def test_r_kkm_7_loss_report_has_its_own_page_linked_from_the_card(purse_passenger, db):
    from web.purse.models import PurseCardRow

    browser, card_id = purse_passenger
    purse = browser.get("/purse").text
    assert f'href="/purse/{card_id}/loss"' in purse and 'action="/purse/' + str(card_id) + '/loss"' not in purse
    loss = browser.get(f"/purse/{card_id}/loss")
    assert loss.status_code == 200 and "Tak, zablokuj kartę 7001" in page_text(loss.text)
    refused = browser.submit(f"/purse/{card_id}/loss", {})
    assert refused.status_code == 422 and "Zgłoś utratę karty" in page_text(refused.text)
    assert db.one(PurseCardRow).blocked_from is None
    assert browser.get("/purse/999999/loss").status_code == 404


def test_html_mails_fit_a_phone(browser, mails):
    browser.register()
    mail = mails.last()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in mail.html
    assert "max-width:560px" in mail.html
