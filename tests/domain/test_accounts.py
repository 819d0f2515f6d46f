"""Passenger accounts, pure rules: registration fields, PESEL, activation links, e-mail, passwords (R-ACC-1..5)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.accounts import (
    InvalidPesel,
    LinkState,
    PasswordPolicy,
    RegistrationForm,
    Sex,
    check_registration,
    email_problem,
    link_state,
    mask_pesel,
    normalise_email,
    password_problems,
    read_pesel,
)

TODAY = date(2026, 3, 15)
WEIGHTS = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
CENTURY_OFFSET = {1800: 80, 1900: 0, 2000: 20, 2100: 40, 2200: 60}


def make_pesel(born: date, serial: int = 123, male: bool = True) -> str:
    """Build a PESEL the way R-ACC-2 describes it (independently of the code under test)."""
    century = born.year - born.year % 100
    month = born.month + CENTURY_OFFSET[century]
    sex_digit = (serial % 5) * 2 + (1 if male else 0)
    head = f"{born.year % 100:02d}{month:02d}{born.day:02d}{serial:03d}{sex_digit}"
    check = (10 - sum(int(d) * w for d, w in zip(head, WEIGHTS)) % 10) % 10
    return head + str(check)


def with_check_digit(first_ten: str) -> str:
    return first_ten + str((10 - sum(int(d) * w for d, w in zip(first_ten, WEIGHTS)) % 10) % 10)


def form(**changes: object) -> RegistrationForm:
    values: dict[str, object] = dict(
        first_name="Anna",
        last_name="Nowak",
        pesel="44051401458",
        email="anna@example.pl",
        email_repeat="anna@example.pl",
        password="Haslo1234",
        password_repeat="Haslo1234",
        accept_terms=True,
        gdpr_seen=True,
    )
    values.update(changes)
    return RegistrationForm(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------- R-ACC-1 registration fields


def test_r_acc_1_complete_form_gives_registration():
    result = check_registration(form(first_name="  Anna ", email="Anna@Example.PL", email_repeat="anna@example.pl"), TODAY)
    assert result.ok and result.errors == {}
    registration = result.registration
    assert registration is not None
    assert registration.first_name == "Anna"
    assert registration.email == "anna@example.pl"
    assert registration.pesel == "44051401458"
    assert registration.birth_date == date(1944, 5, 14)


def test_r_acc_1_every_missing_field_is_reported_at_once():
    result = check_registration(RegistrationForm(), TODAY)
    assert not result.ok
    assert result.errors == {
        "first_name": ["first_name.required"],
        "last_name": ["last_name.required"],
        "pesel": ["pesel.required"],
        "email": ["email.required"],
        "password": ["password.too_short", "password.no_upper", "password.no_digit"],
        "accept_terms": ["terms.required"],
        "gdpr_seen": ["gdpr.required"],
    }


@pytest.mark.parametrize("name", ["Anna", "Łucja", "Żaneta-Maria", "O'Neil", "Jean Paul", "Zoë", "Ewa."])
def test_r_acc_1_names_accept_letters_of_any_alphabet(name):
    assert "first_name" not in check_registration(form(first_name=name), TODAY).errors
    assert "last_name" not in check_registration(form(last_name=name), TODAY).errors


@pytest.mark.parametrize("name", ["Anna1", "-Anna", "<b>", "A" * 81, "Anna_Maria", "Anna@"])
def test_r_acc_1_names_reject_digits_symbols_and_overlong(name):
    assert check_registration(form(first_name=name), TODAY).errors["first_name"] == ["first_name.invalid"]
    assert check_registration(form(last_name=name), TODAY).errors["last_name"] == ["last_name.invalid"]


def test_r_acc_1_email_must_be_typed_twice_the_same():
    assert check_registration(form(email_repeat="anna@example.com"), TODAY).errors == {"email_repeat": ["email.mismatch"]}
    assert check_registration(form(email_repeat=""), TODAY).errors == {"email_repeat": ["email.mismatch"]}
    # Case and surrounding spaces do not matter.
    assert check_registration(form(email_repeat=" ANNA@example.pl "), TODAY).ok


def test_r_acc_1_invalid_email_is_reported_once_not_as_a_mismatch_too():
    assert check_registration(form(email="anna", email_repeat="anna"), TODAY).errors == {"email": ["email.invalid"]}


def test_r_acc_1_password_must_be_typed_twice_the_same():
    assert check_registration(form(password_repeat="Haslo12345"), TODAY).errors == {"password_repeat": ["password.mismatch"]}
    # Passwords are compared exactly (no trimming, case-sensitive).
    assert check_registration(form(password_repeat="haslo1234"), TODAY).errors == {"password_repeat": ["password.mismatch"]}


def test_r_acc_1_terms_and_gdpr_notice_must_be_confirmed():
    assert check_registration(form(accept_terms=False), TODAY).errors == {"accept_terms": ["terms.required"]}
    assert check_registration(form(gdpr_seen=False), TODAY).errors == {"gdpr_seen": ["gdpr.required"]}


def test_r_acc_1_no_pesel_takes_the_date_of_birth_instead():
    result = check_registration(form(no_pesel=True, pesel="", birth_date="1990-07-01"), TODAY)
    assert result.ok and result.registration is not None
    assert result.registration.pesel is None
    assert result.registration.birth_date == date(1990, 7, 1)


def test_r_acc_1_no_pesel_ignores_whatever_is_in_the_pesel_field():
    result = check_registration(form(no_pesel=True, pesel="12345", birth_date="1990-07-01"), TODAY)
    assert result.ok and result.registration is not None and result.registration.pesel is None


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("", "birth_date.required"),
        ("   ", "birth_date.required"),
        ("01.07.1990", "birth_date.invalid"),
        ("1990-02-30", "birth_date.invalid"),
        ("1899-12-31", "birth_date.out_of_range"),
        ("2026-03-16", "birth_date.out_of_range"),
    ],
)
def test_r_acc_1_no_pesel_date_of_birth_must_be_a_real_past_date(typed, code):
    assert check_registration(form(no_pesel=True, pesel="", birth_date=typed), TODAY).errors == {"birth_date": [code]}


def test_r_acc_1_no_pesel_date_of_birth_boundaries():
    assert check_registration(form(no_pesel=True, birth_date="1900-01-01"), TODAY).ok
    assert check_registration(form(no_pesel=True, birth_date=TODAY.isoformat()), TODAY).ok


# ---------------------------------------------------------------- R-ACC-2 PESEL


def test_r_acc_2_known_valid_example():
    info = read_pesel("44051401458")
    assert info.number == "44051401458"
    assert info.birth_date == date(1944, 5, 14)
    assert info.sex is Sex.MALE


@pytest.mark.parametrize(
    ("number", "born"),
    [
        # 1800s: month + 80
        (with_check_digit("0281010000"), date(1802, 1, 1)),
        (with_check_digit("9992310000"), date(1899, 12, 31)),
        # 1900s: month as is
        (with_check_digit("0001010000"), date(1900, 1, 1)),
        (with_check_digit("9912310000"), date(1999, 12, 31)),
        # 2000s: month + 20
        (with_check_digit("0021010000"), date(2000, 1, 1)),
        (with_check_digit("2432290000"), date(2024, 12, 29)),
        # 2100s: month + 40
        (with_check_digit("0041010000"), date(2100, 1, 1)),
        (with_check_digit("9952310000"), date(2199, 12, 31)),
        # 2200s: month + 60
        (with_check_digit("0061010000"), date(2200, 1, 1)),
        (with_check_digit("9972310000"), date(2299, 12, 31)),
    ],
)
def test_r_acc_2_century_is_encoded_in_the_month(number, born):
    assert read_pesel(number).birth_date == born


@pytest.mark.parametrize("century", sorted(CENTURY_OFFSET))
def test_r_acc_2_vectors_in_all_five_centuries(century):
    # century + 4 is a leap year in every one of them (1804, 1904, 2004, 2104, 2204).
    for born in (date(century, 1, 1), date(century + 4, 2, 29), date(century + 55, 6, 15), date(century + 99, 12, 31)):
        number = make_pesel(born, serial=456, male=False)
        info = read_pesel(number)
        assert (info.birth_date, info.sex) == (born, Sex.FEMALE)


def test_r_acc_2_tenth_digit_odd_for_men_even_for_women():
    for serial in range(0, 1000, 37):
        assert read_pesel(make_pesel(date(1985, 3, 9), serial, male=True)).sex is Sex.MALE
        assert read_pesel(make_pesel(date(1985, 3, 9), serial, male=False)).sex is Sex.FEMALE


@pytest.mark.parametrize("wrong_last_digit", [d for d in "0123456789" if d != "8"])
def test_r_acc_2_bad_check_digit(wrong_last_digit):
    with pytest.raises(InvalidPesel) as caught:
        read_pesel("4405140145" + wrong_last_digit)
    assert caught.value.code == "pesel.checksum"


def test_r_acc_2_swapped_digits_fail_the_checksum():
    with pytest.raises(InvalidPesel) as caught:
        read_pesel("44051410458")  # two digits of the serial swapped
    assert caught.value.code == "pesel.checksum"


@pytest.mark.parametrize(
    ("first_ten", "why"),
    [
        ("0002290000", "1900-02-29: 1900 was not a leap year"),
        ("0082290000", "1800-02-29: 1800 was not a leap year"),
        ("0042290000", "2100-02-29: 2100 is not a leap year"),
        ("0062290000", "2200-02-29: 2200 is not a leap year"),
        ("2322290000", "2023-02-29"),
        ("9004310000", "1990-04-31"),
        ("9013010000", "month 13 in the 1900s"),
        ("9033010000", "month 13 in the 2000s"),
        ("9000010000", "month 0"),
        ("9020010000", "month 0 in the 2000s"),
        ("9001000000", "day 0"),
        ("9001320000", "day 32"),
        ("9093010000", "month code 93"),
    ],
)
def test_r_acc_2_impossible_dates_are_rejected_even_with_a_correct_check_digit(first_ten, why):
    with pytest.raises(InvalidPesel) as caught:
        read_pesel(with_check_digit(first_ten))
    assert caught.value.code == "pesel.date", why


def test_r_acc_2_leap_days_that_exist():
    assert read_pesel(with_check_digit("0022290000")).birth_date == date(2000, 2, 29)
    assert read_pesel(with_check_digit("9602290000")).birth_date == date(1996, 2, 29)


@pytest.mark.parametrize("typed", ["4405140145", "440514014588", "4405140145a", "ABCDEFGHIJK", "44 05 14 01 45"])
def test_r_acc_2_must_be_eleven_digits(typed):
    with pytest.raises(InvalidPesel) as caught:
        read_pesel(typed)
    assert caught.value.code == "pesel.format"


@pytest.mark.parametrize("typed", ["", "   ", None])
def test_r_acc_2_empty_is_required(typed):
    with pytest.raises(InvalidPesel) as caught:
        read_pesel(typed)  # type: ignore[arg-type]
    assert caught.value.code == "pesel.required"


def test_r_acc_2_spaces_and_dashes_around_groups_are_tolerated():
    assert read_pesel(" 440514-01458 ").number == "44051401458"


def test_r_acc_2_registration_reports_each_pesel_problem_on_the_pesel_field():
    assert check_registration(form(pesel="44051401459"), TODAY).errors == {"pesel": ["pesel.checksum"]}
    assert check_registration(form(pesel="4405140145"), TODAY).errors == {"pesel": ["pesel.format"]}
    assert check_registration(form(pesel=with_check_digit("0002290000")), TODAY).errors == {"pesel": ["pesel.date"]}
    assert check_registration(form(pesel=""), TODAY).errors == {"pesel": ["pesel.required"]}


def test_r_acc_2_registration_refuses_a_birth_date_in_the_future():
    tomorrow = make_pesel(TODAY + timedelta(days=1))
    assert check_registration(form(pesel=tomorrow), TODAY).errors == {"pesel": ["pesel.future"]}
    born_today = make_pesel(TODAY)
    result = check_registration(form(pesel=born_today), TODAY)
    assert result.ok and result.registration is not None and result.registration.birth_date == TODAY


def test_r_acc_2_registration_takes_the_birth_date_from_the_pesel():
    result = check_registration(form(pesel=make_pesel(date(2005, 11, 30)), birth_date="1970-01-01"), TODAY)
    assert result.registration is not None and result.registration.birth_date == date(2005, 11, 30)


def test_r_acc_2_masked_pesel_shows_only_the_ends():
    masked = mask_pesel("44051401458")
    assert masked == "44\u2022\u2022\u2022\u2022\u2022\u2022\u202258"
    assert "0514014" not in masked


@given(st.dates(min_value=date(1800, 1, 1), max_value=date(2299, 12, 31)), st.integers(0, 999), st.booleans())
def test_r_acc_2_every_real_date_round_trips(born, serial, male):
    info = read_pesel(make_pesel(born, serial, male))
    assert info.birth_date == born
    assert info.sex is (Sex.MALE if male else Sex.FEMALE)


@given(st.dates(min_value=date(1800, 1, 1), max_value=date(2299, 12, 31)), st.integers(0, 10), st.integers(1, 9))
def test_r_acc_2_any_single_wrong_digit_is_caught(born, position, delta):
    number = make_pesel(born)
    changed = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1 :]
    with pytest.raises(InvalidPesel) as caught:
        read_pesel(changed)
    assert caught.value.code in {"pesel.checksum", "pesel.date"}


# ---------------------------------------------------------------- R-ACC-3 activation link

SENT = datetime(2026, 3, 15, 10, 0, tzinfo=timezone.utc)
THREE_HOURS = timedelta(hours=3)


def test_r_acc_3_link_valid_until_just_before_three_hours():
    assert link_state(SENT, None, SENT, THREE_HOURS) is LinkState.VALID
    assert link_state(SENT, None, SENT + timedelta(hours=2, minutes=59, seconds=59), THREE_HOURS) is LinkState.VALID


def test_r_acc_3_link_expired_at_three_hours():
    assert link_state(SENT, None, SENT + THREE_HOURS, THREE_HOURS) is LinkState.EXPIRED
    assert link_state(SENT, None, SENT + timedelta(days=30), THREE_HOURS) is LinkState.EXPIRED


def test_r_acc_3_link_is_single_use():
    used = SENT + timedelta(minutes=5)
    assert link_state(SENT, used, SENT + timedelta(minutes=6), THREE_HOURS) is LinkState.USED
    # "Used" wins over "expired": the person learns the account is already active.
    assert link_state(SENT, used, SENT + timedelta(hours=5), THREE_HOURS) is LinkState.USED


# ---------------------------------------------------------------- R-ACC-4 e-mail is the user name


def test_r_acc_4_email_is_compared_case_insensitively_without_spaces():
    assert normalise_email("  Jan.Kowalski@Example.PL ") == "jan.kowalski@example.pl"
    assert normalise_email(None) == ""  # type: ignore[arg-type]


@pytest.mark.parametrize("address", ["jan@example.pl", "jan.kowalski+ekp@poczta.example.com.pl", "J@X.PL", "a-b_c@sub-domain.example.org"])
def test_r_acc_4_valid_email_addresses(address):
    assert email_problem(address) is None


@pytest.mark.parametrize(
    ("address", "code"),
    [
        ("", "email.required"),
        ("  ", "email.required"),
        ("jan", "email.invalid"),
        ("jan@", "email.invalid"),
        ("@example.pl", "email.invalid"),
        ("jan@example", "email.invalid"),
        ("jan kowalski@example.pl", "email.invalid"),
        ("jan@-example.pl", "email.invalid"),
        ("jan@@example.pl", "email.invalid"),
        ("j" * 65 + "@example.pl", "email.invalid"),
        ("jan@" + "a" * 250 + ".pl", "email.invalid"),
        # Issue 13: one address, nothing a mail header could read as more (checked by email-validator).
        ("a,b@example.pl", "email.invalid"),
        ("a<b@example.pl", "email.invalid"),
        ("Ala <ala@example.pl>", "email.invalid"),
        ('"a,b"@example.pl', "email.invalid"),
        ("a\x00b@example.pl", "email.invalid"),
        ("a\rb@example.pl", "email.invalid"),
        ("jan@example.pl\nBcc: x@example.pl", "email.invalid"),
        ("jan@[127.0.0.1]", "email.invalid"),
        ("jan@localhost", "email.invalid"),
        ("ą@przykład.pl", "email.invalid"),
        ("jan..kowalski@example.pl", "email.invalid"),
    ],
)
def test_r_acc_4_invalid_email_addresses(address, code):
    assert email_problem(address) == code


# ---------------------------------------------------------------- R-ACC-5 password policy


def test_r_acc_5_eight_characters_with_upper_case_and_digit_is_enough():
    assert password_problems("Abcdefg1") == []


@pytest.mark.parametrize(
    ("password", "codes"),
    [
        ("Abcdef1", ["password.too_short"]),
        ("abcdefg1", ["password.no_upper"]),
        ("Abcdefgh", ["password.no_digit"]),
        ("abcdefgh", ["password.no_upper", "password.no_digit"]),
        ("", ["password.too_short", "password.no_upper", "password.no_digit"]),
        ("A1" + "x" * 255, ["password.too_long"]),
    ],
)
def test_r_acc_5_each_missing_requirement_is_named(password, codes):
    assert password_problems(password) == codes


def test_r_acc_5_polish_upper_case_letters_count():
    assert password_problems("żółwiaŁ1") == []


def test_r_acc_5_policy_is_configurable():
    strict = PasswordPolicy(min_length=12)
    assert password_problems("Abcdefgh1234", strict) == []
    assert password_problems("Abcdefgh123", strict) == ["password.too_short"]
    relaxed = PasswordPolicy(need_upper=False, need_digit=False)
    assert password_problems("abcdefgh", relaxed) == []
    result = check_registration(form(password="Abcdefgh123", password_repeat="Abcdefgh123"), TODAY, strict)
    assert result.errors == {"password": ["password.too_short"]}


# ---------------------------------------------------------------- R-AUTH-2 one person, one account


def test_r_auth_2_a_pesel_held_by_another_active_account_is_held_elsewhere():
    from domain.accounts import pesel_held_elsewhere

    assert pesel_held_elsewhere([7]) is True  # a new registration
    assert pesel_held_elsewhere([7], account_id=8) is True
    assert pesel_held_elsewhere([7], account_id=7) is False  # the holder itself
    assert pesel_held_elsewhere([]) is False  # inactive accounts hold nothing


def test_r_auth_2_the_other_account_is_named_only_masked():
    from domain.accounts import mask_email

    assert mask_email("jan.kowalski@example.pl") == "j\u2022\u2022\u2022@example.pl"
    assert mask_email("") == "\u2022\u2022\u2022"
