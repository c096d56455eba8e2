"""Clean up staging (DOMAIN §7): deletes staging rows and marks their staging jobs ``Cleaned``.

Runs weekly for jobs older than ``older_than_days`` (default 30 on the schedule), when a new
mapping is dropped for an entity (its staged rows have the old shape), and on demand. Params:
``entity``, ``staging_job_id``, ``scope`` (``all`` rows; only jobs already ``copied`` to target;
only rows with ``errors``, the job keeping its status) and ``older_than_days``.

It reads and deletes staging rows only — never live data — by job (a query per job, deletes
25 a request), and refuses to run (``NotRun``, with the reason) while a staging job of an
entity it would clean is being staged or copied.

A staging job's ``cleaned_rows`` survives a run that dies between deleting rows and recording
them: it is set (not added to) to the larger of what the job is known to hold in the scope
(``rows``; ``errors`` for ``scope: errors``) and its count before this run plus the rows this run
deleted (kept in the checkpoint). A later run — resumed or new — that finds the rows already gone
still records them, and a mark repeated after a crash counts once.
"""
from __future__ import annotations

from datetime import timedelta

from chalicelib.domain.migration import CLEANED, COMPLETED, COMPLETED_WITH_ERRORS
from chalicelib.jobs.migration_context import is_busy
from chalicelib.jobs.registry import SCHEDULED_CLEAN_UP_DAYS
from chalicelib.jobs.runtime import JobContext, JobFailed, JobNotRun
from chalicelib.storage import migration as staging
from chalicelib.storage.base import iso, utcnow

NAME = "clean-up-staging"


def run(ctx: JobContext) -> str:
    jobs = _matching_jobs(ctx)
    if not ctx.state.get("checked"):
        _refuse_while_busy(ctx, jobs)
        ctx.checkpoint(checked=True)
    scope = ctx.params["scope"]
    deleted: dict[str, int] = ctx.state.setdefault("deleted", {})
    before: dict[str, int] = ctx.state.setdefault("cleaned_before", {})  # cleaned_rows before this run
    marked: list[str] = ctx.state.setdefault("marked", [])
    for job in jobs:
        if job.job_id in marked or job.status == CLEANED or is_busy(job):
            continue
        if scope == "copied" and job.status not in (COMPLETED, COMPLETED_WITH_ERRORS):
            continue
        deleted.setdefault(job.job_id, 0)
        before.setdefault(job.job_id, int(job.cleaned_rows))

        def fetch(cursor, job=job):
            return staging.rows_page(job.job_id, cursor, errors_only=scope == "errors", keys_only=True)

        for rows in ctx.pages(f"rows:{job.job_id}", fetch):
            written = 0 if ctx.dry_run or not rows else staging.delete_rows(rows)
            ctx.count(read=len(rows), written=written)
            deleted[job.job_id] += len(rows)
        _mark(ctx, job, scope, deleted[job.job_id], before[job.job_id])
        marked.append(job.job_id)
        ctx.checkpoint()
    return _report(ctx, jobs, deleted)


def _matching_jobs(ctx: JobContext) -> list[staging.StagingJob]:
    """The staging jobs the params select, oldest first."""
    days = ctx.params.get("older_than_days")
    if days is None and ctx.run.trigger == "schedule":
        days = SCHEDULED_CLEAN_UP_DAYS
    before = iso(utcnow() - timedelta(days=days)) if days is not None else None
    entity, job_id = ctx.params.get("entity"), ctx.params.get("staging_job_id")
    if job_id is None:
        return list(staging.jobs_of(entity, before))
    job = staging.get_job(job_id)
    if job is None or (entity and job.entity != entity):
        raise JobFailed(f"staging job {job_id} not found" + (f" for entity {entity}" if entity else ""))
    return [job] if before is None or job.created_at < before else []


def _refuse_while_busy(ctx: JobContext, jobs: list[staging.StagingJob]) -> None:
    """NotRun while any job of an entity this run cleans is being staged or copied: its rows
    would be deleted under it (or staged in the old shape right after the clean-up)."""
    entities = [ctx.params["entity"]] if ctx.params.get("entity") else sorted({job.entity for job in jobs})
    for entity in entities:
        busy = [job for job in staging.jobs_of(entity) if is_busy(job)]
        if busy:
            raise JobNotRun(
                f"staging job {busy[0].job_id} of {entity} ({busy[0].source_key}) is {busy[0].status.lower()}; "
                "clean up staging again when it has finished"
            )


def _mark(ctx: JobContext, job: staging.StagingJob, scope: str, rows: int, before: int) -> None:
    """Record ``cleaned_rows`` and, unless only errors were cleaned, the job ``Cleaned``. The rows
    the scope covers are gone now, whichever run deleted them: never fewer than the job holds."""
    ctx.output("staging-job", job_id=job.job_id, entity=job.entity, rows_deleted=rows)
    if ctx.dry_run:
        return
    known = int(job.errors) if scope == "errors" else int(job.rows)
    actions = [staging.StagingJob.cleaned_at.set(iso()), staging.StagingJob.updated_at.set(iso()),
               staging.StagingJob.cleaned_rows.set(max(known, before + rows))]
    if scope != "errors":
        actions.append(staging.StagingJob.status.set(CLEANED))
    job.update(actions=actions)


def _report(ctx: JobContext, jobs: list[staging.StagingJob], deleted: dict[str, int]) -> str:
    """``deleted 1200 staging row(s): products 1200 (job a 1000, job b 200); customers 0 (job c 0)``."""
    entity_of = {job.job_id: job.entity for job in jobs}
    by_entity: dict[str, list[str]] = {}
    for job_id in deleted:
        by_entity.setdefault(entity_of.get(job_id, "?"), []).append(job_id)
    verb = "would delete" if ctx.dry_run else "deleted"
    parts = [
        f"{entity} {sum(deleted[j] for j in ids)} (" + ", ".join(f"job {j} {deleted[j]}" for j in ids) + ")"
        for entity, ids in sorted(by_entity.items())
    ]
    total = sum(deleted.values())
    summary = f"{verb} {total} staging row(s) of {len(deleted)} staging job(s)"
    return summary + (": " + "; ".join(parts) if parts else "")
