"""What the tests share: the shop around the payment sandbox (`shop`), seeds built through the domain's
rules (`seeds`), e-purse cards and device calls (`purse`), and the pinned clock (`pin_clock_from_environment`).
Tests import from here, never from each other or from `benchmarks/`."""

from __future__ import annotations

import os
from datetime import date, datetime, timezone
from typing import Any

from web.platform import clock


DATES_MARKER = "dates: date-sensitive: run again at each pinned date of the CI date matrix (tests/support DATE_SENSITIVE)"
DATES_BOTH_MARKER = "dates_both: date-sensitive on PostgreSQL too (tests/support DATE_SENSITIVE_ON_BOTH_DATABASES)"


def travel_to_day(day: date) -> None:
    """Move `web.platform.clock` to `day` (Warsaw) at the same wall-clock time. Not `travel(timedelta(days=n))`:
    24-hour days across a clock change land at 23:30 the day before, or 00:30 the day after."""
    local = clock.to_local(clock.now())
    target = datetime.combine(day, local.time(), tzinfo=clock.WARSAW)
    clock.travel(target.astimezone(timezone.utc) - clock.now())


def pin_clock_from_environment() -> None:
    """`EKP_TEST_TODAY=YYYY-MM-DD[THH:MM]` pins `web.platform.clock` for the whole run (every xdist worker starts
    from the same moment); without it the tests use the real date."""
    text = os.environ.get(clock.PIN_VARIABLE, "").strip()
    if text:
        clock.start_at(clock.parse_pin(text))


# The date-sensitive tests: run again by `scripts/test` at each date of DATE_MATRIX (marker `dates`). A module is
# here when what it checks depends on the calendar day the app thinks it is; pure `domain/` tests take the day as an
# argument and cover month ends, leap days and clock changes themselves, so they run once.
DATE_SENSITIVE = {
    "tests/web/five_plus_one/test_billing_batches.py": "5+1 billing runs, retries, eligibility at the next month",
    "tests/web/five_plus_one/test_five_plus_one_web.py": "5+1 schedules, renewals, retries, broken cycles, cancellation, prices",
    "tests/web/payment_records/test_payments_web.py": "payments and reconciliation after time passes",
    "tests/web/accounts/test_accounts.py": "activation and reset links, login throttling windows",
    "tests/web/accounts/test_accounts_registration.py": "activation links, PESEL birth dates against today",
    "tests/web/accounts/test_accounts_limits.py": "rate-limit windows",
    "tests/web/platform/test_sessions.py": "session lifetimes",
    "tests/web/purse/test_purse_web.py": "loss report blocking at 08:00 next day, parking time to the minute, taps",
    "tests/web/purse/test_purse_meter_events.py": "meter events against the server's clock",
    "tests/web/desk/test_desk.py": "loss reports and replacement cards at the desk",
    "tests/web/tickets/test_tickets_web.py": "ticket validity and expiry, code freshness",
    "tests/web/accounts/test_erasure.py": "tickets and months around erasure",
    "tests/web/cards/test_cards.py": "resident status from/until today",
    "tests/web/platform/test_clock.py": "the pinned clock itself",
    "e2e/test_five_plus_one_flow.py": "buying 5+1 from a chosen first day, in the browser",
    "e2e/test_ticket_aztec.py": "ticket codes signed by the page's clock and verified by the server's",
}
# Run at every date on PostgreSQL too (date arithmetic in SQL: billing claims months by their dates); the
# rest of the matrix runs on SQLite, since the calendar is computed in Python (`domain/`, `web.platform.clock`).
DATE_SENSITIVE_ON_BOTH_DATABASES = {"tests/web/five_plus_one/test_billing_batches.py", "tests/web/five_plus_one/test_five_plus_one_web.py"}
# Noon by default; two runs late in the Warsaw evening and just after its midnight, so that a test moving the
# clock by whole days (24 h) across a clock change lands on the day it meant (a test that did not failed only
# when the suite ran after 23:00 in winter).
DATE_MATRIX = ("2027-01-30", "2028-02-28", "2028-02-29", "2027-12-30", "2027-03-27", "2027-10-30",
               "2027-12-30T23:30", "2027-06-30T00:15")


def mark_date_sensitive(items: list[Any], rootdir: Any) -> None:
    import pytest

    for item in items:
        try:
            relative = item.path.relative_to(rootdir).as_posix()
        except ValueError:
            continue
        if relative in DATE_SENSITIVE:
            item.add_marker(pytest.mark.dates)
        if relative in DATE_SENSITIVE_ON_BOTH_DATABASES:
            item.add_marker(pytest.mark.dates_both)
