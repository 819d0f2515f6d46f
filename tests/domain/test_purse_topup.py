"""Top-ups at a service point and the bonus: R-TOP-1, R-TOP-3, R-TOP-4."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from domain.ledger import EntryKind, balance
from domain.purse import (
    CardKind,
    PurseCard,
    PurseRefused,
    Refusal,
    TopUpChannel,
    card_validity,
    CardState,
    report_loss,
    top_up_at_service_point,
    top_up_bonus,
)
from domain.purse_tariff import DEFAULT_PURSE_TARIFF, TopUpLimits, PurseTariff

NOW = datetime(2024, 8, 1, 9, 0)
PERSONAL = PurseCard(number="K-1", kind=CardKind.PERSONAL, issued_on=date(2024, 1, 2))
BEARER = PurseCard(number="B-1", kind=CardKind.BEARER, issued_on=date(2024, 1, 2))


def test_r_top_1_service_point_minimum_five_zloty() -> None:
    with pytest.raises(PurseRefused) as caught:
        top_up_at_service_point(PERSONAL, balance=0, payment=499, now=NOW)
    assert caught.value.reason is Refusal.BELOW_MINIMUM
    receipt = top_up_at_service_point(PERSONAL, balance=0, payment=500, now=NOW)
    assert receipt.payment == 500 and receipt.bonus == 0 and receipt.balance_after == 500
    assert receipt.channel is TopUpChannel.SERVICE_POINT and receipt.renews_activation
    assert [(e.kind, e.amount) for e in receipt.entries] == [(EntryKind.TOPUP, 500)]


def test_r_top_1_service_point_revives_lapsed_card_but_not_blocked() -> None:
    lapsed = PurseCard(number="K-1", kind=CardKind.PERSONAL, issued_on=date(2022, 1, 2), last_used_on=date(2023, 1, 2))
    assert card_validity(lapsed, NOW).state is CardState.LAPSED
    assert top_up_at_service_point(lapsed, balance=0, payment=1000, now=NOW).renews_activation
    blocked = report_loss(PERSONAL, datetime(2024, 7, 1, 12))
    with pytest.raises(PurseRefused) as caught:
        top_up_at_service_point(blocked, balance=0, payment=1000, now=NOW)
    assert caught.value.reason is Refusal.BLOCKED
    with pytest.raises(PurseRefused) as caught:
        top_up_at_service_point(None, balance=0, payment=1000, now=NOW)
    assert caught.value.reason is Refusal.WRONG_CARD


@pytest.mark.parametrize(
    ("payment", "bonus"),
    [
        (500, 0),
        (2000, 0),  # 20.00 -> 0 %
        (2001, 100),  # 20.01 -> 5 % = 1.0005 -> 1.00
        (5000, 250),  # 50.00 -> 5 %
        (5001, 500),  # 50.01 -> 10 % = 5.001 -> 5.00
        (10000, 1000),  # 100.00 -> 10 %
        (10001, 1500),  # 100.01 -> 15 % = 15.0015 -> 15.00
        (20000, 3000),
        (2010, 101),  # 5 % of 20.10 = 1.005 -> half-up 1.01
        (5005, 501),  # 10 % of 50.05 = 5.005 -> half-up 5.01
        (10003, 1500),  # 15 % of 100.03 = 15.0045 -> 15.00
        (10010, 1502),  # 15 % of 100.10 = 15.015 -> half-up 15.02
    ],
)
def test_r_top_3_bonus_boundaries(payment: int, bonus: int) -> None:
    assert top_up_bonus(PERSONAL, payment, channel=TopUpChannel.SERVICE_POINT) == bonus
    receipt = top_up_at_service_point(PERSONAL, balance=0, payment=payment, now=NOW)
    assert receipt.bonus == bonus and receipt.balance_after == payment + bonus
    bonus_entries = [e for e in receipt.entries if e.kind is EntryKind.BONUS]
    assert sum(e.amount for e in bonus_entries) == bonus


@pytest.mark.parametrize("payment", [500, 2001, 5001, 10001, 20000])
def test_r_top_3_bearer_cards_get_no_bonus(payment: int) -> None:
    receipt = top_up_at_service_point(BEARER, balance=0, payment=payment, now=NOW)
    assert receipt.bonus == 0 and receipt.balance_after == payment


def test_r_top_3_bonus_at_meter_follows_tariff() -> None:
    assert top_up_bonus(PERSONAL, 5001, channel=TopUpChannel.PARKING_METER) == 500
    service_points_only = PurseTariff(top_up=TopUpLimits(bonus_at_meter=False))
    assert top_up_bonus(PERSONAL, 5001, channel=TopUpChannel.PARKING_METER, tariff=service_points_only) == 0
    assert top_up_bonus(PERSONAL, 5001, channel=TopUpChannel.SERVICE_POINT, tariff=service_points_only) == 500
    assert DEFAULT_PURSE_TARIFF.top_up.bonus_for(200) == 0  # below the first bracket


def test_r_top_4_top_up_repays_outstanding_credit_first() -> None:
    receipt = top_up_at_service_point(PERSONAL, balance=-180, payment=2100, now=NOW)
    assert receipt.credit_repaid == 180 and receipt.bonus == 105
    assert [(e.kind, e.amount) for e in receipt.entries] == [
        (EntryKind.CREDIT_REPAYMENT, 180),
        (EntryKind.TOPUP, 1920),
        (EntryKind.BONUS, 105),
    ]
    assert receipt.balance_after == -180 + balance(receipt.entries) == 2025


def test_r_top_4_top_up_smaller_than_credit_leaves_rest_outstanding() -> None:
    tariff = PurseTariff(top_up=TopUpLimits(service_point_minimum=100))
    receipt = top_up_at_service_point(PERSONAL, balance=-340, payment=200, now=NOW, tariff=tariff)
    assert receipt.credit_repaid == 200 and receipt.balance_after == -140
    assert [(e.kind, e.amount) for e in receipt.entries] == [(EntryKind.CREDIT_REPAYMENT, 200)]


# --------------------------------------------------------------------------- R-TOP-5 cash at the desk

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from domain.money import MoneyFormatError, parse_pln  # noqa: E402
from domain.purse import DeskCashLimits, top_up_at_desk  # noqa: E402

DESK = DeskCashLimits(maximum=100_000, confirm_above=20_000)


@pytest.mark.parametrize(("text", "grosze"), [("12", 1200), ("12.5", 1250), ("12,50", 1250), (" 7,05 ", 705),
                                              ("0", 0), ("20 zł", 2000), ("999999999,99", 99_999_999_999)])
def test_r_top_5_plain_decimals_with_at_most_two_places(text: str, grosze: int) -> None:
    assert parse_pln(text) == grosze


@pytest.mark.parametrize("text", ["1e7", "1E-2", "nan", "NaN", "sNaN", "inf", "Infinity", "-5", "+5", "1 000",
                                  "1.000,00", "1,000.00", "12.345", "12,", ",5", ".5", "0x10", "١٢", "１２", "1_000",
                                  "", " ", "zł", "1234567890", "12.5.0", "--1"])
def test_r_top_5_anything_else_is_not_an_amount(text: str) -> None:
    with pytest.raises(MoneyFormatError):
        parse_pln(text)


@given(st.text(max_size=30))
def test_r_top_5_parse_never_crashes_and_only_yields_bounded_grosze(text: str) -> None:
    try:
        amount = parse_pln(text)
    except MoneyFormatError:
        return
    assert isinstance(amount, int) and 0 <= amount < 10**11


@given(st.integers(min_value=0, max_value=10**11 - 1))
def test_r_top_5_every_amount_reads_back_from_its_text(grosze: int) -> None:
    zl, gr = divmod(grosze, 100)
    assert parse_pln(f"{zl},{gr:02d}") == parse_pln(f"{zl}.{gr:02d}") == grosze


def test_r_top_5_above_the_ceiling_refused_even_when_confirmed() -> None:
    with pytest.raises(PurseRefused) as caught:
        top_up_at_desk(PERSONAL, balance=0, payment=100_001, now=NOW, limits=DESK, confirmed_amount=100_001)
    assert caught.value.reason is Refusal.DESK_MAXIMUM
    receipt = top_up_at_desk(BEARER, balance=0, payment=100_000, now=NOW, limits=DESK, confirmed_amount=100_000)
    assert receipt.payment == 100_000


def test_r_top_5_above_the_threshold_needs_the_same_amount_confirmed() -> None:
    assert top_up_at_desk(BEARER, balance=0, payment=20_000, now=NOW, limits=DESK, confirmed_amount=None).payment == 20_000
    for confirmed in (None, 20_000, 20_002):
        with pytest.raises(PurseRefused) as caught:
            top_up_at_desk(BEARER, balance=0, payment=20_001, now=NOW, limits=DESK, confirmed_amount=confirmed)
        assert caught.value.reason is Refusal.CONFIRMATION_NEEDED
    assert top_up_at_desk(BEARER, balance=0, payment=20_001, now=NOW, limits=DESK, confirmed_amount=20_001).payment == 20_001


def test_r_top_5_card_and_minimum_are_checked_before_asking_for_confirmation() -> None:
    blocked = report_loss(PERSONAL, datetime(2024, 7, 1, 12))
    with pytest.raises(PurseRefused) as caught:
        top_up_at_desk(blocked, balance=0, payment=50_000, now=NOW, limits=DESK, confirmed_amount=None)
    assert caught.value.reason is Refusal.BLOCKED


def test_r_top_5_limits_must_make_sense() -> None:
    for maximum, confirm_above in ((0, 0), (100, 101), (100, -1)):
        with pytest.raises(ValueError):
            DeskCashLimits(maximum=maximum, confirm_above=confirm_above)
