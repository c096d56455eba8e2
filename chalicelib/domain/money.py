"""Money and other exact decimals: parsed without floats, rounded half-up to cents at output."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from chalicelib.domain.errors import FieldError, ValidationError

CENT = Decimal("0.01")


def round_money(value: Decimal) -> Decimal:
    """Round half-up to 2 places (DOMAIN: money is rounded half-up at output)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def format_money(value: Decimal) -> str:
    return format(round_money(value), "f")


def to_decimal(value: Decimal | int | str, path: str) -> Decimal:
    """A stored or validated number as ``Decimal``; floats are refused (never binary floating point)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | str) and not isinstance(value, bool):
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = None
        if number is not None and number.is_finite():
            return number
    raise ValidationError([FieldError(path, "must be a decimal number")])
