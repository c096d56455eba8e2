"""Run records, the single-flight lease lock and idempotency keys.

Every write to a run record is one of the named operations below (claim an attempt, save
progress, wait for a retry, finish, fan out...), each with its own condition; the jobs layer
decides (``domain/runs.py``) and calls them, never writing update expressions itself."""
from __future__ import annotations

import time
import uuid
from datetime import date, timedelta

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib import clock
from chalicelib.domain.alerts import alert_id, run_end_kind, run_end_message
from chalicelib.domain.runs import OPEN_STATUSES, STARTED_STATUSES, RunStatus, is_final
from chalicelib.prices import estimate_usd
from chalicelib.storage.alerts import first_time, new_alert, record
from chalicelib.storage.base import JSONAttribute, iso, meta, save_if, update_if
from chalicelib.storage.faults import ConditionFailed, is_transient, translated
from chalicelib.storage.transact import Update, write_transaction

IDEMPOTENCY_TTL = timedelta(days=7)


class RunsByJob(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_job"
        projection = AllProjection()

    job = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class RunsByDay(GlobalSecondaryIndex):
    """Every job's runs by the UTC day they were created (``GET /runs``: newest first, walking the
    days backwards)."""

    class Meta:
        index_name = "by_day"
        projection = AllProjection()

    created_day = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class OpenFanOuts(GlobalSecondaryIndex):
    """Sparse: only fan-out parents whose shards exist and that have not ended carry
    ``open_fanout`` (their job's name), so a later run finds a parent whose close was lost with
    one small query (DOMAIN §13)."""

    class Meta:
        index_name = "open_fanouts"
        projection = KeysOnlyProjection()

    open_fanout = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class RunRecord(Model):
    """One execution of a job (AX batch statuses: Waiting, Executing, Ended, Error, Canceled,
    Cancelling, NotRun)."""

    Meta = meta("runs")
    run_id = UnicodeAttribute(hash_key=True)
    job = UnicodeAttribute()
    created_at = UnicodeAttribute()
    created_day = UnicodeAttribute(null=True)  # created_at's UTC day (the ``by_day`` index)
    status = UnicodeAttribute(default=RunStatus.WAITING)
    trigger = UnicodeAttribute(default="manual")
    params = JSONAttribute(default=dict)
    dry_run = BooleanAttribute(default=False)
    requested_by = UnicodeAttribute(null=True)
    requested_by_label = UnicodeAttribute(null=True)  # the token's label when the run was asked for
    started_at = UnicodeAttribute(null=True)
    ended_at = UnicodeAttribute(null=True)
    counters = JSONAttribute(default=lambda: {"read": 0, "written": 0, "skipped": 0, "failed": 0})
    errors = JSONAttribute(default=list)
    outputs = JSONAttribute(default=list)
    aws_requests = JSONAttribute(default=dict)
    message = UnicodeAttribute(null=True)
    checkpoint = JSONAttribute(null=True)
    hops = NumberAttribute(default=0)
    cancel_requested = BooleanAttribute(default=False)
    idempotency_key = UnicodeAttribute(null=True)
    request_digest = UnicodeAttribute(null=True)  # of the HTTP request's canonical body (a reused key)
    lock_scope = UnicodeAttribute(default="all")
    parent_run_id = UnicodeAttribute(null=True)
    # A fan-out parent: its shards not ended yet (each shard adds one as it is created, and takes
    # it off as it ends), and whether every shard of the parent's fan-out exists.
    shards_pending = NumberAttribute(null=True)
    fanned_out = BooleanAttribute(null=True)
    open_fanout = UnicodeAttribute(null=True)  # the job's name while fanned out and not ended
    # Invocations that started executing the run (each claims it by moving this on), and the
    # ones that did not finish it: a transient AWS fault or an invocation that died.
    attempt = NumberAttribute(default=0)
    retries = NumberAttribute(default=0)
    by_job = RunsByJob()
    by_day = RunsByDay()
    open_fanouts = OpenFanOuts()

    @property
    def is_final(self) -> bool:
        return is_final(self.status)

    def to_api(self) -> dict:
        body = {
            "run_id": self.run_id,
            "job": self.job,
            "status": self.status,
            "trigger": self.trigger,
            "params": self.params,
            "dry_run": self.dry_run,
            "requested_by": self.requested_by,
            "requested_by_label": self.requested_by_label,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "counters": self.counters,
            "errors": self.errors,
            "outputs": self.outputs,
            "aws_requests": self.aws_requests,
            "message": self.message,
            "estimated_cost_usd": f"{estimate_usd(self.aws_requests or {}):f}",
        }
        if self.parent_run_id:
            body["parent_run_id"] = self.parent_run_id
        return body


def find_run(run_id: str) -> RunRecord | None:
    """The run as it stands (a consistent read), or None."""
    try:
        return RunRecord.get(run_id, consistent_read=True)
    except RunRecord.DoesNotExist:
        return None


def children(parent: RunRecord) -> list[RunRecord]:
    """A fan-out parent's shard runs (from the ``by_job`` index, which may lag a little)."""
    return list(RunRecord.by_job.query(parent.job, RunRecord.created_at >= parent.created_at,
                                       filter_condition=RunRecord.parent_run_id == parent.run_id))


RUNS_PAGE = 100  # runs a ``GET /runs`` Query evaluates
MAX_RUN_QUERIES = 10  # Queries one ``GET /runs`` call makes at most


def recent_runs(job: str | None, since: str, until: str, limit: int, cursor: dict | None,
                condition=None) -> tuple[list[RunRecord], dict | None]:
    """Runs created from ``since`` through ``until`` (ISO times), newest first, that match
    ``condition``: one job's (the ``by_job`` index) or every job's (``by_day``, one Query a day
    walking backwards). Up to ``limit`` of them and the cursor to go on from (None when the
    range is exhausted), after ``MAX_RUN_QUERIES`` Queries at most: a page may hold fewer runs
    than ``limit`` and still have a cursor. ``cursor`` is ``{"partition", "start"}``: the job or
    day being walked and the start key within it."""
    if since > until:
        return [], None
    index, key_name = (RunRecord.by_job, "job") if job else (RunRecord.by_day, "created_day")
    partition = (cursor or {}).get("partition") or (job or until[:10])
    start = (cursor or {}).get("start")
    found: list[RunRecord] = []
    for _ in range(MAX_RUN_QUERIES):
        pages = index.query(partition, RunRecord.created_at.between(since, until), scan_index_forward=False,
                            page_size=RUNS_PAGE, last_evaluated_key=start, filter_condition=condition)
        page = next(pages.page_iter)
        items = page.get("Items", [])
        for n, item in enumerate(items):
            found.append(RunRecord.from_raw_data(item))
            if len(found) == limit:
                more = n + 1 < len(items) or pages.page_iter.last_evaluated_key
                last = {name: item[name] for name in ("run_id", key_name, "created_at")}
                return found, {"partition": partition, "start": last} if more else _next_day(job, partition, since)
        start = pages.page_iter.last_evaluated_key
        if start is None:
            following = _next_day(job, partition, since)
            if following is None:
                return found, None
            partition = following["partition"]
    return found, {"partition": partition, "start": start}


def _next_day(job: str | None, partition: str, since: str) -> dict | None:
    """The cursor of the day before ``partition`` (walking every job's runs), None past ``since``."""
    if job:
        return None
    day = (date.fromisoformat(partition) - timedelta(days=1)).isoformat()
    return {"partition": day, "start": None} if day >= since[:10] else None


def open_fan_outs(job: str) -> list[str]:
    """The ids of the job's fan-out parents still marked open (the sparse ``open_fanouts`` index)."""
    return [key.run_id for key in RunRecord.open_fanouts.query(job)]


# --- the writes of a run's life -------------------------------------------------------------

def claim_attempt(run: RunRecord, status: str, died: bool, handover: bool) -> bool:
    """Move the run to ``status`` (Executing or Cancelling) as the next attempt; False when another
    invocation claimed the same attempt first or the run has ended (nothing written)."""
    actions = [RunRecord.status.set(status), RunRecord.started_at.set(run.started_at or iso()),
               RunRecord.attempt.add(1)]
    if died:
        actions.append(RunRecord.retries.add(1))
    if handover:
        actions.append(RunRecord.checkpoint.set({**run.checkpoint, "handover": False}))
    seen = run.attempt or 0
    condition = RunRecord.attempt == seen
    if not seen:
        condition = condition | RunRecord.attempt.does_not_exist()
    return update_if(run, actions, condition & RunRecord.status.is_in(*OPEN_STATUSES))


def save_progress(run: RunRecord, checkpoint: dict, results: dict) -> None:
    """Persist the run's checkpoint and its results so far (counters, errors, outputs, requests)."""
    run.update(actions=[RunRecord.checkpoint.set(checkpoint), *_results(results)])


def request_cancel(run: RunRecord) -> bool:
    """Ask an executing run to stop at its next checkpoint; False when it is no longer executing."""
    return update_if(run, [RunRecord.status.set(RunStatus.CANCELLING), RunRecord.cancel_requested.set(True)],
                     RunRecord.status.is_in(*STARTED_STATUSES))


def mark_waiting(run: RunRecord, message: str, aws_requests: dict) -> None:
    """After a transient fault: the run waits for the next delivery, one more attempt failed."""
    run.update(actions=[RunRecord.status.set(RunStatus.WAITING), RunRecord.retries.add(1),
                        RunRecord.aws_requests.set(aws_requests), RunRecord.message.set(message)])


def mark_handover(run: RunRecord) -> None:
    """The invocation's budget is spent: one more continuation, which the next invocation takes over."""
    run.update(actions=[RunRecord.hops.add(1), RunRecord.checkpoint.set({**(run.checkpoint or {}), "handover": True})])


def finish(run: RunRecord, status: str, message: str | None, expect: tuple, *, results: dict | None = None,
           cancel: bool = False) -> bool:
    """End the run ``status`` if it is in one of ``expect``; False (nothing written) when it was not.
    ``results`` (counters, errors, outputs, aws_requests) replace the stored ones; ``cancel``
    records that an operator asked for the end.

    An end that needs a person (``domain.alerts.run_end_kind``: Error, or failed records) records
    its alert in the same transaction, so the run never ends without its alert, and a retried end
    (refused: the run has ended) never adds a second one. Other ends are one conditional update."""
    results = results or {}
    ended_at = iso()
    actions = [RunRecord.status.set(status), RunRecord.ended_at.set(ended_at), RunRecord.open_fanout.remove(),
               RunRecord.message.set(message), *_results(results)]
    if cancel:
        actions.append(RunRecord.cancel_requested.set(True))
    condition = RunRecord.status.is_in(*expect)
    counters = results.get("counters", run.counters)
    kind = run_end_kind(status, counters)
    if kind is None:
        return update_if(run, actions, condition)
    shard_stores = (run.params or {}).get("store_ids") or [] if run.parent_run_id else []
    store_id = shard_stores[0] if len(shard_stores) == 1 else None  # a store's shard, not a group's
    alert = new_alert(alert_id(kind, run.run_id), kind,
                      run_end_message(kind, run.job, status, counters, message, bool(run.dry_run)),
                      job=run.job, store_id=store_id, run_id=run.run_id)
    try:
        if write_transaction(puts=[first_time(alert)], updates=[Update(run, actions, condition)]):
            return False  # the run had ended (its alert, if any, was written with that end)
    except Exception as exc:  # noqa: BLE001 - only throttling is answered here
        if not is_transient(exc):
            raise
        # DynamoDB throttles transactions: the run still ends (one update), its alert on its own
        # (lost only if that put is throttled too).
        if not update_if(run, actions, condition):
            return False
        try:
            record([alert])
        except Exception as put_failed:  # noqa: BLE001
            if not is_transient(put_failed):
                raise
        return True
    run.status, run.ended_at, run.message, run.open_fanout = status, ended_at, message, None
    for name, value in results.items():
        setattr(run, name, value)
    if cancel:
        run.cancel_requested = True
    return True


def mark_fanned_out(parent: RunRecord, message: str, aws_requests: dict, counters: dict | None = None,
                    errors: list | None = None, warnings: list | None = None) -> None:
    """Every shard of the parent exists: it is marked open in the ``open_fanouts`` index, with its
    own counters, errors and warnings so far (its close adds the shards' to them)."""
    parent.update(actions=[RunRecord.fanned_out.set(True), RunRecord.open_fanout.set(parent.job),
                           RunRecord.message.set(message), RunRecord.aws_requests.set(aws_requests),
                           RunRecord.counters.set(counters or {}), RunRecord.errors.set(errors or []),
                           RunRecord.checkpoint.set({**(parent.checkpoint or {}), "warnings": warnings or []})])


def shard_ended(parent_run_id: str) -> RunRecord | None:
    """Take one ended shard off its parent's count; the parent as it now stands (None if it is gone)."""
    parent = RunRecord(parent_run_id)
    if not update_if(parent, [RunRecord.shards_pending.add(-1)], RunRecord.run_id.exists()):
        return None
    return parent


def clear_open_fan_out(parent: RunRecord) -> None:
    """Drop the open marker of a parent that ended another way."""
    parent.update(actions=[RunRecord.open_fanout.remove()])


_RESULTS = {"counters": RunRecord.counters, "errors": RunRecord.errors, "outputs": RunRecord.outputs,
            "aws_requests": RunRecord.aws_requests}


def _results(results: dict) -> list:
    return [_RESULTS[name].set(value) for name, value in results.items()]


def new_run_id() -> str:
    # Time-ordered so ids sort like their creation; the random tail keeps them unique.
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:12]}"


