"""The job runtime: submit a run, execute it (lock, claim, run the job, finish) and dispatch it.
Every job runs through here.

What a job sees is ``jobs/context.py``; the statuses and the decisions on a run's outcome are the
domain's (``domain/runs.py``); every write to a run record is a named operation of
``storage/runs.py``; handing a run to Lambda or SQS is ``jobs/dispatch.py``; a fan-out's shard
bookkeeping is ``jobs/fanout.py``.

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

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from chalicelib import clock, settings
from chalicelib.domain.errors import DomainError, FieldError, ValidationError
from chalicelib.domain.runs import (
    OPEN_STATUSES,
    STARTED_STATUSES,
    JobFailed,
    JobNotRun,
    RunConflict,
    RunNotFound,
    RunStatus,
    cancel_message,
    claimed_status,
    executing_elsewhere,
    finishing_from,
    late_cancel,
    must_resume,
    retry_outcome,
)
from chalicelib.jobs import dispatch as handover
from chalicelib.jobs import fanout
from chalicelib.jobs.context import Budget, Cancelled, HandOver, JobContext
from chalicelib.jobs.registry import Job, get_job
from chalicelib.observability import emit_run_metrics, log_keys, logger
from chalicelib.storage import faults, runs
from chalicelib.storage.base import iso
from chalicelib.storage.metering import metered
from chalicelib.storage.runs import (
    LockHeld,
    RunRecord,
    acquire_lock,
    claim_key,
    create_run,
    find_run,
    lock_owner,
    new_run_id,
    release_lock,
    renew_lock,
)

__all__ = ["Budget", "JobContext", "JobFailed", "JobNotRun", "RunConflict", "RunNotFound", "RunWillRetry",
           "Started", "cancel", "dispatch", "execute", "get_run", "run_invoked", "run_on_event",
           "run_scheduled", "start", "submit"]


class RunWillRetry(Exception):
    """A run met a transient AWS fault and waits to be resumed: the handler that executed it
    raises this so AWS delivers the event again (Lambda's async retries, SQS redelivery)."""

    def __init__(self, run: RunRecord):
        super().__init__(f"run {run.run_id} of {run.job}: {run.message}")
        self.run = run


class DispatchDeferred(DomainError):
    """A recorded run whose hand-over AWS refused for a while (throttled): it waits, and the same
    request with the same idempotency key dispatches it (answered ``503`` with ``Retry-After``)."""

    http_status = 503
    code = "service_unavailable"
    retry_after_seconds = 30

    def __init__(self, run: RunRecord, cause: BaseException):
        super().__init__(f"run {run.run_id} is recorded but could not be started now ({faults.describe(cause)}); "
                         "send the request again with the same Idempotency-Key")
        self.run = run


@dataclass(frozen=True)
class Started:
    """A run asked for through ``start``: as it stands after its dispatch, and whether this request
    dispatched it (a new run, or one its idempotency key found still ``Waiting``) or only found it."""

    run: RunRecord
    dispatched: bool


# --- submitting ---------------------------------------------------------------------------

def submit(job_name: str, params: Any = None, *, trigger: str, requested_by: str | None = None,
           requested_by_label: str | None = None, dry_run: bool = False, idempotency_key: str | None = None,
           request_digest: str | None = None, parent_run_id: str | None = None, lock_scope: str | None = None,
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
    created_at = iso()
    run = RunRecord(new_run_id(), job=job.name, created_at=created_at, created_day=created_at[:10],
                    status=RunStatus.WAITING, trigger=trigger, params=cleaned, dry_run=dry_run,
                    requested_by=requested_by, requested_by_label=requested_by_label,
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
    run = find_run(owner) if owner is not None else None
    if run is None or run.is_final or run.parent_run_id or run.params != params or bool(run.dry_run) != dry_run:
        return None
    return run if must_resume(run.status, lease_until, clock.now()) else None


def get_run(run_id: str) -> RunRecord:
    run = find_run(run_id)
    if run is None:
        raise RunNotFound(f"run {run_id} not found")
    return run


def cancel(run_id: str) -> RunRecord:
    """Cancel a waiting run at once, or ask an executing one to stop at its next checkpoint
    (a fan-out parent passes the request on to its shards)."""
    run = get_run(run_id)
    if run.is_final:
        raise RunConflict(f"run {run_id} has already ended ({run.status})")
    if run.status == RunStatus.WAITING:
        if not _finish(run, RunStatus.CANCELED, cancel_message(bool(run.started_at)), None,
                       expect=(RunStatus.WAITING,), cancel=True):
            return cancel(run_id)  # the status moved underneath us; decide again
        return run
    if not runs.request_cancel(run):
        return cancel(run_id)
    if run.fanned_out:
        for child in runs.children(run):
            if not child.is_final:
                try:
                    cancel(child.run_id)
                except RunConflict:
                    pass
    return run


class IdempotencyKeyReused(DomainError):
    """An idempotency key that started a run is sent again with another request (``422``)."""

    http_status = 422
    code = "idempotency_key_reused"

    def __init__(self, run: RunRecord):
        super().__init__(f"this Idempotency-Key started run {run.run_id} with a different body; "
                         "use a new key for a new request")


def start(job_name: str, params: Any = None, *, trigger: str, requested_by: str | None = None,
          requested_by_label: str | None = None, dry_run: bool = False, idempotency_key: str | None = None,
          request_digest: str | None = None) -> Started:
    """Submit a run and dispatch it: the one way a route, the bench or a test starts a run.

    A new run is dispatched (inline where no Lambda exists, so it has executed by now); a run an
    idempotency key finds is only read, unless it is still ``Waiting`` (the request that created
    it died before handing it over, or its hand-over was throttled): then it is dispatched again,
    and the attempt claim lets only one invocation execute it. A hand-over that AWS refuses for a
    while raises ``DispatchDeferred``; any other fault propagates. A key that finds a run started
    by another request (its ``request_digest`` differs) raises ``IdempotencyKeyReused``.
    """
    run, created = submit(job_name, params, trigger=trigger, requested_by=requested_by,
                          requested_by_label=requested_by_label, dry_run=dry_run, idempotency_key=idempotency_key,
                          request_digest=request_digest)
    if not created and request_digest and run.request_digest and run.request_digest != request_digest:
        raise IdempotencyKeyReused(run)
    dispatched = created or run.status == RunStatus.WAITING
    if dispatched:
        try:
            dispatch(run.run_id)
        except Exception as exc:  # noqa: BLE001 - only a transient fault is deferred
            if not faults.is_transient(exc):
                raise
            raise DispatchDeferred(run, exc) from exc
    return Started(get_run(run.run_id), dispatched)


# --- executing ----------------------------------------------------------------------------

def execute(run_id: str, budget: Budget) -> str:
    """Execute (or continue, or resume) a run within ``budget``; returns ``done``, ``continue``
    (hand over to a fresh invocation), ``retry`` (a transient fault: the run waits, the handler
    must fail so AWS delivers again) or ``busy`` (another invocation executes it)."""
    run = get_run(run_id)
    if run.is_final:
        if run.parent_run_id:  # a shard delivered again: what its end did after the status may be lost
            release_lock(run.job, run.lock_scope, run.run_id)
            fanout.close_parent_of(run)
        return "done"
    with log_keys(job=run.job, run_id=run.run_id) as log:
        return _execute(run, budget, log)


def _execute(run: RunRecord, budget: Budget, log) -> str:
    job = get_job(run.job)
    lease = settings.lock_lease_seconds()
    started_before = run.status in STARTED_STATUSES
    handover = bool((run.checkpoint or {}).get("handover"))
    previous_owner, lease_until = lock_owner(job.name, run.lock_scope)
    if executing_elsewhere(previous_owner == run.run_id, lease_until, clock.now(), started_before, handover):
        # Executing elsewhere (a duplicated delivery), or dead: then its lease runs out first.
        return "busy"
    try:
        acquire_lock(job.name, run.lock_scope, run.run_id, lease)
    except LockHeld as held:
        if held.owner != run.run_id:
            _finish(run, RunStatus.NOT_RUN, f"job {job.name} is already running as run {held.owner}", None,
                    holds_lock=False)
        return "busy"
    if previous_owner and previous_owner != run.run_id:
        _mark_abandoned(previous_owner, run.run_id)
    died = started_before and not handover  # its last invocation ended without a word: it died
    if not runs.claim_attempt(run, claimed_status(run.cancel_requested), died, handover):
        return "busy"
    if died and run.retries >= settings.job_max_retries():
        _finish(run, RunStatus.ERROR, f"gave up: {run.retries} attempt(s) did not finish (the last one died "
                              "mid-way); resume with a new run", None)
        return "done"
    started = time.monotonic()
    with metered() as requests:
        base_requests = dict(run.aws_requests or {})
        ctx = JobContext(run, job, budget, requests, base_requests)
        try:
            if run.cancel_requested:
                raise Cancelled()
            if job.shards and not run.parent_run_id:
                _close_open_fan_outs(job, run.run_id)
                kept = ctx.counters, ctx.errors
                ctx.counters, ctx.errors = {}, []  # a resumed fan-out counts its stores afresh
                shard_keys = job.shards(ctx)
                if shard_keys is None and run.shards_pending is not None:
                    # Resumed after it had made shards, which did part of the work: it goes on
                    # with those it made, whatever the rest would now need.
                    shard_keys = {}
                if shard_keys is not None:
                    return _fan_out(ctx, shard_keys)
                # Run whole: a continuation keeps what its earlier invocations counted.
                ctx.counters, ctx.errors = kept
            summary = job.run(ctx)
            status = RunStatus.ENDED
        except HandOver:
            log.info("budget spent; continuing in a new invocation", extra={"hops": run.hops})
            return _hand_over(run)
        except Cancelled:
            status, summary = RunStatus.CANCELED, "canceled by an operator"
        except JobNotRun as exc:
            status, summary = RunStatus.NOT_RUN, str(exc)
        except (JobFailed, ValidationError) as exc:
            status, summary = RunStatus.ERROR, str(exc) if not isinstance(exc, ValidationError) else _describe(exc)
        except LockHeld:
            status, summary = RunStatus.ERROR, "lost the job lock to another run (lease expired)"
        except Exception as exc:  # noqa: BLE001 - a job bug ends its run Error, never the caller
            if faults.is_transient(exc):
                return _wait_for_retry(ctx, exc, log)
            log.exception("run failed")
            status, summary = RunStatus.ERROR, f"{type(exc).__name__}: {exc}"
    _finish(run, status, ctx.message(summary), ctx, time.monotonic() - started)
    return "done"


def _wait_for_retry(ctx: JobContext, exc: Exception, log) -> str:
    """A transient AWS fault: the run goes back to ``Waiting`` with the reason and keeps its last
    checkpoint (work since then is redone, which every job's effects allow) and its lock, renewed
    for the retry; after ``job_max_retries`` unfinished attempts it ends ``Error``."""
    run = ctx.run
    reason = faults.describe(exc)
    failures = (run.retries or 0) + 1
    log.warning("transient AWS fault", extra={"reason": reason, "failures": failures})
    status, message = retry_outcome(failures, settings.job_max_retries(), reason)
    if status != RunStatus.WAITING:
        _finish(run, status, ctx.message(message), ctx)
        return "done"
    runs.mark_waiting(run, message, ctx.aws_requests())
    renew_lock(run.job, run.lock_scope, run.run_id, settings.lock_lease_seconds())
    return "retry"


def _describe(exc: ValidationError) -> str:
    return exc.message + ": " + "; ".join(f"{e.path}: {e.message}" for e in exc.errors)


def _hand_over(run: RunRecord) -> str:
    if run.hops + 1 > settings.job_max_hops():
        run.refresh(consistent_read=True)
        _finish(run, RunStatus.ERROR, f"gave up after {run.hops} continuations; resume with a new run", None)
        return "done"
    run.refresh(consistent_read=True)
    runs.mark_handover(run)
    return "continue"


def _finish(run: RunRecord, status: RunStatus, message: str | None, ctx: JobContext | None,
            seconds: float = 0.0, *, holds_lock: bool = True, expect: tuple = OPEN_STATUSES,
            cancel: bool = False) -> bool:
    """End the run (once: False when something else ended it first, e.g. a successor that found
    it abandoned). A run ending ``Ended`` whose cancel came after its last checkpoint says so."""
    results = ctx.results() if ctx is not None else None
    if not runs.finish(run, status, message, finishing_from(status, expect), results=results, cancel=cancel):
        run.refresh(consistent_read=True)
        if status != RunStatus.ENDED or run.status != RunStatus.CANCELLING:
            return False
        message = late_cancel(message)
        if not runs.finish(run, status, message, (RunStatus.CANCELLING,), results=results, cancel=cancel):
            return False
    if holds_lock:
        release_lock(run.job, run.lock_scope, run.run_id)
    logger().info("run finished", extra={"status": status, "counters": run.counters, "run_message": message})
    emit_run_metrics(run.job, status, seconds, run.counters)
    if run.parent_run_id:
        fanout.shard_done(run)
    return True


def _mark_abandoned(run_id: str, successor: str) -> None:
    """A run whose lease ran out and whose lock a successor took ends ``Error``; a fan-out
    parent's shards that never started are closed (the rest end on their own)."""
    old = find_run(run_id)
    if old is None or old.is_final:
        return
    _finish(old, RunStatus.ERROR, f"abandoned: its lease expired; run {successor} took over", None, holds_lock=False)
    if old.shards_pending is not None:
        _close_unstarted_shards(old, f"its parent run {old.run_id} died before starting it; run {successor} "
                                     "took over the job")


def _close_unstarted_shards(parent: RunRecord, reason: str) -> None:
    for child in runs.children(parent):
        if child.status == RunStatus.WAITING and not child.started_at:
            _finish(child, RunStatus.NOT_RUN, reason, None, expect=(RunStatus.WAITING,))


# --- dispatch -----------------------------------------------------------------------------

def dispatch(run_id: str) -> str:
    """Start or continue a run: inline in this process, or asynchronously in ``run_job``.
    Returns the last outcome of ``execute`` inline (``dispatched`` when handed to Lambda)."""
    if handover.to_lambda():
        handover.invoke_run_job(run_id)
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

def _fan_out(ctx: JobContext, shard_keys: list[str] | dict[str, list[str]]) -> str:
    """Split a run into one child run per store, each locking its store, or per group of stores
    (``{key: store ids}``, each child locking its key); the last child to end closes the parent
    (``jobs/fanout.py``).

    The parent holds the job lock only until its shards exist and are dispatched: a parent that
    dies before keeps it for one lease, and the next trigger resumes it (``submit``), finding
    the shards it had created (a query on the job's runs) and creating the rest. Each shard is
    counted on the parent in the transaction that creates it, so the count is exact however
    often the fan-out is resumed.
    """
    parent = ctx.run
    groups = shard_keys if isinstance(shard_keys, dict) else None
    existing = {fanout.shard_key(c): c for c in runs.children(parent)}
    keys = sorted(set(shard_keys) | set(existing))
    if not keys:
        _finish(parent, RunStatus.ENDED, ctx.message(fanout.closing_summary(parent, [], ctx.counters, [])
                                                    or "nothing to do"), ctx)
        return "done"
    children = []
    for key in keys:
        child = existing.get(key)
        if child is None:
            scope = {"store_ids": [key]} if groups is None else {"store_ids": groups[key], "shard": key}
            child, _ = submit(parent.job, {**parent.params, **scope}, trigger=parent.trigger,
                              requested_by=parent.requested_by, requested_by_label=parent.requested_by_label,
                              dry_run=parent.dry_run,
                              idempotency_key=f"{parent.run_id}#{key}", parent_run_id=parent.run_id,
                              lock_scope=f"{'store' if groups is None else 'shard'}#{key}")
        children.append(child)
    waiting = [c for c in children if not c.is_final]
    via_queue = handover.via_queue()
    # The last shard adds its siblings' requests to the parent's: the parent's own (this update,
    # the queue messages and the lock's release included) must be recorded before any shard ends.
    requests = Counter(ctx.aws_requests())
    requests["dynamodb.UpdateItem"] += 1
    requests["dynamodb.DeleteItem"] += 1
    if via_queue:
        requests["sqs.SendMessageBatch"] += handover.queue_batches(len(waiting))
    # The parent's own counters, errors and warnings (stores it found unchanged, unknown ids) are
    # kept for its close, which adds the shards' to them.
    what = "store shard(s)" if groups is None else "shard(s)"
    runs.mark_fanned_out(parent, f"fanned out to {len(keys)} {what}", dict(sorted(requests.items())),
                         ctx.counters, ctx.errors, ctx.warnings)
    if via_queue:
        handover.send_shards([c.run_id for c in waiting])
    else:
        for child in waiting:
            dispatch(child.run_id)
    release_lock(parent.job, parent.lock_scope, parent.run_id)
    if not waiting or not parent.shards_pending:  # every shard had ended before this (resumed) fan-out
        fanout.close_parent(parent)
    return "done"


def _close_open_fan_outs(job: Job, run_id: str) -> None:
    """Any run of a fanning-out job first settles the job's earlier fan-outs left open
    (``fanout.settle_open``) and dispatches again the shards that died mid-way or never started."""
    for shard in fanout.settle_open(job.name, run_id):
        dispatch(shard.run_id)
