"""Local days (DOMAIN §13 "Days are local", "Implausible dates").

A store's business day is a calendar day in its own ``time_zone`` (IANA, default UTC): "today"
in Toronto starts five hours after it does in UTC. These functions turn a UTC instant into
the local day and decide whether a business date is plausible for a store.

Example::

    today = local_today("America/Toronto", utcnow())
    problem = business_date_problem("1999-01-01", today, max_backdated_days=60)
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

MAX_FUTURE = timedelta(minutes=5)
"""How far in the future a store's clock may be: a status message dated later is refused."""


def zone(time_zone: str | None) -> tzinfo:
    """The IANA zone ``time_zone`` (``None`` or empty: UTC)."""
    return ZoneInfo(time_zone or "UTC")


def store_zone(store: Mapping[str, Any] | None) -> tzinfo:
    """A store's time zone (``time_zone``); UTC for a store without one or not on file."""
    return zone((store or {}).get("time_zone"))


def local_today(time_zone: str | None, now: datetime) -> date:
    """The calendar day it is at ``now`` (aware) in ``time_zone`` (``None``: UTC)."""
    return now.astimezone(zone(time_zone)).date()


def local_yesterday(time_zone: str | None, now: datetime) -> date:
    return local_today(time_zone, now) - timedelta(days=1)


def business_date_problem(business_date: str, today: date, max_backdated_days: int) -> str | None:
    """Why ``business_date`` is implausible for a store whose today is ``today``, or ``None``.

    Plausible: from ``max_backdated_days`` before today through tomorrow (a till may run past
    midnight, or its clock a little ahead).
    """
    day = date.fromisoformat(business_date)
    earliest, latest = today - timedelta(days=max_backdated_days), today + timedelta(days=1)
    if day < earliest:
        return (f"{business_date} is more than {max_backdated_days} days before the store's today "
                f"({today.isoformat()}); the earliest accepted is {earliest.isoformat()} "
                "(parameter max_backdated_days)")
    if day > latest:
        return f"{business_date} is after the store's tomorrow ({latest.isoformat()})"
    return None


def in_future(at: datetime, now: datetime) -> bool:
    """True when ``at`` is more than ``MAX_FUTURE`` after ``now``."""
    return at.astimezone(UTC) > now.astimezone(UTC) + MAX_FUTURE
