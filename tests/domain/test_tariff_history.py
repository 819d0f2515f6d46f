"""R-5P1-2: the Kraków 5+1 price history as tariff periods with their sources; the price in force on a day
is picked by the domain rule (the period in force on the month's first day of validity)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from domain.tariff_5p1 import (
    TariffError,
    TariffNotInForce,
    TicketVariant,
    period_in_force,
    price_for_month,
    tariff_5p1_from_dict,
    tariff_5p1_from_toml,
)

TARIFF = tariff_5p1_from_toml(
    (Path(__file__).resolve().parents[2] / "tariffs" / "krakow-5plus1.toml").read_text(encoding="utf-8"))
NORMAL, REDUCED = TicketVariant.NORMAL, TicketVariant.REDUCED


@pytest.mark.parametrize(("day", "monthly", "reduced"), [
    (date(2021, 2, 1), 8000, 4000),
    (date(2024, 7, 31), 8000, 4000),
    (date(2024, 8, 1), 9000, 4500),
    (date(2026, 3, 1), 9000, 4500),
    (date(2026, 3, 2), 9900, 4950),
    (date(2030, 1, 1), 9900, 4950),
])
def test_r_5p1_2_monthly_price_history_boundaries(day: date, monthly: int, reduced: int) -> None:
    assert price_for_month(TARIFF, NORMAL, 1, day) == monthly
    assert price_for_month(TARIFF, REDUCED, 5, day) == reduced
    # the "+1" month stayed 20 zł (10 zł reduced) through every change
    assert price_for_month(TARIFF, NORMAL, 6, day) == 2000
    assert price_for_month(TARIFF, REDUCED, 6, day) == 1000


def test_r_5p1_2_no_price_before_the_5p1_ticket_existed() -> None:
    with pytest.raises(TariffNotInForce):
        period_in_force(TARIFF, date(2021, 1, 31))


def test_r_5p1_2_every_period_names_its_source() -> None:
    assert len(TARIFF.periods) == 3
    for period in TARIFF.periods:
        assert period.source and (period.source == "unverified" or len(period.source) > 20)


def test_r_5p1_2_source_is_bounded_text() -> None:
    base = {"effective_from": "2025-01-01", "monthly_normal": "80.00", "plus_one_normal": "20.00"}
    assert tariff_5p1_from_dict({"prices": [base]}).periods[0].source == ""
    for bad in (12, "x" * 501):
        with pytest.raises(TariffError, match="source"):
            tariff_5p1_from_dict({"prices": [{**base, "source": bad}]})
