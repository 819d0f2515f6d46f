"""Kołobrzeg city card kinds and lifecycle: R-KKM-1, R-KKM-5, R-KKM-6, R-KKM-7."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from domain.ledger import EntryKind, balance
from domain.purse import (
    CardKind,
    CardState,
    PurseCard,
    PurseRefused,
    RegisteredFare,
    Refusal,
    ValidatorPanel,
    add_months,
    blocking_effective_at,
    card_validity,
    default_fare,
    may_apply_for_personal_card,
    forfeit_unused_card,
    operator_liable_for,
    report_loss,
    tap,
    transfer_balance,
)


def personal(**kw) -> PurseCard:
    values = dict(number="K-1", kind=CardKind.PERSONAL, issued_on=date(2024, 1, 10))
    values.update(kw)
    return PurseCard(**values)


def at(y: int, m: int, d: int, hh: int = 12, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm)


def plain_tap(card: PurseCard, now: datetime, balance_: int = 1000):
    return tap(card, balance=balance_, panel=ValidatorPanel(), vehicle_id="bus-1", stop_id="s-1", now=now, boarding=None)


def test_r_kkm_1_bearer_card_always_normal_fare() -> None:
    bearer = PurseCard(number="B-1", kind=CardKind.BEARER, issued_on=date(2024, 1, 10))
    assert default_fare(bearer, date(2024, 2, 1)) is RegisteredFare.NORMAL
    with pytest.raises(ValueError):
        PurseCard(number="B-2", kind=CardKind.BEARER, issued_on=date(2024, 1, 1), registered_fare=RegisteredFare.OFF_50)


def test_r_kkm_1_only_one_personal_card() -> None:
    bearer = PurseCard(number="B-1", kind=CardKind.BEARER, issued_on=date(2024, 1, 10))
    now = at(2024, 5, 6)
    assert may_apply_for_personal_card([], now)
    assert may_apply_for_personal_card([bearer], now)
    assert not may_apply_for_personal_card([bearer, personal()], now)
    lost = report_loss(personal(), at(2024, 5, 1, 10))
    assert may_apply_for_personal_card([lost], now)


@pytest.mark.parametrize("fare", list(RegisteredFare))
def test_r_kkm_1_personal_card_registered_fares(fare: RegisteredFare) -> None:
    card = personal(registered_fare=fare, entitlement_until=date(2030, 1, 1))
    assert default_fare(card, date(2024, 2, 1)) is fare


def test_r_kkm_5_add_months_follows_civil_code() -> None:
    assert add_months(date(2024, 3, 15), 12) == date(2025, 3, 15)
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2024, 11, 30), 36) == date(2027, 11, 30)


def test_r_kkm_5_lapses_12_months_after_last_service_point_top_up() -> None:
    # used often, but only ever topped up at meters since 2024-01-10
    card = personal(last_activated_on=date(2024, 1, 10), last_used_on=date(2024, 12, 20))
    assert card_validity(card, at(2025, 1, 10)).state is CardState.ACTIVE
    assert card_validity(card, at(2025, 1, 11)).state is CardState.LAPSED
    assert card_validity(card, at(2025, 1, 11)).valid_through == date(2025, 1, 10)


def test_r_kkm_5_lapses_12_months_after_last_use() -> None:
    card = personal(last_activated_on=date(2024, 6, 1), last_used_on=date(2024, 2, 1))
    assert card_validity(card, at(2025, 2, 1)).state is CardState.ACTIVE
    assert card_validity(card, at(2025, 2, 2)).state is CardState.LAPSED


def test_r_kkm_5_never_used_counts_from_issue() -> None:
    card = personal(issued_on=date(2024, 5, 5), last_activated_on=date(2024, 12, 1))
    assert card_validity(card, at(2025, 5, 5)).state is CardState.ACTIVE
    assert card_validity(card, at(2025, 5, 6)).state is CardState.LAPSED


def test_r_kkm_5_lapsed_card_is_refused_by_validator() -> None:
    card = personal(last_activated_on=date(2024, 1, 10), last_used_on=date(2024, 1, 10))
    decision = plain_tap(card, at(2025, 1, 11))
    assert not decision.accepted and decision.refusal is Refusal.EXPIRED and not decision.entries


def test_r_kkm_5_void_after_three_years_unused_even_if_reactivated() -> None:
    card = personal(last_used_on=date(2024, 3, 1), last_activated_on=date(2026, 12, 1))
    validity = card_validity(card, at(2027, 3, 1))
    assert validity.state is CardState.LAPSED  # 12 months since use, not yet 3 years
    assert validity.void_from == date(2027, 3, 2)
    assert card_validity(card, at(2027, 3, 2)).state is CardState.VOID
    assert plain_tap(card, at(2027, 3, 2)).refusal is Refusal.VOID


def test_r_kkm_5_funds_and_deposit_forfeited_after_three_years() -> None:
    card = personal(last_used_on=date(2024, 3, 1))
    with pytest.raises(PurseRefused) as caught:
        forfeit_unused_card(card, balance=1234, now=at(2027, 3, 1))
    assert caught.value.reason is Refusal.NOT_VOID
    forfeiture = forfeit_unused_card(card, balance=1234, now=at(2027, 3, 2))
    assert forfeiture.deposit_forfeited
    assert [(e.kind, e.amount) for e in forfeiture.entries] == [(EntryKind.FORFEITURE, -1234)]
    assert balance(forfeiture.entries) + 1234 == 0
    assert forfeit_unused_card(card, balance=0, now=at(2027, 3, 2)).entries == ()


def test_r_kkm_6_lapsed_entitlement_rides_at_normal_fare() -> None:
    card = personal(registered_fare=RegisteredFare.OFF_50, entitlement_until=date(2024, 6, 30), last_used_on=date(2024, 6, 1))
    assert plain_tap(card, at(2024, 6, 30)).charged == 140
    after = plain_tap(card, at(2024, 7, 1))
    assert after.accepted and after.charged == 280
    validity = card_validity(card, at(2024, 7, 1))
    assert validity.entitlement_lapsed and validity.state is CardState.ACTIVE
    # a new document shown at the desk: the web layer stores the new end date
    renewed = personal(registered_fare=RegisteredFare.OFF_50, entitlement_until=date(2025, 6, 30), last_used_on=date(2024, 6, 1))
    assert plain_tap(renewed, at(2024, 7, 1)).charged == 140


def test_r_kkm_6_lapsed_free_entitlement_is_charged() -> None:
    card = personal(registered_fare=RegisteredFare.FREE, entitlement_until=date(2024, 6, 30), last_used_on=date(2024, 6, 1))
    assert plain_tap(card, at(2024, 6, 30)).charged == 0
    assert plain_tap(card, at(2024, 7, 1)).charged == 280


@pytest.mark.parametrize(
    ("reported", "blocked"),
    [
        (at(2024, 5, 6, 9, 30), at(2024, 5, 7, 8, 0)),
        (at(2024, 5, 6, 0, 5), at(2024, 5, 7, 8, 0)),
        (at(2024, 5, 6, 23, 59), at(2024, 5, 7, 8, 0)),
        (at(2024, 12, 31, 15, 0), at(2025, 1, 1, 8, 0)),
    ],
)
def test_r_kkm_7_blocked_by_eight_next_day(reported: datetime, blocked: datetime) -> None:
    assert blocking_effective_at(reported) == blocked


def test_r_kkm_7_blocking_keeps_time_zone() -> None:
    warsaw = timezone(timedelta(hours=2))
    assert blocking_effective_at(datetime(2024, 5, 6, 10, 0, tzinfo=warsaw)) == datetime(2024, 5, 7, 8, 0, tzinfo=warsaw)


def test_r_kkm_7_card_usable_until_blocking_then_refused() -> None:
    card = report_loss(personal(last_used_on=date(2024, 5, 1)), at(2024, 5, 6, 10))
    before = plain_tap(card, at(2024, 5, 7, 7, 59))
    assert before.accepted and not operator_liable_for(card, at(2024, 5, 7, 7, 59))
    after = plain_tap(card, at(2024, 5, 7, 8, 0))
    assert after.refusal is Refusal.BLOCKED and operator_liable_for(card, at(2024, 5, 7, 8, 0))
    assert card_validity(card, at(2024, 5, 7, 8)).state is CardState.BLOCKED


def test_r_kkm_7_second_report_never_postpones_blocking() -> None:
    card = report_loss(personal(), at(2024, 5, 6, 10))
    assert report_loss(card, at(2024, 5, 9, 10)).blocked_from == at(2024, 5, 7, 8)


def test_r_kkm_7_bearer_cards_are_not_blocked_for_the_holder() -> None:
    bearer = PurseCard(number="B-1", kind=CardKind.BEARER, issued_on=date(2024, 1, 10))
    with pytest.raises(PurseRefused) as caught:
        report_loss(bearer, at(2024, 5, 6))
    assert caught.value.reason is Refusal.BEARER_CARD


def test_r_kkm_7_balance_moves_to_new_card_after_blocking() -> None:
    old = report_loss(personal(last_used_on=date(2024, 5, 1)), at(2024, 5, 6, 10))
    new = personal(number="K-2", issued_on=date(2024, 5, 7))
    with pytest.raises(PurseRefused) as caught:
        transfer_balance(old, old_balance=1500, new_card=new, new_balance=0, now=at(2024, 5, 7, 7))
    assert caught.value.reason is Refusal.NOT_BLOCKED
    moved = transfer_balance(old, old_balance=1500, new_card=new, new_balance=0, now=at(2024, 5, 7, 9))
    assert moved.amount == 1500
    assert [(e.kind, e.amount) for e in moved.old_card_entries] == [(EntryKind.TRANSFER_OUT, -1500)]
    assert [(e.kind, e.amount) for e in moved.new_card_entries] == [(EntryKind.TRANSFER_IN, 1500)]
    assert 1500 + balance(moved.old_card_entries) == 0


def test_r_kkm_7_transfer_needs_a_new_number_and_moves_outstanding_credit() -> None:
    old = report_loss(personal(), at(2024, 5, 6, 10))
    with pytest.raises(PurseRefused) as caught:
        transfer_balance(old, old_balance=100, new_card=old, new_balance=0, now=at(2024, 5, 8))
    assert caught.value.reason is Refusal.SAME_CARD
    new = personal(number="K-2", issued_on=date(2024, 5, 7))
    moved = transfer_balance(old, old_balance=-180, new_card=new, new_balance=0, now=at(2024, 5, 8))
    assert balance(moved.new_card_entries) == -180 and balance(moved.old_card_entries) == 180
    assert transfer_balance(old, old_balance=0, new_card=new, new_balance=0, now=at(2024, 5, 8)).new_card_entries == ()
