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


# --- naming a phone so a person recognises it -------------------------------------------------------

PHONE_NAME_MAX = 40
"""A phone's name (given by the passenger or read from its User-Agent) is at most this many characters."""

_BROWSERS = (  # (token in the User-Agent, name); the first match wins, so the specific ones come first
    ("SamsungBrowser/", "Samsung Internet"), ("EdgA/", "Edge"), ("EdgiOS/", "Edge"), ("Edg/", "Edge"),
    ("OPR/", "Opera"), ("OPiOS/", "Opera"), ("YaBrowser/", "Yandex"), ("FxiOS/", "Firefox"), ("Firefox/", "Firefox"),
    ("CriOS/", "Chrome"), ("Chromium/", "Chromium"), ("Chrome/", "Chrome"), ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("Windows", "Windows"), ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"), ("Macintosh", "macOS"), ("Linux", "Linux"),
)


def clean_phone_name(text: str) -> str | None:
    """A name for a phone as typed (or sent by a page): spaces collapsed, at most PHONE_NAME_MAX characters,
    no control or formatting characters (bidi overrides, zero-width). None when nothing usable is left or
    it is too long (the caller says so; a name is never cut silently)."""
    import unicodedata

    if not isinstance(text, str) or len(text) > 4 * PHONE_NAME_MAX:
        return None
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") and ch not in "\t\n\r" for ch in text):
        return None
    name = " ".join(text.split())
    if not name or len(name) > PHONE_NAME_MAX:
        return None
    return name


def phone_name(user_agent: str | None) -> str:
    """ "Chrome · Android": the browser and system named by a User-Agent, for a person to recognise their
    phone in the list of phones holding a ticket; "" when neither is recognised."""
    ua = (user_agent or "")[:512]
    browser = next((name for token, name in _BROWSERS if token in ua), "")
    system = next((name for token, name in _SYSTEMS if token in ua), "")
    if system == "Linux" and "Android" in ua:
        system = "Android"
    return " · ".join(part for part in (browser, system) if part)
