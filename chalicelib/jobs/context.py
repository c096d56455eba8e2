"""What a running job sees (``JobContext``) and the time budget of the invocation running it.

A job is a function ``run(ctx: JobContext) -> str | None`` (the returned text becomes the run's
message). It reads ``ctx.params``, keeps its progress in ``ctx.state`` and calls
``ctx.checkpoint()`` between pages; there the progress is persisted, the lock renewed, a cancel
request noticed and, when the invocation's budget is low, the invocation ended (``HandOver``) so
that a fresh one continues from the saved state (``jobs/runtime.py``).
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from chalicelib import clock, settings
from chalicelib.jobs.registry import Job
from chalicelib.storage.runs import RunRecord, renew_lock, save_progress

MAX_ERRORS = 100
MAX_OUTPUTS = 1000


class HandOver(Exception):
    """The invocation's budget is spent; the run continues in a fresh invocation."""


class Cancelled(Exception):
    """An operator asked the run to stop; it stops at this checkpoint."""


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
        # What a job's ``shards`` read and its ``run`` may use in the same invocation instead of
        # reading it again (never saved: a continuation reads afresh).
        self.found: dict[str, Any] = {}
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

    def results(self) -> dict:
        """What the run record shows of the work so far."""
        return {"counters": self.counters, "errors": self.errors, "outputs": self.outputs,
                "aws_requests": self.aws_requests()}

    def checkpoint(self, **state: Any) -> None:
        """Persist progress (``state`` merged into ``ctx.state``) and counters; then stop here if
        the run was cancelled, or hand over to a fresh invocation if the budget is spent."""
        self._save(state)
        if self.run.cancel_requested:
            raise Cancelled()
        if self._budget.spent():
            raise HandOver()

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
        save_progress(self.run, {"state": self.state, "warnings": self.warnings}, self.results())
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
