"""Issue 13, edges that hold under attack: open redirects, /dev/mail, e-mail addresses, one person one
account (R-AUTH-2), mail retried while it still means something. Each finding reproduced through HTTP."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Browser
from tests.support.shop import Shop, settings_env, shop  # noqa: F401  (fixtures)


# --------------------------------------------------------------------------- open redirect (item 7)

@pytest.mark.parametrize("back", ["https://evil.example", "//evil.example", "/\\evil.example", "/\t/evil.example",
                                  "javascript:alert(1)"])
def test_payment_return_never_links_to_another_site(shop: Shop, browser: Browser, back: str) -> None:
    _, card = shop.resident(browser)
    shop.webhook.online = False
    purchase = shop.buy(browser, card)
    page = browser.get(f"/payments/return/{purchase.reference}", params={"back": back})
    assert page.status_code == 200
    links = re.findall(r'href="([^"]*)"', page.text)
    assert not any("evil.example" in link or link.startswith("javascript") for link in links), links
    assert "evil.example" not in page.text
    assert '<a class="button" href="/">' in page.text


def test_payment_return_keeps_a_same_site_back_link(shop: Shop, browser: Browser) -> None:
    _, card = shop.resident(browser)
    shop.webhook.online = False
    purchase = shop.buy(browser, card)
    page = browser.get(f"/payments/return/{purchase.reference}", params={"back": "/5plus1"})
    assert '<a class="button" href="/5plus1">' in page.text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/\t/evil.example", "/\n/evil.example"])
def test_login_next_never_leaves_the_site(browser: Browser, users, target: str) -> None:
    users.create("jan@example.pl")
    response = browser.submit("/login", {"email": "jan@example.pl", "password": "Haslo1234", "next": target})
    assert response.status_code == 303 and response.headers["location"] == "/home"


# --------------------------------------------------------------------------- e-mail addresses (item 9)

BAD_ADDRESSES = ["a,b@example.pl", "a<b@example.pl", "a\x00b@example.pl", "a\x07b@example.pl", "Ala <ala@example.pl>"]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_registration_refuses_an_address_that_is_not_one_plain_address(browser: Browser, db, mails, address: str) -> None:
    from web.accounts.models import User

    response = browser.register(email=address, email_repeat=address)
    assert response.status_code == 422
    assert "To nie wygląda na adres e-mail" in response.text
    assert db.count(User) == 0 and mails.count() == 0


@pytest.mark.parametrize("address", BAD_ADDRESSES[:3])
def test_password_reset_refuses_a_bad_address_with_a_message(browser: Browser, users, mails, address: str) -> None:
    users.create("b@example.pl")
    response = browser.submit("/password/forgot", {"email": address})
    assert response.status_code == 422 and "To nie wygląda na adres e-mail" in response.text
    assert mails.count() == 0


@pytest.mark.parametrize("address", BAD_ADDRESSES[:3])
def test_cli_users_add_refuses_a_bad_address(settings_env, db, address: str) -> None:
    from click.testing import CliRunner

    from web.cli import main
    from web.accounts.models import User

    result = CliRunner().invoke(main, ["users", "add", "--role", "staff", "--email", address, "--first-name", "Ewa",
                                       "--last-name", "Nowak", "--password", "Haslo1234"], env=settings_env)
    assert result.exit_code == 1 and "not an e-mail address" in result.output
    assert db.count(User) == 0


class _CapturingSmtp:
    def __init__(self) -> None:
        self.messages: list = []

    async def __call__(self, message, **kwargs):  # type: ignore[no-untyped-def]
        self.messages.append(message)


def test_mail_headers_are_built_from_one_address(engine, monkeypatch) -> None:
    """A row written before validation (or by hand) cannot become two recipients or a display name."""
    import asyncio

    from web.platform import mail as mail_module
    from web.platform.db import transaction
    from web.platform.models import OutboxMail

    smtp = _CapturingSmtp()
    monkeypatch.setattr(mail_module.aiosmtplib, "send", smtp)
    with transaction(engine) as session:
        for address in ("jan@example.pl", "a,b@example.pl", "a<b@example.pl"):
            session.add(OutboxMail(to_address=address, subject="Temat", text_body="x", html_body="<p>x</p>"))
    sender = mail_module.SmtpSender("smtp://localhost:2525", "EKP <no-reply@ekp.localhost>")
    sent, failed = asyncio.run(mail_module.deliver_outbox(engine, sender))
    assert (sent, failed) == (1, 2)
    assert [str(m["To"]) for m in smtp.messages] == ["jan@example.pl"]
    assert smtp.messages[0]["To"].addresses[0].addr_spec == "jan@example.pl"
    assert str(smtp.messages[0]["From"]) == "EKP <no-reply@ekp.localhost>"


# --------------------------------------------------------------------------- mail given up too soon (item 10)

class _DownSmtp:
    """SMTP that fails `fail` times (for ever by default), then delivers."""

    def __init__(self, fail: int = 10**9) -> None:
        self.fail = fail
        self.sent: list[str] = []

    async def send(self, mail) -> None:  # type: ignore[no-untyped-def]
        import aiosmtplib

        if self.fail:
            self.fail -= 1
            raise aiosmtplib.SMTPConnectError("down")
        self.sent.append(mail.to_address)


def _deliver(engine, smtp) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    import asyncio

    from web.platform.mail import deliver_outbox

    return asyncio.run(deliver_outbox(engine, smtp))


def test_activation_mail_survives_an_smtp_outage_of_eight_hours(browser: Browser, engine, db, clock) -> None:
    from datetime import timedelta

    from web.platform.models import OutboxMail

    assert browser.register(email="cierpliwa@example.pl").status_code == 303
    down = _DownSmtp()
    for _ in range(8 * 6):  # a delivery round every 10 minutes for 8 hours, SMTP down throughout
        clock.travel(timedelta(minutes=10))
        _deliver(engine, down)
    waiting = db.one(OutboxMail)
    assert waiting.sent_at is None and waiting.failed_at is None and waiting.attempts > 12
    clock.travel(timedelta(hours=1))
    up = _DownSmtp(fail=0)
    assert _deliver(engine, up) == (1, 0) and up.sent == ["cierpliwa@example.pl"]
    link = db.one(OutboxMail).text_body.split("/activate/")[1].split()[0]
    assert browser.get(f"/activate/{link}").status_code == 200


def test_mail_undelivered_past_the_retry_window_is_marked_failed_and_listed_for_staff(
        browser: Browser, engine, db, clock, settings_env) -> None:
    from datetime import timedelta

    from click.testing import CliRunner

    from web.cli import main
    from web.platform.models import OutboxMail

    browser.register(email="zgubiona@example.pl")
    down = _DownSmtp()
    _deliver(engine, down)
    clock.travel(timedelta(hours=71))
    _deliver(engine, down)
    assert db.one(OutboxMail).failed_at is None  # within the 72 hours: still retried
    clock.travel(timedelta(hours=2))
    _deliver(engine, down)
    mail = db.one(OutboxMail)
    assert mail.sent_at is None and mail.failed_at is not None and "SMTPConnectError" in (mail.last_error or "")
    assert _deliver(engine, _DownSmtp(fail=0)) == (0, 0)  # given up: never sent any more
    listed = CliRunner().invoke(main, ["mail", "failed"], env=settings_env, catch_exceptions=False)
    assert listed.exit_code == 0
    assert "zgubiona@example.pl" in listed.output and "SMTPConnectError" in listed.output


def test_mail_retry_window_is_a_setting(make_settings) -> None:
    from web.platform.settings import SettingsError

    assert make_settings().mail_retry_hours == 72
    assert make_settings(EKP_MAIL_RETRY_HOURS="240").mail_retry_hours == 240
    with pytest.raises(SettingsError, match="EKP_MAIL_RETRY_HOURS"):
        make_settings(EKP_MAIL_RETRY_HOURS="0")


def test_an_activation_mail_whose_account_is_already_active_is_given_up(browser: Browser, engine, db, clock) -> None:
    from datetime import timedelta

    from web.platform.models import OutboxMail

    browser.register(email="podwojna@example.pl")
    browser.submit("/activate/resend", {"email": "podwojna@example.pl"})
    assert db.count(OutboxMail) == 2
    assert _deliver(engine, _DownSmtp(fail=1)) == (1, 1)  # the first mail fails, the second leaves
    second = db.all(OutboxMail, OutboxMail.sent_at.is_not(None))[0]  # type: ignore[union-attr]
    link = second.text_body.split("/activate/")[1].split()[0]
    assert browser.get(f"/activate/{link}").status_code == 200
    clock.travel(timedelta(hours=1))
    assert _deliver(engine, _DownSmtp(fail=0)) == (0, 0)
    first = db.all(OutboxMail, OutboxMail.sent_at.is_(None))[0]  # type: ignore[union-attr]
    assert first.failed_at is not None and "no longer" in first.last_error


# --------------------------------------------------------------------------- /dev/mail (item 6)

LOOPBACK = {"x-test-client-ip": "127.0.0.1"}


def _reset_link_takeover(browser: Browser, new_browser, users, ip: str, extra: dict | None = None):  # type: ignore[no-untyped-def]
    """The attack: ask a reset for someone else's account, read the link at /dev/mail."""
    users.create("szef@example.pl", role="staff", pesel=None)
    attacker = new_browser(ip=ip)
    attacker.submit("/password/forgot", {"email": "szef@example.pl"})
    return attacker.get("/dev/mail", headers=extra or {}), attacker


