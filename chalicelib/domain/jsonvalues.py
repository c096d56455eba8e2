"""JSON for the values the system keeps: exact decimals as strings, dates in ISO 8601, sets sorted."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)``: a ``Decimal`` becomes its string (never a rounded float), a date
    or date-time its ISO 8601 text, a set its sorted list."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
