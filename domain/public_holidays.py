"""Poland's statutory public holidays (ustawa o dniach wolnych od pracy, art. 1), from the `holidays` package.

The one place the calendar is read: business days of card applications (R-KKM-4) and the free days of paid
parking (R-PARK-4) both ask here. The package is the maintained calendar (Easter-dependent days, Epiphany
from 2011, Christmas Eve from 2025), which covers
the years 1925-2100 (outside them it knows no holidays: every weekday counts as a business day).
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import holidays


@lru_cache(maxsize=256)
def polish_public_holidays(year: int) -> frozenset[date]:
    """Poland's statutory public holidays of `year` (days free from work)."""
    return frozenset(holidays.country_holidays("PL", years=year))