@pytest.mark.parametrize("ip", ["203.0.113.7", "10.0.0.5", "192.168.1.20", "2001:db8::1", "testclient"])
def test_dev_mail_is_not_served_to_other_machines(browser: Browser, new_browser, users, mails, ip: str) -> None:
    page, attacker = _reset_link_takeover(browser, new_browser, users, ip)
    assert page.status_code == 404 and "/password/reset/" not in page.text
    assert attacker.get("/dev/mail/1").status_code == 404
    assert mails.count("szef@example.pl") == 1  # the mail is still queued, only not shown


@pytest.mark.parametrize("forwarded", [{"x-forwarded-for": "203.0.113.7"}, {"forwarded": "for=203.0.113.7"},
                                       {"x-real-ip": "203.0.113.7"}])
def test_dev_mail_is_not_served_through_a_proxy_on_the_same_machine(browser: Browser, new_browser, users,
                                                                     forwarded: dict) -> None:
    page, _ = _reset_link_takeover(browser, new_browser, users, "127.0.0.1", forwarded)
    assert page.status_code == 404


@pytest.mark.parametrize("ip", ["127.0.0.1", "127.0.0.2", "::1"])
def test_dev_mail_is_served_to_the_developer_on_this_machine(browser: Browser, new_browser, users, ip: str) -> None:
    page, local = _reset_link_takeover(browser, new_browser, users, ip)
    assert page.status_code == 200 and "szef@example.pl" in page.text
    assert local.get("/dev/mail/1").status_code == 200


