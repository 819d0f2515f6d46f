"""What the tests share: the shop around the payment sandbox (`shop`), seeds built through the domain's
rules (`seeds`), e-purse cards and device calls (`purse`), and the pinned clock (`pin_clock_from_environment`).
Tests import from here, never from each other or from `benchmarks/`."""

from __future__ import annotations

import os

from web import clock


def pin_clock_from_environment() -> None:
    """`EKP_TEST_TODAY=YYYY-MM-DD[THH:MM]` pins `web.clock` for the whole run (every xdist worker starts
    from the same moment); without it the tests use the real date."""
    text = os.environ.get(clock.PIN_VARIABLE, "").strip()
    if text:
        clock.start_at(clock.parse_pin(text))
