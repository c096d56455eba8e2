"""Accounting export: generate account activity and write its files (DOMAIN §3, §4).

Generate account activity adds up ledger debits and credits per mapped main account over a
date range that never includes today; export account activity writes each result as XML or
CSV. Example of one generate run::

    date_range = requested_range(profile, previous_to_date, today)
    if date_range is not None:
        totals: dict[str, AccountTotal] = {}
        for page in ledger_pages(date_range):  # storage streams the lines
            accumulate(totals, page, profile.mapped_accounts)
        lines = result_lines(profile, totals)

Totals stay exact ``Decimal``; result lines are rounded half-up to 2 places.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, BinaryIO, NamedTuple, TextIO
from xml.sax.saxutils import XMLGenerator

from chalicelib.domain.days import local_today
from chalicelib.domain.errors import FieldError, ValidationError
from chalicelib.domain.money import format_money, round_money, to_decimal

EXPORT_FOLDER = "account-activity"

CSV_HEADER = (
    "result_id",
    "from_date",
    "to_date",
    "exported_account_name",
    "main_account",
    "debit",
    "credit",
)

# Characters XML 1.0 cannot carry at all, not even as character references.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class FileFormat(StrEnum):
    """The file an account export profile produces."""

    XML = "xml"
    CSV = "csv"


class DateRange(NamedTuple):
    """Inclusive posting-date range of one result."""

    from_date: date
    to_date: date


@dataclass(frozen=True)
class ProfileLine:
    """Maps a main account to the account name the third-party system knows."""

    exported_account_name: str
    main_account: str


@dataclass(frozen=True)
class AccountExportProfile:
    """An ``account-export-profiles`` record: which accounts to export, how, from when."""

    id: str
    name: str
    lines: tuple[ProfileLine, ...]
    file_format: FileFormat
    file_prefix: str
    start_date: date
    legal_entity: str | None = None
    time_zone: str = "UTC"

    @property
    def mapped_accounts(self) -> frozenset[str]:
        """Main accounts that have a profile line; every other account is ignored."""
        return frozenset(line.main_account for line in self.lines)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> AccountExportProfile:
        try:
            file_format = FileFormat(record["file_format"])
        except ValueError:
            raise ValidationError([FieldError("file_format", "must be xml or csv")]) from None
        return cls(
            id=record["id"],
            name=record.get("name", ""),
            lines=tuple(
                ProfileLine(line["exported_account_name"], line["main_account"])
                for line in record["lines"]
            ),
            file_format=file_format,
            file_prefix=record.get("file_prefix") or "",
            start_date=_to_date(record["start_date"]),
            legal_entity=record.get("legal_entity") or None,
            time_zone=record.get("time_zone") or "UTC",
        )

    def today(self, now: datetime) -> date:
        """The profile's date at ``now`` (an aware datetime): "yesterday" is the profile's own."""
        return local_today(self.time_zone, now)


@dataclass(frozen=True)
class LedgerLine:
    """A ledger line written by statement posting (DOMAIN §10)."""

    posting_date: date
    main_account: str
    debit: Decimal
    credit: Decimal
    store_id: str = ""
    statement_id: str = ""
    legal_entity: str | None = None
    currency: str | None = None
    seq: int | None = None
    block_end: int | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> LedgerLine:
        return cls(
            posting_date=_to_date(record["posting_date"]),
            main_account=record["main_account"],
            debit=to_decimal(record.get("debit", 0), "debit"),
            credit=to_decimal(record.get("credit", 0), "credit"),
            store_id=record.get("store_id", ""),
            statement_id=record.get("statement_id", ""),
            legal_entity=record.get("legal_entity"),
            currency=record.get("currency"),
            seq=_to_int(record.get("seq")),
            block_end=_to_int(record.get("block_end")),
        )


@dataclass
class AccountTotal:
    """Running debit and credit of one main account (exact, not rounded)."""

    debit: Decimal = field(default_factory=Decimal)
    credit: Decimal = field(default_factory=Decimal)


@dataclass(frozen=True)
class ResultLine:
    """Debit and credit of one mapped account in a result, rounded to 2 places."""

    exported_account_name: str
    main_account: str
    debit: Decimal
    credit: Decimal


@dataclass(frozen=True)
class AccountExportResult:
    """Totals of one profile over one date range; exported once unless an operator resets it."""

    result_id: str
    profile_id: str
    from_date: date
    to_date: date
    generated_at: datetime
    lines: Sequence[ResultLine]
    exported: bool = False
    exported_at: datetime | None = None
    export_key: str | None = None
    adjustment: bool = False
    restatement: bool = False

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> AccountExportResult:
        exported_at = record.get("exported_at")
        return cls(
            result_id=str(record["result_id"]),
            profile_id=record["profile_id"],
            from_date=_to_date(record["from_date"]),
            to_date=_to_date(record["to_date"]),
            generated_at=_to_datetime(record["generated_at"]),
            lines=tuple(
                ResultLine(
                    exported_account_name=line["exported_account_name"],
                    main_account=line["main_account"],
                    debit=to_decimal(line["debit"], "debit"),
                    credit=to_decimal(line["credit"], "credit"),
                )
                for line in record["lines"]
            ),
            exported=bool(record.get("exported", False)),
            exported_at=_to_datetime(exported_at) if exported_at else None,
            export_key=record.get("export_key"),
            adjustment=bool(record.get("adjustment", False)),
            restatement=bool(record.get("restatement", False)),
        )


def next_range(
    profile: AccountExportProfile, previous_to_date: date | None, today: date
) -> DateRange | None:
    """The range the next result covers, or ``None`` when there is nothing to do.

    ``from_date`` is the day after ``previous_to_date`` (the latest ``to_date`` of the profile's
    results), or the profile's ``start_date`` on the first run. ``to_date`` is yesterday: today
    is never included, so every day's totals are complete.
    """
    default = _default_range(profile, previous_to_date, today)
    return default if default.from_date <= default.to_date else None


def requested_range(
    profile: AccountExportProfile,
    previous_to_date: date | None,
    today: date,
    from_date: date | None = None,
    to_date: date | None = None,
) -> DateRange | None:
    """The range of a run: ``next_range`` unless the params override ``from_date``/``to_date``.

    An override is a regeneration: it may reach back before the last result (the new result
    never edits an exported one). A bound left out defaults as in ``next_range``. An explicit
    range must satisfy ``from_date <= to_date < today`` — today is never included, even on
    request — otherwise ``ValidationError`` names the offending params.
    """
    if from_date is None and to_date is None:
        return next_range(profile, previous_to_date, today)
    default = _default_range(profile, previous_to_date, today)
    start = from_date if from_date is not None else default.from_date
    end = to_date if to_date is not None else default.to_date
    errors = []
    if end >= today:
        errors.append(FieldError("to_date", "must be before today; today is never included"))
    if start > end:
        errors.append(FieldError("from_date", "must not be after to_date"))
    if errors:
        raise ValidationError(errors, "invalid date range")
    return DateRange(start, end)


def accumulate(
    totals: dict[str, AccountTotal],
    ledger_lines: Iterable[LedgerLine],
    mapping: Container[str],
) -> int:
    """Add the debit and credit of each line on a mapped account to ``totals``, in place.

    Lines on accounts not in ``mapping`` (e.g. ``profile.mapped_accounts``) are ignored.
    Lines are consumed one at a time, so memory stays proportional to the number of accounts;
    call it once per page of ledger lines. The caller selects the lines of the date range.
    Returns how many lines were added.
    """
    added = 0
    for line in ledger_lines:
        if line.main_account not in mapping:
            continue
        total = totals.get(line.main_account)
        if total is None:
            total = totals[line.main_account] = AccountTotal()
        total.debit += line.debit
        total.credit += line.credit
        added += 1
    return added


def result_lines(
    profile: AccountExportProfile, totals: Mapping[str, AccountTotal]
) -> list[ResultLine]:
    """One line per profile line, in profile order, zero totals included; rounded half-up."""
    zero = AccountTotal()
    lines = []
    for mapped in profile.lines:
        total = totals.get(mapped.main_account, zero)
        lines.append(
            ResultLine(
                exported_account_name=mapped.exported_account_name,
                main_account=mapped.main_account,
                debit=round_money(total.debit),
                credit=round_money(total.credit),
            )
        )
    return lines


def unbalanced_warning(
    profile: AccountExportProfile, totals: Mapping[str, AccountTotal]
) -> str | None:
    """A warning when the result's debits and credits differ, naming the accounts the profile
    leaves unmapped and their totals (``totals`` holds every account, mapped or not)."""
    lines = result_lines(profile, totals)
    debit = sum((line.debit for line in lines), Decimal(0))
    credit = sum((line.credit for line in lines), Decimal(0))
    if debit == credit:
        return None
    unmapped = sorted(account for account in totals if account not in profile.mapped_accounts)
    named = ", ".join(
        f"{account} (debit {format_money(totals[account].debit)}, "
        f"credit {format_money(totals[account].credit)})"
        for account in unmapped
    )
    return (
        f"unbalanced: debits {format_money(debit)} != credits {format_money(credit)}; "
        + (f"unmapped accounts {named}" if named else "no unmapped account (a statement in flight?)")
    )


# --- late ledger lines (DOMAIN §13) -------------------------------------------------------------


class LineFate(StrEnum):
    """What one generate run does with a ledger line of a profile's scope."""

    COUNTED = "counted"  # an earlier result already holds it
    NORMAL = "normal"  # in this run's date range
    LATE = "late"  # for a date an earlier result covered, numbered after it: an adjustment
    DEFERRED = "deferred"  # dated after this run's range (the profile's today): a later run's
    OUT_OF_SCOPE = "out_of_scope"  # before the profile's start date


