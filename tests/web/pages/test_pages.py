"""Site-wide behaviour: error pages in the site's look, security headers, language choice, static assets."""

from __future__ import annotations

import re

import pytest

from tests.conftest import page_text, set_cookie_headers
from web.platform.i18n import LOCALE_DIR

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}


def _assert_site_look(html: str) -> None:
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert 'class="site-header"' in html and 'class="site-footer"' in html
    assert "/static/css/app.css" in html


def test_404_page_in_the_site_look(browser):
    response = browser.get("/nie-ma-takiej-strony")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    _assert_site_look(response.text)
    text = page_text(response.text)
    assert "Nie ma takiej strony" in text and "Kod błędu: 404" in text
    assert "Traceback" not in response.text


def test_404_for_api_clients_is_json(client):
    response = client.get("/api/nie-ma", headers={"accept": "application/json"})
    assert response.status_code == 404
    assert response.json()["status"] == 404


@pytest.mark.parametrize("path", ["/", "/login", "/register", "/terms", "/privacy", "/nie-ma"])
def test_security_headers_on_every_page(browser, path):
    response = browser.get(path)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "permissions-policy" in response.headers


def test_csrf_cookie_is_samesite(browser):
    response = browser.get("/login")
    [header] = set_cookie_headers(response, "csrftoken")
    assert "samesite=lax" in header.lower()


def test_pages_use_no_cdn(browser):
    html = browser.get("/register").text
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not re.match(r"(https?:)?//", url), f"external resource {url}"
    assert browser.get("/static/vendor/htmx/htmx.min.js").status_code == 200


def test_pwa_manifest_and_service_worker(browser):
    manifest = browser.get("/manifest.webmanifest")
    assert manifest.status_code == 200 and manifest.json()["lang"] == "pl"
    worker = browser.get("/sw.js")
    assert worker.status_code == 200 and worker.headers["service-worker-allowed"] == "/"


def test_health_check(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_polish_by_default(browser):
    html = browser.get("/login").text
    assert '<html lang="pl">' in html
    assert "Zaloguj się" in html


def test_english_via_the_language_switch(browser):
    response = browser.post("/language", {"language": "en", "next": "/login"})
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    [cookie] = set_cookie_headers(response, "lang")
    assert cookie.startswith("lang=en")
    html = browser.get("/login").text
    assert '<html lang="en">' in html
    assert re.search(r'<option value="en"\s+selected', html)
    if (LOCALE_DIR / "en" / "LC_MESSAGES" / "messages.po").exists():
        assert "Log in" in html and "Zaloguj się" not in html
    # Without the English catalog the texts fall back to Polish; the choice itself already works.


def test_english_from_the_browser_when_nothing_was_chosen(client):
    html = client.get("/login", headers={"accept-language": "en-GB,en;q=0.9"}).text
    assert '<html lang="en">' in html


def test_unknown_language_is_ignored(browser):
    browser.post("/language", {"language": "xx", "next": "/"})
    assert '<html lang="pl">' in browser.get("/").text


def test_language_switch_never_redirects_off_site(browser):
    response = browser.post("/language", {"language": "en", "next": "https://evil.example/"})
    assert response.headers["location"] == "/"


def test_logged_in_language_choice_is_saved_on_the_account(logged_in, db):
    browser, user = logged_in
    browser.post("/language", {"language": "en", "next": "/account"})
    assert db.user(user.email).language == "en"


def test_dev_mail_page_shows_the_outbox(browser, mails):
    browser.register()
    page = browser.get("/dev/mail", headers={"x-test-client-ip": "127.0.0.1"})  # only this machine sees it
    assert page.status_code == 200
    assert "anna@example.pl" in page.text


def test_dev_mail_page_is_off_when_disabled(make_app):
    from litestar.testing import TestClient

    with TestClient(make_app(EKP_DEV_PAGES="false"), base_url="http://testserver.local") as client:
        assert client.get("/dev/mail").status_code == 404
