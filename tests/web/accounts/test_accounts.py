"""Activation, login and logout, password reset, the account page and GDPR erasure (R-ACC-3..5),
through Litestar's test client on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import timedelta

from tests.conftest import DEFAULT_PASSWORD, VALID_PESEL, field_errors, page_text, registration_form
from web.platform.models import AuditEvent, OutboxMail
from web.accounts.models import EmailToken, User

EMAIL = "anna@example.pl"


def register_and_get_link(browser, mails, **fields) -> str:
    response = browser.register(**fields)
    assert response.status_code == 303, response.text[:2000]
    return mails.last(fields.get("email", EMAIL)).link("/activate/")


# ---------------------------------------------------------------- R-ACC-3 activation


def test_r_acc_3_activation_mail_has_html_and_text_with_the_link(browser, mails, settings):
    browser.register()
    [mail] = mails.to(EMAIL)
    assert mail.subject == "Aktywuj swoje Elektroniczne Konto Pasażera"
    link = mail.link("/activate/")
    assert link.startswith("/activate/") and len(link) > len("/activate/") + 30
    full = settings.base_url + link
    assert full in mail.text
    assert f'href="{full}"' in mail.html
    assert "Dzień dobry, Anna!" in mail.text and "Dzień dobry, Anna!" in mail.html
    assert "3 godziny" in mail.text and "3 godziny" in mail.html
    assert mail.html.lstrip().lower().startswith("<!doctype html") or "<html" in mail.html
    assert VALID_PESEL not in mail.text + mail.html


def test_r_acc_3_activation_link_works_once(browser, mails, db):
    link = register_and_get_link(browser, mails)
    assert not db.user(EMAIL).is_active

    first = browser.get(link)
    assert first.status_code == 200
    assert "Konto aktywne" in first.text
    assert db.user(EMAIL).is_active

    again = browser.get(link)
    assert again.status_code == 410
    assert "Link został już użyty" in again.text
    assert 'href="/login"' in again.text


def test_r_acc_3_only_the_hash_of_the_link_is_stored(browser, mails, db):
    link = register_and_get_link(browser, mails)
    token = link.rsplit("/", 1)[1]
    [stored] = db.all(EmailToken)
    assert stored.token_hash != token and token not in stored.token_hash


def test_r_acc_3_link_still_valid_at_2h59m(browser, mails, db, clock):
    link = register_and_get_link(browser, mails)
    clock.travel(timedelta(hours=2, minutes=59))
    response = browser.get(link)
    assert response.status_code == 200 and "Konto aktywne" in response.text
    assert db.user(EMAIL).is_active


def test_r_acc_3_link_expired_at_3h_offers_a_new_one(browser, mails, db, clock):
    link = register_and_get_link(browser, mails)
    clock.travel(timedelta(hours=3))
    expired = browser.get(link)
    assert expired.status_code == 410
    assert "Link wygasł" in expired.text
    assert not db.user(EMAIL).is_active
    # The page offers a new link right there.
    assert 'action="/activate/resend"' in expired.text

    sent = browser.post("/activate/resend", {"email": EMAIL})
    assert sent.status_code == 200
    assert "wysłaliśmy nowy link" in sent.text
    assert mails.count(EMAIL) == 2
    new_link = mails.last(EMAIL).link("/activate/")
    assert new_link != link

    assert browser.get(link).status_code == 410, "the old link stays expired"
    assert browser.get(new_link).status_code == 200
    assert db.user(EMAIL).is_active


def test_r_acc_3_unknown_link_says_so_and_offers_a_new_one(browser):
    response = browser.get("/activate/this-is-not-a-token")
    assert response.status_code == 404
    assert "Nieprawidłowy link" in response.text
    assert 'action="/activate/resend"' in response.text


def test_r_acc_3_resend_says_the_same_for_unknown_and_active_addresses_and_sends_nothing(browser, users, mails):
    users.create("aktywny@example.pl")
    for address in ("aktywny@example.pl", "nikt@example.pl"):
        response = browser.submit("/activate/resend", {"email": address})
        assert response.status_code == 200
        assert "Jeśli to konto czeka na aktywację, wysłaliśmy nowy link." in page_text(response.text)
    assert mails.count() == 0


def test_r_acc_3_login_refused_before_activation(browser, mails, db):
    register_and_get_link(browser, mails)
    response = browser.submit("/login", {"email": EMAIL, "password": DEFAULT_PASSWORD})
    assert response.status_code == 403
    assert "Konto nie zostało jeszcze aktywowane." in response.text
    assert 'href="/activate/resend"' in response.text
    assert browser.get("/account", follow_redirects=False).status_code == 303


def test_r_acc_3_activation_then_login(browser, mails):
    link = register_and_get_link(browser, mails)
    browser.get(link)
    browser.login(EMAIL)
    account = browser.get("/account")
    assert account.status_code == 200
    assert "Anna Nowak-Wiśniewska" in account.text


# ---------------------------------------------------------------- R-ACC-4 login and logout


def test_r_acc_4_login_and_logout(browser, users):
    users.create("jan@example.pl")
    assert browser.get("/account", follow_redirects=False).headers["location"] == "/login?next=/account"

    response = browser.login("Jan@Example.PL ")
    assert response.headers["location"] == "/home"
    account = browser.get("/account")
    assert account.status_code == 200
    assert "Witaj, Jan!" in account.text
    assert "jan@example.pl" in account.text
    assert "Wyloguj" in account.text

    out = browser.logout()
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    assert "Wylogowano." in browser.get("/login").text
    assert browser.get("/account", follow_redirects=False).status_code == 303


def test_r_acc_4_login_goes_back_to_the_page_asked_for_but_never_off_site(browser, users):
    users.create("jan@example.pl")
    page = browser.get("/login?next=/terms")
    assert 'name="next" value="/terms"' in page.text
    assert browser.post("/login", {"email": "jan@example.pl", "password": DEFAULT_PASSWORD, "next": "/terms"}).headers["location"] == "/terms"
    browser.logout()
    for target in ("//evil.example", "https://evil.example/", "/\\evil.example"):
        response = browser.submit("/login", {"email": "jan@example.pl", "password": DEFAULT_PASSWORD, "next": target})
        assert response.headers["location"] == "/home", target
        browser.logout()


def test_r_acc_4_wrong_password_and_unknown_address_get_the_same_answer(browser, users):
    users.create("jan@example.pl")
    wrong = browser.submit("/login", {"email": "jan@example.pl", "password": "Zle12345"})
    unknown = browser.submit("/login", {"email": "nikt@example.pl", "password": "Zle12345"})
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "Nieprawidłowy e-mail lub hasło." in response.text
        assert "Zle12345" not in response.text
    assert browser.get("/account", follow_redirects=False).status_code == 303


def test_r_acc_4_login_form_errors_next_to_fields(browser):
    response = browser.submit("/login", {"email": "", "password": ""})
    assert response.status_code == 422
    assert field_errors(response.text, "email") == ["Podaj adres e-mail."]
    assert field_errors(response.text, "password") == ["Podaj hasło."]


def test_csrf_login_without_token_is_refused(browser, users):
    users.create("jan@example.pl")
    browser.get("/login")
    response = browser.post("/login", {"email": "jan@example.pl", "password": DEFAULT_PASSWORD}, csrf=False)
    assert response.status_code == 403
    assert "ekp_session" not in browser.cookies
    assert browser.get("/account", follow_redirects=False).status_code == 303


def test_csrf_logout_without_token_keeps_the_session(logged_in):
    browser, _ = logged_in
    assert browser.post("/logout", csrf=False).status_code == 403
    assert browser.get("/account").status_code == 200


# ---------------------------------------------------------------- R-ACC-4 password reset


def test_r_acc_4_password_reset_flow(browser, users, mails, db):
    users.create("jan@example.pl")
    asked = browser.submit("/password/forgot", {"email": "Jan@example.pl"})
    assert asked.status_code == 200
    assert "Jeśli pod tym adresem jest konto, wysłaliśmy na niego link" in asked.text

    mail = mails.last("jan@example.pl")
    link = mail.link("/password/reset/")
    assert f'href="http://testserver.local{link}"' in mail.html

    form = browser.get(link)
    assert form.status_code == 200 and "Ustaw nowe hasło" in form.text
    done = browser.post(link, {"password": "NoweHaslo9", "password_repeat": "NoweHaslo9"})
    assert (done.status_code, done.headers["location"]) == (303, "/login")
    assert "Hasło zostało zmienione. Zaloguj się nowym hasłem." in browser.get("/login").text

    assert browser.submit("/login", {"email": "jan@example.pl", "password": DEFAULT_PASSWORD}).status_code == 401
    browser.login("jan@example.pl", "NoweHaslo9")

    # Single use.
    reused = browser.get(link)
    assert reused.status_code == 410 and "Link został już użyty" in reused.text
    again = browser.post(link, {"password": "Inne1234x", "password_repeat": "Inne1234x"})
    assert again.status_code == 410
    browser.logout()
    browser.login("jan@example.pl", "NoweHaslo9")


def test_r_acc_4_reset_never_reveals_whether_an_address_exists(browser, new_browser, users, mails):
    users.create("jan@example.pl")
    known = browser.submit("/password/forgot", {"email": "jan@example.pl"})
    other = new_browser()
    unknown = other.submit("/password/forgot", {"email": "nikt@example.pl"})
    assert known.status_code == unknown.status_code == 200
    assert page_text(known.text).replace("jan@example.pl", "X") == page_text(unknown.text).replace("nikt@example.pl", "X")
    assert mails.count("jan@example.pl") == 1
    assert mails.count("nikt@example.pl") == 0


def test_r_acc_4_reset_form_checks_the_new_password(browser, users, mails):
    users.create("jan@example.pl")
    browser.submit("/password/forgot", {"email": "jan@example.pl"})
    link = mails.last().link("/password/reset/")
    browser.get(link)
    weak = browser.post(link, {"password": "slabe", "password_repeat": "inne"})
    assert weak.status_code == 422
    assert "Hasło musi mieć co najmniej 8 znaków." in field_errors(weak.text, "password")
    assert field_errors(weak.text, "password_repeat") == ["Hasła nie są takie same."]
    # The link was not used up by the failed attempt.
    assert browser.post(link, {"password": "NoweHaslo9", "password_repeat": "NoweHaslo9"}).status_code == 303


def test_r_acc_4_reset_link_expires_after_an_hour(browser, users, mails, clock):
    users.create("jan@example.pl")
    browser.submit("/password/forgot", {"email": "jan@example.pl"})
    link = mails.last().link("/password/reset/")
    clock.travel(timedelta(minutes=59))
    assert browser.get(link).status_code == 200
    clock.travel(timedelta(minutes=1))
    expired = browser.get(link)
    assert expired.status_code == 410 and "Link wygasł" in expired.text
    assert browser.post(link, {"password": "NoweHaslo9", "password_repeat": "NoweHaslo9"}).status_code == 410


def test_r_acc_4_using_one_reset_link_voids_the_others(browser, users, mails):
    users.create("jan@example.pl")
    browser.submit("/password/forgot", {"email": "jan@example.pl"})
    browser.submit("/password/forgot", {"email": "jan@example.pl"})
    first, second = (mail.link("/password/reset/") for mail in mails.to("jan@example.pl"))
    browser.get(second)
    assert browser.post(second, {"password": "NoweHaslo9", "password_repeat": "NoweHaslo9"}).status_code == 303
    assert browser.get(first).status_code == 410


def test_reset_ends_sessions_elsewhere(new_browser, users, mails):
    users.create("jan@example.pl")
    phone, laptop = new_browser(), new_browser()
    phone.login("jan@example.pl")
    assert phone.get("/account").status_code == 200

    laptop.submit("/password/forgot", {"email": "jan@example.pl"})
    link = mails.last().link("/password/reset/")
    laptop.get(link)
    assert laptop.post(link, {"password": "NoweHaslo9", "password_repeat": "NoweHaslo9"}).status_code == 303

    assert phone.get("/account", follow_redirects=False).status_code == 303


# ---------------------------------------------------------------- account page


def test_account_page_shows_masked_pesel_never_the_full_number(logged_in):
    browser, user = logged_in
    html = browser.get("/account").text
    assert "44\u2022\u2022\u2022\u2022\u2022\u2022\u202259" in html
    assert VALID_PESEL not in html
    assert VALID_PESEL[2:9] not in html
    assert "Jan Kowalski" in html and user.email in html


def test_a_pesel_the_configured_key_cannot_open_does_not_break_the_account_page(logged_in, engine, caplog):
    """A PESEL encrypted under another EKP_PESEL_KEY (a key changed or lost on a deploy) once answered 500
    (cryptography's InvalidTag). The page shows without the masked number and the operator is told in the log,
    which names the account but never the number."""
    from web.platform.db import transaction
    from web.platform.protect import encrypt_pesel

    browser, user = logged_in
    with transaction(engine) as session:
        session.get(User, user.id).pesel_encrypted = encrypt_pesel(b"k" * 32, VALID_PESEL)
    with caplog.at_level(logging.ERROR):
        answer = browser.get("/account")
    assert answer.status_code == 200
    assert user.email in answer.text and "\u2022" not in answer.text and VALID_PESEL not in answer.text
    assert any("EKP_PESEL_KEY" in r.getMessage() and str(user.id) in r.getMessage() for r in caplog.records)
    assert not any(VALID_PESEL in r.getMessage() for r in caplog.records)


def test_account_page_without_pesel_shows_the_date_of_birth(browser, users):
    from datetime import date

    users.create("bez@example.pl", pesel=None, birth_date=date(1990, 7, 1))
    browser.login("bez@example.pl")
    text = page_text(browser.get("/account").text)
    assert "brak — data urodzenia" in text
    assert "1990" in text


def test_account_page_needs_login(browser):
    response = browser.get("/account", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/login?next=/account")


def test_change_password_and_other_sessions_end(new_browser, users):
    users.create("jan@example.pl")
    here, elsewhere = new_browser(), new_browser()
    here.login("jan@example.pl")
    elsewhere.login("jan@example.pl")

    changed = here.submit("/account", {"current_password": DEFAULT_PASSWORD, "password": "NoweHaslo9",
                                       "password_repeat": "NoweHaslo9"}, action="/account/password")
    assert (changed.status_code, changed.headers["location"]) == (303, "/account")
    page = here.get("/account")
    assert page.status_code == 200 and "Hasło zostało zmienione." in page.text, "this session stays logged in"

    assert elsewhere.get("/account", follow_redirects=False).status_code == 303, "the other session ended"
    elsewhere.login("jan@example.pl", "NoweHaslo9")


def test_change_password_errors(logged_in):
    browser, _ = logged_in
    wrong = browser.submit("/account", {"current_password": "Zle12345", "password": "NoweHaslo9",
                                        "password_repeat": "NoweHaslo9"}, action="/account/password")
    assert wrong.status_code == 422
    assert field_errors(wrong.text, "current_password") == ["Obecne hasło jest nieprawidłowe."]
    weak = browser.submit("/account", {"current_password": "", "password": "abc", "password_repeat": "abd"},
                          action="/account/password")
    assert field_errors(weak.text, "current_password") == ["Podaj hasło."]
    assert "Hasło musi zawierać cyfrę." in field_errors(weak.text, "password")
    assert field_errors(weak.text, "password_repeat") == ["Hasła nie są takie same."]
    browser.logout()
    browser.login("jan@example.pl")  # the old password still works


# ---------------------------------------------------------------- GDPR erasure


def test_delete_account_erases_the_person(logged_in, db, mails):
    browser, user = logged_in
    browser.submit("/password/forgot", {"email": user.email})  # leaves a token behind
    response = browser.submit("/account", {"delete_password": DEFAULT_PASSWORD, "confirm": "on"}, action="/account/delete")
    assert (response.status_code, response.headers["location"]) == (303, "/")
    assert "Konto zostało usunięte wraz z danymi osobowymi." in browser.get("/").text

    assert db.user(user.email) is None
    assert db.count(User) == 0
    assert db.count(EmailToken) == 0
    erased = db.one(AuditEvent, AuditEvent.action == "account.erased")
    assert erased.user_id == user.id
    for _table, row in db.dump():
        assert not any(isinstance(v, str) and ("Kowalski" in v or VALID_PESEL in v) for v in row), row
    assert browser.get("/account", follow_redirects=False).status_code == 303
    assert browser.submit("/login", {"email": user.email, "password": DEFAULT_PASSWORD}).status_code == 401


def test_delete_account_needs_password_and_confirmation(logged_in, db):
    browser, user = logged_in
    unconfirmed = browser.submit("/account", {"delete_password": DEFAULT_PASSWORD}, action="/account/delete")
    assert unconfirmed.status_code == 422
    assert field_errors(unconfirmed.text, "confirm") == ["Zaznacz, że rozumiesz skutki usunięcia konta."]
    wrong = browser.submit("/account", {"delete_password": "Zle12345", "confirm": "on"}, action="/account/delete")
    assert wrong.status_code == 422
    assert field_errors(wrong.text, "delete_password") == ["Obecne hasło jest nieprawidłowe."]
    assert db.user(user.email) is not None
    assert browser.post("/account/delete", {"delete_password": DEFAULT_PASSWORD, "confirm": "on"}, csrf=False).status_code == 403
    assert db.user(user.email) is not None


# ---------------------------------------------------------------- PESEL privacy


def test_pesel_never_appears_in_logs(browser, mails, caplog):
    caplog.set_level(logging.DEBUG)
    # SQL statements with their parameters are logged at INFO by SQLAlchemy: the strongest check.
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    litestar_logger = logging.getLogger("litestar")
    litestar_logger.addHandler(caplog.handler)
    try:
        link = register_and_get_link(browser, mails)
        browser.get(link)
        browser.login(EMAIL)
        browser.get("/account")
        browser.htmx("/register/check?field=pesel", {"pesel": VALID_PESEL})
        browser.submit("/register", registration_form(email="inna@example.pl", first_name=""))  # a failing form
    finally:
        litestar_logger.removeHandler(caplog.handler)
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records), "SQL logging was captured"
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert VALID_PESEL not in logged


def test_pesel_never_stored_in_clear_text(browser, mails, db):
    link = register_and_get_link(browser, mails)
    browser.get(link)
    browser.login(EMAIL)
    browser.get("/account")
    rows = db.dump()
    assert rows
    for table, row in rows:
        for value in row:
            if isinstance(value, str):
                assert VALID_PESEL not in value, table
            elif isinstance(value, (bytes, memoryview)):
                assert VALID_PESEL.encode() not in bytes(value), table
    assert db.count(OutboxMail) == 1
