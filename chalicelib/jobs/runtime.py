"""The job runtime: run records, single flight, idempotency, checkpoints and continuations,
cancellation, dispatch and per-store fan-out. Every job runs through here.

A job is a function ``run(ctx: JobContext) -> str | None`` (the returned text becomes the run's
message). It reads ``ctx.params``, keeps its progress in ``ctx.state`` and calls
``ctx.checkpoint()`` between pages; there the runtime persists the state, renews the lock, notices
a cancel request and, when the invocation's time budget is low, ends the invocation so that a
fresh one continues from the saved state.
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
from chalicelib.storage import aws
from chalicelib.storage.base import iso
from chalicelib.storage.metering import metered
from chalicelib.storage.runs import (
    LockHeld,
    RunRecord,
    acquire_lock,
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
        self._lease_renewed = time.monotonic()

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def count(self, read: int = 0, written: int = 0, skipped: int = 0, failed: int = 0) -> None:
        for name, value in (("read", read), ("written", written), ("skipped", skipped), ("failed", failed)):
            self.counters[name] = self.counters.get(name, 0) + value

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
        self._lease_renewed = time.monotonic()

    def _save(self, state: dict) -> None:
        self.state.update(state)
        self.run.update(actions=[
            RunRecord.checkpoint.set({"state": self.state, "warnings": self.warnings}),
            RunRecord.counters.set(self.counters),
            RunRecord.errors.set(self.errors),
            RunRecord.outputs.set(self.outputs),
            RunRecord.aws_requests.set(self.aws_requests()),
        ])
        if time.monotonic() - self._lease_renewed > settings.lock_lease_seconds() / 3:
            renew_lock(self.job.name, self.run.lock_scope, self.run.run_id, settings.lock_lease_seconds())
            self._lease_renewed = time.monotonic()

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
           dry_run: bool = False, idempotency_key: str | None = None,
           parent_run_id: str | None = None, lock_scope: str | None = None) -> tuple[RunRecord, bool]:
    """Record a run ``Waiting``; returns (run, created). A known idempotency key returns the
    existing run with ``created=False``."""
    job = get_job(job_name)
    if job is None:
        raise RunNotFound(f"unknown job {job_name}")
    if not isinstance(dry_run, bool):
        raise ValidationError([FieldError("dry_run", "must be true or false")])
    cleaned = job.clean_params(params)
    run = RunRecord(new_run_id(), job=job.name, created_at=iso(), status="Waiting", trigger=trigger,
                    params=cleaned, dry_run=dry_run, requested_by=requested_by,
                    idempotency_key=idempotency_key, parent_run_id=parent_run_id,
                    lock_scope=lock_scope or job.lock_scope(cleaned))
    stored = create_run(run)
    return stored, stored.run_id == run.run_id


def get_run(run_id: str) -> RunRecord:
    try:
        return RunRecord.get(run_id, consistent_read=True)
    except RunRecord.DoesNotExist:
        raise RunNotFound(f"run {run_id} not found") from None


def cancel(run_id: str) -> RunRecord:
    """Cancel a waiting run at once, or ask an executing one to stop at its next checkpoint."""
    run = get_run(run_id)
    if run.is_final:
        raise RunConflict(f"run {run_id} has already ended ({run.status})")
    try:
        if run.status == "Waiting":
            run.update(actions=[RunRecord.status.set("Canceled"), RunRecord.ended_at.set(iso()),
                                RunRecord.cancel_requested.set(True),
                                RunRecord.message.set("canceled before it started")],
                       condition=RunRecord.status == "Waiting")
        else:
            run.update(actions=[RunRecord.status.set("Cancelling"), RunRecord.cancel_requested.set(True)],
                       condition=RunRecord.status.is_in("Executing", "Cancelling"))
    except Exception as exc:  # noqa: BLE001
        if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
            raise
        return cancel(run_id)  # the status moved underneath us; decide again
    return run


# --- executing ----------------------------------------------------------------------------

def execute(run_id: str, budget: Budget) -> str:
    """Execute (or continue) a run within ``budget``; returns ``done`` or ``continue``."""
    run = get_run(run_id)
    if run.is_final:
        return "done"
    with log_keys(job=run.job, run_id=run.run_id) as log:
        return _execute(run, budget, log)


def _execute(run: RunRecord, budget: Budget, log) -> str:
    job = get_job(run.job)
    lease = settings.lock_lease_seconds()
    previous_owner, _ = lock_owner(job.name, run.lock_scope)
    try:
        acquire_lock(job.name, run.lock_scope, run.run_id, lease) if previous_owner != run.run_id \
            else _take_own_lock(job, run, lease)
    except LockHeld as held:
        if held.owner != run.run_id:
            _finish(run, "NotRun", f"job {job.name} is already running as run {held.owner}", None)
        # else: a duplicated delivery of a run that is executing elsewhere; leave it be.
        return "done"
    if previous_owner and previous_owner != run.run_id:
        _mark_abandoned(previous_owner, run.run_id)
    started = time.monotonic()
    with metered() as requests:
        base_requests = dict(run.aws_requests or {})
        run.update(actions=[RunRecord.status.set("Cancelling" if run.cancel_requested else "Executing"),
                            RunRecord.started_at.set(run.started_at or iso())])
        ctx = JobContext(run, job, budget, requests, base_requests)
        try:
            if run.cancel_requested:
                raise _Cancelled()
            if job.shards and not run.parent_run_id:
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
            log.exception("run failed")
            status, summary = "Error", f"{type(exc).__name__}: {exc}"
    _finish(run, status, ctx.message(summary), ctx, time.monotonic() - started)
    return "done"


def _take_own_lock(job: Job, run: RunRecord, lease: int) -> None:
    # A continuation renews its own lease. A run still holding a live lease that is not handing
    # over is being executed elsewhere (a duplicated delivery): that one must not run twice.
    owner, lease_until = lock_owner(job.name, run.lock_scope)
    if owner == run.run_id and lease_until >= clock.now() and not (run.checkpoint or {}).get("handover"):
        raise LockHeld(run.run_id)
    acquire_lock(job.name, run.lock_scope, run.run_id, lease)
    if (run.checkpoint or {}).get("handover"):
        run.update(actions=[RunRecord.checkpoint.set({**run.checkpoint, "handover": False})])


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


def _finish(run: RunRecord, status: str, message: str | None, ctx: JobContext | None,
            seconds: float = 0.0) -> None:
    actions = [RunRecord.status.set(status), RunRecord.ended_at.set(iso()), RunRecord.message.set(message)]
    if ctx is not None:
        actions += [RunRecord.counters.set(ctx.counters), RunRecord.errors.set(ctx.errors),
                    RunRecord.outputs.set(ctx.outputs), RunRecord.aws_requests.set(ctx.aws_requests())]
    run.update(actions=actions)
    if status != "NotRun" or ctx is not None:  # a NotRun with a context refused while holding the lock
        release_lock(run.job, run.lock_scope, run.run_id)
    logger().info("run finished", extra={"status": status, "counters": run.counters, "run_message": message})
    emit_run_metrics(run.job, status, seconds, run.counters)
    if run.parent_run_id:
        _shard_done(run)


def _mark_abandoned(run_id: str, successor: str) -> None:
    try:
        old = RunRecord.get(run_id, consistent_read=True)
    except RunRecord.DoesNotExist:
        return
    if not old.is_final:
        old.update(actions=[RunRecord.status.set("Error"), RunRecord.ended_at.set(iso()),
                            RunRecord.message.set(f"abandoned: its lease expired; run {successor} took over")])


# --- dispatch -----------------------------------------------------------------------------

def dispatch(run_id: str) -> None:
    """Start or continue a run: inline in this process, or asynchronously in ``run_job``."""
    if settings.run_dispatch() == "lambda":
        aws.client("lambda").invoke(FunctionName=settings.run_job_function(), InvocationType="Event",
                                    Payload=json.dumps({"run_id": run_id}).encode())
        return
    while execute(run_id, Budget.for_invocation()) == "continue":
        pass


def run_scheduled(job_name: str, event_id: str, lambda_context: Any = None) -> RunRecord:
    """A schedule fired: one run per event id (a duplicated delivery finds the same run)."""
    return run_on_event(job_name, None, event_id, lambda_context, trigger="schedule", requested_by="schedule")


def run_on_event(job_name: str, params: Any, idempotency_key: str, lambda_context: Any = None, *,
                 trigger: str = "event", requested_by: str | None = None) -> RunRecord:
    """An event asks for a run: one run per idempotency key (a duplicated delivery finds the same
    run), executed in the event's own invocation and continued through ``run_job`` if need be."""
    run, created = submit(job_name, params, trigger=trigger, requested_by=requested_by,
                          idempotency_key=idempotency_key)
    if created or not run.is_final:
        if execute(run.run_id, Budget.for_invocation(lambda_context)) == "continue":
            dispatch(run.run_id)
    return get_run(run.run_id)


