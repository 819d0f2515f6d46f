"""The e-purse ledger: R-MONEY-1 (integer grosze) and R-MONEY-2 (balance = sum of entries),
with properties over any sequence of purse events."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ledger import (
    BalanceMovedIn,
    BalanceMovedOut,
    EntryKind,
    FundsForfeited,
    LedgerEntry,
    LedgerError,
    ParkingPaid,
    RideCredited,
    RidePaid,
    ToppedUp,
    balance,
    entries_after,
    entries_for,
    outstanding_credit,
)
from domain.purse import (
    CardKind,
    MeterSession,
    ParkingTicket,
    PurseCard,
    PurseRefused,
    RegisteredFare,
    TopUpReceipt,
    ValidatorPanel,
    accept,
    cancel,
    insert_card,
    insert_coin,
    press_plus,
    press_top_up,
    tap,
    top_up_at_service_point,
)
from domain.purse_tariff import DEFAULT_PURSE_TARIFF


def test_r_money_1_entries_are_integer_grosze() -> None:
    with pytest.raises(TypeError):
        LedgerEntry(EntryKind.TOPUP, 5.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        LedgerEntry(EntryKind.TOPUP, True)
    assert LedgerEntry(EntryKind.TOPUP, 500).amount == 500


def test_r_money_1_bonus_rounding_is_half_up_to_the_grosz() -> None:
    limits = DEFAULT_PURSE_TARIFF.top_up
    assert limits.bonus_for(2010) == 101  # 100.5 -> 101
    assert limits.bonus_for(2009) == 100  # 100.45 -> 100
    assert limits.bonus_for(10010) == 1502  # 1501.5 -> 1502


def test_r_money_2_balance_is_sum_of_entries() -> None:
    entries: list[LedgerEntry] = []
    for event in (ToppedUp(1000), RidePaid(280), ParkingPaid(150), RidePaid(280, companion=True)):
        entries += entries_after(entries, event)
    assert balance(entries) == 1000 - 280 - 150 - 280 == 290
    assert [e.kind for e in entries] == [EntryKind.TOPUP, EntryKind.FARE, EntryKind.PARKING, EntryKind.COMPANION]


def test_r_money_2_entry_signs_are_checked() -> None:
    with pytest.raises(LedgerError):
        LedgerEntry(EntryKind.FARE, 280)
    with pytest.raises(LedgerError):
        LedgerEntry(EntryKind.TOPUP, -500)
    with pytest.raises(LedgerError):
        LedgerEntry(EntryKind.PARKING, 0)
    assert LedgerEntry(EntryKind.FARE, 0).amount == 0  # a recorded free ride


def test_r_money_2_events_that_cannot_happen_are_refused() -> None:
    with pytest.raises(LedgerError):
        entries_for(RidePaid(300), current_balance=200)
    with pytest.raises(LedgerError):
        entries_for(RidePaid(0, companion=True), current_balance=200)
    with pytest.raises(LedgerError):
        entries_for(RideCredited(280), current_balance=-10)
    with pytest.raises(LedgerError):
        entries_for(RideCredited(280), current_balance=300)
    with pytest.raises(LedgerError):
        entries_for(ParkingPaid(100), current_balance=-50)
    with pytest.raises(LedgerError):
        entries_for(ToppedUp(0), current_balance=0)
    with pytest.raises(LedgerError):
        entries_for(BalanceMovedIn(-100), current_balance=-10)
    with pytest.raises(TypeError):
        entries_for("top-up", current_balance=0)  # type: ignore[arg-type]


def test_r_money_2_transfer_and_forfeiture_zero_the_balance() -> None:
    assert entries_for(BalanceMovedOut(), current_balance=750) == [LedgerEntry(EntryKind.TRANSFER_OUT, -750)]
    assert entries_for(BalanceMovedOut(), current_balance=0) == []
    assert entries_for(BalanceMovedIn(750), current_balance=20) == [LedgerEntry(EntryKind.TRANSFER_IN, 750)]
    assert entries_for(FundsForfeited(), current_balance=-180) == [LedgerEntry(EntryKind.FORFEITURE, 180)]
    assert outstanding_credit(-180) == 180 and outstanding_credit(50) == 0


def test_r_money_2_credit_ride_then_repayment_is_auditable() -> None:
    entries = entries_for(ToppedUp(100), current_balance=0)
    entries += entries_after(entries, RideCredited(280))
    assert balance(entries) == -180 and outstanding_credit(balance(entries)) == 180
    entries += entries_after(entries, ToppedUp(500))
    assert [(e.kind, e.amount) for e in entries[-2:]] == [(EntryKind.CREDIT_REPAYMENT, 180), (EntryKind.TOPUP, 320)]
    assert balance(entries) == 320


# --------------------------------------------------------------------------- properties

ledger_events = st.one_of(
    st.builds(RidePaid, st.integers(0, 400), st.booleans()),
    st.builds(RideCredited, st.integers(1, 340)),
    st.builds(ParkingPaid, st.integers(1, 1000)),
    st.builds(ToppedUp, st.integers(1, 20000), st.integers(0, 3000)),
    st.builds(FundsForfeited),
)


@given(st.lists(ledger_events, max_size=40))
def test_r_money_2_any_event_sequence_keeps_ledger_consistent(events) -> None:
    entries: list[LedgerEntry] = []
    for event in events:
        before = balance(entries)
        try:
            new = entries_after(entries, event)
        except LedgerError:
            continue
        entries += new
        after = balance(entries)
        assert after == before + sum(e.amount for e in new)
        assert after >= -340  # never below one credit ride (the largest fare generated)
        if isinstance(event, ToppedUp):
            repaid = sum(e.amount for e in new if e.kind is EntryKind.CREDIT_REPAYMENT)
            assert repaid == min(event.payment, outstanding_credit(before))
            assert sum(e.amount for e in new) == event.payment + event.bonus


# Purse-level events, driven through the real device and desk rules.
tap_event = st.tuples(
    st.just("tap"), st.integers(0, 5), st.integers(0, 4), st.booleans(), st.booleans(), st.integers(0, 600)
)
park_event = st.tuples(st.just("park"), st.integers(0, 12), st.booleans())
desk_event = st.tuples(st.just("desk"), st.integers(0, 25000))
meter_event = st.tuples(
    st.just("meter"), st.lists(st.sampled_from([1, 10, 20, 50, 100, 200, 500, 1000]), max_size=60), st.booleans()
)
purse_events = st.lists(st.one_of(tap_event, park_event, desk_event, meter_event), max_size=40)
cards = st.one_of(
    st.just(PurseCard(number="B-1", kind=CardKind.BEARER, issued_on=date(2024, 1, 2))),
    st.builds(
        PurseCard,
        number=st.just("K-1"),
        kind=st.just(CardKind.PERSONAL),
        issued_on=st.just(date(2024, 1, 2)),
        registered_fare=st.sampled_from(list(RegisteredFare)),
    ),
)


@settings(max_examples=150, deadline=None)
@given(cards, purse_events)
def test_r_money_2_purse_balance_equals_ledger_sum_and_invariants_hold(card: PurseCard, events) -> None:
    tariff = DEFAULT_PURSE_TARIFF
    entries: list[LedgerEntry] = []
    now = datetime(2024, 1, 2, 6, 0)
    boarding = None
    stop = 0
    for event in events:
        now += timedelta(minutes=1)
        current = balance(entries)
        match event:
            case ("tap", t, b, s, move_on, wait):
                now += timedelta(seconds=wait)
                if move_on:
                    stop += 1
                panel = ValidatorPanel()
                for _ in range(t):
                    panel = panel.press_t()
                for _ in range(b):
                    panel = panel.press_b()
                if s:
                    panel = panel.press_s()
                decision = tap(
                    card, balance=current, panel=panel, vehicle_id="bus", stop_id=f"s{stop}", now=now, boarding=boarding
                )
                if decision.credit_ride:
                    assert current >= 0, "a second credit while one is outstanding"
                if decision.accepted:
                    assert decision.balance_after == current + balance(decision.entries)
                else:
                    assert decision.entries == ()
                entries += decision.entries
                boarding = decision.boarding
            case ("park", presses, accept_it):
                meter = insert_card(card, balance=current, now=now)
                assert isinstance(meter, MeterSession)
                for _ in range(presses):
                    meter = press_plus(meter)
                assert meter.fee <= max(current, 0)
                result = accept(meter) if accept_it else cancel(meter)
                if isinstance(result, ParkingTicket):
                    assert result.balance_after == current - result.fee
                    entries += result.entries
            case ("desk", payment):
                try:
                    receipt = top_up_at_service_point(card, balance=current, payment=payment, now=now)
                except PurseRefused:
                    assert payment < tariff.top_up.service_point_minimum
                    continue
                entries += receipt.entries
                assert receipt.balance_after == balance(entries)
            case ("meter", coins, accept_it):
                meter = insert_card(card, balance=current, now=now)
                assert isinstance(meter, MeterSession)
                meter = press_top_up(meter)
                for coin in coins:
                    meter = insert_coin(meter, coin)
                assert meter.coins_inserted <= tariff.top_up.meter_maximum
                result = accept(meter) if accept_it else cancel(meter)
                if isinstance(result, TopUpReceipt):
                    assert result.payment >= tariff.top_up.meter_minimum
                    entries += result.entries
                    assert result.balance_after == balance(entries)
        # invariants after every event
        now_balance = balance(entries)
        assert now_balance >= -tariff.largest_ride_fare, "below one credit ride"
        assert outstanding_credit(now_balance) <= tariff.largest_ride_fare, "more than one credit outstanding"
        assert all(isinstance(e.amount, int) for e in entries)
        card = dataclasses.replace(card, last_used_on=now.date())
