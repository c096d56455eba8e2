"""Account activity results (DOMAIN §3, §4): one item per result, with its export state.

Keyed by ``result_id`` alone because operators reset an export by result id; the id embeds the
profile and the range (see ``result_id``), so it is unique across profiles. ``by_profile`` lists a
profile's results newest range first. ``unexported`` is a sparse index: only results waiting for
export carry its key, so export reads exactly those.

``AccountActivityCursor`` is where each profile's chain of results stands (DOMAIN §13 "Late ledger
lines"): the last date covered and the ledger sequence seen. It moves in the same transaction as
the results it accounts for, on condition that no other run moved it first, so two runs never
count a ledger line twice.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.domain.account_activity import AccountExportResult, ChainCursor, ResultLine
from chalicelib.domain.errors import ConflictError, NotFoundError
from chalicelib.storage.base import JSONAttribute, get_many, iso, meta
from chalicelib.storage.faults import condition_failed
from chalicelib.storage.transact import Put, write_transaction

WAITING = "Y"


class ResultNotFound(NotFoundError):
    pass


class ResultConflict(ConflictError):
    """The result is not in the state the request needs (e.g. resetting an unexported result)."""


class ResultsByProfile(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_profile"
        projection = AllProjection()

    profile_id = UnicodeAttribute(hash_key=True)
    result_id = UnicodeAttribute(range_key=True)


class UnexportedResults(GlobalSecondaryIndex):
    class Meta:
        index_name = "unexported"
        projection = AllProjection()

    unexported = UnicodeAttribute(hash_key=True)
    result_id = UnicodeAttribute(range_key=True)


class AccountActivityResult(Model):
    Meta = meta("account-activity")
    result_id = UnicodeAttribute(hash_key=True)
    profile_id = UnicodeAttribute()
    from_date = UnicodeAttribute()
    to_date = UnicodeAttribute()
    generated_at = UnicodeAttribute()
    run_id = UnicodeAttribute()
    lines = JSONAttribute(default=list)  # [{exported_account_name, main_account, debit, credit}]
    exported = BooleanAttribute(default=False)
    exported_at = UnicodeAttribute(null=True)
    export_key = UnicodeAttribute(null=True)
    reset_at = UnicodeAttribute(null=True)
    unexported = UnicodeAttribute(null=True)  # WAITING until exported (the sparse index's key)
    adjustment = BooleanAttribute(default=False)  # only late lines' totals, for dates already covered
    restatement = BooleanAttribute(default=False)  # an explicit range again; outside the chain
    late_lines = NumberAttribute(null=True)  # an adjustment's ledger lines
    sequence_through = JSONAttribute(null=True)  # {legal_entity: every line numbered up to it seen}
    warning = UnicodeAttribute(null=True)  # unbalanced: the unmapped accounts and their totals
    legal_entity = UnicodeAttribute(null=True)
    currency = UnicodeAttribute(null=True)
    by_profile = ResultsByProfile()
    waiting = UnexportedResults()

    def to_api(self) -> dict:
        return {"result_id": self.result_id, "profile_id": self.profile_id, "from_date": self.from_date,
                "to_date": self.to_date, "generated_at": self.generated_at, "run_id": self.run_id,
                "exported": self.exported, "exported_at": self.exported_at, "export_key": self.export_key,
                "adjustment": bool(self.adjustment), "restatement": bool(self.restatement),
                "late_lines": self.late_lines, "sequence_through": self.sequence_through,
                "warning": self.warning, "legal_entity": self.legal_entity, "currency": self.currency,
                "lines": self.lines}

    def to_domain(self) -> AccountExportResult:
        return AccountExportResult.from_record(self.to_api())


class AccountActivityCursor(Model):
    """Where a profile's chain of results stands (see ``ChainCursor``)."""

    Meta = meta("account-activity-cursors")
    profile_id = UnicodeAttribute(hash_key=True)
    to_date = UnicodeAttribute(null=True)
    through = JSONAttribute(default=dict)
    reread_from = JSONAttribute(default=dict)
    adjustments = NumberAttribute(default=0)
    version = NumberAttribute(default=0)
    run_id = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)

    def to_domain(self) -> ChainCursor:
        return ChainCursor(date.fromisoformat(self.to_date) if self.to_date else None, dict(self.through),
                           dict(self.reread_from), int(self.adjustments))


