"""The job runtime: run records, single flight, idempotency, checkpoints and continuations,
cancellation, dispatch and per-store fan-out. Every job runs through here.

A job is a function ``run(ctx: JobContext) -> str | None`` (the returned text becomes the run's
message). It reads ``ctx.params``, keeps its progress in ``ctx.state`` and calls
``ctx.checkpoint()`` between pages; there the runtime persists the state, renews the lock, notices
a cancel request and, when the invocation's time budget is low, ends the invocation so that a
fresh one continues from the saved state.

Runs that die or fail for a while (DOMAIN §13). A killed Lambda runs no ``except`` or ``finally``
of ours, so recovery never relies on the dying invocation: the lock's lease (minutes, renewed by
a heartbeat at checkpoints and counts) runs out, and the next delivery of the event or the next
trigger of the job with the same parameters resumes the run from its last checkpoint
(``submit(resume_open=True)`` finds it through the lock of its scope). Each invocation claims the
run with a conditional update (``attempt``), so two deliveries never execute it at once. A
transient AWS fault (``storage.faults``) puts the run back to ``Waiting`` and makes the handler
raise ``RunWillRetry`` so that AWS delivers again; ``job_max_retries`` attempts that did not
finish end it ``Error``. Whatever a job commits must be finishable from its checkpoint by a
later invocation, or from the job's own state by a later run.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from chalicelib import clock, settings
from chalicelib.domain.errors import DomainError, FieldError, ValidationError
from chalicelib.jobs.registry import Job, get_job
from chalicelib.observability import emit_run_metrics, log_keys, logger
from chalicelib.storage import aws, faults
from chalicelib.storage.base import iso, update_if
from chalicelib.storage.metering import metered
from chalicelib.storage.runs import (
    OPEN_STATUSES,
    LockHeld,
    RunRecord,
    acquire_lock,
    claim_key,
    create_run,
    lock_owner,
    new_run_id,
    release_lock,
    renew_lock,
)

MAX_ERRORS = 100
MAX_OUTPUTS = 1000


class RunNotFound(DomainError):
    pass


class RunConflict(DomainError):
    """The run is in a state that does not allow the request (e.g. cancelling a finished run)."""


class JobFailed(DomainError):
    """Raised by a job to end its run ``Error`` with this message (effects so far are kept)."""


class JobNotRun(DomainError):
    """Raised by a job that refuses to run now (e.g. it would race other work): the run ends
    ``NotRun`` ("Didn't run") with this message as the reason. Raise it before any effect."""


class RunWillRetry(Exception):
    """A run met a transient AWS fault and waits to be resumed: the handler that executed it
    raises this so AWS delivers the event again (Lambda's async retries, SQS redelivery)."""

    def __init__(self, run: RunRecord):
        super().__init__(f"run {run.run_id} of {run.job}: {run.message}")
        self.run = run


class _Continue(Exception):
    """The invocation's budget is spent; the run continues in a fresh invocation."""


class _Cancelled(Exception):
    pass


@dataclass
class Budget:
    """When this invocation must hand over. ``None`` deadline = no limit."""

    deadline: float | None

    @classmethod
    def for_invocation(cls, lambda_context: Any = None) -> Budget:
        fixed = settings.job_time_budget_ms()
        if fixed is not None:
            return cls(time.monotonic() + fixed / 1000)
        remaining = getattr(lambda_context, "get_remaining_time_in_millis", None)
        if remaining is None:
            return cls(None)
        return cls(time.monotonic() + (remaining() - settings.job_safety_margin_ms()) / 1000)

    def spent(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


class JobContext:
    """What a running job sees: its parameters, saved state, counters and reporting helpers."""

    def __init__(self, run: RunRecord, job: Job, budget: Budget, requests: Counter, base_requests: dict):
        self.run = run
        self.job = job
        self.params: dict = dict(run.params or {})
        self.dry_run: bool = bool(run.dry_run)
        self.state: dict = dict((run.checkpoint or {}).get("state", {}))
        self.counters: dict = dict(run.counters)
        self.errors: list = list(run.errors)
        self.outputs: list = list(run.outputs)
        self.warnings: list[str] = list((run.checkpoint or {}).get("warnings", []))
        self._budget = budget
        self._requests = requests
        self._base_requests = base_requests
        self._lease_renewed = clock.now()

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def count(self, read: int = 0, written: int = 0, skipped: int = 0, failed: int = 0) -> None:
        for name, value in (("read", read), ("written", written), ("skipped", skipped), ("failed", failed)):
            self.counters[name] = self.counters.get(name, 0) + value
        self._heartbeat()

    def error(self, key: str, message: str) -> None:
        """Report one failed record; it counts as failed and shows in the run (capped list)."""
        self.count(failed=1)
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"key": key, "message": message})

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def output(self, kind: str, **fields: Any) -> None:
        if len(self.outputs) < MAX_OUTPUTS:
            self.outputs.append({"kind": kind, **fields})

    def aws_requests(self) -> dict:
        total = Counter(self._base_requests)
        total.update(self._requests)
        return dict(sorted(total.items()))

    def checkpoint(self, **state: Any) -> None:
        """Persist progress (``state`` merged into ``ctx.state``) and counters; then stop here if
        the run was cancelled, or hand over to a fresh invocation if the budget is spent."""
        self._save(state)
        if self.run.cancel_requested:
            raise _Cancelled()
        if self._budget.spent():
            raise _Continue()

    def hold_lock(self) -> None:
        """Renew the job lock now; raises ``LockHeld`` (the run ends Error) if another run took it.

        Call it right before an effect that two runs must never both make (writing an export):
        a lock renewed here stays ours for a full lease.
        """
        renew_lock(self.job.name, self.run.lock_scope, self.run.run_id, settings.lock_lease_seconds())
        self._lease_renewed = clock.now()

    def _heartbeat(self) -> None:
        """Renew the lease when a third of it has passed: a live run keeps its lock, a dead one
        loses it within one lease."""
        if clock.now() - self._lease_renewed > settings.lock_lease_seconds() / 3:
            self.hold_lock()

    def _save(self, state: dict) -> None:
        self.state.update(state)
        self.run.update(actions=[
            RunRecord.checkpoint.set({"state": self.state, "warnings": self.warnings}),
            RunRecord.counters.set(self.counters),
            RunRecord.errors.set(self.errors),
            RunRecord.outputs.set(self.outputs),
            RunRecord.aws_requests.set(self.aws_requests()),
        ])
        self._heartbeat()

    def pages(self, name: str, fetch: Callable[[Any], tuple[list, Any]]) -> Iterator[list]:
        """Yield pages from ``fetch(cursor) -> (items, next_cursor)``, resuming at the saved cursor.

        The cursor is checkpointed after the caller has processed each page, so a continuation
        or a resumed crash starts with the first unprocessed page.
        """
        key = f"cursor:{name}"
        if self.state.get(key) == "done":
            return
        cursor = self.state.get(key)
        while True:
            items, cursor = fetch(cursor)
            yield items
            if cursor is None:
                self._save({key: "done"})
                return
            self.checkpoint(**{key: cursor})

    def message(self, summary: str | None) -> str | None:
        parts = [p for p in [summary, *(f"warning: {w}" for w in self.warnings)] if p]
        return "; ".join(parts) or None