class Coordination(Model):
    """Lease locks (``lock#<job>#<scope>``) and idempotency keys (``idem#<job>#<key>``)."""

    Meta = meta("coordination")
    key = UnicodeAttribute(hash_key=True)
    owner = UnicodeAttribute(null=True)
    lease_until = NumberAttribute(null=True)
    fence = NumberAttribute(default=0)
    run_id = UnicodeAttribute(null=True)
    expires = TTLAttribute(null=True)


class LockHeld(Exception):
    def __init__(self, owner: str):
        super().__init__(f"lock held by run {owner}")
        self.owner = owner


def _lock_key(job: str, scope: str) -> str:
    return f"lock#{job}#{scope}"


def acquire_lock(job: str, scope: str, owner: str, lease_seconds: int) -> None:
    """Take or renew the lease for (job, scope); raises ``LockHeld`` naming the current owner.

    The owner keeps its own lock (continuations); anyone may take an expired lease.
    """
    now = clock.now()  # fractional: a lease counted in whole seconds would expire up to a second late
    lock = Coordination(_lock_key(job, scope), owner=owner, lease_until=now + lease_seconds,
                        expires=timedelta(days=2))
    if not save_if(lock, Coordination.key.does_not_exist() | (Coordination.owner == owner)
                   | (Coordination.lease_until < now)):
        current = Coordination.get(_lock_key(job, scope), consistent_read=True)
        raise LockHeld(current.owner or "?")


