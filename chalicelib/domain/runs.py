"""Runs as the domain sees them (DOMAIN §13): the AX batch statuses, which of them are final, which
moves between them are allowed, the errors a run request meets, and the decisions on a run's
outcome that need no AWS. Pure Python: the runtime (``jobs/runtime.py``) applies these decisions
through the named writes of ``storage/runs.py``.
"""
from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from chalicelib.domain.errors import ConflictError, DomainError, NotFoundError


class RunStatus(StrEnum):
    """AX's batch job statuses. A ``StrEnum``: stored, compared and answered as the plain word."""

    WAITING = "Waiting"
    EXECUTING = "Executing"
    CANCELLING = "Cancelling"
    ENDED = "Ended"
    ERROR = "Error"
    CANCELED = "Canceled"
    NOT_RUN = "NotRun"


MAX_NAMED_SHARDS = 20  # a fan-out parent's message names at most this many shards that did not end
FINAL_STATUSES = frozenset({RunStatus.ENDED, RunStatus.ERROR, RunStatus.CANCELED, RunStatus.NOT_RUN})
OPEN_STATUSES = (RunStatus.WAITING, RunStatus.EXECUTING, RunStatus.CANCELLING)
STARTED_STATUSES = (RunStatus.EXECUTING, RunStatus.CANCELLING)  # an invocation claimed the run

# Where a run may go from each open status (a final status goes nowhere). ``Cancelling → Ended``
# is the late cancel: the request came after the run's last checkpoint (``late_cancel``).
_NEXT = {
    RunStatus.WAITING: frozenset({RunStatus.EXECUTING, RunStatus.CANCELLING, *FINAL_STATUSES}),
    RunStatus.EXECUTING: frozenset({RunStatus.EXECUTING, RunStatus.CANCELLING, RunStatus.WAITING, *FINAL_STATUSES}),
    RunStatus.CANCELLING: frozenset({RunStatus.CANCELLING, RunStatus.WAITING, *FINAL_STATUSES}),
}

LATE_CANCEL = "cancel requested after the last safe point; the run had done all its work"


class RunNotFound(NotFoundError):
    """No such run, or no such job to run."""


class RunConflict(ConflictError):
    """The run is in a state that does not allow the request (e.g. cancelling a finished run)."""


class JobFailed(DomainError):
    """Raised by a job to end its run ``Error`` with this message (effects so far are kept)."""


class JobNotRun(DomainError):
    """Raised by a job that refuses to run now (e.g. it would race other work): the run ends
    ``NotRun`` ("Didn't run") with this message as the reason. Raise it before any effect."""


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


def allowed(current: str, target: str) -> bool:
    """Whether a run in ``current`` may move to ``target``."""
    return target in _NEXT.get(RunStatus(current), frozenset())


def claimed_status(cancel_requested: bool) -> RunStatus:
    """The status of a run an invocation has just claimed."""
    return RunStatus.CANCELLING if cancel_requested else RunStatus.EXECUTING


def cancel_message(started: bool) -> str:
    """Why a waiting run ended ``Canceled``: it had started and waited to retry, or never started."""
    return "canceled while waiting to retry" if started else "canceled before it started"


def finishing_from(status: RunStatus, expect: Iterable[str] = OPEN_STATUSES) -> tuple[RunStatus, ...]:
    """The statuses a run may end ``status`` from, among ``expect``: a run asked to cancel does not
    end ``Ended`` plainly (``late_cancel`` says so)."""
    return tuple(RunStatus(s) for s in expect if allowed(s, status)
                 and not (status == RunStatus.ENDED and s == RunStatus.CANCELLING))


def late_cancel(message: str | None) -> str:
    """The message of a run that ended ``Ended`` although a cancel was requested after its last checkpoint."""
    return f"{LATE_CANCEL}: {message}" if message else LATE_CANCEL


def must_resume(status: str, lease_until: float, now: float) -> bool:
    """A run that holds its scope's lock is resumed by the next trigger when it waits (after a
    transient fault) or its lease has run out (it died); a live one is left alone."""
    return status == RunStatus.WAITING or lease_until < now


def executing_elsewhere(owns_lock: bool, lease_until: float, now: float, started: bool, handover: bool) -> bool:
    """A delivery of a run that another invocation holds (a duplicated delivery, or a dead one whose
    lease has not run out yet): this one leaves it."""
    return owns_lock and lease_until >= now and started and not handover


def retry_outcome(failures: int, limit: int, reason: str) -> tuple[RunStatus, str]:
    """After a transient AWS fault: wait to be delivered again, or give up after ``limit`` attempts."""
    if failures >= limit:
        return RunStatus.ERROR, f"gave up after {failures} transient AWS fault(s); the last: {reason}"
    return RunStatus.WAITING, (f"waiting to retry ({failures} of {limit} attempts failed) "
                               f"after a transient AWS fault: {reason}")


def fan_out_outcome(shards: list[tuple[str, str]], cancel_requested: bool) -> tuple[RunStatus, str]:
    """How a fan-out parent ends once every shard ``(store, status)`` has: ``Ended`` when all
    ended, ``Canceled`` when the others were all canceled, ``Error`` otherwise; the message counts
    the shards by status and names the stores of those that did not end (at most 20 in all):
    ``6 shards: 5 Ended, 1 Error (S004)``."""
    failed = [(store, status) for store, status in shards if status != RunStatus.ENDED]
    if not failed:
        status = RunStatus.ENDED
    elif all(s == RunStatus.CANCELED for _, s in failed):
        status = RunStatus.CANCELED
    else:
        status = RunStatus.ERROR
    named = {store for store, _ in failed[:MAX_NAMED_SHARDS]}
    parts = []
    for each in RunStatus:
        stores = [store for store, s in shards if s == each]
        if not stores:
            continue
        part = f"{len(stores)} {each.value}"
        if each != RunStatus.ENDED:
            shown = [store for store in stores if store in named]
            part += f" ({', '.join(shown)}{f', +{len(stores) - len(shown)} more' if len(shown) < len(stores) else ''})"
        parts.append(part)
    message = f"{len(shards)} shard{'s' if len(shards) != 1 else ''}: {', '.join(parts)}"
    if status == RunStatus.ENDED and cancel_requested:
        message = late_cancel(message)
    return status, message
