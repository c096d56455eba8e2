"""Transfer to pay: pay periods, the pay calculation and the payroll CSV (DOMAIN §2).

Pure functions over dataclasses; the transfer-to-pay job loads workers, pay types and time
registrations, calls these, writes the CSV to S3 and marks each exported pay item by its
``PayLine.item_key``.

Example::

    period = period_for(worker.pay_period_type, pay_date)
    hours = daily_hours(registrations)  # {(worker_id, day): Decimal}
    mine = {day: h for (wid, day), h in hours.items() if wid == worker.id}
    lines = pay_lines(worker, mine, pay_types, period, pay_date)
    write_pay_csv(lines, out)

Hours stay exact ``Decimal`` through the calculation and are rounded half-up to 2 places only in
a ``PayLine`` (the output). The rate is printed unrounded (up to 4 places: 1.5 x 31.75 = 47.625)
and the amount is the printed hours x the printed rate, rounded half-up to the cent, so every line
adds up for whoever checks it (DOMAIN §13).

A pay item already transferred and changed since (a late or changed registration) is corrected
with a reversal line (the exported hours and amount negated, at the exported rate) and the new
line: ``reconcile`` decides that against what was exported.
"""
from __future__ import annotations

import calendar
import csv
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any, NamedTuple, TextIO

from chalicelib.domain.errors import DomainError, FieldError, ValidationError
from chalicelib.domain.money import format_money, round_money, to_decimal

REGULAR = "REG"
OVERTIME = "OT"
REGULAR_HOURS_PER_DAY = Decimal(8)
OVERTIME_FACTOR = Decimal("1.5")
# Biweekly blocks are counted from this Monday, forwards and backwards.
BIWEEKLY_ANCHOR = date(2024, 1, 1)

CSV_HEADER = (
    "worker_export_id",
    "pay_type_export_id",
    "profile_date",
    "hours",
    "rate",
    "amount",
    "period_start",
    "period_end",
    "pay_date",
)

_SECONDS_PER_HOUR = Decimal(3600)
RATE_PLACES = Decimal("0.0001")


class PayPeriodType(StrEnum):
    """How often a worker is paid; a worker belongs to exactly one period type."""

    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    MONTHLY = "monthly"


class PayPeriod(NamedTuple):
    """An inclusive date range ``start``..``end`` of one pay period."""

    start: date
    end: date


class UnknownPayType(DomainError):
    """Hours must be paid with a pay type (``REG`` or ``OT``) that is not set up."""

    def __init__(self, pay_type_id: str):
        super().__init__(f"pay type {pay_type_id} is not set up")
        self.pay_type_id = pay_type_id


@dataclass(frozen=True)
class Worker:
    """A worker as far as pay is concerned (the ``workers`` record)."""

    id: str
    export_id: str
    pay_period_type: PayPeriodType
    base_rate: Decimal
    name: str = ""
    store_id: str = ""

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Worker:
        """Build from a ``workers`` record; ``ValidationError`` on a bad rate or period type."""
        try:
            period_type = PayPeriodType(record["pay_period_type"])
        except ValueError:
            raise ValidationError(
                [FieldError("pay_period_type", f"must be one of: {', '.join(PayPeriodType)}")]
            ) from None
        return cls(
            id=record["id"],
            export_id=record["export_id"],
            pay_period_type=period_type,
            base_rate=to_decimal(record["base_rate"], "base_rate"),
            name=record.get("name", ""),
            store_id=record.get("store_id", ""),
        )


@dataclass(frozen=True)
class PayType:
    """A pay type (``pay-types`` record); only those with ``include_in_export`` reach payroll."""

    id: str
    export_id: str
    include_in_export: bool
    description: str = ""

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> PayType:
        return cls(
            id=record["id"],
            export_id=record["export_id"],
            include_in_export=bool(record["include_in_export"]),
            description=record.get("description") or "",
        )


