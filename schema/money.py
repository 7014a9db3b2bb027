"""Kuwaiti dinars: 1 KWD = 1000 fils. Amounts are integer fils everywhere, never floats;
Decimal only at the edges where KWD is written as a number (MyFatoorah's JSON)."""

from __future__ import annotations

from decimal import Decimal

FILS_PER_KWD = 1000
_FILS = Decimal("0.001")


def format_kwd(fils: int) -> str:
    """Fils as dinars with three decimals and thousands commas: 12345500 -> "12,345.500"."""
    if isinstance(fils, bool) or not isinstance(fils, int):
        raise TypeError(f"an amount must be integer fils, not {type(fils).__name__}")
    dinars, rest = divmod(abs(fils), FILS_PER_KWD)
    sign = "-" if fils < 0 else ""
    return f"{sign}{dinars:,}.{rest:03d}"


def kwd_number(fils: int) -> Decimal:
    """Fils as the 3-decimal number an API expects: 2500 -> Decimal("2.500")."""
    return (Decimal(fils) / FILS_PER_KWD).quantize(_FILS)


def fils_of(amount: Decimal | str | int) -> int:
    """KWD as providers write it ("12,345.000", 2.5) in fils; refuses sub-fils amounts."""
    value = Decimal(str(amount).replace(",", "").strip()) * FILS_PER_KWD
    if value != value.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of fils")
    return int(value)