# --- submitting ---------------------------------------------------------------------------

def submit(job_name: str, params: Any = None, *, trigger: str, requested_by: str | None = None,
           dry_run: bool = False, idempotency_key: str | None = None, request_digest: str | None = None,
           parent_run_id: str | None = None, lock_scope: str | None = None,
           resume_open: bool = False) -> tuple[RunRecord, bool]:
    """Record a run ``Waiting``; returns (run, created). A known idempotency key returns the
    existing run with ``created=False``.

    With ``resume_open`` (schedules and events), a run of the job left unfinished in the same
    lock scope with the same parameters — waiting after a transient fault, or dead with its lease
    run out — is resumed instead: the key is pointed at that run, which is returned.
    """
    job = get_job(job_name)
    if job is None:
        raise RunNotFound(f"unknown job {job_name}")
    if not isinstance(dry_run, bool):
        raise ValidationError([FieldError("dry_run", "must be true or false")])
    # A shard's parameters are its parent's (clean) with one store: run_job need not load the models.
    cleaned = params if parent_run_id else job.clean_params(params)
    scope = lock_scope or _scope(job, cleaned)
    if resume_open and idempotency_key:
        unfinished = _unfinished_run(job, scope, cleaned, dry_run)
        if unfinished is not None:
            return get_run(claim_key(job.name, idempotency_key, unfinished.run_id)), False
    run = RunRecord(new_run_id(), job=job.name, created_at=iso(), status="Waiting", trigger=trigger,
                    params=cleaned, dry_run=dry_run, requested_by=requested_by,
                    idempotency_key=idempotency_key, request_digest=request_digest, parent_run_id=parent_run_id,
                    lock_scope=scope)
    stored = create_run(run)
    return stored, stored.run_id == run.run_id


