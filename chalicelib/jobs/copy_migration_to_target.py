"""Copy to target: a staging job's valid rows into the live tables (DOMAIN §7).

An internal job started by ``POST /migration/jobs/{id}/copy-to-target`` (a large job outlasts
API Gateway's 29 s, so the route answers 202 with the run). Every row is staged again against
what HQ holds now — the job's mapping, the same schema validation as ``PUT /data`` and the
references (a category loaded since staging now resolves) — and the rows that pass are upserted:
master records through ``records.upsert`` (only changed ones written), inventory as on-hand
quantities of the store's warehouse. Rows that fail are reported on the run and kept on the job
as row ranges, which ``rows: errors`` copies again later (on this job, or on the next job of the
same file after a mapping fix and a new drop).
"""
from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from chalicelib.domain.migration import (
    COMPLETED,
    COMPLETED_WITH_ERRORS,
    STAGED,
    STAGED_WITH_ERRORS,
    RowRanges,
    copy_status,
    stage_row,
    uses_decimal_comma,
)
from chalicelib.jobs.migration_context import COPYING, migration_context, run_is_alive
from chalicelib.jobs.runtime import JobContext, JobFailed
from chalicelib.jobs.stage_migration_file import describe_errors
from chalicelib.storage import migration as staging
from chalicelib.storage import records
from chalicelib.storage.base import get_many, iso, write_all
from chalicelib.storage.inventory import NO_VARIANT, OnHand, item_key

if TYPE_CHECKING:
    from chalicelib.domain.migration import RowRanges, StagedRow

NAME = "copy-migration-to-target"


def run(ctx: JobContext) -> str:
    job = staging.get_job(ctx.params["staging_job_id"])
    if job is None:
        raise JobFailed(f"staging job {ctx.params['staging_job_id']} not found")
    if not ctx.state.get("started"):
        _start(ctx, job)
    chosen = None if ctx.state["only"] is None else RowRanges(ctx.state["only"])
    failed = RowRanges(ctx.state.get("failed", []))
    context = migration_context(job.entity, decimal_comma=uses_decimal_comma(job.delimiter or ","))
    for page in ctx.pages("rows", lambda cursor: staging.rows_page(job.job_id, cursor)):
        picked = [row for row in page if chosen is None or row.row in chosen]
        valid = []
        for row in picked:
            staged = stage_row(job.entity, job.mapping, int(row.row), row.source, context)
            if staged.errors:
                failed.add(staged.row_number)
                ctx.error(f"row {staged.row_number}", describe_errors(staged.errors))
            else:
                valid.append(staged)
        latest = _last_of_each_key(ctx, job.entity, valid)
        written = 0 if ctx.dry_run or not latest else _upsert(job.entity, [s.record for s in latest])
        ctx.count(read=len(picked), written=written, skipped=len(page) - len(picked) + len(valid) - len(latest))
        ctx.state.update(failed=failed.ranges, copied=ctx.state.get("copied", 0) + len(valid))
    return _finish(ctx, job, failed)


def copy_refusal(job: staging.StagingJob, run_id: str | None = None) -> str | None:
    """Why ``job`` cannot be copied now (``None``: it can); ``run_id``: the copy run asking."""
    if job.status in (STAGED, STAGED_WITH_ERRORS, COMPLETED, COMPLETED_WITH_ERRORS):
        return None
    if job.status == COPYING and (job.copy_run_id == run_id or not run_is_alive(job.copy_run_id)):
        return None  # this run continuing, or a copy whose run died: copying again is safe
    if job.status == COPYING:
        return f"staging job {job.job_id} is being copied by run {job.copy_run_id}"
    return f"staging job {job.job_id} is {job.status}; only a staged job can be copied"


def _start(ctx: JobContext, job: staging.StagingJob) -> None:
    """Check the job can be copied and mark it ``Copying``; which rows: all, or those that failed."""
    refusal = copy_refusal(job, ctx.run_id)
    if refusal:
        raise JobFailed(refusal)
    only = None
    if ctx.params["rows"] == "errors":
        if job.failed_rows is None:
            raise JobFailed(f"staging job {job.job_id} has no failed rows to retry: nothing of "
                            f"{job.source_key} has been copied yet; copy rows: all")
        only = job.failed_rows
    if not ctx.dry_run:
        job.update(actions=[staging.StagingJob.status.set(COPYING),
                            staging.StagingJob.copy_run_id.set(ctx.run_id),
                            staging.StagingJob.updated_at.set(iso())])
    ctx.checkpoint(started=True, only=only)


def _last_of_each_key(ctx: JobContext, entity: str, staged: list[StagedRow]) -> list[StagedRow]:
    """One row per record key in a page (a batch write may not name an item twice): the later
    row wins, as it would across pages."""
    last: dict[tuple, StagedRow] = {}
    for row in staged:
        key = _record_key(entity, row.record)
        if key in last:
            ctx.warn("some rows repeat the key of an earlier row: the later row was copied (counted as skipped)")
        last[key] = row
    return sorted(last.values(), key=lambda row: row.row_number)


def _record_key(entity: str, record: dict) -> tuple:
    if entity == "inventory":
        return record["warehouse_id"], item_key(record["product_id"], record.get("variant_id"))
    return (record["id"],)


def _upsert(entity: str, staged_records: list[dict]) -> int:
    if entity != "inventory":
        return records.upsert(entity, staged_records)
    return _set_on_hand(staged_records)


def _set_on_hand(lines: list[dict]) -> int:
    """Migrated quantities replace on-hand stock (the opening balance); unchanged ones are not written."""
    keys = [_record_key("inventory", line) for line in lines]
    stored = {(item.warehouse_id, item.item_key): item.qty for item in get_many(OnHand, keys)}
    now = iso()
    changed = [
        OnHand(warehouse, key, product_id=line["product_id"], variant_id=line.get("variant_id") or NO_VARIANT,
               qty=Decimal(line["qty"]), updated_at=now)
        for (warehouse, key), line in zip(keys, lines, strict=True)
        if stored.get((warehouse, key)) != Decimal(line["qty"])
    ]
    return write_all(OnHand, puts=changed)


def _finish(ctx: JobContext, job: staging.StagingJob, failed: RowRanges) -> str:
    copied = ctx.state.get("copied", 0)
    failures = ctx.counters.get("failed", 0)
    status = copy_status(copied, failures)
    if ctx.dry_run:
        return f"staging job {job.job_id}: would copy {copied} row(s) of {job.entity} to target, {failures} would fail"
    message = f"{status}: {copied} row(s) of {job.entity} copied to target, {failures} failed"
    job.update(actions=[
        staging.StagingJob.status.set(status), staging.StagingJob.message.set(message),
        staging.StagingJob.copied.set(copied), staging.StagingJob.copy_failed.set(failures),
        staging.StagingJob.failed_rows.set(failed.ranges), staging.StagingJob.failed_rows_from.set(job.job_id),
        staging.StagingJob.copied_at.set(iso()), staging.StagingJob.updated_at.set(iso()),
    ])
    return f"staging job {job.job_id} {message}"
