"""Money in integer grosze (R-MONEY-1): 1 zł = 100 gr, no floats anywhere near money."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

Grosze = int


class MoneyFormatError(ValueError):
    """Text that is not an amount in złoty."""


def percent_of(amount: Grosze, percent: int | str | Decimal) -> Grosze:
    """`percent` % of `amount`, rounded half-up to the grosz (R-MONEY-1).

    `percent` may be an int or a decimal string such as "12.5"; never a float.
    """
    if isinstance(percent, float):  # pragma: no cover - guarded on purpose
        raise TypeError("percent must not be a float")
    value = Decimal(amount) * Decimal(str(percent)) / Decimal(100)
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# A plain decimal in złoty: digits, then optionally "." or "," and one or two digits. No sign, exponent,
# nan/inf, thousands separators or non-ASCII digits; a trailing "zł" is allowed.
_PLAIN_PLN = re.compile(r"([0-9]{1,9})(?:[.,]([0-9]{1,2}))?", re.ASCII)


def parse_pln(text: str) -> Grosze:
    """Parse what a person types as złoty ("12", "12,5", "12.50", "12 zł") into grosze (R-TOP-5).

    Only plain decimals with at most two places and at most 9 digits of złoty are amounts; anything else
    ("1e7", "nan", "inf", "-5", "+5", "1 000", "12.345") raises `MoneyFormatError`.
    """
    cleaned = text.strip().lower().removesuffix("zł").strip()
    match = _PLAIN_PLN.fullmatch(cleaned)
    if match is None:
        raise MoneyFormatError(text)
    zl, gr = match.group(1), match.group(2) or ""
    return int(zl) * 100 + int(gr.ljust(2, "0"))


def format_pln(amount: Grosze, *, symbol: bool = True) -> str:
    """12345 -> "123,45 zł" (Polish style: comma decimals, narrow no-break space thousands)."""
    sign = "-" if amount < 0 else ""
    zl, gr = divmod(abs(amount), 100)
    zl_text = f"{zl:,}".replace(",", "\u202f")
    text = f"{sign}{zl_text},{gr:02d}"
    return f"{text}\u00a0zł" if symbol else text