@dataclass(frozen=True)
class ChainCursor:
    """Where a profile's results stand: the last date the normal results cover, and per legal
    entity the sequence ``through`` which every line was seen and the first number whose line
    may not be in a result yet (``reread_from``, at most ``through`` + 1: a line dated after the
    last run's range)."""

    to_date: date | None = None
    through: Mapping[str, int] = field(default_factory=dict)
    reread_from: Mapping[str, int] = field(default_factory=dict)
    adjustments: int = 0

    def first_unread(self, legal_entity: str) -> int:
        return self.reread_from.get(legal_entity, self.through.get(legal_entity, 0) + 1)


def line_fate(
    line: LedgerLine, cursor: ChainCursor, start_date: date, to_date: date
) -> LineFate:
    """Classify a numbered line for a run whose normal range ends ``to_date``.

    A line the cursor has seen (number up to ``through``) dated up to the cursor's ``to_date``
    is in an earlier result (normal or adjustment); an unseen line dated so is late.
    """
    if line.posting_date < start_date:
        return LineFate.OUT_OF_SCOPE
    if cursor.to_date is not None and line.posting_date <= cursor.to_date:
        seen = line.seq is not None and line.seq <= cursor.through.get(line.legal_entity or "", 0)
        return LineFate.COUNTED if seen else LineFate.LATE
    return LineFate.DEFERRED if line.posting_date > to_date else LineFate.NORMAL