def _scope(job: Job, params: dict) -> str:
    """The run's lock scope. A fanning-out job's run naming exactly one store locks that store,
    like the shards do, since a fan-out holds the job lock only until its shards exist."""
    stores = params.get("store_ids") or []
    if job.shards and len(stores) == 1 and not params.get("org_node_ids"):
        return f"store#{stores[0]}"
    return job.lock_scope(params)


def _unfinished_run(job: Job, scope: str, params: dict, dry_run: bool) -> RunRecord | None:
    """The run the lock of ``scope`` names when a new trigger should resume it rather than start
    afresh: not ended, not a shard, the same parameters, and not possibly alive elsewhere."""
    owner, lease_until = lock_owner(job.name, scope)
    if owner is None:
        return None
    try:
        run = RunRecord.get(owner, consistent_read=True)
    except RunRecord.DoesNotExist:
        return None
    if run.is_final or run.parent_run_id or run.params != params or bool(run.dry_run) != dry_run:
        return None
    if run.status == "Waiting" or lease_until < clock.now():
        return run
    return None


def get_run(run_id: str) -> RunRecord:
    try:
        return RunRecord.get(run_id, consistent_read=True)
    except RunRecord.DoesNotExist:
        raise RunNotFound(f"run {run_id} not found") from None


def cancel(run_id: str) -> RunRecord:
    """Cancel a waiting run at once, or ask an executing one to stop at its next checkpoint
    (a fan-out parent passes the request on to its shards)."""
    run = get_run(run_id)
    if run.is_final:
        raise RunConflict(f"run {run_id} has already ended ({run.status})")
    if run.status == "Waiting":
        message = "canceled while waiting to retry" if run.started_at else "canceled before it started"
        if not _finish(run, "Canceled", message, None, expect=("Waiting",), cancel=True):
            return cancel(run_id)  # the status moved underneath us; decide again
        return run
    if not update_if(run, [RunRecord.status.set("Cancelling"), RunRecord.cancel_requested.set(True)],
                     RunRecord.status.is_in("Executing", "Cancelling")):
        return cancel(run_id)
    if run.fanned_out:
        for child in _children(run):
            if not child.is_final:
                try:
                    cancel(child.run_id)
                except RunConflict:
                    pass
    return run


# --- executing ----------------------------------------------------------------------------

def execute(run_id: str, budget: Budget) -> str:
    """Execute (or continue, or resume) a run within ``budget``; returns ``done``, ``continue``
    (hand over to a fresh invocation), ``retry`` (a transient fault: the run waits, the handler
    must fail so AWS delivers again) or ``busy`` (another invocation executes it)."""
    run = get_run(run_id)
    if run.is_final:
        if run.parent_run_id:  # a shard delivered again: what its end did after the status may be lost
            release_lock(run.job, run.lock_scope, run.run_id)
            _close_parent_of(run)
        return "done"
    with log_keys(job=run.job, run_id=run.run_id) as log:
        return _execute(run, budget, log)


