"""City cards: carrier types, the linking decision, several cards per account, resident status as
registry data (R-CARD-1..4), and reading one row of the operator's registry export."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.cards import (
    LinkOutcome,
    RegistryCard,
    RegistryRow,
    RowProblem,
    client_code_problem,
    link_decision,
    mask_holder_name,
    missing_columns,
    normalise_client_code,
    read_registry_row,
)
from domain.carriers import (
    CarrierType,
    LinkedCard,
    ResidentStatus,
    ResidentStatusState,
    carrier_info,
    is_mobile,
    resident_status_on,
)

PESEL = "44051401458"  # valid check digit, born 1944-05-14
OTHER_PESEL = "02270803624"  # valid check digit, born 2002-07-08
MY_HASH = "a" * 64
OTHER_HASH = "b" * 64
ME = 7
SOMEONE_ELSE = 8

MOBILE_CODES = {"mKKM", "mKK"}


def row(**fields: str) -> dict[str, str]:
    data = {"type": "KKM", "client_code": "100200300", "pesel": PESEL, "holder_name": "Anna Nowak"}
    data.update(fields)
    return data


def parsed(**fields: str) -> RegistryRow:
    result = read_registry_row(2, row(**fields))
    assert isinstance(result, RegistryRow), result
    return result


def problem(**fields: str) -> str:
    result = read_registry_row(5, row(**fields))
    assert isinstance(result, RowProblem), result
    assert result.line == 5
    return result.reason


def card(carrier_type: CarrierType = CarrierType.KKM, *, pesel_hash: str = MY_HASH,
         account_id: int | None = None) -> RegistryCard:
    return RegistryCard(card_id=1, carrier_type=carrier_type, client_code="100200300", pesel_hash=pesel_hash,
                        account_id=account_id)


# --------------------------------------------------------------------------- R-CARD-1 carrier types


@pytest.mark.parametrize("carrier_type", list(CarrierType), ids=lambda ct: ct.value)
def test_r_card_1_every_carrier_type_is_read_from_the_registry(carrier_type: CarrierType) -> None:
    result = parsed(type=carrier_type.value)
    assert result.carrier_type is carrier_type
    # Plastic vs mobile is a property of the type, never of one card.
    assert is_mobile(result.carrier_type) == (carrier_type.value in MOBILE_CODES)
    assert carrier_info(result.carrier_type).is_plastic == (carrier_type.value not in MOBILE_CODES)
    assert LinkedCard(1, result.carrier_type).is_mobile == (carrier_type.value in MOBILE_CODES)


@pytest.mark.parametrize("typed, expected", [
    ("mkkm", CarrierType.MKKM), ("MKK", CarrierType.MKK), (" kk ", CarrierType.KK), ("KKR 3+", CarrierType.KKR3_PLUS),
    ("els", CarrierType.ELS), ("Eld", CarrierType.ELD), ("mka", CarrierType.MKA),
])
def test_r_card_1_type_codes_in_the_export_ignore_case_and_spaces(typed: str, expected: CarrierType) -> None:
    assert parsed(type=typed).carrier_type is expected


@pytest.mark.parametrize("typed", ["", "KKR3", "KM", "legitymacja", "mKKMM"])
def test_r_card_1_unknown_type_is_a_row_problem_listing_the_allowed_codes(typed: str) -> None:
    reason = problem(type=typed)
    assert reason.startswith(f"type {typed!r} is not a carrier type")
    for ct in CarrierType:
        assert ct.value in reason


# --------------------------------------------------------------------------- R-CARD-2 the linking decision


def test_r_card_2_type_code_and_pesel_match_gives_the_summary() -> None:
    assert link_decision(card(), account_id=ME, account_pesel_hash=MY_HASH) is LinkOutcome.MATCH


@pytest.mark.parametrize("kind", ["wrong_type", "wrong_code", "nonexistent_code", "someone_elses_pesel"])
def test_r_card_2_every_mismatch_kind_gives_the_same_answer(kind: str) -> None:
    # The registry is searched by type + code: a wrong type, a wrong code and a code that does not
    # exist all find nothing; a card with someone else's PESEL is found but must not be revealed.
    found = card(pesel_hash=OTHER_HASH) if kind == "someone_elses_pesel" else None
    assert link_decision(found, account_id=ME, account_pesel_hash=MY_HASH) is LinkOutcome.MISMATCH


@given(
    account_id=st.none() | st.integers(1, 1000),
    blocked=st.booleans(),
    other_hash=st.text("0123456789abcdef", min_size=64, max_size=64).filter(lambda h: h != MY_HASH),
)
def test_r_card_2_a_card_of_someone_else_never_reveals_whether_it_is_linked_or_blocked(
    account_id: int | None, blocked: bool, other_hash: str,
) -> None:
    found = card(pesel_hash=other_hash, account_id=account_id)
    assert link_decision(found, account_id=ME, account_pesel_hash=MY_HASH, blocked=blocked) is LinkOutcome.MISMATCH


@pytest.mark.parametrize("found", [None, card(), card(pesel_hash=OTHER_HASH), card(account_id=SOMEONE_ELSE)])
def test_r_card_2_account_without_pesel_is_told_to_visit_a_service_desk_whatever_it_typed(
    found: RegistryCard | None,
) -> None:
    assert link_decision(found, account_id=ME, account_pesel_hash=None) is LinkOutcome.NO_PESEL


def test_r_card_2_blocked_card_is_refused_only_after_all_three_match() -> None:
    assert link_decision(card(), account_id=ME, account_pesel_hash=MY_HASH, blocked=True) is LinkOutcome.BLOCKED
    assert link_decision(None, account_id=ME, account_pesel_hash=MY_HASH, blocked=True) is LinkOutcome.MISMATCH


def test_r_card_2_pesel_hashes_compare_exactly() -> None:
    assert link_decision(card(pesel_hash=MY_HASH.upper()), account_id=ME, account_pesel_hash=MY_HASH) is LinkOutcome.MISMATCH
    assert link_decision(card(pesel_hash=MY_HASH[:-1]), account_id=ME, account_pesel_hash=MY_HASH) is LinkOutcome.MISMATCH


# --------------------------------------------------------------------------- R-CARD-3 several cards, one account per card


def test_r_card_3_several_cards_of_one_person_can_each_be_linked() -> None:
    cards = [
        RegistryCard(1, CarrierType.KKM, "100200300", MY_HASH, None),
        RegistryCard(2, CarrierType.MKK, "MK4405140", MY_HASH, None),
        RegistryCard(3, CarrierType.KKM, "100200301", MY_HASH, ME),  # already on my account
    ]
    outcomes = [link_decision(c, account_id=ME, account_pesel_hash=MY_HASH) for c in cards]
    assert outcomes == [LinkOutcome.MATCH, LinkOutcome.MATCH, LinkOutcome.ALREADY_YOURS]


def test_r_card_3_card_on_another_account_is_refused_when_all_three_match() -> None:
    assert link_decision(card(account_id=SOMEONE_ELSE), account_id=ME,
                         account_pesel_hash=MY_HASH) is LinkOutcome.LINKED_ELSEWHERE


def test_r_card_3_card_already_on_this_account_is_not_linked_twice() -> None:
    assert link_decision(card(account_id=ME), account_id=ME, account_pesel_hash=MY_HASH) is LinkOutcome.ALREADY_YOURS


# --------------------------------------------------------------------------- R-CARD-4 resident status is registry data


def test_r_card_4_resident_status_with_its_validity_comes_from_the_registry_row() -> None:
    result = parsed(resident_from="2024-01-01", resident_until="2025-12-31")
    assert result.resident == ResidentStatus(date(2024, 1, 1), date(2025, 12, 31))
    assert resident_status_on(result.resident, date(2023, 12, 31)) is ResidentStatusState.NOT_YET_VALID
    assert resident_status_on(result.resident, date(2024, 1, 1)) is ResidentStatusState.VALID
    assert resident_status_on(result.resident, date(2025, 12, 31)) is ResidentStatusState.VALID
    assert resident_status_on(result.resident, date(2026, 1, 1)) is ResidentStatusState.EXPIRED


def test_r_card_4_no_dates_means_no_resident_status() -> None:
    result = parsed(resident_from="", resident_until="")
    assert result.resident is None
    assert resident_status_on(result.resident, date(2025, 6, 1)) is ResidentStatusState.NONE
    assert parsed().resident is None  # the optional columns may be absent altogether


def test_r_card_4_open_ended_periods() -> None:
    since = parsed(resident_from="2024-03-01").resident
    assert since == ResidentStatus(date(2024, 3, 1), None)
    assert resident_status_on(since, date(2099, 1, 1)) is ResidentStatusState.VALID
    until = parsed(resident_until="2024-03-01").resident
    assert until == ResidentStatus(None, date(2024, 3, 1))
    assert resident_status_on(until, date(2000, 1, 1)) is ResidentStatusState.VALID
    assert resident_status_on(until, date(2024, 3, 2)) is ResidentStatusState.EXPIRED


def test_r_card_4_one_day_period_and_a_period_ending_before_it_starts() -> None:
    assert parsed(resident_from="2024-05-05", resident_until="2024-05-05").resident == ResidentStatus(
        date(2024, 5, 5), date(2024, 5, 5))
    assert problem(resident_from="2024-05-05", resident_until="2024-05-04") == "resident_until is before resident_from"


def test_r_card_4_the_status_is_a_property_of_the_card_not_of_the_account() -> None:
    # A linked card carries the status the registry gave it; nothing on the account can change it.
    status = ResidentStatus(date(2024, 1, 1), date(2024, 12, 31))
    linked = LinkedCard(card_id=1, carrier_type=CarrierType.KK, resident_status=status)
    assert linked.resident_status_on(date(2024, 6, 1)) is ResidentStatusState.VALID
    assert LinkedCard(card_id=2, carrier_type=CarrierType.KK).resident_status_on(date(2024, 6, 1)) is ResidentStatusState.NONE


# --------------------------------------------------------------------------- one row of the export


def test_good_row_is_read_and_tidied() -> None:
    result = read_registry_row(3, {" Type ": " mkk ", "CLIENT_CODE": " mk-4405 140 ", "Pesel": " 44051401458 ",
                                   "holder_name": "  Anna   Maria  Nowak ", "blocked": "NO"})
    assert result == RegistryRow(line=3, carrier_type=CarrierType.MKK, client_code="MK4405140", pesel=PESEL,
                                 holder_name="Anna Maria Nowak", resident=None, blocked=False)


@pytest.mark.parametrize("written", ["2024-02-29", "29.02.2024"])
def test_both_date_formats_are_read(written: str) -> None:
    assert parsed(resident_from=written).resident == ResidentStatus(date(2024, 2, 29), None)


def test_mixed_date_formats_in_one_row() -> None:
    assert parsed(resident_from="01.01.2024", resident_until="2024-12-31").resident == ResidentStatus(
        date(2024, 1, 1), date(2024, 12, 31))


@pytest.mark.parametrize("written", ["31.02.2024", "2023-02-29", "2024/01/01", "1.1.2024", "01-01-2024", "jutro", "2024-13-01"])
def test_bad_dates_are_row_problems(written: str) -> None:
    assert problem(resident_until=written) == "resident_from/resident_until must be dates as YYYY-MM-DD or DD.MM.YYYY"


@pytest.mark.parametrize("written, blocked", [
    ("", False), ("0", False), ("no", False), ("false", False), ("nie", False), ("NIE", False),
    ("1", True), ("yes", True), ("true", True), ("tak", True), ("TAK", True),
])
def test_blocked_flag(written: str, blocked: bool) -> None:
    assert parsed(blocked=written).blocked is blocked


@pytest.mark.parametrize("fields, reason", [
    ({"blocked": "maybe"}, "blocked must be yes/no (or 1/0)"),
    ({"client_code": ""}, "client_code is missing"),
    ({"client_code": " - "}, "client_code is missing"),
    ({"client_code": "123"}, "client_code must be 4-20 letters or digits"),
    ({"client_code": "1" * 21}, "client_code must be 4-20 letters or digits"),
    ({"client_code": "1002/0030"}, "client_code must be 4-20 letters or digits"),
    ({"client_code": "ŻÓŁW1234"}, "client_code must be 4-20 letters or digits"),
    ({"pesel": ""}, "pesel is missing"),
    ({"pesel": "4405140145"}, "pesel must be 11 digits"),
    ({"pesel": "4405140145X"}, "pesel must be 11 digits"),
    ({"pesel": "44051401459"}, "pesel has a wrong check digit"),
    ({"pesel": "00022900003"}, "pesel encodes a date that does not exist"),  # 29 Feb 1900, valid check digit
    ({"holder_name": ""}, "holder_name is missing"),
    ({"holder_name": "   "}, "holder_name is missing"),
    ({"holder_name": "A" * 161}, "holder_name is longer than 160 characters"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_rows_give_a_reason_with_the_column(fields: dict[str, str], reason: str) -> None:
    assert problem(**fields) == reason


def test_row_problems_never_quote_the_pesel() -> None:
    for bad in ["44051401459", "4405140145X", "00022900003"]:
        assert bad not in problem(pesel=bad)


def test_missing_columns_are_named_and_header_case_does_not_matter() -> None:
    assert missing_columns(["Type", " CLIENT_CODE ", "pesel", "holder_name"]) == []
    assert missing_columns(["type", "pesel"]) == ["client_code", "holder_name"]
    assert missing_columns([]) == ["type", "client_code", "pesel", "holder_name"]


def test_holder_name_is_masked_to_the_first_letter_of_the_surname() -> None:
    assert mask_holder_name("Anna Nowak") == "Anna N."
    assert mask_holder_name("Anna Maria Nowak-Wiśniewska") == "Anna Maria N."
    assert mask_holder_name("Cher") == "Cher"


# --------------------------------------------------------------------------- client-code normalisation (Hypothesis)


CODE = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=4, max_size=20)


@st.composite
def typed_like_a_person(draw: st.DrawFn) -> tuple[str, str]:
    """A valid code and how someone might type it: lower case, spaces and dashes between characters."""
    code = draw(CODE)
    typed = ""
    for char in code:
        typed += draw(st.sampled_from(["", " ", "-", "  ", "\t", " - "]))
        typed += char.lower() if draw(st.booleans()) else char
    typed += draw(st.sampled_from(["", " ", "\n", "-"]))
    return code, typed


@given(typed_like_a_person())
def test_client_code_typed_with_spaces_dashes_or_lower_case_normalises_to_the_printed_code(case: tuple[str, str]) -> None:
    code, typed = case
    assert normalise_client_code(typed) == code
    assert client_code_problem(typed) is None
    assert parsed(client_code=typed).client_code == code


@given(st.text())
def test_client_code_normalisation_is_idempotent_and_strips_separators(text: str) -> None:
    once = normalise_client_code(text)
    assert normalise_client_code(once) == once
    assert " " not in once and "-" not in once
    assert once == once.upper()


@given(st.text())
def test_client_code_is_accepted_only_as_4_to_20_ascii_letters_or_digits(text: str) -> None:
    code = normalise_client_code(text)
    accepted = client_code_problem(text) is None
    assert accepted == (4 <= len(code) <= 20 and all(c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" for c in code))
    if not code:
        assert client_code_problem(text) == "client_code.required"