class Blocks(NamedTuple):
    """The complete statement blocks of one read, from its first number on."""

    lines: list[LedgerLine]
    reached: int  # the last number of the last complete block (first - 1 when none)
    gap: bool  # a number was missing: a posting in flight or not yet visible


def complete_blocks(lines: Iterable[LedgerLine], first: int) -> Blocks:
    """The lines numbered ``first``, ``first`` + 1, ... without a hole, cut after the last
    statement block seen whole (a statement is never split between two results)."""
    taken: list[LedgerLine] = []
    expected, reached, cut = first, first - 1, 0
    for line in lines:
        if line.seq != expected:
            return Blocks(taken[:cut], reached, True)
        taken.append(line)
        expected += 1
        if line.seq == line.block_end:
            reached, cut = line.seq, len(taken)
    return Blocks(taken[:cut], reached, False)


def adjustment_id(profile_id: str, dates: DateRange, number: int) -> str:
    """``<profile>-<from>-<to>-adj<n>``: the dates it corrects, numbered per profile."""
    return f"{profile_id}-{dates.from_date:%Y%m%d}-{dates.to_date:%Y%m%d}-adj{number}"


def write_xml(result: AccountExportResult, profile: AccountExportProfile, out: BinaryIO) -> None:
    """Stream the result as UTF-8 XML with a declaration to ``out``::

        <AccountExport profile="RE-DEFAULT" resultId="17" fromDate="2026-11-01" toDate="2026-11-03">
          <Account name="4000-Sales" mainAccount="401100" debit="0.00" credit="12345.67"/>
        </AccountExport>

    ``profile`` is the profile id (the stable identifier, like AX's profile name). An adjustment
    (DOMAIN §13) carries ``adjustment="true"`` on the root, a restatement ``restatement="true"``. Raises
    ``ValidationError`` before writing anything if a name holds characters XML cannot carry.
    """
    _check_xml_text(result, profile)
    xml = XMLGenerator(out, encoding="utf-8", short_empty_elements=True)
    xml.startDocument()  # writes the declaration and a newline
    root = {
        "profile": profile.id,
        "resultId": result.result_id,
        "fromDate": result.from_date.isoformat(),
        "toDate": result.to_date.isoformat(),
    }
    if result.adjustment:
        root["adjustment"] = "true"  # only late lines' totals: add them to what was exported
    if result.restatement:
        root["restatement"] = "true"  # the range's totals again: replaces, never adds to, earlier files
    xml.startElement("AccountExport", root)
    for line in result.lines:
        xml.characters("\n  ")
        xml.startElement(
            "Account",
            {
                "name": line.exported_account_name,
                "mainAccount": line.main_account,
                "debit": format_money(line.debit),
                "credit": format_money(line.credit),
            },
        )
        xml.endElement("Account")
    xml.characters("\n")
    xml.endElement("AccountExport")
    xml.characters("\n")
    xml.endDocument()


