"""Routes for jobs, runs, master data and health."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.domain.errors import FieldError, ValidationError
from chalicelib.http.common import (
    AUTH,
    NotFound,
    api,
    decode_cursor,
    idempotency_key,
    json_response,
    limit_param,
    list_response,
    query_param,
    read_body,
    require_operator,
    run_started,
)

bp = Blueprint(__name__)
MAX_DATA_ITEMS = 1000


@bp.route("/health", methods=["GET"])
@api
def health():
    from chalicelib import settings

    return {"status": "ok", "stage": settings.stage()}


@bp.route("/jobs", methods=["GET"], **AUTH)
@api
def list_jobs():
    from chalicelib.jobs.registry import all_jobs
    from chalicelib.storage.runs import RunRecord

    require_operator(bp.current_request)
    jobs = []
    for job in all_jobs():
        last = next(iter(RunRecord.by_job.query(job.name, scan_index_forward=False, limit=1)), None)
        jobs.append({**job.describe(), "last_run": last.to_api() if last else None})
    return {"jobs": jobs, "cursor": None}


@bp.route("/jobs/{job}/runs", methods=["POST"], **AUTH)
@api
def start_run(job):
    from chalicelib.jobs import runtime

    request = bp.current_request
    who = require_operator(request)
    body = read_body(request, allowed={"params", "dry_run"})
    return run_started(runtime.start(job, body.get("params"), trigger="manual", requested_by=who.token_id,
                                     dry_run=body.get("dry_run", False), idempotency_key=idempotency_key(request)))


@bp.route("/jobs/{job}/runs", methods=["GET"], **AUTH)
@api
def job_runs(job):
    from chalicelib.jobs.registry import get_job
    from chalicelib.storage.runs import RunRecord

    request = bp.current_request
    require_operator(request)
    if get_job(job) is None:
        raise NotFound(f"unknown job {job}")
    status = query_param(request, "status")
    limit = limit_param(request)
    results = RunRecord.by_job.query(
        job, scan_index_forward=False, limit=limit, page_size=limit if not status else None,
        last_evaluated_key=decode_cursor(request),
        filter_condition=(RunRecord.status == status) if status else None)
    runs = [r.to_api() for r in results]
    return list_response("runs", runs, results.last_evaluated_key if len(runs) == limit else None)


@bp.route("/runs/{run_id}", methods=["GET"], **AUTH)
@api
def get_run(run_id):
    from chalicelib.jobs import runtime

    require_operator(bp.current_request)
    return runtime.get_run(run_id).to_api()


@bp.route("/runs/{run_id}/cancel", methods=["POST"], **AUTH)
@api
def cancel_run(run_id):
    from chalicelib.jobs import runtime

    require_operator(bp.current_request)
    return runtime.cancel(run_id).to_api()


def _entity(entity: str) -> str:
    from chalicelib.domain.schemas import ENTITIES

    if entity not in ENTITIES:
        raise NotFound(f"unknown entity {entity}; one of {', '.join(ENTITIES)}")
    return entity


@bp.route("/data/{entity}", methods=["PUT"], **AUTH)
@api
def put_data(entity):
    from chalicelib.domain.schemas import validate_many
    from chalicelib.storage import records

    request = bp.current_request
    require_operator(request)
    entity = _entity(entity)
    body = read_body(request, allowed={"items"}, required={"items"})
    items = body["items"]
    if not isinstance(items, list) or not items:
        raise ValidationError([FieldError("items", "must be a non-empty list")])
    if len(items) > MAX_DATA_ITEMS:
        raise ValidationError([FieldError("items", f"at most {MAX_DATA_ITEMS} items per request")])
    cleaned = validate_many(entity, items)
    written = records.upsert(entity, cleaned)
    return {"accepted": len(cleaned), "written": written, "unchanged": len(cleaned) - written}


@bp.route("/data/{entity}", methods=["GET"], **AUTH)
@api
def list_data(entity):
    from chalicelib.storage import records

    request = bp.current_request
    require_operator(request)
    items, cursor = records.page(_entity(entity), limit_param(request, 100, 1000), decode_cursor(request))
    return list_response("items", items, cursor)


@bp.route("/data/{entity}/{record_id}", methods=["GET"], **AUTH)
@api
def get_data(entity, record_id):
    from chalicelib.storage import records

    require_operator(bp.current_request)
    record = records.get(_entity(entity), record_id)
    if record is None:
        raise NotFound(f"{entity} {record_id} not found")
    return record


@bp.route("/data/{entity}/{record_id}", methods=["DELETE"], **AUTH)
@api
def delete_data(entity, record_id):
    from chalicelib.storage import records

    require_operator(bp.current_request)
    if not records.delete(_entity(entity), record_id):
        raise NotFound(f"{entity} {record_id} not found")
    return json_response({"deleted": record_id})


@bp.route("/stores/{store_id}", methods=["GET"], **AUTH)
@api
def get_store(store_id):
    """A store's own master record (its POS reads its configuration; operators read any)."""
    from chalicelib.http.common import require_store
    from chalicelib.storage import records

    require_store(bp.current_request, store_id)
    record = records.get("stores", store_id)
    if record is None:
        raise NotFound(f"store {store_id} not found")
    return record
