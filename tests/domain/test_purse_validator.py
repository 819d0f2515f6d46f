"""The bus validator: R-VAL-1 .. R-VAL-6."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from domain.ledger import EntryKind
from domain.purse import (
    BOARDING_WINDOW,
    SAME_STOP_WINDOW,
    Boarding,
    BoardingPlace,
    CardKind,
    FareSelection,
    FareZone,
    PurseCard,
    RegisteredFare,
    Refusal,
    RideKind,
    Signal,
    ValidatorMessage,
    ValidatorPanel,
    boarding_place,
    inspect_purse_card,
    tap,
)
from domain.purse_tariff import Discount

NOW = datetime(2024, 6, 3, 7, 30)
BEARER = PurseCard(number="B-1", kind=CardKind.BEARER, issued_on=date(2024, 1, 2))


def personal(fare: RegisteredFare = RegisteredFare.NORMAL, number: str = "K-1") -> PurseCard:
    return PurseCard(number=number, kind=CardKind.PERSONAL, issued_on=date(2024, 1, 2), registered_fare=fare)


def panel(t: int = 0, b: int = 0, s: bool = False) -> ValidatorPanel:
    p = ValidatorPanel()
    for _ in range(t):
        p = p.press_t()
    for _ in range(b):
        p = p.press_b()
    return p.press_s() if s else p


def do_tap(card, balance=1000, p=None, stop="s-1", now=NOW, boarding=None, vehicle="bus-1"):
    return tap(card, balance=balance, panel=p or ValidatorPanel(), vehicle_id=vehicle, stop_id=stop, now=now, boarding=boarding)


def test_r_val_1_bearer_tap_charges_normal_fare_and_shows_balance() -> None:
    d = do_tap(BEARER, balance=1000)
    assert d.accepted and d.ride is RideKind.OWN and d.charged == 280 and d.balance_after == 720
    assert d.display.message is ValidatorMessage.CHARGED
    assert (d.display.amount, d.display.balance) == (280, 720)
    assert d.signal is Signal.SHORT_BEEP and d.card_used
    assert [(e.kind, e.amount) for e in d.entries] == [(EntryKind.FARE, -280)]
    assert d.boarding == Boarding("B-1", "bus-1", "s-1", NOW)


@pytest.mark.parametrize(
    ("fare", "charged"),
    [
        (RegisteredFare.NORMAL, 280),
        (RegisteredFare.OFF_30, 200),
        (RegisteredFare.OFF_50, 140),
        (RegisteredFare.OFF_75, 70),
        (RegisteredFare.FREE, 0),
    ],
)
def test_r_val_1_personal_tap_charges_registered_fare(fare: RegisteredFare, charged: int) -> None:
    d = do_tap(personal(fare))
    assert d.accepted and d.charged == charged and d.balance_after == 1000 - charged


def test_r_val_1_free_ride_is_validated_and_recorded() -> None:
    d = do_tap(personal(RegisteredFare.FREE), balance=0)
    assert d.accepted and d.display.message is ValidatorMessage.FREE_RIDE and d.discount is None
    assert [(e.kind, e.amount, e.detail) for e in d.entries] == [(EntryKind.FARE, 0, "city:free")]
    assert d.card_used and d.boarding is not None


def test_r_val_1_wrong_card_refused_with_error_signal() -> None:
    d = do_tap(None)
    assert not d.accepted and d.refusal is Refusal.WRONG_CARD and d.signal is Signal.ERROR and not d.entries


def test_r_val_2_balance_check_does_not_charge() -> None:
    d = do_tap(BEARER, balance=1234, p=panel(s=True))
    assert d.accepted and d.ride is RideKind.BALANCE_CHECK and d.charged == 0 and not d.entries
    assert d.display.message is ValidatorMessage.BALANCE and d.display.balance == 1234
    assert not d.card_used and d.boarding is None


def test_r_val_2_balance_check_ignores_other_buttons() -> None:
    assert panel(t=3, b=2, s=True).selection == FareSelection(balance_check=True)


@pytest.mark.parametrize(
    ("presses", "discount", "charged"),
    [(1, Discount.NORMAL, 280), (2, Discount.OFF_30, 200), (3, Discount.OFF_50, 140), (4, Discount.OFF_75, 70), (5, Discount.NORMAL, 280)],
)
def test_r_val_3_t_presses_choose_discount(presses: int, discount: Discount, charged: int) -> None:
    d = do_tap(BEARER, p=panel(t=presses))
    assert d.discount is discount and d.charged == charged


@pytest.mark.parametrize(
    ("t", "charged"), [(0, 340), (2, 240), (3, 170), (4, 90)],
)
def test_r_val_3_b_twice_is_suburban(t: int, charged: int) -> None:
    d = do_tap(BEARER, p=panel(t=t, b=2))
    assert d.zone is FareZone.SUBURBAN and d.charged == charged
    assert d.entries[0].detail.startswith("suburban:")


@pytest.mark.parametrize(
    ("fare", "charged"),
    [(RegisteredFare.NORMAL, 140), (RegisteredFare.OFF_30, 100), (RegisteredFare.OFF_50, 70), (RegisteredFare.OFF_75, 35), (RegisteredFare.FREE, 0)],
)
def test_r_val_3_b_three_times_is_short_ride_at_half_the_passengers_fare(fare: RegisteredFare, charged: int) -> None:
    d = do_tap(personal(fare), p=panel(b=3))
    assert d.zone is FareZone.SHORT and d.charged == charged


def test_r_val_3_b_presses_cycle() -> None:
    assert panel(b=4).selection.baggage and panel(b=5).selection.zone is FareZone.SUBURBAN


def _boarded(card: PurseCard, balance: int = 1000):
    first = do_tap(card, balance=balance)
    return first, first.balance_after, first.boarding


def test_r_val_4_companion_after_holder_fare_at_boarding_stop() -> None:
    card = personal(RegisteredFare.OFF_50)
    first, bal, boarding = _boarded(card)
    assert first.charged == 140
    companion = do_tap(card, balance=bal, now=NOW + timedelta(seconds=20), boarding=boarding)
    # a personal discount belongs to the holder; a companion rides normal unless T says otherwise
    assert companion.ride is RideKind.COMPANION and companion.charged == 280
    assert [(e.kind, e.amount) for e in companion.entries] == [(EntryKind.COMPANION, -280)]
    assert companion.boarding == boarding
    reduced = do_tap(card, balance=companion.balance_after, p=panel(t=3), now=NOW + timedelta(seconds=40), boarding=boarding)
    assert reduced.ride is RideKind.COMPANION and reduced.charged == 140


def test_r_val_4_baggage_or_animal_at_normal_city_fare() -> None:
    card = personal(RegisteredFare.OFF_75)
    _, bal, boarding = _boarded(card)
    d = do_tap(card, balance=bal, p=panel(b=1), now=NOW + timedelta(seconds=10), boarding=boarding)
    assert d.ride is RideKind.BAGGAGE and d.charged == 280 and d.entries[0].kind is EntryKind.COMPANION


def test_r_val_4_baggage_before_holder_fare_refused() -> None:
    d = do_tap(personal(), p=panel(b=1))
    assert d.refusal is Refusal.HOLDER_FARE_FIRST and not d.entries and d.boarding is None


@pytest.mark.parametrize("buttons", [{}, {"t": 1}, {"t": 4}, {"b": 1}, {"b": 2}, {"b": 3}])
def test_r_val_4_companion_not_possible_at_next_stop(buttons: dict[str, int]) -> None:
    card = personal(RegisteredFare.OFF_75)
    _, bal, boarding = _boarded(card)
    later = do_tap(card, balance=bal, p=panel(**buttons), stop="s-2", now=NOW + timedelta(minutes=2), boarding=boarding)
    # nothing is added for companions (nor a new fare for the holder) and the boarding stays at s-1
    assert not later.accepted and later.refusal is Refusal.BOARDING_STOP_ONLY and not later.entries
    assert later.boarding == boarding and later.signal is Signal.ERROR and later.display.balance == bal
    back_at_s1 = do_tap(card, balance=bal, now=NOW + timedelta(minutes=20), boarding=later.boarding)
    assert back_at_s1.refusal is Refusal.BOARDING_STOP_ONLY  # the bus came round again: not the boarding any more


def test_r_val_4_balance_check_at_a_later_stop_is_still_shown() -> None:
    card = personal()
    _, bal, boarding = _boarded(card)
    d = do_tap(card, balance=bal, p=panel(s=True), stop="s-2", now=NOW + timedelta(minutes=2), boarding=boarding)
    assert d.accepted and d.ride is RideKind.BALANCE_CHECK and d.boarding == boarding


@pytest.mark.parametrize(("since", "stop", "place"), [
    (timedelta(seconds=0), "s-1", BoardingPlace.BOARDING_STOP),
    (SAME_STOP_WINDOW, "s-1", BoardingPlace.BOARDING_STOP),
    (SAME_STOP_WINDOW + timedelta(seconds=1), "s-1", BoardingPlace.LATER_STOP),
    (timedelta(minutes=1), "s-2", BoardingPlace.LATER_STOP),
    (BOARDING_WINDOW, "s-2", BoardingPlace.LATER_STOP),
    (BOARDING_WINDOW + timedelta(seconds=1), "s-2", BoardingPlace.NEW),
    (BOARDING_WINDOW + timedelta(seconds=1), "s-1", BoardingPlace.NEW),
    (-timedelta(seconds=1), "s-1", BoardingPlace.NEW),
])
def test_r_val_4_boarding_place_by_stop_and_time(since: timedelta, stop: str, place: BoardingPlace) -> None:
    boarding = Boarding("K-1", "bus-1", "s-1", NOW)
    assert boarding_place(boarding, "K-1", "bus-1", stop, NOW + since) is place
    assert boarding_place(boarding, "K-1", "bus-2", stop, NOW + since) is BoardingPlace.NEW
    assert boarding_place(None, "K-1", "bus-1", stop, NOW + since) is BoardingPlace.NEW


def test_r_val_4_an_older_ride_uploaded_late_never_moves_the_boarding_back() -> None:
    card = personal()
    _, bal, boarding = _boarded(card)
    older = do_tap(card, balance=bal, vehicle="bus-9", stop="s-7", now=NOW - timedelta(hours=3), boarding=boarding)
    assert older.accepted and older.ride is RideKind.OWN and older.boarding == boarding


def test_r_val_4_same_stop_on_a_later_trip_is_a_new_boarding() -> None:
    card = personal()
    _, bal, boarding = _boarded(card)
    later = do_tap(card, balance=bal, now=NOW + timedelta(hours=1), boarding=boarding)
    assert later.ride is RideKind.OWN and later.boarding == Boarding("K-1", "bus-1", "s-1", NOW + timedelta(hours=1))
    next_stop_later = do_tap(card, balance=bal, stop="s-2", now=NOW + BOARDING_WINDOW + timedelta(minutes=1),
                             boarding=boarding)
    assert next_stop_later.ride is RideKind.OWN and next_stop_later.boarding.stop_id == "s-2"
    other_bus = do_tap(card, balance=bal, vehicle="bus-2", now=NOW + timedelta(seconds=5), boarding=boarding)
    assert other_bus.ride is RideKind.OWN


def test_r_val_4_companion_never_on_credit() -> None:
    card = personal()
    _, bal, boarding = _boarded(card, balance=300)
    assert bal == 20
    d = do_tap(card, balance=bal, now=NOW + timedelta(seconds=5), boarding=boarding)
    assert d.refusal is Refusal.INSUFFICIENT_FUNDS and not d.entries


def test_r_val_5_one_ride_credited_when_balance_too_low() -> None:
    d = do_tap(BEARER, balance=100)
    assert d.accepted and d.credit_ride and d.charged == 280 and d.balance_after == -180
    assert d.display.message is ValidatorMessage.CREDIT_RIDE
    assert [(e.kind, e.amount) for e in d.entries] == [(EntryKind.CREDIT_RIDE, -280)]


def test_r_val_5_no_second_credit_while_one_is_outstanding() -> None:
    d = do_tap(BEARER, balance=-180, now=NOW + timedelta(hours=2))
    assert not d.accepted and d.refusal is Refusal.CREDIT_OUTSTANDING and not d.entries
    assert d.display.balance == -180


def test_r_val_5_companion_refused_after_credit_ride() -> None:
    first = do_tap(BEARER, balance=0)
    d = do_tap(BEARER, balance=first.balance_after, now=NOW + timedelta(seconds=5), boarding=first.boarding)
    assert d.refusal is Refusal.CREDIT_OUTSTANDING


def test_r_val_5_free_ride_still_recorded_with_credit_outstanding() -> None:
    d = do_tap(personal(RegisteredFare.FREE), balance=-100)
    assert d.accepted and d.charged == 0 and d.balance_after == -100


def test_r_val_6_unvalidated_card_is_riding_without_ticket() -> None:
    card = personal()
    none = inspect_purse_card(card, boarding=None, vehicle_id="bus-1", now=NOW)
    assert not none.validated and none.amount_due == 22000 + 280
    first = do_tap(card)
    ok = inspect_purse_card(card, boarding=first.boarding, vehicle_id="bus-1", now=NOW + timedelta(minutes=10))
    assert ok.validated and ok.amount_due == 0
    other_bus = inspect_purse_card(card, boarding=first.boarding, vehicle_id="bus-9", now=NOW + timedelta(minutes=10))
    assert not other_bus.validated
    suburban = inspect_purse_card(card, boarding=None, vehicle_id="bus-1", now=NOW, zone=FareZone.SUBURBAN)
    assert suburban.amount_due == 22000 + 340
