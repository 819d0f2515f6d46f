"""The e-purse tariff is data: the TOML file, the defaults and the dict loader agree."""

from __future__ import annotations

import copy
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from domain.purse_tariff import (
    DEFAULT_PURSE_TARIFF,
    Discount,
    TariffError,
    purse_tariff_from_dict,
)

TARIFF_FILE = Path(__file__).resolve().parents[2] / "tariffs" / "kolobrzeg-purse.toml"


def _file_dict() -> dict:
    with TARIFF_FILE.open("rb") as handle:
        return tomllib.load(handle)


def test_tariff_file_matches_default_tariff() -> None:
    assert purse_tariff_from_dict(_file_dict()) == DEFAULT_PURSE_TARIFF


def test_public_kolobrzeg_prices() -> None:
    t = DEFAULT_PURSE_TARIFF
    assert [t.city.price(d) for d in Discount] == [280, 200, 140, 70]
    assert [t.suburban.price(d) for d in Discount] == [340, 240, 170, 90]
    assert t.short_ride_fare(Discount.NORMAL) == 140
    assert t.baggage_fare == 280
    assert t.no_ticket_surcharge == 22000
    assert (t.parking.minimum_fee, t.parking.unit_fee) == (100, 50)
    assert (t.top_up.service_point_minimum, t.top_up.meter_minimum, t.top_up.meter_maximum) == (500, 200, 20000)
    assert t.top_up.meter_coins == (10, 20, 50, 100, 200, 500)
    assert t.largest_ride_fare == 340


def test_short_ride_rounds_half_up() -> None:
    # 50 % of 0.70 is 0.35; with an odd fare, e.g. 0.75 -> 0.375 -> 0.38
    d = _file_dict()
    d["fares"]["city"]["off_75"] = "0.75"
    assert purse_tariff_from_dict(d).short_ride_fare(Discount.OFF_75) == 38


def test_loader_accepts_polish_decimal_comma() -> None:
    d = _file_dict()
    d["fares"]["city"]["normal"] = "3,00"
    assert purse_tariff_from_dict(d).city.normal == 300


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["fares"]["city"].__setitem__("normal", 2.8), "fares.city.normal: write money as a złoty string"),
        (lambda d: d["fares"]["city"].__setitem__("normal", 280), "fares.city.normal: write money as a złoty string"),
        (lambda d: d["fares"]["city"].__setitem__("normal", "abc"), "fares.city.normal: 'abc' is not an amount"),
        (lambda d: d["fares"]["city"].__setitem__("normal", "2.805"), "fares.city.normal: '2.805' is not an amount"),
        (lambda d: d["fares"]["city"].__setitem__("off_75", "5.00"), "fares.city: fares must not grow"),
        (lambda d: d["fares"].pop("baggage"), "fares.baggage: missing"),
        (lambda d: d["fares"].__setitem__("bagage", "2.80"), "fares.bagage: unknown setting"),
        (lambda d: d["parking"].__setitem__("unit_minutes", 0), "parking.unit_minutes: must be a whole number"),
        (lambda d: d["parking"].__setitem__("unit_minutes", 7.5), "parking.unit_minutes: must be a whole number"),
        (lambda d: d["top_up"].__setitem__("meter_minimum", "300.00"), "meter_minimum must not be above meter_maximum"),
        (lambda d: d["top_up"].__setitem__("meter_coins", []), "top_up.meter_coins: must be a non-empty list"),
        (lambda d: d["top_up"]["meter_coins"].append(5), "top_up.meter_coins[6]: write a coin as a złoty string"),
        (lambda d: d["top_up"]["bonus"][1].__setitem__("percent", 5.0), "top_up.bonus[1].percent: write a percentage"),
        (lambda d: d["top_up"]["bonus"][1].__setitem__("percent", 150), "top_up.bonus[1].percent: must be between 0 and 100"),
        (lambda d: d["top_up"]["bonus"].reverse(), "strictly ascending"),
        (lambda d: d["top_up"].__setitem__("bonus_at_meter", "yes"), "top_up.bonus_at_meter: must be true or false"),
        (lambda d: d["fares"].__setitem__("short_ride_percent", 0), "fares.short_ride_percent: must be more than 0"),
        (lambda d: d["top_up"]["bonus"].append(None), "top_up.bonus[4]: must be a table"),
        (lambda d: d.pop("parking"), "parking: missing"),
        (lambda d: d.__setitem__("parking", "1 zł"), "parking: must be a table"),
    ],
)
def test_loader_says_what_is_wrong(mutate, expected: str) -> None:
    d = copy.deepcopy(_file_dict())
    mutate(d)
    with pytest.raises(TariffError) as caught:
        purse_tariff_from_dict(d)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_loader_reports_every_problem_at_once() -> None:
    d = _file_dict()
    d["fares"]["city"]["normal"] = 2.8
    d["parking"]["unit_fee"] = "-1"
    with pytest.raises(TariffError) as caught:
        purse_tariff_from_dict(d)
    assert len(caught.value.problems) == 2
    assert "invalid purse tariff" in str(caught.value)


def test_missing_table_is_reported_once() -> None:
    d = _file_dict()
    del d["top_up"]
    with pytest.raises(TariffError) as caught:
        purse_tariff_from_dict(d)
    assert caught.value.problems == ["top_up: missing"]


def test_bonus_percent_may_be_a_decimal_string() -> None:
    d = _file_dict()
    d["top_up"]["bonus"][1]["percent"] = "12.5"
    assert purse_tariff_from_dict(d).top_up.bonus_percent(3000) == Decimal("12.5")
