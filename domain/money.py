"""Money in integer grosze (R-MONEY-1): 1 zł = 100 gr, no floats anywhere near money."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

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


def parse_pln(text: str) -> Grosze:
    """Parse what a person types as złoty ("12", "12,5", "12.50", "12 zł") into grosze."""
    cleaned = text.strip().lower().removesuffix("zł").strip().replace(" ", "").replace(",", ".")
    if not cleaned or cleaned.count(".") > 1:
        raise MoneyFormatError(text)
    try:
        value = Decimal(cleaned)
    except InvalidOperation as exc:
        raise MoneyFormatError(text) from exc
    if value.as_tuple().exponent < -2 or not value.is_finite():  # type: ignore[operator]
        raise MoneyFormatError(text)
    return int(value * 100)


def format_pln(amount: Grosze, *, symbol: bool = True) -> str:
    """12345 -> "123,45 zł" (Polish style: comma decimals, narrow no-break space thousands)."""
    sign = "-" if amount < 0 else ""
    zl, gr = divmod(abs(amount), 100)
    zl_text = f"{zl:,}".replace(",", "\u202f")
    text = f"{sign}{zl_text},{gr:02d}"
    return f"{text}\u00a0zł" if symbol else text