@dataclass(frozen=True)
class TimeRegistration:
    """One clock-in/clock-out uploaded by a POS; counts for pay only once ``approved``."""

    registration_id: str
    worker_id: str
    clock_in: datetime
    clock_out: datetime
    approved: bool = False
    work_date: date | None = None  # the local day it counts for, when the store's zone decided it

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TimeRegistration:
        """Build from a stored registration; ISO 8601 strings are parsed."""
        work_date = record.get("work_date")
        return cls(
            registration_id=record["registration_id"],
            worker_id=record["worker_id"],
            clock_in=_to_datetime(record["clock_in"]),
            clock_out=_to_datetime(record["clock_out"]),
            approved=bool(record.get("approved", False)),
            work_date=date.fromisoformat(work_date) if isinstance(work_date, str) else work_date,
        )

    def hours(self) -> Decimal:
        """Worked hours, rounded half-up to 2 places as payroll prints them (for display)."""
        worked = _seconds(_aware(self.clock_out) - _aware(self.clock_in)) / _SECONDS_PER_HOUR
        return worked.quantize(Decimal("0.01"), ROUND_HALF_UP)


@dataclass(frozen=True)
class PayLine:
    """One exported pay item: a worker, pay type and day, rounded for output."""

    worker_id: str
    worker_export_id: str
    pay_type_id: str
    pay_type_export_id: str
    profile_date: date
    hours: Decimal
    rate: Decimal
    amount: Decimal
    period_start: date
    period_end: date
    pay_date: date

    @property
    def item_key(self) -> str:
        """Stable identity of the pay item, used for the "exported at most once" marker.

        Ids never contain ``|`` (DOMAIN §12), so the key is unambiguous.
        """
        return PayLine.key(self.worker_id, self.pay_type_id, self.profile_date)

    @staticmethod
    def key(worker_id: str, pay_type_id: str, day: date) -> str:
        return f"{worker_id}|{pay_type_id}|{day.isoformat()}"

    def csv_row(self) -> tuple[str, ...]:
        """The row in ``CSV_HEADER`` order."""
        return (
            self.worker_export_id,
            self.pay_type_export_id,
            self.profile_date.isoformat(),
            format_money(self.hours),
            format_rate(self.rate),
            format_money(self.amount),
            self.period_start.isoformat(),
            self.period_end.isoformat(),
            self.pay_date.isoformat(),
        )


REGISTRATION_STATUSES = ("pending", "approved", "transferred")


def registration_status(approved: bool, approved_at: str | None, transferred_at: str | None) -> str:
    """``pending`` until approved; ``transferred`` once a transfer to pay marked its worker's day
    after its approval (ISO stamps; a change since withdrew the approval), else ``approved``."""
    if not approved:
        return "pending"
    if transferred_at is not None and (approved_at is None or transferred_at >= approved_at):
        return "transferred"
    return "approved"


def period_for(period_type: PayPeriodType | str, day: date) -> PayPeriod:
    """The pay period of ``period_type`` that contains ``day``.

    Weekly runs Monday to Sunday; biweekly is two-week blocks counted from 2024-01-01 (a Monday),
    extending backwards the same way before it; monthly is the calendar month.

    >>> period_for("biweekly", date(2024, 1, 20))
    PayPeriod(start=datetime.date(2024, 1, 15), end=datetime.date(2024, 1, 28))
    """
    kind = PayPeriodType(period_type)
    if kind is PayPeriodType.WEEKLY:
        start = day - timedelta(days=day.weekday())
        return PayPeriod(start, start + timedelta(days=6))
    if kind is PayPeriodType.BIWEEKLY:
        # Floor division keeps the blocks aligned before the anchor too.
        block = (day - BIWEEKLY_ANCHOR).days // 14
        start = BIWEEKLY_ANCHOR + timedelta(days=14 * block)
        return PayPeriod(start, start + timedelta(days=13))
    last = calendar.monthrange(day.year, day.month)[1]
    return PayPeriod(day.replace(day=1), day.replace(day=last))


def last_ended_period(period_type: PayPeriodType | str, today: date) -> PayPeriod:
    """The most recent period that has fully ended before ``today``.

    A period ending today has not ended yet (today's registrations may still come in), so on
    a Sunday the weekly answer is the week before. The default ``pay_date`` is its ``end``.
    """
    current = period_for(period_type, today)
    return period_for(period_type, current.start - timedelta(days=1))