def _execute(run: RunRecord, budget: Budget, log) -> str:
    job = get_job(run.job)
    lease = settings.lock_lease_seconds()
    started_before = run.status in ("Executing", "Cancelling")
    handover = bool((run.checkpoint or {}).get("handover"))
    previous_owner, lease_until = lock_owner(job.name, run.lock_scope)
    if previous_owner == run.run_id and lease_until >= clock.now() and started_before and not handover:
        # Executing elsewhere (a duplicated delivery), or dead: then its lease runs out first.
        return "busy"
    try:
        acquire_lock(job.name, run.lock_scope, run.run_id, lease)
    except LockHeld as held:
        if held.owner != run.run_id:
            _finish(run, "NotRun", f"job {job.name} is already running as run {held.owner}", None,
                    holds_lock=False)
        return "busy"
    if previous_owner and previous_owner != run.run_id:
        _mark_abandoned(previous_owner, run.run_id)
    died = started_before and not handover  # its last invocation ended without a word: it died
    if not _claim(run, died, handover):
        return "busy"
    if died and run.retries >= settings.job_max_retries():
        _finish(run, "Error", f"gave up: {run.retries} attempt(s) did not finish (the last one died "
                              "mid-way); resume with a new run", None)
        return "done"
    started = time.monotonic()
    with metered() as requests:
        base_requests = dict(run.aws_requests or {})
        ctx = JobContext(run, job, budget, requests, base_requests)
        try:
            if run.cancel_requested:
                raise _Cancelled()
            if job.shards and not run.parent_run_id:
                _close_open_fan_outs(job, run.run_id)
                shard_keys = job.shards(ctx)
                if shard_keys is not None:
                    return _fan_out(ctx, shard_keys)
            summary = job.run(ctx)
            status = "Ended"
        except _Continue:
            log.info("budget spent; continuing in a new invocation", extra={"hops": run.hops})
            return _hand_over(run)
        except _Cancelled:
            status, summary = "Canceled", "canceled by an operator"
        except JobNotRun as exc:
            status, summary = "NotRun", str(exc)
        except (JobFailed, ValidationError) as exc:
            status, summary = "Error", str(exc) if not isinstance(exc, ValidationError) else _describe(exc)
        except LockHeld:
            status, summary = "Error", "lost the job lock to another run (lease expired)"
        except Exception as exc:  # noqa: BLE001 - a job bug ends its run Error, never the caller
            if faults.is_transient(exc):
                return _wait_for_retry(ctx, exc, log)
            log.exception("run failed")
            status, summary = "Error", f"{type(exc).__name__}: {exc}"
    _finish(run, status, ctx.message(summary), ctx, time.monotonic() - started)
    return "done"


def _claim(run: RunRecord, died: bool, handover: bool) -> bool:
    """Move the run to Executing as this invocation's attempt; False when another invocation
    claimed the same attempt first (two deliveries of one event never both execute it)."""
    actions = [RunRecord.status.set("Cancelling" if run.cancel_requested else "Executing"),
               RunRecord.started_at.set(run.started_at or iso()), RunRecord.attempt.add(1)]
    if died:
        actions.append(RunRecord.retries.add(1))
    if handover:
        actions.append(RunRecord.checkpoint.set({**run.checkpoint, "handover": False}))
    seen = run.attempt or 0
    condition = RunRecord.attempt == seen
    if not seen:
        condition = condition | RunRecord.attempt.does_not_exist()
    return update_if(run, actions, condition & RunRecord.status.is_in(*OPEN_STATUSES))


def _wait_for_retry(ctx: JobContext, exc: Exception, log) -> str:
    """A transient AWS fault: the run goes back to ``Waiting`` with the reason and keeps its last
    checkpoint (work since then is redone, which every job's effects allow) and its lock, renewed
    for the retry; after ``job_max_retries`` unfinished attempts it ends ``Error``."""
    run = ctx.run
    reason = faults.describe(exc)
    failures = (run.retries or 0) + 1
    limit = settings.job_max_retries()
    log.warning("transient AWS fault", extra={"reason": reason, "failures": failures})
    if failures >= limit:
        _finish(run, "Error", ctx.message(f"gave up after {failures} transient AWS fault(s); the last: {reason}"),
                ctx)
        return "done"
    run.update(actions=[RunRecord.status.set("Waiting"), RunRecord.retries.add(1),
                        RunRecord.aws_requests.set(ctx.aws_requests()),
                        RunRecord.message.set(f"waiting to retry ({failures} of {limit} attempts failed) "
                                              f"after a transient AWS fault: {reason}")])
    renew_lock(run.job, run.lock_scope, run.run_id, settings.lock_lease_seconds())
    return "retry"