def test_dev_pages_are_refused_in_production(make_settings) -> None:
    from web.platform.settings import SettingsError

    production = {"EKP_ENV": "production", "EKP_SMTP_URL": "smtp://mail.example.pl", "EKP_PAYMENTS": "tpay",
                  "EKP_TPAY_CLIENT_ID": "x", "EKP_TPAY_CLIENT_SECRET": "y", "EKP_TPAY_SECURITY_CODE": "z",
                  "EKP_TICKET_KEYS": "1:" + "ab" * 32, "EKP_PHOTO_KEY": "22" * 32, "EKP_BASE_URL": "https://ekp.example.pl"}
    with pytest.raises(SettingsError, match="EKP_DEV_PAGES"):
        make_settings(**production, EKP_DEV_PAGES="true")
    assert make_settings(**production, EKP_DEV_PAGES="false").dev_pages is False
    assert make_settings(**{**production, "EKP_DEV_PAGES": ""}).dev_pages is False


@pytest.mark.parametrize(("host", "warned"), [("0.0.0.0", True), ("192.168.1.20", True), ("::", True),
                                              ("127.0.0.1", False), ("localhost", False), ("::1", False)])
def test_development_mode_on_a_public_address_warns_loudly_at_start(make_settings, make_app, caplog, host: str,
                                                                    warned: bool) -> None:
    import logging

    from web.platform.settings import start_warnings

    settings = make_settings(EKP_ENV="development", EKP_HOST=host)
    assert bool(start_warnings(settings)) is warned
    with caplog.at_level(logging.WARNING, logger="ekp"):
        make_app(EKP_ENV="development", EKP_HOST=host)
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "EKP_HOST" in r.getMessage()]
    assert bool(logged) is warned