def run_invoked(payload: dict, lambda_context: Any = None) -> dict:
    """``run_job``: execute or continue the run named in the payload."""
    run_id = payload.get("run_id") if isinstance(payload, dict) else None
    if not run_id:
        raise ValueError("run_job needs a payload {\"run_id\": ...}")
    if execute(run_id, Budget.for_invocation(lambda_context)) == "continue":
        dispatch(run_id)
    run = get_run(run_id)
    return {"run_id": run_id, "status": run.status}


# --- per-store fan-out --------------------------------------------------------------------

def _fan_out(ctx: JobContext, shard_keys: list[str]) -> str:
    """Split a run into one child run per store; the last child to finish closes the parent."""
    parent = ctx.run
    shard_keys = sorted(set(shard_keys))
    if not shard_keys:
        _finish(parent, "Ended", ctx.message("nothing to do"), ctx)
        return "done"
    existing = {c.params.get("store_ids", [None])[0]: c for c in _children(parent)}
    # The parent keeps the job lock while its shards run; they lock per store.
    renew_lock(parent.job, parent.lock_scope, parent.run_id, 6 * 3600)
    children = []
    for key in shard_keys:
        child = existing.get(key)
        if child is None:
            child, _ = submit(parent.job, {**parent.params, "store_ids": [key]}, trigger=parent.trigger,
                              requested_by=parent.requested_by, dry_run=parent.dry_run,
                              idempotency_key=f"{parent.run_id}#{key}", parent_run_id=parent.run_id,
                              lock_scope=f"store#{key}")
        children.append(child)
    queue = settings.shard_queue_url()
    via_sqs = bool(queue) and settings.run_dispatch() == "lambda"
    # The last shard adds its siblings' requests to the parent's: the parent's own (this update and
    # the queue messages included) must be recorded before any shard can finish.
    requests = Counter(ctx.aws_requests())
    requests["dynamodb.UpdateItem"] += 1
    if via_sqs:
        requests["sqs.SendMessageBatch"] += -(-len(children) // 10)
    parent.update(actions=[RunRecord.shards_pending.set(len(shard_keys)),
                           RunRecord.message.set(f"fanned out to {len(shard_keys)} store shard(s)"),
                           RunRecord.aws_requests.set(dict(sorted(requests.items())))])
    if via_sqs:
        sqs = aws.client("sqs")
        for start in range(0, len(children), 10):
            sqs.send_message_batch(QueueUrl=queue, Entries=[
                {"Id": str(i), "MessageBody": json.dumps({"run_id": c.run_id})}
                for i, c in enumerate(children[start:start + 10])])
    else:
        for child in children:
            dispatch(child.run_id)
    return "done"


def _children(parent: RunRecord) -> list[RunRecord]:
    return list(RunRecord.by_job.query(parent.job, RunRecord.created_at >= parent.created_at,
                                       filter_condition=RunRecord.parent_run_id == parent.run_id))


def _shard_done(child: RunRecord) -> None:
    parent = RunRecord(child.parent_run_id)
    parent.update(actions=[RunRecord.shards_pending.add(-1)])
    if parent.shards_pending:
        return
    parent.refresh(consistent_read=True)
    children = _children(parent)
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
    parent.update(actions=[RunRecord.status.set(status), RunRecord.ended_at.set(iso()),
                           RunRecord.message.set(message), RunRecord.counters.set(dict(counters)),
                           RunRecord.errors.set(errors[:MAX_ERRORS]), RunRecord.outputs.set(outputs[:MAX_OUTPUTS]),
                           RunRecord.aws_requests.set(dict(sorted(requests.items())))])
    release_lock(parent.job, parent.lock_scope, parent.run_id)
    emit_run_metrics(parent.job, status, 0.0, dict(counters))