def write_csv(result: AccountExportResult, out: TextIO) -> int:
    """Stream the result as CSV (header first) to ``out``; returns the lines written.

    Open a file with ``newline=""``; rows end with CRLF as RFC 4180 asks.
    """
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    head = (result.result_id, result.from_date.isoformat(), result.to_date.isoformat())
    for line in result.lines:
        writer.writerow(
            (
                *head,
                line.exported_account_name,
                line.main_account,
                format_money(line.debit),
                format_money(line.credit),
            )
        )
    return len(result.lines)


def export_key(profile: AccountExportProfile, result_id: str) -> str:
    """S3 key of a result: ``account-activity/<profile_id>/<file_prefix><result_id>.<xml|csv>``.

    The folder per profile is the profile's export folder (DOMAIN §4), so two profiles with
    the same prefix never collide. The name carries the prefix once: a result id that already
    starts with it (profile ``RE-DEFAULT``, prefix ``RE-``) is not prefixed again.
    """
    name = result_id if result_id.startswith(profile.file_prefix) else profile.file_prefix + result_id
    return f"{EXPORT_FOLDER}/{profile.id}/{name}.{FileFormat(profile.file_format).value}"




def _default_range(
    profile: AccountExportProfile, previous_to_date: date | None, today: date
) -> DateRange:
    from_date = previous_to_date + timedelta(days=1) if previous_to_date else profile.start_date
    return DateRange(from_date, today - timedelta(days=1))


def _check_xml_text(result: AccountExportResult, profile: AccountExportProfile) -> None:
    texts = {"profile": profile.id, "result_id": result.result_id}
    for index, line in enumerate(result.lines):
        texts[f"lines[{index}].exported_account_name"] = line.exported_account_name
        texts[f"lines[{index}].main_account"] = line.main_account
    errors = [
        FieldError(path, "contains a character XML cannot carry")
        for path, text in texts.items()
        if _NOT_XML.search(text)
    ]
    if errors:
        raise ValidationError(errors, "result cannot be written as XML")


def _to_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(value)


def _to_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _to_datetime(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)