def test_cli_run_warns_when_development_mode_listens_on_every_address(settings_env, monkeypatch) -> None:
    import uvicorn
    from click.testing import CliRunner

    from web.cli import main

    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    monkeypatch.setenv("EKP_HOST", "127.0.0.1")  # `ekp run --host` sets it for the app process; restored after
    result = CliRunner().invoke(main, ["run", "--host", "0.0.0.0", "--no-migrate", "--no-demo"],
                                env={**settings_env, "EKP_ENV": "development"}, catch_exceptions=False)
    assert result.exit_code == 0
    assert "WARNING" in result.output and "/dev/mail" in result.output


# --------------------------------------------------------------------------- one person, one account (item 3)

def _registry_with_jans_card(engine, settings) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import VALID_PESEL
    from web.platform.db import transaction
    from web.cards.service import import_registry

    with transaction(engine) as session:
        report = import_registry(session, settings, "type,client_code,pesel,holder_name,resident_from,resident_until,"
                                 f"blocked\nKKM,100200300,{VALID_PESEL},Jan Kowalski,,,no\n")
    assert report.ok


def _activation_link(mails, address: str) -> str:  # type: ignore[no-untyped-def]
    return mails.last(address).link("/activate/")


def test_r_auth_2_another_persons_pesel_opens_no_account_and_cannot_link_their_card(
        browser: Browser, new_browser, users, mails, db, engine, settings) -> None:
    """The attack: register with Jan's PESEL, activate, link Jan's card by its client code."""
    from tests.conftest import VALID_PESEL
    from web.accounts.models import User
    from web.cards.models import Card

    _registry_with_jans_card(engine, settings)
    users.create("jan@example.pl", pesel=VALID_PESEL)
    attacker = new_browser(ip="203.0.113.9")
    response = attacker.register(email="zly@example.pl", first_name="Jan", last_name="Kowalski", pesel=VALID_PESEL)
    assert response.status_code == 303 and response.headers["location"] == "/register/done"
    assert db.user("zly@example.pl") is None and db.count(User) == 1
    assert mails.count("zly@example.pl") == 0  # no activation link to follow
    assert attacker.submit("/login", {"email": "zly@example.pl", "password": "Haslo1234"}).status_code == 401
    assert db.one(Card).account_id is None
    # The holder is told, with what to do if it was not them.
    notice = mails.last("jan@example.pl")
    assert "PESEL" in notice.text and "zly@example.pl" not in notice.text
    assert notice.link("/password/forgot") == "/password/forgot"


def test_r_auth_2_a_second_registration_with_a_held_pesel_looks_exactly_like_a_first(
        browser: Browser, new_browser, users, mails) -> None:
    from tests.conftest import VALID_PESEL, make_pesel
    from datetime import date

    fresh = browser.register(email="nowa@example.pl", pesel=make_pesel(date(1990, 3, 4), male=False))
    fresh_done = browser.get("/register/done")
    users.create("jan@example.pl", pesel=VALID_PESEL)
    other = new_browser()
    second = other.register(email="nowa2@example.pl", pesel=VALID_PESEL)
    second_done = other.get("/register/done")
    assert (second.status_code, second.headers["location"]) == (fresh.status_code, fresh.headers["location"])
    assert second_done.status_code == fresh_done.status_code
    strip = lambda html: re.sub(r"[0-9a-f]{64,}|nowa2?@example\.pl", "X", html)  # noqa: E731
    assert strip(second_done.text) == strip(fresh_done.text)


def test_r_auth_2_an_inactive_account_does_not_hold_a_pesel_but_only_one_can_be_activated(
        browser: Browser, new_browser, users, mails, db) -> None:
    """Registering first without activating must not lock the real person out; the second activation is refused."""
    from tests.conftest import VALID_PESEL

    browser.register(email="pierwszy@example.pl", pesel=VALID_PESEL)
    other = new_browser()
    other.register(email="drugi@example.pl", pesel=VALID_PESEL)
    assert db.user("pierwszy@example.pl") is not None and db.user("drugi@example.pl") is not None
    assert browser.get(_activation_link(mails, "pierwszy@example.pl")).status_code == 200
    refused = other.get(_activation_link(mails, "drugi@example.pl"))
    assert refused.status_code == 409
    assert "numerem PESEL" in refused.text and "Biurem Obsługi Klienta" in refused.text
    assert db.user("drugi@example.pl").activated_at is None
    assert other.submit("/login", {"email": "drugi@example.pl", "password": "Haslo1234"}).status_code == 403
    assert "PESEL" in mails.last("pierwszy@example.pl").text  # the holder is told


