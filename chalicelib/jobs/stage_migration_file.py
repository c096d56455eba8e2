"""Stage migration file: one RMS export dropped at ``migration/data/<entity>/<name>.csv`` into
staging rows (DOMAIN §7).

An internal, event-driven job (no schedule): ``on_migration_drop`` starts one run per dropped
object, and an operator can start one to stage an object again (params ``{"key": ...}``).
The run's id is the staging job's id. The object is streamed from S3 and never deleted; rows are
written 25 per request and a checkpoint every ``CHECKPOINT_ROWS`` rows saves the byte position
of the next row, so a continuation reads on from there with two range GETs (the header, then
the rest), pinned to the object's ETag and to the mapping the job started with.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING

from chalicelib import settings
from chalicelib.domain.migration import FAILED, FilePosition, UnreadableFile, classify_drop_key, job_status, stage_file
from chalicelib.jobs.migration_context import STAGING, migration_context
from chalicelib.jobs.runtime import JobContext, JobFailed
from chalicelib.storage import aws, faults
from chalicelib.storage import migration as staging
from chalicelib.storage.base import iso

if TYPE_CHECKING:
    from chalicelib.domain.migration import DropKey, FilePosition, StagedRow

NAME = "stage-migration-file"
CHECKPOINT_ROWS = 1000
CHUNK_BYTES = 256 * 1024
SAMPLE_ERRORS = 20


def run(ctx: JobContext) -> str:
    bucket = ctx.params.get("bucket") or settings.migration_bucket()
    drop = classify_drop_key(ctx.params["key"])
    job = _open_job(ctx, drop, bucket)
    if drop.kind != "data":
        _fail(ctx, job, drop.reason or "a mapping is applied when it is dropped, not staged")
    position = FilePosition(**ctx.state["position"]) if ctx.state.get("position") else None
    context = migration_context(job.entity)
    batch: list[StagedRow] = []
    try:
        for staged in stage_file(job.entity, job.mapping, _file_chunks(ctx, job, position), context,
                                 resume=position):
            batch.append(staged)
            if len(batch) == CHECKPOINT_ROWS:
                _save_batch(ctx, job, batch)
                batch = []
        _save_batch(ctx, job, batch)
    except UnreadableFile as exc:
        _fail(ctx, job, exc.reason)
    return _finish(ctx, job)


def _open_job(ctx: JobContext, drop: DropKey, bucket: str) -> staging.StagingJob:
    """The run's staging job, created on its first invocation with the entity's current mapping.

    It inherits the rows that failed when the newest earlier job of the same file was copied,
    so ``rows: errors`` after a mapping fix and a new drop retries just those.
    """
    job = None if ctx.dry_run else staging.get_job(ctx.run_id)
    if job is not None:
        return job
    entity = drop.entity or staging.UNKNOWN_ENTITY
    job = staging.StagingJob(ctx.run_id, entity=entity, kind=drop.kind, source_key=drop.key, bucket=bucket,
                             status=STAGING, run_id=ctx.run_id, created_at=iso(), updated_at=iso())
    if drop.kind == "data":
        job.mapping_version, job.mapping = staging.current_mapping(entity)
        earlier = staging.last_copied_job_of(drop.key)
        if earlier is not None:
            job.failed_rows, job.failed_rows_from = earlier.failed_rows, earlier.failed_rows_from
    if not ctx.dry_run:
        job.save()
    return job


def _file_chunks(ctx: JobContext, job: staging.StagingJob, position: FilePosition | None) -> Iterator[bytes]:
    """The object's bytes: whole on the first invocation (its ETag and size are kept), else the
    header and the bytes from ``position`` on, read only if the object is still that version."""
    if position is None:
        response = _get_object(job)
        job.etag = response["ETag"].strip('"')
        ctx.state.update(size=response["ContentLength"], etag=response["ETag"])
        yield from _read(response)
        return
    version = ctx.state["etag"]
    yield from _read(_get_object(job, Range=f"bytes=0-{position.header_end - 1}", IfMatch=version))
    if position.offset < ctx.state["size"]:
        yield from _read(_get_object(job, Range=f"bytes={position.offset}-", IfMatch=version))


def _get_object(job: staging.StagingJob, **options) -> dict:
    s3 = aws.client("s3")
    try:
        with faults.translated():
            return s3.get_object(Bucket=job.bucket, Key=job.source_key, **options)
    except faults.NotFound:
        raise UnreadableFile(f"object {job.source_key} is not in bucket {job.bucket}") from None
    except faults.ConditionFailed:
        raise UnreadableFile(
            "the object was replaced while it was being staged; its new version is staged on its own drop"
        ) from None


def _read(response: dict) -> Iterator[bytes]:
    body = response["Body"]
    try:
        yield from body.iter_chunks(CHUNK_BYTES)
    finally:
        body.close()


def _save_batch(ctx: JobContext, job: staging.StagingJob, batch: list[StagedRow]) -> None:
    """Write a batch of rows, then the job's counts, then the checkpoint: a crash in between
    writes the same rows again and sets the same counts."""
    if not batch:
        return
    rows = ctx.state.get("rows", 0) + len(batch)
    errors = ctx.state.get("errors", 0)
    for staged in batch:
        if staged.errors:
            errors += 1
            ctx.error(f"row {staged.row_number}", describe_errors(staged.errors))
            _keep_sample(job, staged)
    written = 0 if ctx.dry_run else staging.write_rows(job.job_id, batch)
    ctx.count(read=len(batch), written=written)
    position = batch[-1].position
    job.rows, job.errors, job.encoding, job.delimiter = rows, errors, position.encoding, position.delimiter
    if not ctx.dry_run:
        job.update(actions=[
            staging.StagingJob.rows.set(rows), staging.StagingJob.errors.set(errors),
            staging.StagingJob.sample_errors.set(job.sample_errors), staging.StagingJob.etag.set(job.etag),
            staging.StagingJob.encoding.set(job.encoding), staging.StagingJob.delimiter.set(job.delimiter),
            staging.StagingJob.updated_at.set(iso()),
        ])
    ctx.checkpoint(position=asdict(position), rows=rows, errors=errors)


def describe_errors(errors: list[dict]) -> str:
    """``Price: must be ...; Description: is required`` — the source columns an operator fixes."""
    return "; ".join(f"{e['column']}: {e['message']}" for e in errors)


def _keep_sample(job: staging.StagingJob, staged: StagedRow) -> None:
    sample = job.sample_errors
    if len(sample) < SAMPLE_ERRORS and (not sample or staged.row_number > sample[-1]["row"]):
        sample.append({"row": staged.row_number, "errors": staged.errors})


def _fail(ctx: JobContext, job: staging.StagingJob, reason: str) -> None:
    """The file cannot be staged: the job is ``Failed`` with the reason (the object stays)."""
    rows = ctx.state.get("rows", 0)
    message = f"{job.source_key}: {reason}"
    if rows:
        message += f" ({rows} row(s) before the problem are staged; clean up staging removes them)"
    if not ctx.dry_run:
        job.update(actions=[staging.StagingJob.status.set(FAILED), staging.StagingJob.message.set(message),
                            staging.StagingJob.updated_at.set(iso())])
    raise JobFailed(f"staging job {job.job_id} Failed: {message}")


def _finish(ctx: JobContext, job: staging.StagingJob) -> str:
    rows, errors = ctx.state.get("rows", 0), ctx.state.get("errors", 0)
    status = job_status(rows, errors)
    message = (f"{status}: {rows} row(s) of {job.entity} from {job.source_key}, {rows - errors} valid, "
               f"{errors} with errors")
    if not ctx.dry_run:
        job.update(actions=[staging.StagingJob.status.set(status), staging.StagingJob.message.set(message),
                            staging.StagingJob.rows.set(rows), staging.StagingJob.errors.set(errors),
                            staging.StagingJob.updated_at.set(iso())])
    return f"staging job {job.job_id} {message}"
