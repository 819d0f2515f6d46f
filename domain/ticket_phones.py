"""R-TKT-1 Two phones: how many phones may hold a mobile ticket, and how often the phone may change.

* A ticket on a mobile carrier is bound to at most ``MAX_PHONES`` phones at any moment. A phone that is
  unbound is revoked for that ticket (by ticket id + its device key), online at once and offline after
  the inspector's next sync, so at most two phones ever hold a code that verifies.
* The first ``MAX_PHONES`` bindings of a ticket are free. Every later binding (a new phone, or a phone
  bound again after it was unbound) is a *change of phone*: at most ``PHONE_CHANGES`` changes per ticket
  in any ``PHONE_CHANGE_DAYS`` days. Kraków's official app allows a change of device rarely; two changes
  a month cover a lost or replaced phone without letting a ticket be handed round.

Pure: the times are arguments, nothing is read from a clock or a database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_PHONES = 2
"""At most this many phones hold a ticket at any moment."""

PHONE_CHANGES = 2
"""At most this many changes of phone per ticket ..."""

PHONE_CHANGE_DAYS = 30
"""... in any this many days (a rolling window)."""

PHONE_CHANGE_PERIOD = timedelta(days=PHONE_CHANGE_DAYS)


@dataclass(frozen=True)
class PhoneChanges:
    """The changes of phone a ticket has had in the window ending now, and when one is possible again."""

    used: int
    limit: int
    next_change_at: datetime | None
    """None when a change is possible now; else the moment the oldest counted change leaves the window."""

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def allowed(self) -> bool:
        return self.used < self.limit


def phone_changes(bound_at: Iterable[datetime], now: datetime) -> PhoneChanges:
    """Count the changes of phone among every binding the ticket has ever had (``bound_at``: when each
    phone was bound, ended bindings included); a change counts while ``now < bound + 30 days``."""
    ordered = sorted(bound_at)
    changes = ordered[MAX_PHONES:]
    recent = [moment for moment in changes if now < moment + PHONE_CHANGE_PERIOD]
    used = len(recent)
    next_at = recent[used - PHONE_CHANGES] + PHONE_CHANGE_PERIOD if used >= PHONE_CHANGES else None
    return PhoneChanges(used=used, limit=PHONE_CHANGES, next_change_at=next_at)


def new_phone_refusal(active_phones: int, bound_at: Iterable[datetime], now: datetime) -> str | None:
    """Why a new phone may not be bound now, or None.

    ``"device_limit"``: two phones already hold the ticket (unbind one first);
    ``"change_limit"``: the ticket had ``PHONE_CHANGES`` changes of phone in the last 30 days.
    A phone that already holds the ticket is not a new phone (it only gets a fresh record).
    """
    if active_phones >= MAX_PHONES:
        return "device_limit"
    bindings = list(bound_at)
    if len(bindings) >= MAX_PHONES and not phone_changes(bindings, now).allowed:
        return "change_limit"
    return None
