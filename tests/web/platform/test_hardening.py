"""Issue 13, item 11: hardening. HSTS where the public address is https, the `lang` cookie `Secure` in
production, `/schema` for staff only in production, what the browser kept cleared at logout, the tariff files
checked at start-up like the settings. Each reproduced first; on SQLite and PostgreSQL where a database is used."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import TestClient

from tests.conftest import BASE_URL, Browser
from web.platform.settings import PROJECT_ROOT, SettingsError, load_settings

PRODUCTION = {"EKP_ENV": "production", "EKP_SMTP_URL": "smtp://127.0.0.1:25", "EKP_TICKET_KEYS": "1:" + "11" * 32, "EKP_PHOTO_KEY": "22" * 32,
              "EKP_ALLOW_SANDBOX_IN_PRODUCTION": "true", "EKP_DEV_PAGES": "false"}


def _browser(app) -> tuple[TestClient, Browser]:
    client = TestClient(app, base_url=BASE_URL)
    return client, Browser(client)


def test_hsts_when_the_base_url_is_https(make_app):
    with TestClient(make_app(EKP_BASE_URL="https://ekp.example.pl"), base_url=BASE_URL) as client:
        for path in ("/", "/login", "/no-such-page", "/api/devices/validator/taps"):
            assert client.get(path).headers["strict-transport-security"] == "max-age=31536000; includeSubDomains", path
    with TestClient(make_app(), base_url=BASE_URL) as client:
        assert "strict-transport-security" not in client.get("/").headers


def test_lang_cookie_is_secure_in_production(make_app):
    with TestClient(make_app(**PRODUCTION), base_url=BASE_URL) as client:
        browser = Browser(client)
        response = browser.post("/language", {"language": "en", "next": "/"})
        cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("lang="))
        assert "secure" in cookie.lower()
    with TestClient(make_app(), base_url=BASE_URL) as client:
        response = Browser(client).post("/language", {"language": "en", "next": "/"})
        cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("lang="))
        assert "secure" not in cookie.lower()


def test_schema_only_for_staff_in_production(make_app, users):
    users.create("bok@example.pl", role="staff", pesel=None)
    users.create("jan@example.pl")
    with TestClient(make_app(**PRODUCTION), base_url=BASE_URL) as client:
        browser = Browser(client)
        for path in ("/schema", "/schema/openapi.json"):
            assert browser.get(path).status_code == 404
        browser.login("jan@example.pl")
        assert browser.get("/schema/openapi.json").status_code == 404
        browser.logout()
        browser.login("bok@example.pl")
        assert browser.get("/schema/openapi.json").status_code == 200
    with TestClient(make_app(), base_url=BASE_URL) as client:  # development and tests: the document is public
        assert client.get("/schema/openapi.json").status_code == 200


def test_logout_clears_what_the_browser_kept(browser, users):
    users.create()
    browser.login("jan@example.pl")
    assert "js/logout.js" not in browser.get("/tickets").text
    response = browser.logout()
    assert response.status_code == 303
    assert response.headers["clear-site-data"] == '"cache", "storage"'
    page = browser.get("/login")
    assert "Wylogowano" in page.text and "/static/js/logout.js?v=" in page.text
    assert "js/logout.js" not in browser.get("/login").text  # once
    script = (PROJECT_ROOT / "static" / "js" / "logout.js").read_text()
    assert "caches.delete" in script and 'deleteDatabase("ekp-tickets")' in script and "ekp-trust-list" in script


@pytest.mark.parametrize("name", ["EKP_TARIFF_5P1", "EKP_TARIFF_PURSE"])
def test_a_missing_or_broken_tariff_file_stops_the_start(tmp_path, name):
    with pytest.raises(SettingsError) as caught:
        load_settings({"EKP_VAR_DIR": str(tmp_path), name: str(tmp_path / "missing.toml")})
    assert [p for p in caught.value.problems if p.startswith(f"{name}=")], caught.value.problems
    broken = tmp_path / "broken.toml"
    broken.write_text("[prices]\nnormal = 'a lot'\n", encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings({"EKP_VAR_DIR": str(tmp_path), name: str(broken)})
    assert any(p.startswith(f"{name}=") and "not a valid tariff" in p for p in caught.value.problems)
    assert load_settings({"EKP_VAR_DIR": str(tmp_path)}).env == "development"  # the shipped files are valid
    assert Path(PROJECT_ROOT / "tariffs").is_dir()


def test_csrf_token_is_bound_to_the_session(browser, new_browser, users):
    users.create()
    browser.login("jan@example.pl")
    attacker = new_browser(ip="10.0.0.9")
    attacker.get("/login")
    tossed_cookie, tossed_token = attacker.cookies.get("csrftoken"), attacker.token
    assert tossed_cookie and tossed_token
    own_cookie = browser.cookies.get("csrftoken")
    # a cookie-tossing page replaces the signed-in victim's CSRF cookie with a pair the attacker knows
    browser.client.cookies.delete("csrftoken")
    browser.client.cookies.set("csrftoken", tossed_cookie, domain="testserver.local")
    refused = browser.client.post("/language", data={"language": "en", "next": "/", "_csrf_token": tossed_token})
    assert refused.status_code == 403, refused.status_code
    assert "Formularz wygasł" in refused.text
    browser.client.cookies.delete("csrftoken")
    browser.client.cookies.set("csrftoken", own_cookie, domain="testserver.local")
    assert browser.post("/language", {"language": "en", "next": "/"}).status_code == 303
    browser.logout()  # a new sign-in binds the new session afresh
    browser.login("jan@example.pl")
    assert browser.post("/language", {"language": "pl", "next": "/"}).status_code == 303
