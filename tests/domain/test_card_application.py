"""Applying for a Kołobrzeg city card: R-KKM-1, R-KKM-2, R-KKM-3, R-KKM-4, R-KKM-8."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.card_application import (
    CARD_DEPOSIT,
    ApplicationChannel,
    BalanceHandling,
    ApplicationProblem,
    CardApplication,
    CardEnd,
    CardField,
    DepositKept,
    Document,
    Entitlement,
    GiveUpProblem,
    PhotoFile,
    add_business_days,
    application_date,
    business_days_between,
    card_end_reason,
    check_application,
    collect_by,
    data_change_consequence,
    deposit_due,
    deposit_kept,
    deposit_refund,
    documents_at_collection,
    entitlement_of,
    give_up_card,
    is_business_day,
    may_apply_for,
    next_business_day,
    photo_problems,
    ready_by,
    required_documents,
    uncollected,
)
from domain.ledger import EntryKind, LedgerEntry
from domain.public_holidays import polish_public_holidays
from domain.purse import CardKind, PurseCard, RegisteredFare, report_loss

NOW = datetime(2026, 3, 2, 10, 0)
DESK_DOCS = frozenset({Document.APPLICATION_FORM, Document.PHOTO, Document.PHOTO_ID})
GOOD_PHOTO = PhotoFile(width=320, height=240, format="JPEG")


def personal_card(**kw) -> PurseCard:
    values = dict(number="K-1", kind=CardKind.PERSONAL, issued_on=date(2025, 6, 1), last_used_on=date(2026, 2, 1))
    values.update(kw)
    return PurseCard(**values)


def desk_application(**kw) -> CardApplication:
    values = dict(
        kind=CardKind.PERSONAL, submitted_on=date(2026, 3, 2), documents=DESK_DOCS, deposit_paid=CARD_DEPOSIT
    )
    values.update(kw)
    return CardApplication(**values)


def electronic_application(**kw) -> CardApplication:
    values = dict(
        kind=CardKind.PERSONAL,
        channel=ApplicationChannel.ELECTRONIC,
        submitted_on=date(2026, 3, 2),
        documents=frozenset({Document.APPLICATION_FORM}),
        photo_file=GOOD_PHOTO,
        deposit_paid=CARD_DEPOSIT,
        deposit_booked_on=date(2026, 3, 4),
    )
    values.update(kw)
    return CardApplication(**values)


# --------------------------------------------------------------------------- R-KKM-1


def test_r_kkm_1_one_personal_card_per_passenger() -> None:
    held = [personal_card()]
    assert check_application(desk_application(), cards_held=held, now=NOW) == [
        ApplicationProblem.ALREADY_HAS_PERSONAL_CARD
    ]
    assert not may_apply_for(CardKind.PERSONAL, held, NOW)


def test_r_kkm_1_bearer_cards_are_not_limited() -> None:
    held = [personal_card(), PurseCard(number="B-1", kind=CardKind.BEARER, issued_on=date(2026, 1, 1))]
    bearer = CardApplication(kind=CardKind.BEARER, submitted_on=date(2026, 3, 2), deposit_paid=CARD_DEPOSIT)
    assert check_application(bearer, cards_held=held, now=NOW) == []
    assert may_apply_for(CardKind.BEARER, held, NOW)


def test_r_kkm_1_a_lost_or_void_card_does_not_block_a_new_application() -> None:
    lost = report_loss(personal_card(), datetime(2026, 3, 1, 9, 0))
    void = personal_card(number="K-2", issued_on=date(2020, 1, 1), last_used_on=date(2021, 1, 1))
    assert check_application(desk_application(), cards_held=[lost, void], now=NOW) == []
    assert may_apply_for(CardKind.PERSONAL, [lost, void], NOW)


def test_r_kkm_1_cards_held_need_now() -> None:
    with pytest.raises(ValueError):
        check_application(desk_application(), cards_held=[personal_card()])


def test_r_kkm_1_entitlement_of_registered_fare() -> None:
    assert entitlement_of(RegisteredFare.NORMAL) is Entitlement.NONE
    assert entitlement_of(RegisteredFare.FREE) is Entitlement.FREE
    for fare in (RegisteredFare.OFF_30, RegisteredFare.OFF_50, RegisteredFare.OFF_75):
        assert entitlement_of(fare) is Entitlement.REDUCED


# --------------------------------------------------------------------------- R-KKM-2


def test_r_kkm_2_deposit_is_12_zl_and_waived_for_free_rides() -> None:
    assert CARD_DEPOSIT == 1200
    assert deposit_due(CardKind.PERSONAL, Entitlement.NONE) == 1200
    assert deposit_due(CardKind.PERSONAL, Entitlement.REDUCED) == 1200
    assert deposit_due(CardKind.PERSONAL, Entitlement.FREE) == 0
    assert deposit_due(CardKind.BEARER) == 1200
    assert deposit_due(CardKind.PERSONAL, deposit=1500) == 1500


def test_r_kkm_2_bearer_card_has_no_entitlement() -> None:
    with pytest.raises(ValueError):
        deposit_due(CardKind.BEARER, Entitlement.FREE)


def test_r_kkm_2_application_without_deposit_is_incomplete() -> None:
    assert check_application(desk_application(deposit_paid=1199)) == [ApplicationProblem.DEPOSIT_NOT_PAID]
    free = desk_application(
        entitlement=Entitlement.FREE, documents=DESK_DOCS | {Document.ENTITLEMENT_DOCUMENT}, deposit_paid=0
    )
    assert check_application(free) == []


def test_r_kkm_2_refund_on_giving_up_with_receipt() -> None:
    assert deposit_refund(CardEnd.GIVEN_UP, deposit_paid=1200) == 1200
    assert deposit_kept(CardEnd.GIVEN_UP, deposit_paid=1200) is None
    assert deposit_refund(CardEnd.GIVEN_UP, deposit_paid=1200, receipt_shown=False) == 0
    assert deposit_kept(CardEnd.GIVEN_UP, deposit_paid=1200, receipt_shown=False) is DepositKept.NO_RECEIPT
    assert deposit_refund(CardEnd.GIVEN_UP, deposit_paid=0) == 0
    assert deposit_kept(CardEnd.GIVEN_UP, deposit_paid=0) is DepositKept.NOTHING_PAID


@pytest.mark.parametrize(
    "reason", [CardEnd.NOT_COLLECTED, CardEnd.LOST, CardEnd.DAMAGED_BY_HOLDER, CardEnd.UNUSED_3_YEARS]
)
def test_r_kkm_2_no_refund_exceptions(reason: CardEnd) -> None:
    assert deposit_refund(reason, deposit_paid=1200) == 0
    assert deposit_kept(reason, deposit_paid=1200) is DepositKept(reason.value)


def test_r_kkm_2_card_end_reason_from_the_card_state() -> None:
    card = personal_card()
    assert card_end_reason(card, NOW) is CardEnd.GIVEN_UP
    assert card_end_reason(card, NOW, damaged_by_holder=True) is CardEnd.DAMAGED_BY_HOLDER
    lost = report_loss(card, datetime(2026, 3, 1, 9, 0))
    assert card_end_reason(lost, NOW) is CardEnd.LOST
    unused = personal_card(issued_on=date(2020, 1, 1), last_used_on=date(2023, 3, 1))
    assert card_end_reason(unused, datetime(2026, 3, 1, 12, 0)) is CardEnd.GIVEN_UP  # 3 years end that day
    assert card_end_reason(unused, datetime(2026, 3, 2, 0, 0)) is CardEnd.UNUSED_3_YEARS
    assert deposit_refund(card_end_reason(unused, NOW), deposit_paid=1200) == 0


def test_r_kkm_2_giving_up_a_collected_card_refunds_the_deposit_and_pays_out_or_moves_the_balance() -> None:
    card, other = personal_card(), personal_card(number="K-2")
    paid_out = give_up_card(card, NOW, balance=750, deposit_paid=1200, pay_out=True)
    assert paid_out == give_up_card(card, NOW, balance=750, deposit_paid=1200, pay_out=True)  # pure
    assert (paid_out.end, paid_out.deposit_refund, paid_out.deposit_kept) == (CardEnd.GIVEN_UP, 1200, None)
    assert (paid_out.balance, paid_out.amount) == (BalanceHandling.PAID_OUT, 750)
    assert paid_out.old_card_entries == (LedgerEntry(EntryKind.PAYOUT, -750, "given-up"),)
    moved = give_up_card(card, NOW, balance=750, deposit_paid=1200, move_to=other, move_to_balance=100)
    assert moved.balance is BalanceHandling.MOVED
    assert [e.amount for e in moved.old_card_entries] == [-750] and [e.amount for e in moved.new_card_entries] == [750]
    empty = give_up_card(card, NOW, balance=0, deposit_paid=1200)
    assert (empty.balance, empty.old_card_entries, empty.deposit_refund) == (BalanceHandling.NOTHING, (), 1200)
    free = give_up_card(card, NOW, balance=0, deposit_paid=0)
    assert (free.deposit_refund, free.deposit_kept) == (0, DepositKept.NOTHING_PAID)


@pytest.mark.parametrize(("kwargs", "end"), [
    ({"damaged_by_holder": True}, CardEnd.DAMAGED_BY_HOLDER),
    ({"card": "lost"}, CardEnd.LOST),
    ({"card": "reported"}, CardEnd.LOST),  # reported lost today, blocked only from 08:00 tomorrow
    ({"card": "unused"}, CardEnd.UNUSED_3_YEARS),
])
def test_r_kkm_2_the_deposit_is_kept_when_the_card_was_damaged_lost_or_unused_3_years(kwargs, end) -> None:
    which = kwargs.pop("card", "")
    card = {"lost": report_loss(personal_card(), datetime(2026, 3, 1, 9, 0)),
            "reported": report_loss(personal_card(), NOW),
            "unused": personal_card(issued_on=date(2020, 1, 1), last_used_on=date(2023, 3, 1))}.get(which, personal_card())
    done = give_up_card(card, NOW, balance=500, deposit_paid=1200, pay_out=True, **kwargs)
    assert (done.end, done.deposit_refund, done.deposit_kept) == (end, 0, DepositKept(end.value))
    if end is CardEnd.UNUSED_3_YEARS:  # R-KKM-5: the funds are forfeited too
        assert (done.balance, done.old_card_entries) == \
            (BalanceHandling.FORFEITED, (LedgerEntry(EntryKind.FORFEITURE, -500, "3y-unused"),))
    else:
        assert done.balance is BalanceHandling.PAID_OUT


def test_r_kkm_2_a_card_cannot_be_given_up_with_money_or_a_credit_and_nowhere_to_put_it() -> None:
    card = personal_card()
    assert give_up_card(card, NOW, balance=10, deposit_paid=1200) is GiveUpProblem.BALANCE_LEFT
    assert give_up_card(card, NOW, balance=-280, deposit_paid=1200, pay_out=True) is GiveUpProblem.CREDIT_OUTSTANDING
    assert give_up_card(card, NOW, balance=10, deposit_paid=1200, move_to=card) is GiveUpProblem.SAME_CARD
    blocked = report_loss(personal_card(number="K-2"), datetime(2026, 3, 1, 9, 0))
    assert give_up_card(card, NOW, balance=10, deposit_paid=1200, move_to=blocked) is GiveUpProblem.TARGET_UNUSABLE
    other = personal_card(number="K-2")
    assert give_up_card(card, NOW, balance=-280, deposit_paid=1200, move_to=other, move_to_balance=-140) \
        is GiveUpProblem.TARGET_IN_CREDIT
    debt = give_up_card(card, NOW, balance=-280, deposit_paid=1200, move_to=other, move_to_balance=500)
    assert debt.balance is BalanceHandling.MOVED and [e.amount for e in debt.new_card_entries] == [-280]


# --------------------------------------------------------------------------- R-KKM-3


def test_r_kkm_3_required_documents_per_kind() -> None:
    assert required_documents(CardKind.PERSONAL) == DESK_DOCS
    entitled = DESK_DOCS | {Document.ENTITLEMENT_DOCUMENT}
    assert required_documents(CardKind.PERSONAL, Entitlement.REDUCED) == entitled
    assert required_documents(CardKind.PERSONAL, Entitlement.FREE) == entitled
    assert required_documents(CardKind.BEARER) == frozenset()


def test_r_kkm_3_complete_desk_application() -> None:
    assert check_application(desk_application()) == []
    bearer = CardApplication(kind=CardKind.BEARER, submitted_on=date(2026, 3, 2), deposit_paid=CARD_DEPOSIT)
    assert check_application(bearer) == []


def test_r_kkm_3_incomplete_applications_list_every_problem() -> None:
    empty = desk_application(documents=frozenset(), entitlement=Entitlement.REDUCED, deposit_paid=0)
    assert check_application(empty) == [
        ApplicationProblem.MISSING_APPLICATION_FORM,
        ApplicationProblem.MISSING_PHOTO,
        ApplicationProblem.MISSING_PHOTO_ID,
        ApplicationProblem.MISSING_ENTITLEMENT_DOCUMENT,
        ApplicationProblem.DEPOSIT_NOT_PAID,
    ]
    assert check_application(desk_application(entitlement=Entitlement.FREE, deposit_paid=0)) == [
        ApplicationProblem.MISSING_ENTITLEMENT_DOCUMENT
    ]


def test_r_kkm_3_bearer_application_rules() -> None:
    bearer = CardApplication(
        kind=CardKind.BEARER,
        submitted_on=date(2026, 3, 2),
        entitlement=Entitlement.FREE,
        channel=ApplicationChannel.ELECTRONIC,
        deposit_booked_on=date(2026, 3, 2),
    )
    assert check_application(bearer) == [
        ApplicationProblem.BEARER_WITH_ENTITLEMENT,
        ApplicationProblem.BEARER_NOT_ELECTRONIC,
    ]


def test_r_kkm_3_electronic_photo_jpeg_at_least_320x240() -> None:
    assert photo_problems(PhotoFile(320, 240, "JPEG")) == []
    assert photo_problems(PhotoFile(240, 320, "image/jpeg")) == []  # portrait is fine
    assert photo_problems(PhotoFile(1200, 1600, "jpg")) == []
    assert photo_problems(PhotoFile(319, 240, "JPEG")) == [ApplicationProblem.PHOTO_TOO_SMALL]
    assert photo_problems(PhotoFile(320, 239, "JPEG")) == [ApplicationProblem.PHOTO_TOO_SMALL]
    assert photo_problems(PhotoFile(300, 300, "JPEG")) == [ApplicationProblem.PHOTO_TOO_SMALL]
    assert photo_problems(PhotoFile(640, 480, "PNG")) == [ApplicationProblem.PHOTO_NOT_JPEG]
    assert photo_problems(PhotoFile(10, 10, "GIF")) == [
        ApplicationProblem.PHOTO_NOT_JPEG,
        ApplicationProblem.PHOTO_TOO_SMALL,
    ]


def test_r_kkm_3_electronic_application_needs_form_and_jpeg_photo() -> None:
    assert required_documents(CardKind.PERSONAL, Entitlement.REDUCED, ApplicationChannel.ELECTRONIC) == frozenset(
        {Document.APPLICATION_FORM, Document.PHOTO}
    )
    assert check_application(electronic_application()) == []
    assert check_application(electronic_application(photo_file=None)) == [ApplicationProblem.MISSING_PHOTO]
    assert check_application(electronic_application(photo_file=PhotoFile(200, 150, "PNG"))) == [
        ApplicationProblem.PHOTO_NOT_JPEG,
        ApplicationProblem.PHOTO_TOO_SMALL,
    ]
    assert check_application(electronic_application(documents=frozenset())) == [
        ApplicationProblem.MISSING_APPLICATION_FORM
    ]


def test_r_kkm_3_electronic_application_dated_by_deposit_booking() -> None:
    booked = electronic_application()
    assert application_date(booked) == date(2026, 3, 4)
    not_booked = electronic_application(deposit_booked_on=None)
    assert application_date(not_booked) is None
    assert check_application(not_booked) == [ApplicationProblem.DEPOSIT_NOT_PAID]
    free = electronic_application(entitlement=Entitlement.FREE, deposit_paid=0, deposit_booked_on=None)
    assert application_date(free) == date(2026, 3, 2)
    assert check_application(free) == []
    assert application_date(desk_application(submitted_on=date(2026, 3, 5))) == date(2026, 3, 5)


def test_r_kkm_3_documents_shown_at_collection() -> None:
    assert documents_at_collection(CardKind.BEARER) == frozenset()
    assert documents_at_collection(CardKind.PERSONAL) == {Document.PHOTO_ID}
    assert documents_at_collection(CardKind.PERSONAL, Entitlement.REDUCED) == {
        Document.PHOTO_ID,
        Document.ENTITLEMENT_DOCUMENT,
    }
    assert documents_at_collection(CardKind.PERSONAL, Entitlement.REDUCED, ApplicationChannel.ELECTRONIC) == {
        Document.PHOTO_ID,
        Document.ENTITLEMENT_DOCUMENT,
        Document.DEPOSIT_PROOF,
    }
    assert documents_at_collection(CardKind.PERSONAL, Entitlement.FREE, ApplicationChannel.ELECTRONIC) == {
        Document.PHOTO_ID,
        Document.ENTITLEMENT_DOCUMENT,
    }


# --------------------------------------------------------------------------- R-KKM-4 calendar


def test_r_kkm_4_easter_mondays_are_holidays() -> None:
    for easter_monday in (date(2024, 4, 1), date(2025, 4, 21), date(2026, 4, 6), date(2027, 3, 29),
                          date(2038, 4, 26), date(2100, 3, 29)):  # 2038: the latest Easter of the century
        assert easter_monday in polish_public_holidays(easter_monday.year)
        assert not is_business_day(easter_monday)


def test_r_kkm_4_holiday_list() -> None:
    h2026 = polish_public_holidays(2026)
    assert {date(2026, 4, 6), date(2026, 6, 4), date(2026, 5, 24)} <= h2026  # Easter Monday, Corpus Christi, Pentecost
    assert {date(2027, 3, 29), date(2027, 5, 27)} <= polish_public_holidays(2027)
    assert len(h2026) == 14
    fixed = {(1, 1), (1, 6), (5, 1), (5, 3), (8, 15), (11, 1), (11, 11), (12, 24), (12, 25), (12, 26)}
    assert fixed <= {(d.month, d.day) for d in h2026}


def test_r_kkm_4_christmas_eve_is_a_holiday_from_2025() -> None:
    assert is_business_day(date(2024, 12, 24))  # Tuesday, still a working day
    assert not is_business_day(date(2025, 12, 24))  # Wednesday
    assert date(2024, 12, 24) not in polish_public_holidays(2024)
    assert date(2025, 12, 24) in polish_public_holidays(2025)


def test_r_kkm_4_epiphany_from_2011() -> None:
    assert date(2010, 1, 6) not in polish_public_holidays(2010)
    assert date(2011, 1, 6) in polish_public_holidays(2011)


def test_r_kkm_4_weekends_are_not_business_days() -> None:
    assert not is_business_day(date(2026, 3, 7))  # Saturday
    assert not is_business_day(date(2026, 3, 8))  # Sunday
    assert is_business_day(date(2026, 3, 9))
    assert next_business_day(date(2026, 3, 7)) == date(2026, 3, 9)
    assert next_business_day(date(2026, 3, 9)) == date(2026, 3, 9)
    assert add_business_days(date(2026, 3, 6), 1) == date(2026, 3, 9)
    assert add_business_days(date(2026, 3, 6), 0) == date(2026, 3, 6)
    with pytest.raises(ValueError):
        add_business_days(date(2026, 3, 6), -1)


# --------------------------------------------------------------------------- R-KKM-4 deadlines


def test_r_kkm_4_ready_on_the_15th_business_day_exactly() -> None:
    # Mon 2 March 2026, no holidays: three full weeks later
    assert ready_by(date(2026, 3, 2)) == date(2026, 3, 23)
    assert business_days_between(date(2026, 3, 2), date(2026, 3, 23)) == 15
    assert business_days_between(date(2026, 3, 2), date(2026, 3, 20)) == 14
    # applied on a Saturday: counting starts on Monday
    assert ready_by(date(2026, 3, 7)) == date(2026, 3, 27)


def test_r_kkm_4_easter_2026_monday_not_counted() -> None:
    assert ready_by(date(2026, 3, 23)) == date(2026, 4, 14)  # 13 April without Easter Monday


def test_r_kkm_4_easter_2027_monday_and_corpus_christi() -> None:
    assert ready_by(date(2027, 3, 15)) == date(2027, 4, 6)  # Easter Monday 29 March skipped
    assert ready_by(date(2027, 5, 10)) == date(2027, 6, 1)  # Corpus Christi 27 May skipped


def test_r_kkm_4_may_holidays() -> None:
    # 2026: 1 May is a Friday (skipped), 3 May a Sunday anyway
    assert ready_by(date(2026, 4, 23)) == date(2026, 5, 15)
    # 2027: 1 May is a Saturday, 3 May a Monday (skipped)
    assert ready_by(date(2027, 4, 23)) == date(2027, 5, 17)


def test_r_kkm_4_independence_day() -> None:
    assert ready_by(date(2026, 10, 30)) == date(2026, 11, 23)  # 11 November (Wed) skipped


def test_r_kkm_4_christmas_and_new_year_2025() -> None:
    # 24, 25, 26 December 2025, 1 and 6 January 2026 are all skipped
    assert ready_by(date(2025, 12, 15)) == date(2026, 1, 12)
    # in 2024 24 December still counted
    assert ready_by(date(2024, 12, 13)) == date(2025, 1, 9)  # 10 January if it were skipped


def test_r_kkm_4_collect_within_30_calendar_days() -> None:
    applied_on = date(2026, 4, 14)
    assert collect_by(applied_on) == date(2026, 5, 14)  # a Thursday: the 30th day itself
    assert not uncollected(applied_on, collected_on=None, today=date(2026, 5, 14))
    assert uncollected(applied_on, collected_on=None, today=date(2026, 5, 15))
    assert not uncollected(applied_on, collected_on=date(2026, 5, 14), today=date(2026, 9, 1))
    assert uncollected(applied_on, collected_on=date(2026, 5, 15), today=date(2026, 9, 1))  # too late
    assert not uncollected(applied_on, collected_on=date(2026, 6, 1), today=date(2026, 5, 1))  # not due yet


def test_r_kkm_4_collection_deadline_on_a_closed_day_moves_to_next_business_day() -> None:
    assert collect_by(date(2026, 5, 15)) == date(2026, 6, 15)  # 30th day is Sunday 14 June
    assert not uncollected(date(2026, 5, 15), collected_on=None, today=date(2026, 6, 15))
    assert uncollected(date(2026, 5, 15), collected_on=None, today=date(2026, 6, 16))
    assert collect_by(date(2026, 10, 12)) == date(2026, 11, 12)  # 30th day is 11 November


def test_r_kkm_4_uncollected_card_forfeits_the_deposit() -> None:
    applied_on = date(2026, 4, 14)
    assert uncollected(applied_on, collected_on=None, today=date(2026, 5, 15))
    assert deposit_refund(CardEnd.NOT_COLLECTED, deposit_paid=CARD_DEPOSIT) == 0


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)))
def test_r_kkm_4_ready_by_is_a_business_day_15_business_days_on(applied: date) -> None:
    ready = ready_by(applied)
    assert is_business_day(ready)
    assert business_days_between(applied, ready) == 15
    assert business_days_between(applied, ready - timedelta(days=1)) == 14
    assert (ready - applied).days >= 19  # Sunday -> the third Friday after it is the fastest


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)))
def test_r_kkm_4_collect_by_is_a_business_day_at_least_30_days_on(applied_on: date) -> None:
    deadline = collect_by(applied_on)
    assert is_business_day(deadline)
    assert 30 <= (deadline - applied_on).days <= 30 + 5  # longest closed run: 24..26 Dec + weekend


@given(st.integers(min_value=1990, max_value=2100))  # the `holidays` package's calendar for Poland ends in 2100
def test_r_kkm_4_easter_monday_and_corpus_christi_every_year(year: int) -> None:
    days = polish_public_holidays(year)
    easter_mondays = [d for d in days if d.weekday() == 0 and date(year, 3, 23) <= d <= date(year, 4, 26)]
    assert len(easter_mondays) == 1
    assert easter_mondays[0] + timedelta(days=59) in days  # Corpus Christi: Easter + 60 days, a Thursday
    assert (easter_mondays[0] + timedelta(days=59)).weekday() == 3


# --------------------------------------------------------------------------- R-KKM-8


def test_r_kkm_8_change_not_on_the_card_is_free() -> None:
    assert data_change_consequence([CardField.ADDRESS, CardField.PHONE, CardField.EMAIL]) == (False, 0)
    assert data_change_consequence([]) == (False, 0)
    consequence = data_change_consequence({CardField.ENTITLEMENT_DOCUMENT})
    assert not consequence.new_card_needed and consequence.deposit == 0


@pytest.mark.parametrize("field", [CardField.FIRST_NAME, CardField.LAST_NAME, CardField.PHOTO, CardField.CARD_KIND])
def test_r_kkm_8_printed_change_needs_new_card_and_deposit(field: CardField) -> None:
    new_card_needed, deposit = data_change_consequence([field, CardField.ADDRESS])
    assert new_card_needed
    assert deposit == CARD_DEPOSIT


def test_r_kkm_8_new_card_for_free_rides_has_no_deposit() -> None:
    assert data_change_consequence([CardField.LAST_NAME], entitlement=Entitlement.FREE) == (True, 0)
    assert data_change_consequence([CardField.LAST_NAME], deposit=1500) == (True, 1500)


def test_r_kkm_8_printed_fields_are_configurable() -> None:
    printed = frozenset({CardField.FIRST_NAME, CardField.LAST_NAME, CardField.PHOTO, CardField.BIRTH_DATE})
    assert data_change_consequence([CardField.BIRTH_DATE], printed=printed) == (True, CARD_DEPOSIT)
    assert data_change_consequence([CardField.BIRTH_DATE]) == (False, 0)


def test_r_kkm_4_business_days_come_from_the_one_holidays_calendar() -> None:
    import holidays

    from domain import parking_hours

    # one calendar for card applications (R-KKM-4) and paid parking (R-PARK-4), read from the `holidays` package
    assert parking_hours.polish_public_holidays is polish_public_holidays
    for year in range(2020, 2041):
        assert set(holidays.Poland(years=year)) == set(polish_public_holidays(year)), year
    # 2025 on: 24 December is a public holiday (a Wednesday in 2025).
    assert not is_business_day(date(2025, 12, 24)) and is_business_day(date(2025, 12, 23))
