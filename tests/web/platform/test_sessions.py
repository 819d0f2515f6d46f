"""Server-side sessions: cookie flags, remember-me, rotation on login, logout and expiry. Every test runs on
the database store and on Redis (`both_stores`)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import DEFAULT_PASSWORD, set_cookie_headers

pytestmark = pytest.mark.both_stores


def _session_cookie(response) -> str:
    [header] = set_cookie_headers(response, "ekp_session")
    return header


def test_normal_login_gives_a_browser_session_cookie(browser, users):
    users.create("jan@example.pl")
    header = _session_cookie(browser.login("jan@example.pl"))
    lowered = header.lower()
    assert "max-age" not in lowered and "expires" not in lowered, header
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered


def test_remember_me_gives_a_persistent_cookie(browser, users, settings):
    users.create("jan@example.pl")
    header = _session_cookie(browser.login("jan@example.pl", remember=True))
    assert f"Max-Age={settings.session_days_remember * 86400}" in header
    assert "httponly" in header.lower()


def test_session_id_changes_on_login(browser, users):
    users.create("jan@example.pl")
    browser.post("/language", {"language": "pl", "next": "/login"})  # a session exists before login
    before = browser.cookies.get("ekp_session")
    assert before
    browser.login("jan@example.pl")
    after = browser.cookies.get("ekp_session")
    assert after and after != before, "a fresh id on login (no session fixation)"


def test_session_data_stays_on_the_server(logged_in, stored):
    browser, user = logged_in
    cookie = browser.cookies.get("ekp_session")
    assert cookie and user.email not in cookie and str(user.id) != cookie
    assert len(stored.values(cookie)) == 1


def test_logout_ends_the_session_on_the_server(logged_in, new_browser, stored):
    browser, user = logged_in
    stolen = browser.cookies.get("ekp_session")
    browser.logout()
    # Whatever the store keeps under that id afterwards (a flash message), it no longer names the user.
    for value in stored.values(stolen):
        assert b'"uid"' not in value
    replay = new_browser()
    replay.client.cookies.set("ekp_session", stolen)
    assert replay.get("/account", follow_redirects=False).status_code == 303


def test_session_expires_after_the_configured_hours(logged_in, clock, settings):
    browser, _ = logged_in
    clock.travel(timedelta(hours=settings.session_hours) - timedelta(minutes=1))
    assert browser.get("/account", follow_redirects=False).status_code == 200
    clock.travel(timedelta(hours=settings.session_hours) + timedelta(minutes=1))
    assert browser.get("/account", follow_redirects=False).status_code == 303


def test_remembered_session_outlives_a_normal_one(browser, users, clock):
    users.create("jan@example.pl")
    browser.login("jan@example.pl", remember=True)
    clock.travel(timedelta(days=20))
    assert browser.get("/account", follow_redirects=False).status_code == 200


def test_deleted_account_session_is_gone(logged_in, db):
    browser, user = logged_in
    from web.platform.db import transaction
    from web.accounts.models import User

    with transaction(db.engine) as session:
        session.delete(session.get(User, user.id))
    assert browser.get("/account", follow_redirects=False).status_code == 303


def test_password_change_ends_other_sessions_at_once_despite_the_user_cache(browser, new_browser, users):
    """The short per-process user cache must not keep a session alive after a password change."""
    users.create("cache@example.pl")
    browser.login("cache@example.pl")
    other = new_browser()
    other.login("cache@example.pl")
    assert other.get("/account").status_code == 200  # cached now
    changed = browser.submit("/account", {"current_password": DEFAULT_PASSWORD, "password": "NoweHaslo1", "password_repeat": "NoweHaslo1"},
                   action="/account/password")
    assert changed.status_code == 303, changed.text[:2000]
    response = other.get("/account", follow_redirects=False)
    assert response.status_code in (302, 303) and "/login" in response.headers["location"]
