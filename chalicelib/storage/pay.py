"""Time registrations, transferred pay items and pay transfers (DOMAIN §2).

``TimeRegistration`` is stored per worker (hash ``worker_id``, range ``registration_id``, so an
upload finds resent registrations with batch gets); ``by_clock_in`` (a local index, strongly
consistent) serves an approval's date range for one worker, ``by_store`` (the store it was
uploaded by, then clock-in) a store's approval or list in one query instead of one per worker,
and ``by_day`` (the local work date) serves transfer to pay and an approval of several stores: a
period is one query per day for every worker, instead of one query per worker (or store) for a
handful of registrations.

Approvals are conditional updates written in TransactWriteItems of up to 100 actions, each one's
backlog entries (below) in the same transaction: a batch write cannot carry a condition, and an
unconditional put of the registration as read would overwrite an upload that changed it in the
meantime. The condition (``uploaded_at`` as read, not yet approved) keeps the guarantee a single
UpdateItem gave: an approval never approves times other than those it read. A cancelled
transaction wrote nothing; its failed registrations are re-read (consistently) to tell
"approved meanwhile" from "changed meanwhile", and the rest are sent again.

``PayItem`` marks a pay item (worker × pay type × day) transferred, by ``PayLine.item_key``,
with the hours, rate and amount payroll has of it and, in ``prev_*``, what it had before that
transfer. ``PayTransfer`` records one run's file for one period type: ``pending`` while its file
is being written, ``done`` after; pay items point at it. A ``pending`` transfer of another run is
a run that died between marking its items and finishing: its items count as transferred only if
its file reached S3 (else payroll still has their ``prev_*`` state).

``PayBacklog`` is how a scheduled transfer finds late work without reading all history: every
upload of a new or changed registration and every approval first writes an entry (hash: the
worker's period type; range ``<period start>#<worker>#<stamp>#<nonce>``) naming the worker and
the days to look at again. The run queries the entries of ended periods (one query per period
type, consistent), reads only those days, and deletes an entry once its days went out — and only
when it is older than ``SETTLE_SECONDS``, so the ``by_day`` index (eventually consistent) has
caught up with the change it announces; a younger one is simply looked at again by the next run,
which finds nothing new. Entries carry a nonce in their key, so deleting the entries a run read
never deletes one written after it (batch deletes need no condition).

A registration changed after approval needs approval again (its approval is withdrawn on upload):
an operator approved the times they saw. Once re-approved, transfer to pay reverses what was sent
for its day and sends the new line.

Markers are batch-written, not conditional: transfer to pay runs single flight (the job lock,
verified right before marking), and a conditional write per item would cost a request per pay
item. (TransactWriteItems would batch the conditions, but moto copies the whole table once per
item of a transaction, which times out on the local stack at scale M.)
"""
from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.exceptions import PutError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex
from pynamodb.models import Model

from chalicelib.domain import pay
from chalicelib.domain.errors import ConflictError
from chalicelib.storage.base import DecimalAttribute, get_many, iso, meta, write_all
from chalicelib.storage.faults import condition_failed
from chalicelib.storage.transact import CONDITION_FAILED, MAX_ACTIONS, Put, Update, write_transaction

PAGE_SIZE = 1000
PENDING, DONE = "pending", "done"
# How long a change may take to show in the by_day index (and an upload or approval request to
# finish writing) before its backlog entry may be deleted.
SETTLE_SECONDS = 15 * 60


class RegistrationConflict(ConflictError):
    """A registration cannot be changed (already approved), or changed while we wrote."""


class RegistrationsByClockIn(LocalSecondaryIndex):
    class Meta:
        index_name = "by_clock_in"
        projection = AllProjection()

    worker_id = UnicodeAttribute(hash_key=True)
    clock_in = UnicodeAttribute(range_key=True)


