"""The one wall clock for leases: tests move it past a lease instead of sleeping.

``now()`` is ``time.time()`` plus an offset that only tests change (``advance``, ``reset``), so a
crash test can let "minutes" pass between a dead run and the next trigger.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime

_offset = 0.0


def now() -> float:
    """Seconds since the epoch, fractional."""
    return time.time() + _offset


def utcnow() -> datetime:
    """``now()`` as an aware UTC datetime, for leases kept as ISO timestamps (a receipt's claim)."""
    return datetime.fromtimestamp(now(), UTC)


def advance(seconds: float) -> None:
    """Move the clock forward (tests only)."""
    global _offset
    _offset += seconds


def reset() -> None:
    global _offset
    _offset = 0.0