def lock_owner(job: str, scope: str) -> tuple[str | None, float]:
    try:
        lock = Coordination.get(_lock_key(job, scope), consistent_read=True)
    except Coordination.DoesNotExist:
        return None, 0
    return lock.owner, float(lock.lease_until or 0)


def renew_lock(job: str, scope: str, owner: str, lease_seconds: int) -> None:
    lock = Coordination(_lock_key(job, scope))
    if not update_if(lock, [Coordination.lease_until.set(clock.now() + lease_seconds)], Coordination.owner == owner):
        raise LockHeld("another run")


def release_lock(job: str, scope: str, owner: str) -> None:
    try:
        Coordination(_lock_key(job, scope)).delete(condition=Coordination.owner == owner)
    except Exception:  # noqa: BLE001 - a lost lock is already someone else's; nothing to undo
        pass


def create_run(run: RunRecord) -> RunRecord:
    """Save a new run; with an idempotency key, atomically with the key, so a duplicate trigger
    finds the first run instead of creating a second (returned in place of ``run``)."""
    if not run.idempotency_key:
        run.save(condition=RunRecord.run_id.does_not_exist())
        return run
    key = f"idem#{run.job}#{run.idempotency_key}"
    marker = Coordination(key, run_id=run.run_id, expires=IDEMPOTENCY_TTL)
    try:
        with translated(), TransactWrite(connection=Connection()) as transaction:
            transaction.save(marker, condition=Coordination.key.does_not_exist())
            transaction.save(run, condition=RunRecord.run_id.does_not_exist())
            if run.parent_run_id:  # a shard counts on its parent from the moment it exists
                transaction.update(RunRecord(run.parent_run_id), actions=[RunRecord.shards_pending.add(1)],
                                   condition=RunRecord.run_id.exists())
        return run
    except ConditionFailed:
        pass
    existing = Coordination.get(key, consistent_read=True)
    return RunRecord.get(existing.run_id, consistent_read=True)


def claim_key(job: str, idempotency_key: str, run_id: str) -> str:
    """Point an idempotency key at an existing run (a trigger that resumes an unfinished run);
    returns the run the key names, which is another one when the key was claimed before."""
    marker = Coordination(f"idem#{job}#{idempotency_key}", run_id=run_id, expires=IDEMPOTENCY_TTL)
    if save_if(marker, Coordination.key.does_not_exist()):
        return run_id
    return Coordination.get(marker.key, consistent_read=True).run_id
