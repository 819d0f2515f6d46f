"""Languages: Polish by default, English selectable. Message ids are the Polish texts (gettext),
the English catalog lives in `web/locale/en/LC_MESSAGES/messages.po` and is compiled at start-up.
"""

from __future__ import annotations

import gettext as _gettext
from contextvars import ContextVar
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = {"pl": "Polski", "en": "English"}
DEFAULT_LANGUAGE = "pl"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"

current_language: ContextVar[str] = ContextVar("current_language", default=DEFAULT_LANGUAGE)


@lru_cache(maxsize=None)
def catalog(language: str) -> _gettext.NullTranslations:
    po_path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    # The Polish catalog holds only plurals: message ids are Polish, but Polish has three plural
    # forms ("1 minutę", "2 minuty", "5 minut") where a gettext source string has two.
    if not po_path.exists():
        return _gettext.NullTranslations()
    with po_path.open("rb") as fh:
        parsed = read_po(fh, locale=language)
    buffer = BytesIO()
    write_mo(buffer, parsed)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def gettext(message: str, **variables: object) -> str:
    text = catalog(current_language.get()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: object) -> str:
    text = catalog(current_language.get()).ngettext(singular, plural, n)
    variables.setdefault("num", n)
    return text % variables


_ = gettext


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated later, when shown."""
    return message


def pick_language(cookie: str | None, accept_language: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    if cookie in LANGUAGES:
        return cookie
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return default
