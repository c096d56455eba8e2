"""Per-store fan-out bookkeeping (DOMAIN §13): a fanning-out run's shards, the count of those not
ended on the parent, and the parent's close once every shard has ended.

A parent holds the job lock only until its shards exist and are dispatched (``runtime``); each
shard is counted on the parent in the transaction that creates it (``storage.runs.create_run``)
and taken off as it ends (``shard_done``); the last one closes the parent with the shards'
counters, errors, outputs and requests. A close lost with a dying shard is made by the job's next
run (``settle_open``).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from chalicelib import clock
from chalicelib.domain.runs import OPEN_STATUSES, fan_out_outcome
from chalicelib.jobs.context import MAX_ERRORS, MAX_OUTPUTS
from chalicelib.jobs.registry import get_job
from chalicelib.observability import emit_run_metrics
from chalicelib.storage.runs import (
    RunRecord,
    children,
    clear_open_fan_out,
    find_run,
    finish,
    lock_owner,
    open_fan_outs,
    release_lock,
    shard_ended,
)


def shard_key(shard: RunRecord) -> str | None:
    """The store a shard run works for, or the key of its group of stores (``params.shard``)."""
    return shard.params.get("shard") or shard.params.get("store_ids", [None])[0]


def shard_summaries(parent: RunRecord) -> list[dict]:
    """A fan-out parent's shards as ``GET /runs/{run_id}`` lists them, by store."""
    shards = sorted(children(parent), key=lambda c: (shard_key(c) or "", c.created_at))
    return [{"run_id": c.run_id, "status": c.status, "scope": shard_key(c), "ended_at": c.ended_at} for c in shards]


def shard_done(shard: RunRecord) -> None:
    """A shard has ended: count it off its parent, and close the parent if it was the last."""
    parent = shard_ended(shard.parent_run_id)
    if parent is None or parent.shards_pending or not parent.fanned_out or parent.is_final:
        return
    close_parent(parent, ended=shard)


def close_parent(parent: RunRecord, ended: RunRecord | None = None) -> None:
    """Every shard has ended: the parent ends with their counters, errors, outputs and requests."""
    shards = [ended if ended is not None and c.run_id == ended.run_id else c for c in children(parent)]
    for i, c in enumerate(shards):
        if not c.is_final:
            shards[i] = find_run(c.run_id) or c  # the index lags a little
            if not shards[i].is_final:
                return
    counters: Counter = Counter(parent.counters or {})
    requests: Counter = Counter(parent.aws_requests or {})
    errors, outputs = list(parent.errors or []), []
    for c in shards:
        counters.update(c.counters)
        requests.update(c.aws_requests or {})
        errors.extend(c.errors)
        outputs.extend(c.outputs)
    status, message = fan_out_outcome([(shard_key(c) or "?", c.status) for c in shards],
                                      bool(parent.cancel_requested))
    summary = closing_summary(parent, shards, dict(counters), outputs)
    warnings = [f"warning: {w}" for w in (parent.checkpoint or {}).get("warnings", [])]
    message = "; ".join([message, *([summary] if summary else []), *warnings])
    results = {"counters": dict(counters), "errors": errors[:MAX_ERRORS], "outputs": outputs[:MAX_OUTPUTS],
               "aws_requests": dict(sorted(requests.items()))}
    if not finish(parent, status, message, OPEN_STATUSES, results=results):
        return  # closed already
    release_lock(parent.job, parent.lock_scope, parent.run_id)
    emit_run_metrics(parent.job, status, 0.0, dict(counters))


def closing_summary(parent: RunRecord, shards: list[RunRecord], counters: dict, outputs: list) -> str | None:
    """The job's own last step of a fan-out once every shard has ended (``Job.close``: e.g. the
    assortments every store of the run now has are published), and its summary of the whole run;
    ``None`` for a job without one."""
    job = get_job(parent.job)
    if job is None or job.close is None:
        return None
    return job.close(parent, shards, counters, outputs)


def close_parent_of(shard: RunRecord) -> None:
    """Close a shard's parent if every shard has ended (idempotent: a shard's retry after its end
    was cut short, e.g. killed before the parent's count or close)."""
    parent = find_run(shard.parent_run_id)
    if parent is not None and parent.fanned_out and not parent.is_final:
        close_parent(parent)


def settle_open(job: str, run_id: str) -> Iterator[RunRecord]:
    """Settle the job's earlier fan-outs left open (but ``run_id``'s own): a parent whose shards
    have all ended but whose close was lost (the last shard died at its end) is closed. Yields
    the shards to dispatch again: those that died mid-way (their lease ran out, nothing delivers
    them again) or never started. One query on the sparse ``open_fanouts`` index, empty when
    nothing is left open."""
    for parent_id in open_fan_outs(job):
        if parent_id == run_id:
            continue
        parent = find_run(parent_id)
        if parent is None:
            continue
        if parent.is_final:  # ended another way before the index marker went
            clear_open_fan_out(parent)
            continue
        unfinished = [c for c in children(parent) if not c.is_final]
        unfinished = [c for c in (find_run(c.run_id) for c in unfinished) if not c.is_final]
        if not unfinished:
            close_parent(parent)
        for shard in unfinished:
            owner, lease_until = lock_owner(shard.job, shard.lock_scope)
            if owner != shard.run_id or lease_until < clock.now():
                yield shard