def registration_day(registration: TimeRegistration, tz: tzinfo = UTC) -> date:
    """The day a registration counts for: the date of its clock-in in ``tz`` (the store's zone).

    A shift crossing (local) midnight counts entirely for the day it started, so a night shift
    22:00-02:00 is one working day and its overtime is judged on the whole shift. A naive
    ``clock_in`` is taken as UTC.
    """
    return _aware(registration.clock_in).astimezone(tz).date()


def daily_hours(
    registrations: Iterable[TimeRegistration], tz: tzinfo = UTC
) -> dict[tuple[str, date], Decimal]:
    """Approved hours per ``(worker_id, day)``; unapproved registrations are left out.

    The day is the registration's ``work_date`` when it has one (decided in its store's zone on
    upload), else ``registration_day`` in ``tz``.

    Durations are summed exactly in seconds and converted to hours once per day, so the values
    are exact up to ``Decimal`` precision; rounding happens only in ``pay_lines``. Raises
    ``ValidationError`` for a registration that clocks out before it clocks in.
    """
    seconds: defaultdict[tuple[str, date], Decimal] = defaultdict(Decimal)
    for registration in registrations:
        if not registration.approved:
            continue
        worked = _aware(registration.clock_out) - _aware(registration.clock_in)
        if worked < timedelta(0):
            raise ValidationError(
                [FieldError(
                    "clock_out",
                    f"registration {registration.registration_id} clocks out before it clocks in",
                )]
            )
        day = registration.work_date or registration_day(registration, tz)
        seconds[(registration.worker_id, day)] += (
            _seconds(worked)
        )
    return {key: total / _SECONDS_PER_HOUR for key, total in seconds.items()}


def pay_lines(
    worker: Worker,
    day_hours: Mapping[date, Decimal],
    pay_types: Mapping[str, PayType],
    period: PayPeriod | tuple[date, date],
    pay_date: date,
) -> list[PayLine]:
    """The worker's pay items for ``period``, ordered by day, ``REG`` before ``OT``.

    Per day the first 8 hours are ``REG`` at ``base_rate`` and the rest ``OT`` at 1.5 x
    ``base_rate``. Days outside the period and zero-hour items are skipped, and only pay types
    with ``include_in_export`` produce lines. ``hours`` are rounded half-up to 2 places, ``rate``
    to 4 (it is exact for a base rate in cents), and ``amount`` is the printed hours x the printed
    rate rounded half-up to the cent: every line satisfies hours x rate = amount.
    Raises ``UnknownPayType`` when hours need a pay type missing from ``pay_types``.
    """
    start, end = period
    rates = {
        REGULAR: worker.base_rate,
        OVERTIME: worker.base_rate * OVERTIME_FACTOR,
    }
    lines: list[PayLine] = []
    for day in sorted(day_hours):
        if not start <= day <= end:
            continue
        hours = day_hours[day]
        split = {
            REGULAR: min(hours, REGULAR_HOURS_PER_DAY),
            OVERTIME: max(hours - REGULAR_HOURS_PER_DAY, Decimal(0)),
        }
        for pay_type_id, item_hours in split.items():
            if item_hours <= 0:
                continue
            pay_type = pay_types.get(pay_type_id)
            if pay_type is None:
                raise UnknownPayType(pay_type_id)
            if not pay_type.include_in_export:
                continue
            printed_hours, rate = round_money(item_hours), round_rate(rates[pay_type_id])
            if not printed_hours:
                continue  # under 18 seconds: nothing a payroll line can carry
            lines.append(
                PayLine(
                    worker_id=worker.id,
                    worker_export_id=worker.export_id,
                    pay_type_id=pay_type.id,
                    pay_type_export_id=pay_type.export_id,
                    profile_date=day,
                    hours=printed_hours,
                    rate=rate,
                    amount=round_money(printed_hours * rate),
                    period_start=start,
                    period_end=end,
                    pay_date=pay_date,
                )
            )
    return lines


