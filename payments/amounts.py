"""Grosze <-> the decimal PLN amounts Tpay puts on the wire.  No floats in our arithmetic."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def grosze_to_decimal(grosze: int) -> Decimal:
    return (Decimal(grosze) / 100).quantize(Decimal("0.01"))


def grosze_to_wire(grosze: int) -> str:
    """12345 -> "123.45" (Tpay legacy notifications, md5sum input)."""
    sign = "-" if grosze < 0 else ""
    grosze = abs(grosze)
    return f"{sign}{grosze // 100}.{grosze % 100:02d}"


def grosze_to_json_number(grosze: int) -> float:
    """For JSON bodies Tpay expects a number; the shortest float repr of a 2-decimal value is exact enough
    to round-trip through `wire_to_grosze`."""
    return float(grosze_to_decimal(grosze))


def wire_to_grosze(value: object) -> int:
    """"123.45" / 123.45 / "123" -> 12345; rejects fractions of a grosz and non-numbers."""
    if isinstance(value, bool) or value is None:
        raise ValueError("not an amount")
    try:
        dec = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError("not an amount") from exc
    if not dec.is_finite():
        raise ValueError("not an amount")
    grosze = dec * 100
    if grosze != grosze.to_integral_value():
        raise ValueError("amount has fractions of a grosz")
    return int(grosze)
