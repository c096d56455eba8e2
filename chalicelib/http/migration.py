"""Routes for migration staging jobs: list, read, copy to target (DOMAIN §7)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.domain.errors import FieldError, ValidationError
from chalicelib.http.common import (
    AUTH,
    Conflict,
    NotFound,
    api,
    decode_cursor,
    idempotency_key,
    limit_param,
    list_response,
    query_param,
    read_body,
    require_operator,
    run_started,
)

bp = Blueprint(__name__)


@bp.route("/migration/jobs", methods=["GET"], **AUTH)
@api
def list_staging_jobs():
    from chalicelib.domain.migration import MIGRATION_ENTITIES
    from chalicelib.storage import migration as staging

    request = bp.current_request
    require_operator(request)
    entity = query_param(request, "entity")
    known = MIGRATION_ENTITIES + (staging.UNKNOWN_ENTITY,)
    if entity is not None and entity not in known:
        raise ValidationError([FieldError("entity", f"must be one of {', '.join(known)}")])
    jobs, cursor = staging.jobs_page(entity, limit_param(request), decode_cursor(request))
    return list_response("jobs", [job.to_api() for job in jobs], cursor)


@bp.route("/migration/jobs/{job_id}", methods=["GET"], **AUTH)
@api
def get_staging_job(job_id):
    require_operator(bp.current_request)
    return _staging_job(job_id).to_api()


@bp.route("/migration/jobs/{job_id}/copy-to-target", methods=["POST"], **AUTH)
@api
def copy_to_target(job_id):
    """Starts a ``copy-migration-to-target`` run → ``202 {"run": Run, "job": StagingJob}``
    (inline on the local stack, so the job shows the outcome; deployed, it runs in ``run_job``)."""
    from chalicelib.jobs import runtime
    from chalicelib.jobs.copy_migration_to_target import NAME, ROWS, copy_refusal

    request = bp.current_request
    who = require_operator(request)
    body = read_body(request, allowed={"rows"})
    rows = body.get("rows", "all")
    if rows not in ROWS:
        raise ValidationError([FieldError("rows", f"must be one of {', '.join(ROWS)}")])
    job = _staging_job(job_id)
    refusal = copy_refusal(job)
    if refusal:
        raise Conflict(refusal)
    if rows == "errors" and job.failed_rows is None:
        raise Conflict(f"staging job {job_id} has no failed rows to retry: nothing of {job.source_key} "
                       "has been copied yet; copy rows: all")
    started = runtime.start(NAME, {"staging_job_id": job_id, "rows": rows}, trigger="manual",
                            requested_by=who.token_id, idempotency_key=idempotency_key(request))
    return run_started(started, lambda: {"job": _staging_job(job_id).to_api()})


def _staging_job(job_id: str):
    from chalicelib.storage import migration as staging

    job = staging.get_job(job_id)
    if job is None:
        raise NotFound(f"staging job {job_id} not found")
    return job
