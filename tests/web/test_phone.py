"""Issue 15 (the passenger's phone), items 5–8: forms, finish, the operator profile, content, compression."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.conftest import page_text
from web.clock import WARSAW


def _travel_to(clock, year: int, month: int, day: int) -> None:  # type: ignore[no-untyped-def]
    clock.travel(datetime(year, month, day, 12, tzinfo=WARSAW).astimezone(timezone.utc) - clock.now())


@pytest.mark.parametrize(("day", "monthly"), [((2024, 7, 31), "80,00"), ((2024, 8, 1), "90,00"),
                                              ((2026, 3, 1), "90,00"), ((2026, 3, 2), "99,00")])
def test_r_5p1_2_landing_page_states_the_prices_in_force(browser, clock, day, monthly):
    _travel_to(clock, *day)
    text = page_text(browser.get("/").text)
    assert "za połowę" not in text
    assert f"Pięć miesięcy po {monthly} zł, szósty za 20,00 zł" in text