@dataclass(frozen=True)
class ExportedItem:
    """What payroll has of a pay item: the hours, rate and amount of the lines sent so far."""

    hours: Decimal
    amount: Decimal
    rate: Decimal | None = None  # None: exported before rates were kept


def reconcile(
    lines: Iterable[PayLine],
    exported: Mapping[str, ExportedItem],
    evaluated: Iterable[tuple[str, str, date]],
    workers: Mapping[str, Worker],
    pay_types: Mapping[str, PayType],
    period: PayPeriod,
    pay_date: date,
) -> tuple[list[PayLine], int]:
    """The lines to send for the ``evaluated`` pay items (worker id, pay type id, day), given what
    payroll already has of them; returns (lines, how many are reversals).

    A new item is sent as is; an item sent before with the same hours and amount is not sent
    again; one that changed (or is gone: its hours dropped to nothing) is reversed (the hours
    and amount sent before, negated, at the rate sent) and, if it still has hours, sent anew.
    """
    current = {line.item_key: line for line in lines}
    out: list[PayLine] = []
    reversals = 0
    for worker_id, pay_type_id, day in sorted(evaluated, key=lambda k: (k[0], k[2], k[1] != REGULAR, k[1])):
        key = PayLine.key(worker_id, pay_type_id, day)
        line, before = current.get(key), exported.get(key)
        if before is not None and not before.hours and not before.amount:
            before = None  # reversed earlier: payroll has nothing of it
        if before is None:
            out.extend([line] if line else [])
            continue
        if line is not None and (line.hours, line.amount) == (before.hours, before.amount):
            continue
        worker, pay_type = workers[worker_id], pay_types.get(pay_type_id)
        rate = before.rate if before.rate is not None else round_rate(before.amount / before.hours)
        out.append(PayLine(
            worker_id=worker_id, worker_export_id=worker.export_id, pay_type_id=pay_type_id,
            pay_type_export_id=pay_type.export_id if pay_type else pay_type_id, profile_date=day,
            hours=-before.hours, rate=rate, amount=-before.amount,
            period_start=period.start, period_end=period.end, pay_date=pay_date))
        reversals += 1
        out.extend([line] if line else [])
    return out, reversals


def round_rate(rate: Decimal) -> Decimal:
    """A rate as printed: half-up to 4 places (exact for any base rate in cents x 1.5)."""
    return rate.quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


def format_rate(rate: Decimal) -> str:
    """At least 2 and at most 4 decimals: ``20.00``, ``27.75``, ``47.625``."""
    text = format(round_rate(rate), "f").rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def check_unapproved(registrations_in_period: Iterable[TimeRegistration]) -> dict[str, int]:
    """Unapproved registrations per worker id (sorted by id); empty when the period is clean."""
    counts = Counter(r.worker_id for r in registrations_in_period if not r.approved)
    return dict(sorted(counts.items()))


def refusal_message(unapproved: Mapping[str, int], period: PayPeriod | None = None) -> str:
    """The run message refusing a period with unapproved registrations, naming the workers.

    ``unapproved`` is the result of ``check_unapproved``.
    """
    workers = ", ".join(f"{worker_id} ({count})" for worker_id, count in sorted(unapproved.items()))
    scope = (
        f"Pay period {period.start.isoformat()}..{period.end.isoformat()}"
        if period
        else "The pay period"
    )
    return (
        f"{scope} has unapproved time registrations for workers {workers}; "
        "approve them or run with accept_errors to export the approved ones."
    )


def write_pay_csv(lines: Iterable[PayLine], out: TextIO) -> int:
    """Stream ``lines`` as the payroll CSV (header first) to ``out``; returns the lines written.

    Rows are written one at a time, so ``lines`` may be a generator. Open a file with
    ``newline=""``; rows end with CRLF as RFC 4180 asks.
    """
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    written = 0
    for line in lines:
        writer.writerow(line.csv_row())
        written += 1
    return written




def _seconds(delta: timedelta) -> Decimal:
    return (
        Decimal(delta.days * 86400 + delta.seconds)
        + Decimal(delta.microseconds).scaleb(-6)
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _to_datetime(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)