def _describe(exc: ValidationError) -> str:
    return exc.message + ": " + "; ".join(f"{e.path}: {e.message}" for e in exc.errors)


def _hand_over(run: RunRecord) -> str:
    if run.hops + 1 > settings.job_max_hops():
        run.refresh(consistent_read=True)
        _finish(run, "Error", f"gave up after {run.hops} continuations; resume with a new run", None)
        return "done"
    run.refresh(consistent_read=True)
    run.update(actions=[RunRecord.hops.add(1),
                        RunRecord.checkpoint.set({**(run.checkpoint or {}), "handover": True})])
    return "continue"


LATE_CANCEL = "cancel requested after the last safe point; the run had done all its work"


def _finish(run: RunRecord, status: str, message: str | None, ctx: JobContext | None,
            seconds: float = 0.0, *, holds_lock: bool = True, expect: tuple = OPEN_STATUSES,
            cancel: bool = False) -> bool:
    """End the run (once: False when something else ended it first, e.g. a successor that found
    it abandoned). A run ending ``Ended`` whose cancel came after its last checkpoint says so."""
    actions = [RunRecord.status.set(status), RunRecord.ended_at.set(iso()), RunRecord.open_fanout.remove()]
    if cancel:
        actions.append(RunRecord.cancel_requested.set(True))
    if ctx is not None:
        actions += [RunRecord.counters.set(ctx.counters), RunRecord.errors.set(ctx.errors),
                    RunRecord.outputs.set(ctx.outputs), RunRecord.aws_requests.set(ctx.aws_requests())]
    if status == "Ended" and "Cancelling" in expect:
        expect = tuple(s for s in expect if s != "Cancelling")
    if not update_if(run, [*actions, RunRecord.message.set(message)], RunRecord.status.is_in(*expect)):
        run.refresh(consistent_read=True)
        if status != "Ended" or run.status != "Cancelling":
            return False
        message = f"{LATE_CANCEL}: {message}" if message else LATE_CANCEL
        run.update(actions=[*actions, RunRecord.message.set(message)], condition=RunRecord.status == "Cancelling")
    if holds_lock:
        release_lock(run.job, run.lock_scope, run.run_id)
    logger().info("run finished", extra={"status": status, "counters": run.counters, "run_message": message})
    emit_run_metrics(run.job, status, seconds, run.counters)
    if run.parent_run_id:
        _shard_done(run)
    return True


def _mark_abandoned(run_id: str, successor: str) -> None:
    """A run whose lease ran out and whose lock a successor took ends ``Error``; a fan-out
    parent's shards that never started are closed (the rest end on their own)."""
    try:
        old = RunRecord.get(run_id, consistent_read=True)
    except RunRecord.DoesNotExist:
        return
    if old.is_final:
        return
    _finish(old, "Error", f"abandoned: its lease expired; run {successor} took over", None, holds_lock=False)
    if old.shards_pending is not None:
        _close_unstarted_shards(old, f"its parent run {old.run_id} died before starting it; run {successor} "
                                     "took over the job")


def _close_unstarted_shards(parent: RunRecord, reason: str) -> None:
    for child in _children(parent):
        if child.status == "Waiting" and not child.started_at:
            _finish(child, "NotRun", reason, None, expect=("Waiting",))


# --- dispatch -----------------------------------------------------------------------------

def dispatch(run_id: str) -> str:
    """Start or continue a run: inline in this process, or asynchronously in ``run_job``.
    Returns the last outcome of ``execute`` inline (``dispatched`` when handed to Lambda)."""
    if settings.run_dispatch() == "lambda":
        aws.client("lambda").invoke(FunctionName=settings.run_job_function(), InvocationType="Event",
                                    Payload=json.dumps({"run_id": run_id}).encode())
        return "dispatched"
    outcome = "continue"
    while outcome == "continue":
        outcome = execute(run_id, Budget.for_invocation())
    return outcome


def run_scheduled(job_name: str, event_id: str, lambda_context: Any = None) -> RunRecord:
    """A schedule fired: one run per event id (a duplicated delivery finds the same run)."""
    return run_on_event(job_name, None, event_id, lambda_context, trigger="schedule", requested_by="schedule")