def test_r_auth_2_a_reset_link_does_not_activate_a_second_account_with_a_held_pesel(
        browser: Browser, new_browser, users, mails, db) -> None:
    from tests.conftest import VALID_PESEL

    browser.register(email="drugi@example.pl", pesel=VALID_PESEL)  # inactive
    users.create("jan@example.pl", pesel=VALID_PESEL)  # the holder, active
    browser.submit("/password/forgot", {"email": "drugi@example.pl"})
    link = mails.last("drugi@example.pl").link("/password/reset/")
    done = browser.submit(link, {"password": "Nowe1234haslo", "password_repeat": "Nowe1234haslo"})
    assert done.status_code == 303
    assert db.user("drugi@example.pl").activated_at is None


def test_r_auth_2_linking_a_card_tells_every_account_holding_its_pesel(
        browser: Browser, users, mails, db, engine, settings) -> None:
    from tests.conftest import VALID_PESEL

    _registry_with_jans_card(engine, settings)
    users.create("jan@example.pl", pesel=VALID_PESEL)
    users.create("stare@example.pl", pesel=VALID_PESEL)  # an older duplicate, from before R-AUTH-2
    browser.login("jan@example.pl")
    browser.submit("/cards/add", {"carrier_type": "KKM", "client_code": "100200300"})
    assert browser.post("/cards/add/confirm", {"answer": "yes"}).status_code == 303
    own = mails.last("jan@example.pl")
    assert "100200300" in own.text and "Twojego konta" in own.text
    other = mails.last("stare@example.pl")
    assert "100200300" in other.text and "numerem PESEL" in other.text
    assert "jan@example.pl" not in other.text and "j•••@example.pl" in other.text


def test_r_auth_2_two_accounts_with_one_pesel_activated_at_once_leave_one_active(
        browser: Browser, new_browser, mails, db, monkeypatch) -> None:
    import threading
    import time

    from tests.conftest import VALID_PESEL
    from web.accounts.models import User
    from web.accounts import service

    checked = service._pesel_held_elsewhere

    def slow_check(session, user):  # type: ignore[no-untyped-def]
        held = checked(session, user)
        time.sleep(0.3)  # widen the window between the check and the activation
        return held

    monkeypatch.setattr(service, "_pesel_held_elsewhere", slow_check)

    people = [f"rownoczesny{n}@example.pl" for n in range(4)]
    browsers = []
    for address in people:
        person = new_browser()
        person.register(email=address, pesel=VALID_PESEL)
        browsers.append((person, _activation_link(mails, address)))
    barrier = threading.Barrier(len(browsers))
    statuses: list[int] = []

    def activate(person: Browser, link: str) -> None:
        barrier.wait()
        statuses.append(person.get(link).status_code)

    threads = [threading.Thread(target=activate, args=pair) for pair in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409, 409, 409]
    assert db.count(User, User.activated_at.is_not(None)) == 1  # type: ignore[union-attr]


def test_r_auth_2_a_card_linked_at_the_desk_is_reported_to_the_account_holding_its_pesel(
        browser: Browser, users, mails, engine, settings) -> None:
    from tests.conftest import VALID_PESEL
    from tests.web.desk.test_desk import staff_browser

    _registry_with_jans_card(engine, settings)
    users.create("jan@example.pl", pesel=VALID_PESEL)
    users.create("olena@example.pl", pesel=None, first_name="Olena")
    desk = staff_browser(browser, users)
    linked = desk.submit("/desk", {"email": "olena@example.pl", "carrier_type": "KKM", "client_code": "100200300",
                                   "identity_checked": "on"}, action="/desk/link-card")
    assert linked.status_code == 303
    notice = mails.last("jan@example.pl")
    assert "100200300" in notice.text and "o\u2022\u2022\u2022@example.pl" in notice.text
