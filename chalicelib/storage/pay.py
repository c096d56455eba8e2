"""Time registrations, transferred pay items and pay transfers (DOMAIN §2).

``TimeRegistration`` is stored per worker (hash ``worker_id``, range ``registration_id``, so an
upload finds resent registrations with batch gets); ``by_clock_in`` (a local index, strongly
consistent) serves an approval's date range for one worker and ``by_day`` (the UTC date of the
clock-in) serves transfer to pay: a period is one query per day for every worker, instead of one
query per worker for a handful of registrations.

``PayItem`` marks a pay item (worker × pay type × day) transferred, by ``PayLine.item_key``.
``PayTransfer`` records one run's file for one period type: ``pending`` while its file is being
written, ``done`` after; pay items point at it. A ``pending`` transfer of another run is a run
that died between marking its items and finishing: its items count as transferred only if its
file reached S3.

Markers are batch-written, not conditional: transfer to pay runs single flight (the job lock,
verified right before marking), and a conditional write per item would cost a request per pay
item. (TransactWriteItems would batch the conditions, but moto copies the whole table once per
item of a transaction, which times out on the local stack at scale M.)
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex
from pynamodb.models import Model

from chalicelib.domain import pay
from chalicelib.domain.errors import DomainError
from chalicelib.storage.base import DecimalAttribute, get_many, iso, meta, write_all

PAGE_SIZE = 1000
PENDING, DONE = "pending", "done"


class RegistrationConflict(DomainError):
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


class TimeRegistration(Model):
    Meta = meta("time-registrations")
    worker_id = UnicodeAttribute(hash_key=True)
    registration_id = UnicodeAttribute(range_key=True)
    store_id = UnicodeAttribute()
    clock_in = UnicodeAttribute()  # UTC, "YYYY-MM-DDTHH:MM:SS.mmmZ" (sorts in time order)
    clock_out = UnicodeAttribute()
    work_date = UnicodeAttribute()  # the day the registration counts for (pay.registration_day)
    approved = BooleanAttribute(default=False)
    approved_at = UnicodeAttribute(null=True)
    uploaded_at = UnicodeAttribute()
    by_clock_in = RegistrationsByClockIn()
    by_day = RegistrationsByDay()

    def to_domain(self) -> pay.TimeRegistration:
        return pay.TimeRegistration.from_record({
            "registration_id": self.registration_id, "worker_id": self.worker_id,
            "clock_in": self.clock_in, "clock_out": self.clock_out, "approved": self.approved})


class PayItem(Model):
    Meta = meta("pay-items")
    item_key = UnicodeAttribute(hash_key=True)  # pay.PayLine.item_key
    worker_id = UnicodeAttribute()
    pay_type_id = UnicodeAttribute()
    profile_date = UnicodeAttribute()
    hours = DecimalAttribute()
    amount = DecimalAttribute()
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


# --- registrations ----------------------------------------------------------------------------

@dataclass(frozen=True)
class UploadResult:
    accepted: int  # new registrations
    updated: int  # changed registrations (not yet approved)
    duplicates: int  # resent unchanged

    def to_api(self) -> dict:
        return {"accepted": self.accepted, "updated": self.updated, "duplicates": self.duplicates}


def save_registrations(store_id: str, registrations: list[dict]) -> UploadResult:
    """Store validated registrations of ``store_id``'s workers, idempotently by registration id.

    A resent registration with the same times is a duplicate; different times update it unless it
    is approved (then ``RegistrationConflict`` names it and nothing is written). One approved by a
    concurrent request between our read and our write is refused the same way, after the others
    are saved (resending them is harmless).
    """
    keys = [(r["worker_id"], r["registration_id"]) for r in registrations]
    stored = {(s.worker_id, s.registration_id): s for s in get_many(TimeRegistration, keys)}
    new, changed, locked = [], [], []
    for record in registrations:
        old = stored.get((record["worker_id"], record["registration_id"]))
        if old is None:
            new.append(record)
        elif (old.clock_in, old.clock_out) == (record["clock_in"], record["clock_out"]):
            continue
        elif old.approved:
            locked.append(record["registration_id"])
        else:
            changed.append(record)
    if locked:
        raise RegistrationConflict("approved registrations cannot be changed: " + ", ".join(locked[:20]))
    now = iso()
    # New registrations go in batches: nothing can have approved what did not exist when read.
    write_all(TimeRegistration, puts=[_item(store_id, r, now) for r in new])
    lost = []
    for record in changed:
        try:
            _item(store_id, record, now).save(condition=TimeRegistration.approved == False)  # noqa: E712
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            lost.append(record["registration_id"])
    if lost:
        raise RegistrationConflict("registrations approved while they were being changed: " + ", ".join(lost[:20]))
    return UploadResult(len(new), len(changed), len(registrations) - len(new) - len(changed))


def _item(store_id: str, record: dict, now: str) -> TimeRegistration:
    day = pay.registration_day(pay.TimeRegistration.from_record(record))
    return TimeRegistration(record["worker_id"], record["registration_id"], store_id=store_id,
                            clock_in=record["clock_in"], clock_out=record["clock_out"],
                            work_date=day.isoformat(), uploaded_at=now)


def approve(worker_id: str, from_date: date, to_date: date) -> tuple[int, int]:
    """Approve the worker's registrations clocked in from ``from_date`` through ``to_date`` (UTC);
    returns (newly approved, already approved)."""
    window = TimeRegistration.clock_in.between(from_date.isoformat(), (to_date + timedelta(days=1)).isoformat())
    found = list(TimeRegistration.by_clock_in.query(worker_id, window, consistent_read=True,
                                                    page_size=PAGE_SIZE))
    approved = 0
    now = iso()
    for registration in (r for r in found if not r.approved):
        try:
            # Conditional, so a registration approved by a concurrent request is not counted twice.
            registration.update(actions=[TimeRegistration.approved.set(True), TimeRegistration.approved_at.set(now)],
                                condition=TimeRegistration.approved == False)  # noqa: E712
            approved += 1
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
    return approved, len(found) - approved


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


def transfer_done(period_type: str, period_start: date) -> bool:
    """Whether a finished transfer covers the period of ``period_type`` starting ``period_start``."""
    # No Limit: DynamoDB applies it before the filter, and a period has only a few transfers.
    found = PayTransfer.query(period_type, PayTransfer.transfer_id.startswith(f"{period_start.isoformat()}#"),
                              filter_condition=PayTransfer.status == DONE)
    return next(iter(found), None) is not None


def start_transfer(transfer: PayTransfer) -> None:
    transfer.save()


def finish_transfer(transfer: PayTransfer) -> None:
    transfer.update(actions=[PayTransfer.status.set(DONE), PayTransfer.finished_at.set(iso())])


def mark_transferred(items: list[PayItem]) -> int:
    """Write the pay items' transferred markers (25 per BatchWriteItem)."""
    return write_all(PayItem, puts=items)