def run_on_event(job_name: str, params: Any, idempotency_key: str, lambda_context: Any = None, *,
                 trigger: str = "event", requested_by: str | None = None) -> RunRecord:
    """An event asks for a run: one run per idempotency key (a duplicated delivery finds the same
    run), executed in the event's own invocation and continued through ``run_job`` if need be.

    An unfinished run of the job with the same scope and parameters is resumed rather than a
    new one started (``submit``). Raises ``RunWillRetry`` when the run met a transient AWS
    fault, so that AWS delivers the event again and the redelivery resumes it."""
    run, created = submit(job_name, params, trigger=trigger, requested_by=requested_by,
                          idempotency_key=idempotency_key, resume_open=True)
    if created or not run.is_final:
        _follow_up(run.run_id, execute(run.run_id, Budget.for_invocation(lambda_context)))
    return get_run(run.run_id)


def run_invoked(payload: dict, lambda_context: Any = None) -> dict:
    """``run_job`` and ``run_shard``: execute or continue the run named in the payload (raises
    ``RunWillRetry`` after a transient fault, so Lambda or SQS delivers it again)."""
    run_id = payload.get("run_id") if isinstance(payload, dict) else None
    if not run_id:
        raise ValueError("run_job needs a payload {\"run_id\": ...}")
    _follow_up(run_id, execute(run_id, Budget.for_invocation(lambda_context)))
    run = get_run(run_id)
    return {"run_id": run_id, "status": run.status}


def _follow_up(run_id: str, outcome: str) -> None:
    if outcome == "continue":
        outcome = dispatch(run_id)
    if outcome == "retry":
        raise RunWillRetry(get_run(run_id))


# --- per-store fan-out --------------------------------------------------------------------

