"""The parking meter: R-PARK-1 .. R-PARK-3, and top-ups at the meter (R-TOP-2)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from domain.ledger import EntryKind, balance
from domain.purse import (
    CardKind,
    CardReturned,
    MeterMode,
    MeterSession,
    ParkingTicket,
    PurseCard,
    Refusal,
    TopUpChannel,
    TopUpReceipt,
    accept,
    cancel,
    insert_card,
    insert_coin,
    press_plus,
    press_top_up,
    report_loss,
)

NOW = datetime(2024, 7, 15, 10, 17, 42)
CARD = PurseCard(number="K-1", kind=CardKind.PERSONAL, issued_on=date(2024, 1, 2))
BEARER = PurseCard(number="B-1", kind=CardKind.BEARER, issued_on=date(2024, 1, 2))


def session(balance: int = 1000, card: PurseCard = CARD) -> MeterSession:
    s = insert_card(card, balance=balance, now=NOW)
    assert isinstance(s, MeterSession)
    return s


def plus(s: MeterSession, times: int) -> MeterSession:
    for _ in range(times):
        s = press_plus(s)
    return s


def test_r_park_1_city_card_wakes_meter_and_shows_content() -> None:
    s = session(balance=1234)
    assert s.card == CARD and s.balance == 1234 and s.mode is MeterMode.PARKING
    assert s.fee == 0 and s.minutes_paid == 0


def test_r_park_1_other_card_returned_with_zla_karta() -> None:
    returned = insert_card(None, balance=0, now=NOW)
    assert returned == CardReturned(Refusal.WRONG_CARD)


def test_r_park_1_blocked_card_returned() -> None:
    blocked = report_loss(CARD, datetime(2024, 7, 1, 12))
    assert insert_card(blocked, balance=500, now=NOW) == CardReturned(Refusal.BLOCKED)


@pytest.mark.parametrize(
    ("presses", "fee", "minutes", "until"),
    [
        (1, 100, 30, datetime(2024, 7, 15, 10, 47)),
        (2, 150, 45, datetime(2024, 7, 15, 11, 2)),
        (3, 200, 60, datetime(2024, 7, 15, 11, 17)),
        (10, 550, 165, datetime(2024, 7, 15, 13, 2)),
    ],
)
def test_r_park_2_first_plus_minimum_fee_then_units(presses: int, fee: int, minutes: int, until: datetime) -> None:
    s = plus(session(), presses)
    assert (s.presses, s.fee, s.minutes_paid, s.paid_until) == (presses, fee, minutes, until)


def test_r_park_2_plus_never_beyond_balance() -> None:
    s = plus(session(balance=160), 2)
    assert s.fee == 150
    s = press_plus(s)
    assert s.fee == 150 and s.notice is Refusal.INSUFFICIENT_FUNDS
    assert press_plus(session(balance=99)).presses == 0
    assert press_plus(session(balance=-180)).notice is Refusal.CREDIT_OUTSTANDING


def test_r_park_3_accept_prints_ticket_and_deducts_fee() -> None:
    ticket = accept(plus(session(balance=1000), 3))
    assert isinstance(ticket, ParkingTicket)
    assert (ticket.fee, ticket.minutes, ticket.balance_after) == (200, 60, 800)
    assert ticket.paid_until == datetime(2024, 7, 15, 11, 17) and ticket.card_used
    assert [(e.kind, e.amount) for e in ticket.entries] == [(EntryKind.PARKING, -200)]


def test_r_park_3_accept_without_plus_does_nothing() -> None:
    s = accept(session())
    assert isinstance(s, MeterSession) and s.notice is Refusal.NOTHING_SELECTED


def test_r_park_3_cancel_returns_card_uncharged() -> None:
    assert cancel(plus(session(), 2)) == CardReturned(refusal=None, coins_returned=0)


def _top_up_mode(balance: int = 0, card: PurseCard = CARD) -> MeterSession:
    return press_top_up(session(balance=balance, card=card))


def coins(s: MeterSession, *values: int) -> MeterSession:
    for value in values:
        s = insert_coin(s, value)
    return s


def test_r_top_2_meter_minimum_two_zloty() -> None:
    s = coins(_top_up_mode(), 100, 50, 20, 20)
    assert s.coins_inserted == 190
    refused = accept(s)
    assert isinstance(refused, MeterSession) and refused.notice is Refusal.BELOW_MINIMUM
    receipt = accept(coins(refused, 10))
    assert isinstance(receipt, TopUpReceipt)
    assert receipt.payment == 200 and receipt.channel is TopUpChannel.PARKING_METER
    assert receipt.balance_after == 200 and not receipt.renews_activation


def test_r_top_2_meter_maximum_two_hundred_zloty() -> None:
    s = coins(_top_up_mode(card=BEARER), *([500] * 40))
    assert s.coins_inserted == 20000
    over = insert_coin(s, 10)
    assert over.coins_inserted == 20000 and over.notice is Refusal.ABOVE_MAXIMUM
    receipt = accept(over)
    assert isinstance(receipt, TopUpReceipt) and receipt.payment == 20000 and receipt.bonus == 0


@pytest.mark.parametrize("coin", [1, 5, 1000, 2000, 15])
def test_r_top_2_only_coins_ten_groszy_to_five_zloty(coin: int) -> None:
    s = insert_coin(_top_up_mode(), coin)
    assert s.coins_inserted == 0 and s.notice is Refusal.COIN_NOT_ACCEPTED


def test_r_top_2_all_listed_coins_accepted() -> None:
    assert coins(_top_up_mode(), 10, 20, 50, 100, 200, 500).coins_inserted == 880


def test_r_top_2_top_up_mode_left_only_by_cancel() -> None:
    s = coins(_top_up_mode(), 200, 100)
    locked = press_plus(s)
    assert locked.mode is MeterMode.TOP_UP and locked.presses == 0 and locked.notice is Refusal.TOP_UP_MODE
    assert cancel(locked) == CardReturned(refusal=None, coins_returned=300)


def test_r_top_2_coins_only_after_doladuj() -> None:
    assert insert_coin(session(), 200).notice is Refusal.NOT_IN_TOP_UP_MODE


def test_r_top_2_meter_top_up_repays_credit_first() -> None:
    receipt = accept(coins(_top_up_mode(balance=-180), 500))
    assert isinstance(receipt, TopUpReceipt)
    assert receipt.credit_repaid == 180 and receipt.balance_after == 320
    assert [(e.kind, e.amount) for e in receipt.entries] == [
        (EntryKind.CREDIT_REPAYMENT, 180),
        (EntryKind.TOPUP, 320),
    ]
    assert -180 + balance(receipt.entries) == receipt.balance_after
