"""Registration through the web (R-ACC-1, R-ACC-2, R-ACC-4), on SQLite and PostgreSQL.

Every validation error is shown next to its field in Polish, the form keeps what was typed except the
passwords, and nothing is written on error.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from tests.conftest import (
    DEFAULT_PASSWORD,
    VALID_PESEL,
    all_field_errors,
    field_errors,
    input_value,
    is_checked,
    make_pesel,
    page_text,
    registration_form,
    with_check_digit,
)
from web.platform import clock
from web.platform.models import AuditEvent, OutboxMail
from web.accounts.models import User


FUTURE_PESEL = make_pesel(clock.today() + timedelta(days=400))
IMPOSSIBLE_DATE_PESEL = with_check_digit("0002290000")  # 29 Feb 1900


# (case id, fields changed, field showing the error, the Polish message)
INVALID = [
    ("first_name_missing", {"first_name": ""}, "first_name", "Podaj imię."),
    ("first_name_digits", {"first_name": "Jan3"}, "first_name", "Imię może zawierać tylko litery, spacje, apostrof i łącznik (do 80 znaków)."),
    ("last_name_missing", {"last_name": "  "}, "last_name", "Podaj nazwisko."),
    ("last_name_symbols", {"last_name": "K0walski!"}, "last_name", "Nazwisko może zawierać tylko litery, spacje, apostrof i łącznik (do 80 znaków)."),
    ("pesel_missing", {"pesel": ""}, "pesel", "Podaj numer PESEL albo zaznacz, że go nie masz."),
    ("pesel_too_short", {"pesel": "4405140145"}, "pesel", "PESEL to 11 cyfr."),
    ("pesel_letters", {"pesel": "4405140145X"}, "pesel", "PESEL to 11 cyfr."),
    ("pesel_checksum", {"pesel": "44051401459"}, "pesel", "Ten numer PESEL ma błędną cyfrę kontrolną — sprawdź, czy nie ma literówki."),
    ("pesel_impossible_date", {"pesel": IMPOSSIBLE_DATE_PESEL}, "pesel", "Ten numer PESEL zawiera nieistniejącą datę urodzenia."),
    ("pesel_future", {"pesel": FUTURE_PESEL}, "pesel", "Ten numer PESEL zawiera datę urodzenia z przyszłości."),
    ("birth_date_missing", {"no_pesel": "on", "pesel": "", "birth_date": ""}, "birth_date", "Podaj datę urodzenia."),
    ("birth_date_format", {"no_pesel": "on", "pesel": "", "birth_date": "31.12.1990"}, "birth_date", "Podaj datę urodzenia w formacie RRRR-MM-DD."),
    ("birth_date_too_old", {"no_pesel": "on", "pesel": "", "birth_date": "1899-12-31"}, "birth_date", "Data urodzenia musi być z przeszłości i nie wcześniejsza niż 1900 r."),
    ("birth_date_future", {"no_pesel": "on", "pesel": "", "birth_date": "2999-01-01"}, "birth_date", "Data urodzenia musi być z przeszłości i nie wcześniejsza niż 1900 r."),
    ("email_missing", {"email": "", "email_repeat": ""}, "email", "Podaj adres e-mail."),
    ("email_invalid", {"email": "anna@example", "email_repeat": "anna@example"}, "email", "To nie wygląda na adres e-mail (np. jan.kowalski@example.pl)."),
    ("email_mismatch", {"email_repeat": "anna@example.com"}, "email_repeat", "Adresy e-mail nie są takie same."),
    ("password_short", {"password": "Abc1234"}, "password", "Hasło musi mieć co najmniej 8 znaków."),
    ("password_no_upper", {"password": "haslo1234"}, "password", "Hasło musi zawierać wielką literę."),
    ("password_no_digit", {"password": "HasloHaslo"}, "password", "Hasło musi zawierać cyfrę."),
    ("password_mismatch", {"password_repeat": "Haslo12345"}, "password_repeat", "Hasła nie są takie same."),
    ("terms_not_accepted", {"accept_terms": None}, "accept_terms", "Aby założyć konto, zaakceptuj Regulamin EKP."),
    ("gdpr_not_seen", {"gdpr_seen": None}, "gdpr_seen", "Potwierdź, że zapoznałeś(-aś) się z informacją o przetwarzaniu danych osobowych (RODO)."),
]


@pytest.mark.parametrize(("changes", "field", "expected"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_r_acc_1_each_validation_error_is_shown_next_to_its_field(browser, db, changes, field, expected):
    form = registration_form(**changes)
    response = browser.submit("/register", form)

    assert response.status_code == 422
    html = response.text
    assert field_errors(html, field) == [expected]
    assert set(all_field_errors(html)) == {field}, "only the wrong field is marked"
    assert re.search(rf'<input\b[^>]*\bname="{field}"[^>]*aria-invalid="true"', html) or field in {"accept_terms", "gdpr_seen"}

    # The form keeps what was typed ...
    for name in ("first_name", "last_name", "email", "email_repeat", "birth_date"):
        assert input_value(html, name) == form.get(name, ""), name
    assert input_value(html, "pesel") == form.get("pesel", "")
    assert is_checked(html, "no_pesel") == ("no_pesel" in form)
    # ... except the passwords, which are never sent back.
    assert input_value(html, "password") is None and input_value(html, "password_repeat") is None
    assert form["password"] not in html

    # Nothing was written.
    assert db.count(User) == 0
    assert db.count(OutboxMail) == 0
    assert db.count(AuditEvent) == 0


def test_r_acc_1_all_errors_at_once_each_next_to_its_field(browser, db):
    response = browser.submit("/register", {"first_name": "", "email": "x", "email_repeat": "y", "password": "a", "password_repeat": "b"})
    assert response.status_code == 422
    errors = all_field_errors(response.text)
    assert set(errors) == {"first_name", "last_name", "pesel", "email", "password", "password_repeat", "accept_terms", "gdpr_seen"}
    assert errors["password"] == ["Hasło musi mieć co najmniej 8 znaków.", "Hasło musi zawierać wielką literę.", "Hasło musi zawierać cyfrę."]
    assert input_value(response.text, "email") == "x"
    assert input_value(response.text, "email_repeat") == "y"
    assert db.count(User) == 0


def test_r_acc_1_typed_values_are_escaped_when_shown_again(browser):
    response = browser.submit("/register", registration_form(first_name='<script>alert("x")</script>'))
    assert response.status_code == 422
    assert '<script>alert("x")</script>' not in response.text
    assert input_value(response.text, "first_name") == '<script>alert("x")</script>'


def test_r_acc_1_register_page_has_every_field_with_a_label(browser):
    html = browser.get("/register").text
    for name in ("first_name", "last_name", "pesel", "no_pesel", "birth_date", "email", "email_repeat",
                 "password", "password_repeat", "accept_terms", "gdpr_seen"):
        assert re.search(rf'<label for="{name}"', html), f"no label for {name}"
        assert re.search(rf'<input id="{name}"|<input type="checkbox" id="{name}"', html), f"no input {name}"
    # Terms and the GDPR notice are real pages, linked from the form.
    assert 'href="/terms"' in html and 'href="/privacy"' in html
    assert browser.get("/terms").status_code == 200
    assert browser.get("/privacy").status_code == 200


def test_r_acc_1_registration_with_pesel(browser, db, mails, settings):
    response = browser.register(email="Anna@Example.pl", email_repeat="anna@example.PL")
    assert response.status_code == 303
    assert response.headers["location"] == "/register/done"
    done = browser.get("/register/done")
    assert "Sprawdź pocztę" in done.text and "anna@example.pl" in done.text

    user = db.user("anna@example.pl")
    assert user.first_name == "Anna" and user.last_name == "Nowak-Wiśniewska"
    assert user.birth_date == date(1944, 5, 14)
    assert user.activated_at is None and not user.is_active
    assert user.password_hash.startswith("$argon2id$")
    assert DEFAULT_PASSWORD not in user.password_hash
    from web.platform.protect import decrypt_pesel, pesel_hash

    assert user.pesel_hash == pesel_hash(settings.pesel_key, VALID_PESEL)
    assert decrypt_pesel(settings.pesel_key, user.pesel_encrypted) == VALID_PESEL
    assert mails.count("anna@example.pl") == 1


def test_r_acc_1_registration_without_pesel_takes_the_date_of_birth(browser, db):
    response = browser.register(no_pesel="on", pesel="", birth_date="1990-07-01", email="bez.pesel@example.pl")
    assert response.status_code == 303
    user = db.user("bez.pesel@example.pl")
    assert user.pesel_hash is None and user.pesel_encrypted is None
    assert user.birth_date == date(1990, 7, 1)


def test_r_acc_1_no_pesel_choice_is_kept_when_the_form_comes_back(browser):
    response = browser.submit("/register", registration_form(no_pesel="on", pesel="", birth_date="", first_name=""))
    assert response.status_code == 422
    assert is_checked(response.text, "no_pesel")
    assert field_errors(response.text, "birth_date") == ["Podaj datę urodzenia."]
    assert field_errors(response.text, "pesel") == []


def test_r_acc_4_registering_an_existing_address_looks_exactly_the_same(browser, new_browser, db, mails):
    first = browser.register(email="anna@example.pl")
    first_done = browser.get("/register/done")

    other = new_browser()
    second = other.register(email="ANNA@example.pl", first_name="Ktoś", last_name="Inny", pesel=make_pesel(date(2002, 7, 8), male=False))
    second_done = other.get("/register/done")

    assert (second.status_code, second.headers["location"]) == (first.status_code, first.headers["location"])
    strip_token = lambda html: re.sub(r"[0-9a-f]{64,}", "TOKEN", html)  # noqa: E731
    assert strip_token(second_done.text) == strip_token(first_done.text)

    # Still one account, unchanged; the owner gets a mail saying someone tried (with login and reset links).
    assert db.count(User) == 1
    assert db.user("anna@example.pl").first_name == "Anna"
    sent = mails.to("anna@example.pl")
    assert len(sent) == 2
    assert "Aktywuj" in sent[0].subject
    notice = sent[1]
    assert "konto już istnieje" in notice.text
    assert notice.link("/login") == "/login"
    assert notice.link("/password/forgot") == "/password/forgot"
    assert "/activate/" not in notice.text and "/activate/" not in notice.html


def test_r_acc_2_inline_pesel_check_over_htmx(browser):
    browser.get("/register")
    bad = browser.htmx("/register/check?field=pesel", {"pesel": "44051401459"})
    assert bad.status_code == 200
    assert field_errors(bad.text, "pesel") == ["Ten numer PESEL ma błędną cyfrę kontrolną — sprawdź, czy nie ma literówki."]
    assert "<html" not in bad.text, "a fragment, not a page"
    good = browser.htmx("/register/check?field=pesel", {"pesel": VALID_PESEL})
    assert field_errors(good.text, "pesel") == []


def test_r_acc_1_inline_check_of_matching_emails_and_passwords(browser):
    browser.get("/register")
    mismatch = browser.htmx("/register/check?field=email_repeat", {"email": "a@example.pl", "email_repeat": "b@example.pl"})
    assert field_errors(mismatch.text, "email_repeat") == ["Adresy e-mail nie są takie same."]
    match = browser.htmx("/register/check?field=email_repeat", {"email": "a@example.pl", "email_repeat": "A@example.pl "})
    assert field_errors(match.text, "email_repeat") == []
    weak = browser.htmx("/register/check?field=password", {"password": "abc"})
    assert field_errors(weak.text, "password") == [
        "Hasło musi mieć co najmniej 8 znaków.", "Hasło musi zawierać wielką literę.", "Hasło musi zawierać cyfrę."]
    email = browser.htmx("/register/check?field=email", {"email": "nie-adres"})
    assert field_errors(email.text, "email") == ["To nie wygląda na adres e-mail (np. jan.kowalski@example.pl)."]


def test_inline_check_needs_the_csrf_header_too(browser, db):
    browser.get("/register")
    response = browser.client.post("/register/check?field=pesel", data={"pesel": VALID_PESEL}, headers={"hx-request": "true"})
    assert response.status_code == 403


def test_csrf_registration_without_token_is_refused_and_writes_nothing(browser, db):
    browser.get("/register")
    response = browser.post("/register", registration_form(), csrf=False)
    assert response.status_code == 403
    html = response.text
    # The error page in the site's look, in Polish.
    assert '<html lang="pl">' in html and 'class="site-header"' in html and "site-footer" in html
    assert "Kod błędu: 403" in page_text(html)
    assert "Formularz wygasł" in html and "Odśwież stronę i wyślij formularz jeszcze raz." in html
    assert db.count(User) == 0 and db.count(OutboxMail) == 0


@pytest.mark.parametrize("token", ["", "not-a-token", "x" * 64])
def test_csrf_registration_with_a_wrong_token_is_refused(browser, db, token):
    browser.get("/register")
    response = browser.post("/register", {**registration_form(), "_csrf_token": token}, csrf=False)
    assert response.status_code == 403
    assert db.count(User) == 0 and db.count(OutboxMail) == 0


def test_csrf_token_of_another_browser_is_refused(browser, new_browser, db):
    other = new_browser()
    other.get("/register")
    browser.get("/register")
    response = browser.post("/register", {**registration_form(), "_csrf_token": other.csrf()}, csrf=False)
    # A token is bound to its browser's csrftoken cookie (double submit), so it is refused here.
    assert response.status_code == 403
    assert db.count(User) == 0