def result_id(profile_id: str, from_date: date, to_date: date, regeneration: str | None = None) -> str:
    """``<profile>-<from>-<to>`` (``-r<tag>`` added for a regeneration).

    Deterministic per (profile, range), so two runs computing the same default range find one
    result; a profile's normal results sort by their range.
    """
    base = f"{profile_id}-{from_date:%Y%m%d}-{to_date:%Y%m%d}"
    return f"{base}-r{regeneration}" if regeneration else base


def latest_to_date(profile_id: str) -> date | None:
    """The latest ``to_date`` of the profile's results, ``None`` before the first: where a profile
    without a cursor (results made before cursors existed) stands."""
    latest = next(iter(AccountActivityResult.by_profile.query(profile_id, scan_index_forward=False, limit=1)),
                  None)
    return date.fromisoformat(latest.to_date) if latest else None


def new_result(profile_id: str, result: str, from_date: date, to_date: date, run_id: str,
               lines: Iterable[ResultLine], **fields) -> AccountActivityResult:
    """A new, unexported result (not saved); ``fields`` are the optional attributes."""
    return AccountActivityResult(
        result, profile_id=profile_id, from_date=from_date.isoformat(), to_date=to_date.isoformat(),
        generated_at=iso(), run_id=run_id, unexported=WAITING,
        lines=[{"exported_account_name": line.exported_account_name, "main_account": line.main_account,
                "debit": line.debit, "credit": line.credit} for line in lines], **fields)


def cursors(profile_ids: Iterable[str]) -> dict[str, AccountActivityCursor]:
    """The profiles' cursors (consistent: a run decides what is late from them)."""
    return {c.profile_id: c for c in get_many(AccountActivityCursor, profile_ids, consistent_read=True)}


def commit_chain(results: list[AccountActivityResult], cursor: AccountActivityCursor, expected_version: int) -> bool:
    """Save ``results`` and move the profile's ``cursor`` together; ``False`` (nothing written)
    when a result exists already or another run moved the cursor since ``expected_version``."""
    cursor.version = expected_version + 1
    condition = (AccountActivityCursor.version == expected_version if expected_version
                 else AccountActivityCursor.profile_id.does_not_exist())
    return not write_transaction(puts=[*(Put(r, AccountActivityResult.result_id.does_not_exist()) for r in results),
                                       Put(cursor, condition)])


def create(profile_id: str, result: str, from_date: date, to_date: date, run_id: str,
           lines: Iterable[ResultLine], **fields) -> bool:
    """Save a new, unexported result; ``False`` if a result with this id already exists."""
    item = new_result(profile_id, result, from_date, to_date, run_id, lines, **fields)
    try:
        item.save(condition=AccountActivityResult.result_id.does_not_exist())
    except PutError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def unexported_page(limit: int, cursor: dict | None) -> tuple[list[AccountActivityResult], dict | None]:
    page = AccountActivityResult.waiting.query(WAITING, limit=limit, page_size=limit, last_evaluated_key=cursor)
    items = list(page)
    return items, page.last_evaluated_key if len(items) == limit else None


def mark_exported(result: AccountActivityResult, key: str) -> None:
    result.update(actions=[AccountActivityResult.exported.set(True),
                           AccountActivityResult.exported_at.set(iso()),
                           AccountActivityResult.export_key.set(key),
                           AccountActivityResult.unexported.remove()])


def reset_export(result: str) -> AccountActivityResult:
    """Allow a result to be exported again (the next export run rewrites its file)."""
    item = get(result)
    try:
        item.update(actions=[AccountActivityResult.exported.set(False),
                             AccountActivityResult.unexported.set(WAITING),
                             AccountActivityResult.reset_at.set(iso())],
                    condition=AccountActivityResult.exported == True)  # noqa: E712 - a DynamoDB condition
    except UpdateError as exc:
        if condition_failed(exc):
            raise ResultConflict(f"result {result} has not been exported yet") from None
        raise
    return item


def get(result: str) -> AccountActivityResult:
    try:
        return AccountActivityResult.get(result, consistent_read=True)
    except AccountActivityResult.DoesNotExist:
        raise ResultNotFound(f"account activity result {result} not found") from None


def by_profile_page(profile_id: str, limit: int, cursor: dict | None) -> tuple[list[dict], dict | None]:
    page = AccountActivityResult.by_profile.query(profile_id, scan_index_forward=False, limit=limit,
                                                  page_size=limit, last_evaluated_key=cursor)
    items = [r.to_api() for r in page]
    return items, page.last_evaluated_key if len(items) == limit else None