def _fan_out(ctx: JobContext, shard_keys: list[str]) -> str:
    """Split a run into one child run per store, each locking its store; the last child to end
    closes the parent.

    The parent holds the job lock only until its shards exist and are dispatched: a parent that
    dies before keeps it for one lease, and the next trigger resumes it (``submit``), finding
    the shards it had created (a query on the job's runs) and creating the rest. Each shard is
    counted on the parent in the transaction that creates it, so the count is exact however
    often the fan-out is resumed.
    """
    parent = ctx.run
    existing = {c.params.get("store_ids", [None])[0]: c for c in _children(parent)}
    keys = sorted(set(shard_keys) | set(existing))
    if not keys:
        _finish(parent, "Ended", ctx.message("nothing to do"), ctx)
        return "done"
    children = []
    for key in keys:
        child = existing.get(key)
        if child is None:
            child, _ = submit(parent.job, {**parent.params, "store_ids": [key]}, trigger=parent.trigger,
                              requested_by=parent.requested_by, dry_run=parent.dry_run,
                              idempotency_key=f"{parent.run_id}#{key}", parent_run_id=parent.run_id,
                              lock_scope=f"store#{key}")
        children.append(child)
    waiting = [c for c in children if not c.is_final]
    queue = settings.shard_queue_url()
    via_sqs = bool(queue) and settings.run_dispatch() == "lambda"
    # The last shard adds its siblings' requests to the parent's: the parent's own (this update,
    # the queue messages and the lock's release included) must be recorded before any shard ends.
    requests = Counter(ctx.aws_requests())
    requests["dynamodb.UpdateItem"] += 1
    requests["dynamodb.DeleteItem"] += 1
    if via_sqs:
        requests["sqs.SendMessageBatch"] += -(-len(waiting) // 10)
    parent.update(actions=[RunRecord.fanned_out.set(True), RunRecord.open_fanout.set(parent.job),
                           RunRecord.message.set(f"fanned out to {len(keys)} store shard(s)"),
                           RunRecord.aws_requests.set(dict(sorted(requests.items())))])
    if via_sqs:
        sqs = aws.client("sqs")
        for start in range(0, len(waiting), 10):
            sqs.send_message_batch(QueueUrl=queue, Entries=[
                {"Id": str(i), "MessageBody": json.dumps({"run_id": c.run_id})}
                for i, c in enumerate(waiting[start:start + 10])])
    else:
        for child in waiting:
            dispatch(child.run_id)
    release_lock(parent.job, parent.lock_scope, parent.run_id)
    if not waiting or not parent.shards_pending:  # every shard had ended before this (resumed) fan-out
        _close_parent(parent)
    return "done"


def _children(parent: RunRecord) -> list[RunRecord]:
    return list(RunRecord.by_job.query(parent.job, RunRecord.created_at >= parent.created_at,
                                       filter_condition=RunRecord.parent_run_id == parent.run_id))


def _shard_done(child: RunRecord) -> None:
    parent = RunRecord(child.parent_run_id)
    if not update_if(parent, [RunRecord.shards_pending.add(-1)], RunRecord.run_id.exists()):
        return
    if parent.shards_pending or not parent.fanned_out or parent.is_final:
        return
    _close_parent(parent, ended=child)


def _close_parent(parent: RunRecord, ended: RunRecord | None = None) -> None:
    """Every shard has ended: the parent ends with their counters, errors, outputs and requests."""
    children = [ended if ended is not None and c.run_id == ended.run_id else c for c in _children(parent)]
    for i, c in enumerate(children):
        if not c.is_final:
            children[i] = get_run(c.run_id)  # the index lags a little
            if not children[i].is_final:
                return
    counters: Counter = Counter()
    requests: Counter = Counter(parent.aws_requests or {})
    errors, outputs = [], []
    for c in children:
        counters.update(c.counters)
        requests.update(c.aws_requests or {})
        errors.extend(c.errors)
        outputs.extend(c.outputs)
    failed = [c for c in children if c.status != "Ended"]
    status = "Ended" if not failed else ("Canceled" if all(c.status == "Canceled" for c in failed) else "Error")
    message = f"{len(children)} shard(s)" + (f", {len(failed)} not ended: " + ", ".join(
        f"{c.params.get('store_ids', ['?'])[0]} {c.status}" for c in failed[:20]) if failed else " ended")
    if status == "Ended" and parent.cancel_requested:
        message = f"{LATE_CANCEL}: {message}"
    if not update_if(parent, [RunRecord.status.set(status), RunRecord.ended_at.set(iso()),
                              RunRecord.message.set(message), RunRecord.counters.set(dict(counters)),
                              RunRecord.errors.set(errors[:MAX_ERRORS]), RunRecord.outputs.set(outputs[:MAX_OUTPUTS]),
                              RunRecord.aws_requests.set(dict(sorted(requests.items()))),
                              RunRecord.open_fanout.remove()],
                     RunRecord.status.is_in(*OPEN_STATUSES)):
        return  # closed already
    release_lock(parent.job, parent.lock_scope, parent.run_id)
    emit_run_metrics(parent.job, status, 0.0, dict(counters))


def _close_parent_of(shard: RunRecord) -> None:
    """Close a shard's parent if every shard has ended (idempotent: a shard's retry after its end
    was cut short, e.g. killed before the parent's count or close)."""
    try:
        parent = RunRecord.get(shard.parent_run_id, consistent_read=True)
    except RunRecord.DoesNotExist:
        return
    if parent.fanned_out and not parent.is_final:
        _close_parent(parent)


def _close_open_fan_outs(job: Job, run_id: str) -> None:
    """Any run of a fanning-out job first settles the job's earlier fan-outs left open: a parent
    whose shards have all ended but whose close was lost (the last shard died at its end) is
    closed; a shard that died mid-way (its lease ran out, nothing delivers it again) or never
    started is dispatched again. One query on the sparse ``open_fanouts`` index, empty when
    nothing is left open."""
    for key in RunRecord.open_fanouts.query(job.name):
        if key.run_id == run_id:
            continue
        parent = get_run(key.run_id)
        if parent.is_final:  # ended another way before the index marker went
            parent.update(actions=[RunRecord.open_fanout.remove()])
            continue
        unfinished = [c for c in _children(parent) if not c.is_final]
        unfinished = [c for c in (get_run(c.run_id) for c in unfinished) if not c.is_final]
        if not unfinished:
            _close_parent(parent)
        for child in unfinished:
            owner, lease_until = lock_owner(child.job, child.lock_scope)
            if owner != child.run_id or lease_until < clock.now():
                dispatch(child.run_id)