class RegistrationsByDay(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_day"
        projection = AllProjection()

    work_date = UnicodeAttribute(hash_key=True)
    clock_in = UnicodeAttribute(range_key=True)


class RegistrationsByStore(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_store"
        projection = AllProjection()

    store_id = UnicodeAttribute(hash_key=True)
    clock_in = UnicodeAttribute(range_key=True)


class TimeRegistration(Model):
    Meta = meta("time-registrations")
    worker_id = UnicodeAttribute(hash_key=True)
    registration_id = UnicodeAttribute(range_key=True)
    store_id = UnicodeAttribute()
    clock_in = UnicodeAttribute()  # UTC, "YYYY-MM-DDTHH:MM:SS.mmmZ" (sorts in time order)
    clock_out = UnicodeAttribute()
    work_date = UnicodeAttribute()  # the day it counts for: pay.registration_day in its store's zone
    approved = BooleanAttribute(default=False)
    approved_at = UnicodeAttribute(null=True)
    uploaded_at = UnicodeAttribute()
    # The worker's pay period type at upload: files an approval's backlog entry without reading
    # the worker (None: uploaded before it was kept). Transfer to pay uses the worker's current type.
    period_type = UnicodeAttribute(null=True)
    by_clock_in = RegistrationsByClockIn()
    by_store = RegistrationsByStore()
    by_day = RegistrationsByDay()

    def to_domain(self) -> pay.TimeRegistration:
        return pay.TimeRegistration.from_record({
            "registration_id": self.registration_id, "worker_id": self.worker_id,
            "clock_in": self.clock_in, "clock_out": self.clock_out, "approved": self.approved,
            "work_date": self.work_date})


class PayItem(Model):
    Meta = meta("pay-items")
    item_key = UnicodeAttribute(hash_key=True)  # pay.PayLine.item_key
    worker_id = UnicodeAttribute()
    pay_type_id = UnicodeAttribute()
    profile_date = UnicodeAttribute()
    hours = DecimalAttribute()
    amount = DecimalAttribute()
    rate = DecimalAttribute(null=True)  # None: marked before rates were kept
    prev_hours = DecimalAttribute(null=True)  # what payroll had before this transfer (None: nothing)
    prev_amount = DecimalAttribute(null=True)
    prev_rate = DecimalAttribute(null=True)
    period_type = UnicodeAttribute()
    transfer_id = UnicodeAttribute()  # the PayTransfer (period_type, transfer_id) that exported it
    run_id = UnicodeAttribute()
    export_key = UnicodeAttribute()
    transferred_at = UnicodeAttribute()


class PayTransfer(Model):
    """One transfer-to-pay file: a run's export of one period type's period."""

    Meta = meta("pay-transfers")
    period_type = UnicodeAttribute(hash_key=True)
    transfer_id = UnicodeAttribute(range_key=True)  # "<period_start>#<run_id>"
    run_id = UnicodeAttribute()
    period_start = UnicodeAttribute()
    period_end = UnicodeAttribute()
    pay_date = UnicodeAttribute()
    status = UnicodeAttribute()  # PENDING while its file is written, then DONE
    export_key = UnicodeAttribute(null=True)  # None: nothing was left to export
    lines = NumberAttribute(default=0)
    created_at = UnicodeAttribute()
    finished_at = UnicodeAttribute(null=True)


class PayBacklog(Model):
    """Days of a worker whose registrations changed (uploaded, changed, approved) since the
    transfer that last looked at them: what a scheduled transfer to pay reads."""

    Meta = meta("pay-backlog")
    period_type = UnicodeAttribute(hash_key=True)  # the worker's, when the entry was written
    entry = UnicodeAttribute(range_key=True)  # "<period_start>#<worker_id>#<created_at>#<nonce>"
    worker_id = UnicodeAttribute()
    days = UnicodeSetAttribute()
    created_at = UnicodeAttribute()


# --- registrations ----------------------------------------------------------------------------

@dataclass(frozen=True)
class UploadResult:
    accepted: int  # new registrations
    updated: int  # changed registrations (they need approval, again if they had it)
    duplicates: int  # resent unchanged
    approval_withdrawn: int  # of the updated, those that had been approved

    def to_api(self) -> dict:
        return {"accepted": self.accepted, "updated": self.updated, "duplicates": self.duplicates,
                "approval_withdrawn": self.approval_withdrawn}


def save_registrations(store_id: str, registrations: list[dict], period_types: Mapping[str, str],
                       tz: tzinfo) -> UploadResult:
    """Store validated registrations of ``store_id``'s workers, idempotently by registration id.

    ``period_types`` maps each worker id to its pay period type; ``tz`` is the store's zone (the
    day a registration counts for is its local clock-in date). A resent registration with the
    same times is a duplicate; different times update it and withdraw its approval, if it had
    one (the operator approves the new times; transfer to pay then corrects what it sent). A
    registration changed by a concurrent request between our read and our write is refused with
    ``RegistrationConflict``, after the others are saved (resending them is harmless).
    """
    keys = [(r["worker_id"], r["registration_id"]) for r in registrations]
    stored = {(s.worker_id, s.registration_id): s for s in get_many(TimeRegistration, keys)}
    now = iso()
    new, changed = [], []
    for record in registrations:
        old = stored.get((record["worker_id"], record["registration_id"]))
        if old is None:
            new.append(_item(store_id, record, now, tz, period_types))
        elif (old.clock_in, old.clock_out) != (record["clock_in"], record["clock_out"]):
            changed.append((old, _item(store_id, record, now, tz, period_types)))
    # The backlog first: a change it does not announce would never reach payroll.
    days = [(r.worker_id, r.work_date) for r in new]
    days += [(r.worker_id, day) for old, r in changed for day in {old.work_date, r.work_date}]
    note_changes(days, period_types, now)
    # New registrations go in batches: nothing can have approved what did not exist when read.
    write_all(TimeRegistration, puts=new)
    lost = []
    for old, item in changed:
        try:
            item.save(condition=(TimeRegistration.uploaded_at == old.uploaded_at)
                      & (TimeRegistration.approved == old.approved))
        except PutError as exc:
            if not condition_failed(exc):
                raise
            lost.append(item.registration_id)
    if lost:
        raise RegistrationConflict("registrations changed or approved while they were being changed: "
                                   + ", ".join(lost[:20]))
    withdrawn = sum(1 for old, _ in changed if old.approved)
    return UploadResult(len(new), len(changed), len(registrations) - len(new) - len(changed), withdrawn)


def _item(store_id: str, record: dict, now: str, tz: tzinfo, period_types: Mapping[str, str]) -> TimeRegistration:
    day = pay.registration_day(pay.TimeRegistration.from_record(record), tz)
    return TimeRegistration(record["worker_id"], record["registration_id"], store_id=store_id,
                            clock_in=record["clock_in"], clock_out=record["clock_out"],
                            work_date=day.isoformat(), uploaded_at=now,
                            period_type=period_types.get(record["worker_id"]))


def note_changes(days: Iterable[tuple[str, str]], period_types: Mapping[str, str], now: str) -> int:
    """Write backlog entries for (worker id, work date) pairs: one per worker and pay period."""
    return write_all(PayBacklog, puts=_backlog_entries(days, period_types, now))


def _backlog_entries(days: Iterable[tuple[str, str]], period_types: Mapping[str, str], now: str) -> list[PayBacklog]:
    grouped: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for worker_id, day in days:
        grouped[_period_of(worker_id, day, period_types)].add(day)
    return [PayBacklog(period_type, f"{start}#{worker_id}#{now}#{uuid.uuid4().hex[:8]}",
                       worker_id=worker_id, days=found, created_at=now)
            for (period_type, start, worker_id), found in grouped.items()]


def _period_of(worker_id: str, day: str, period_types: Mapping[str, str]) -> tuple[str, str, str]:
    period_type = period_types[worker_id]
    return period_type, pay.period_for(period_type, date.fromisoformat(day)).start.isoformat(), worker_id


def _window(from_date: date, to_date: date):
    """The clock-in range that holds every registration counting for local days ``from_date``
    through ``to_date`` (a local day lies within a day of the UTC one: zones are UTC-12..UTC+14)."""
    return TimeRegistration.clock_in.between((from_date - timedelta(days=1)).isoformat(),
                                             (to_date + timedelta(days=2)).isoformat())


def _on_days(found: Iterable[TimeRegistration], from_date: date, to_date: date) -> list[TimeRegistration]:
    first, last = from_date.isoformat(), to_date.isoformat()
    return [r for r in found if first <= r.work_date <= last]


def worker_registrations(worker_id: str, from_date: date, to_date: date) -> list[TimeRegistration]:
    """The worker's registrations that count for ``from_date`` through ``to_date`` (consistent)."""
    return _on_days(TimeRegistration.by_clock_in.query(worker_id, _window(from_date, to_date), consistent_read=True,
                                                       page_size=PAGE_SIZE), from_date, to_date)


def store_registrations(store_id: str, from_date: date, to_date: date) -> list[TimeRegistration]:
    """The registrations uploaded by the store that count for ``from_date`` through ``to_date``
    (the ``by_store`` index: eventually consistent; approval's conditions catch what it lags on)."""
    return _on_days(TimeRegistration.by_store.query(store_id, _window(from_date, to_date), page_size=PAGE_SIZE),
                    from_date, to_date)


def stores_registrations(store_ids: Iterable[str], from_date: date, to_date: date) -> list[TimeRegistration]:
    """The registrations uploaded by the stores ``store_ids`` (at most 100: DynamoDB's ``IN``) that
    count for ``from_date`` through ``to_date``: one ``by_day`` query a day for all of them,
    filtered to the stores (eventually consistent, as ``by_store``), where ``by_store`` takes a
    query per store for a few dozen registrations."""
    wanted = TimeRegistration.store_id.is_in(*sorted(set(store_ids)))
    found, day = [], from_date
    while day <= to_date:
        found += TimeRegistration.by_day.query(day.isoformat(), filter_condition=wanted, page_size=PAGE_SIZE)
        day += timedelta(days=1)
    return found


@dataclass(frozen=True)
class ApprovalResult:
    approved: int  # approved by this request
    already_approved: int
    not_approved: list[dict]  # {registration_id, worker_id, reason}

    def to_api(self) -> dict:
        return {"approved": self.approved, "already_approved": self.already_approved,
                "not_approved": self.not_approved}


CHANGED = "changed after it was read (new clock times need approval)"


def approve(found: list[TimeRegistration], period_types: Mapping[str, str]) -> ApprovalResult:
    """Approve the registrations ``found`` that are not approved yet, each only if it is still as
    read (module docstring); ``period_types`` maps worker ids to pay period types (for the backlog).

    Nothing pending writes nothing. Registrations of workers without a period type, or changed
    since they were read, are not approved and listed with the reason.
    """
    already = sum(1 for r in found if r.approved)
    refused = [_refusal(r, "worker not found") for r in found if not r.approved and r.worker_id not in period_types]
    todo = sorted((r for r in found if not r.approved and r.worker_id in period_types),
                  key=lambda r: (r.worker_id, r.work_date, r.clock_in, r.registration_id))
    approved, lost = 0, []
    now = iso()
    while todo:
        chunk, todo = _transaction_chunk(todo, period_types)
        entries = _backlog_entries([(r.worker_id, r.work_date) for r in chunk], period_types, now)
        # Not approved and as read: a concurrent approval or upload makes the condition fail.
        codes = write_transaction(
            puts=[Put(entry) for entry in entries],
            updates=[Update(r, [TimeRegistration.approved.set(True), TimeRegistration.approved_at.set(now)],
                            (TimeRegistration.approved == False) & (TimeRegistration.uploaded_at == r.uploaded_at))  # noqa: E712
                     for r in chunk])
        if not codes:
            approved += len(chunk)
            continue
        failed = {i for i, code in enumerate(codes[len(entries):]) if code == CONDITION_FAILED}
        lost += [r for i, r in enumerate(chunk) if i in failed]
        todo = [r for i, r in enumerate(chunk) if i not in failed] + todo  # nothing was written: again
    if lost:
        current = {(r.worker_id, r.registration_id): r for r in get_many(
            TimeRegistration, [(r.worker_id, r.registration_id) for r in lost], consistent_read=True)}
        for registration in lost:
            now_stored = current.get((registration.worker_id, registration.registration_id))
            if now_stored is not None and now_stored.approved and now_stored.uploaded_at == registration.uploaded_at:
                already += 1  # approved by a concurrent request, as read
            else:
                refused.append(_refusal(registration, "deleted while being approved" if now_stored is None
                                        else CHANGED))
    return ApprovalResult(approved, already, refused)


def _refusal(registration: TimeRegistration, reason: str) -> dict:
    return {"registration_id": registration.registration_id, "worker_id": registration.worker_id, "reason": reason}


def _transaction_chunk(todo: list[TimeRegistration], period_types: Mapping[str, str]
                       ) -> tuple[list[TimeRegistration], list[TimeRegistration]]:
    """As many registrations as fit one transaction with their backlog entries (one per worker
    and period), and the rest."""
    periods: set[tuple[str, str, str]] = set()
    count = 0
    for count, registration in enumerate(todo):
        period = _period_of(registration.worker_id, registration.work_date, period_types)
        if count + len(periods | {period}) + 1 > MAX_ACTIONS:
            break
        periods.add(period)
    else:
        count = len(todo)
    return todo[:count], todo[count:]


def transfer_markers(registrations: Iterable[TimeRegistration]) -> dict[tuple[str, str], PayItem]:
    """The latest transferred pay item (regular or overtime) of each approved registration's
    worker and day: ``(worker_id, work_date)`` -> PayItem."""
    keys = [pay.PayLine.key(r.worker_id, pay_type, date.fromisoformat(r.work_date))
            for r in registrations if r.approved for pay_type in (pay.REGULAR, pay.OVERTIME)]
    latest: dict[tuple[str, str], PayItem] = {}
    for item in get_many(PayItem, keys):
        key = (item.worker_id, item.profile_date)
        if key not in latest or item.transferred_at > latest[key].transferred_at:
            latest[key] = item
    return latest


def registrations_on(day: date) -> Iterator[list[TimeRegistration]]:
    """Every registration that counts for ``day``, page by page (the ``by_day`` index)."""
    cursor = None
    while True:
        page = TimeRegistration.by_day.query(day.isoformat(), limit=PAGE_SIZE, page_size=PAGE_SIZE,
                                             last_evaluated_key=cursor)
        items = list(page)
        yield items
        cursor = page.last_evaluated_key if len(items) == PAGE_SIZE else None
        if cursor is None:
            return


# --- pay items and transfers --------------------------------------------------------------------

def pay_items(item_keys: Iterable[str]) -> dict[str, PayItem]:
    return {item.item_key: item for item in get_many(PayItem, item_keys)}


def transfers(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], PayTransfer]:
    return {(t.period_type, t.transfer_id): t for t in get_many(PayTransfer, keys)}


def period_transfers(period_type: str, period_start: str) -> list[PayTransfer]:
    """Every transfer of the period of ``period_type`` starting ``period_start`` (consistent)."""
    return list(PayTransfer.query(period_type, PayTransfer.transfer_id.startswith(f"{period_start}#"),
                                  consistent_read=True))


def backlog(period_type: str, before: str) -> Iterator[PayBacklog]:
    """The backlog entries of ``period_type`` for periods starting before ``before`` (consistent)."""
    yield from PayBacklog.query(period_type, PayBacklog.entry < before, consistent_read=True,
                                page_size=PAGE_SIZE)


def clear_backlog(entries: Iterable[PayBacklog]) -> int:
    return write_all(PayBacklog, deletes=entries)


def start_transfer(transfer: PayTransfer) -> None:
    transfer.save()


def finish_transfer(transfer: PayTransfer) -> None:
    transfer.update(actions=[PayTransfer.status.set(DONE), PayTransfer.finished_at.set(iso())])


def mark_transferred(items: list[PayItem], unmarked: Iterable[PayItem] = ()) -> int:
    """Write the pay items' transferred markers and delete ``unmarked`` ones (25 per BatchWriteItem)."""
    return write_all(PayItem, puts=items, deletes=unmarked)
