"""What the passenger's start page points out (pure: `today` is an argument).

* A Karta Krakowska resident status that ends within ``STATUS_WARNING_DAYS`` days is shown as needing
  action (renew it at the office before the 5+1 ticket can no longer be bought or charged, R-5P1-2).
"""

from __future__ import annotations

from datetime import date

STATUS_WARNING_DAYS = 30
"""A resident status ending within this many days (inclusive) is pointed out on the start page."""


def status_days_left(resident_until: date | None, today: date, warn_days: int = STATUS_WARNING_DAYS) -> int | None:
    """Days left (0 = ends today) of a resident status ending within `warn_days`; None when it has no end,
    ended already, or ends later."""
    if resident_until is None:
        return None
    left = (resident_until - today).days
    return left if 0 <= left <= warn_days else None
