"""Routes for migration staging jobs: list, read, copy to target (DOMAIN §7)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.http.common import (
    Conflict,
    NotFound,
    idempotency_key,
    list_response,
    operation,
    request_digest,
    requester,
    run_started,
)

bp = Blueprint(__name__)


@operation(bp, "GET", "/migration/jobs", query="StagingJobsQuery", response="StagingJobList",
           order="newest first")
def list_staging_jobs(query):
    """Staging jobs, of one entity or all, with their row and error counts."""
    from chalicelib.storage import migration as staging

    jobs, cursor = staging.jobs_page(query.entity, query.limit, query.cursor)
    return list_response("jobs", [job.to_api() for job in jobs], cursor)


@operation(bp, "GET", "/migration/jobs/{job_id}", errors=(404,))
def get_staging_job(job_id):
    """One staging job with its row and error counts, mapping and sample errors."""
    return _staging_job(job_id).to_api()


@operation(bp, "POST", "/migration/jobs/{job_id}/copy-to-target", body="CopyToTarget",
           response="RunAndStagingJob", status=202, errors=(404, 409, 503), idempotency_key=True)
def copy_to_target(job_id, body):
    """Starts a ``copy-migration-to-target`` run → ``202 {"run": Run, "job": StagingJob}``
    (inline on the local stack, so the job shows the outcome; deployed, it runs in ``run_job``)."""
    from chalicelib.jobs import runtime
    from chalicelib.jobs.copy_migration_to_target import NAME, copy_refusal

    request, rows = bp.current_request, body.rows
    job = _staging_job(job_id)
    refusal = copy_refusal(job)
    if refusal:
        raise Conflict(refusal)
    if rows == "errors" and job.failed_rows is None:
        raise Conflict(f"staging job {job_id} has no failed rows to retry: nothing of {job.source_key} "
                       "has been copied yet; copy rows: all")
    started = runtime.start(NAME, {"staging_job_id": job_id, "rows": rows}, trigger="manual",
                            **requester(request), idempotency_key=idempotency_key(request),
                            request_digest=request_digest(request, body))
    return run_started(started, lambda: {"job": _staging_job(job_id).to_api()})


def _staging_job(job_id: str):
    from chalicelib.storage import migration as staging

    job = staging.get_job(job_id)
    if job is None:
        raise NotFound(f"staging job {job_id} not found")
    return job
