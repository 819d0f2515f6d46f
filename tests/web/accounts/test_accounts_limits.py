"""Named rate limits on login, password reset and registration, per IP and per account, with a message
saying when to retry (HTTP 429)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import DEFAULT_PASSWORD, page_text, registration_form
from web.platform.models import OutboxMail
from web.accounts.models import User

pytestmark = pytest.mark.both_stores  # every limit on the database store and on Redis


def _login(browser, email, password="Zle12345"):
    return browser.submit("/login", {"email": email, "password": password})


def test_login_limit_per_account_and_address(new_browser, users, clock):
    users.create("jan@example.pl")
    attacker = new_browser(ip="10.0.0.1")
    for _ in range(5):
        assert _login(attacker, "jan@example.pl").status_code == 401
    blocked = _login(attacker, "jan@example.pl", DEFAULT_PASSWORD)
    assert blocked.status_code == 429
    assert "Zbyt wiele prób. Spróbuj ponownie za 15 minut." in page_text(blocked.text)
    assert attacker.get("/account", follow_redirects=False).status_code == 303, "even the right password waits"

    # Only this account from this address: other accounts from the attacker's address are not affected ...
    users.create("ewa@example.pl")
    assert _login(attacker, "ewa@example.pl", DEFAULT_PASSWORD).status_code == 303
    # ... nor the owner elsewhere (R-AUTH-1: a limit does not lock the owner out).
    owner = new_browser(ip="10.0.0.2")
    assert _login(owner, "jan@example.pl", DEFAULT_PASSWORD).status_code == 303

    clock.travel(timedelta(minutes=14))
    assert "za 1 minutę" in page_text(_login(attacker, "jan@example.pl", DEFAULT_PASSWORD).text)
    clock.travel(timedelta(minutes=1))
    attacker.logout()
    assert _login(attacker, "jan@example.pl", DEFAULT_PASSWORD).status_code == 303


def test_successful_login_clears_the_account_counter(browser, users):
    users.create("jan@example.pl")
    for _ in range(4):
        assert _login(browser, "jan@example.pl").status_code == 401
    browser.login("jan@example.pl")
    browser.logout()
    for _ in range(4):
        assert _login(browser, "jan@example.pl").status_code == 401
    assert _login(browser, "jan@example.pl", DEFAULT_PASSWORD).status_code == 303


def test_login_limit_per_ip(new_browser, users, clock):
    users.create("jan@example.pl")
    attacker = new_browser(ip="10.0.0.66")
    for n in range(20):  # many addresses, each below its own per-account limit
        assert _login(attacker, f"ofiara{n}@example.pl").status_code == 401
    blocked = _login(attacker, "jan@example.pl", DEFAULT_PASSWORD)
    assert blocked.status_code == 429
    assert "Zbyt wiele prób. Spróbuj ponownie za 15 minut." in page_text(blocked.text)

    assert _login(new_browser(ip="10.0.0.67"), "jan@example.pl", DEFAULT_PASSWORD).status_code == 303
    clock.travel(timedelta(minutes=15))
    assert _login(attacker, "jan@example.pl", DEFAULT_PASSWORD).status_code == 303


def test_reset_limit_per_account_and_address(new_browser, users, mails):
    users.create("jan@example.pl")
    browser = new_browser(ip="10.0.1.1")
    for _ in range(3):
        assert browser.submit("/password/forgot", {"email": "jan@example.pl"}).status_code == 200
    blocked = browser.submit("/password/forgot", {"email": "jan@example.pl"})
    assert blocked.status_code == 429
    assert "Zbyt wiele prób. Spróbuj ponownie za 60 minut." in page_text(blocked.text)
    assert new_browser(ip="10.0.1.2").submit("/password/forgot", {"email": "jan@example.pl"}).status_code == 200
    assert mails.count("jan@example.pl") == 4


def test_reset_limit_per_ip_looks_the_same_for_unknown_addresses(new_browser, mails, clock):
    browser = new_browser(ip="10.0.1.3")
    for n in range(10):
        assert browser.submit("/password/forgot", {"email": f"nikt{n}@example.pl"}).status_code == 200
    blocked = browser.submit("/password/forgot", {"email": "jeszcze@example.pl"})
    assert blocked.status_code == 429
    assert "Spróbuj ponownie za 60 minut." in page_text(blocked.text)
    assert new_browser(ip="10.0.1.4").submit("/password/forgot", {"email": "jeszcze@example.pl"}).status_code == 200
    clock.travel(timedelta(hours=1))
    assert browser.submit("/password/forgot", {"email": "jeszcze@example.pl"}).status_code == 200
    assert mails.count() == 0


def test_registration_limit_per_ip(new_browser, db, mails):
    browser = new_browser(ip="10.0.2.1")
    for n in range(10):
        assert browser.register(email=f"osoba{n}@example.pl").status_code == 303
    blocked = browser.register(email="jedenasta@example.pl")
    assert blocked.status_code == 429
    assert "Zbyt wiele prób. Spróbuj ponownie za 60 minut." in page_text(blocked.text)
    assert db.user("jedenasta@example.pl") is None
    assert db.count(User) == 10 and db.count(OutboxMail) == 10
    # What was typed is kept, so the person can try later without retyping.
    assert 'value="jedenasta@example.pl"' in blocked.text

    assert new_browser(ip="10.0.2.2").register(email="jedenasta@example.pl").status_code == 303


def test_failed_registration_forms_do_not_use_up_the_limit(new_browser):
    browser = new_browser(ip="10.0.2.3")
    for _ in range(12):
        assert browser.submit("/register", registration_form(first_name="")).status_code == 422
    assert browser.register().status_code == 303


def test_resend_activation_limit_per_account(browser, mails):
    browser.register()
    for _ in range(3):
        assert browser.submit("/activate/resend", {"email": "anna@example.pl"}).status_code == 200
    blocked = browser.submit("/activate/resend", {"email": "anna@example.pl"})
    assert blocked.status_code == 429
    assert "Spróbuj ponownie za 60 minut." in page_text(blocked.text)
    assert mails.count("anna@example.pl") == 4
