"""Routes for jobs, runs, master data, health and the published contract."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.domain.errors import ValidationError
from chalicelib.http.common import (
    Conflict,
    NotFound,
    idempotency_key,
    json_response,
    list_response,
    operation,
    request_digest,
    requester,
    run_started,
)

bp = Blueprint(__name__)


@operation(bp, "GET", "/health", auth=None, response="Health")
def health():
    """Liveness; no token needed."""
    from chalicelib import settings

    return {"status": "ok", "stage": settings.stage()}


@operation(bp, "GET", "/jobs", response="JobList", order="in the order of the job table (one page)")
def list_jobs():
    """Every job: name, title, description, schedule (as written, in words and its next fire time),
    parameters and last run."""
    from chalicelib.jobs.registry import all_jobs
    from chalicelib.schedules import next_fire
    from chalicelib.storage.base import iso, utcnow
    from chalicelib.storage.runs import RunRecord

    now = utcnow()
    jobs = []
    for job in all_jobs():
        last = next(iter(RunRecord.by_job.query(job.name, scan_index_forward=False, limit=1)), None)
        fires = next_fire(job.schedule, now) if job.schedule else None
        jobs.append({**job.describe(), "next_run_at": iso(fires) if fires else None,
                     "last_run": last.to_api() if last else None})
    return {"jobs": jobs, "cursor": None}


@operation(bp, "POST", "/jobs/{job}/runs", body="StartRun", response="RunAnswer", status=202,
           errors=(404, 503), idempotency_key=True)
def start_run(job, body):
    """Start a run of the job (200 with the run an ``Idempotency-Key`` already started)."""
    from chalicelib.jobs import runtime

    request = bp.current_request
    return run_started(runtime.start(job, body.params, trigger="manual", **requester(request),
                                     dry_run=body.dry_run, idempotency_key=idempotency_key(request),
                                     request_digest=request_digest(request, body)))


@operation(bp, "GET", "/jobs/{job}/runs", query="RunHistoryQuery", response="RunList", errors=(404,),
           order="newest first (by created_at)")
def job_runs(job, query):
    """The job's run history, of one status or all."""
    from chalicelib.jobs.registry import get_job
    from chalicelib.storage.runs import RunRecord

    if get_job(job) is None:
        raise NotFound(f"unknown job {job}")
    status, limit = query.status, query.limit
    results = RunRecord.by_job.query(
        job, scan_index_forward=False, limit=limit, page_size=limit if not status else None,
        last_evaluated_key=query.cursor,
        filter_condition=(RunRecord.status == status) if status else None)
    runs = [r.to_api() for r in results]
    return list_response("runs", runs, results.last_evaluated_key if len(runs) == limit else None)


@operation(bp, "GET", "/runs", query="RunsQuery", response="RunList", errors=(404,),
           order="newest first (by created_at)")
def list_runs(query):
    """Every job's runs (or one ``job``'s), of a ``status`` and ``trigger`` or all, created from
    ``since`` (default: the run history's retention, ``run_history_retention_days``) through
    ``until`` (default: now). A page may hold fewer than ``limit`` runs and still have a cursor:
    one call reads a bounded number of index pages."""
    from datetime import timedelta

    from chalicelib.jobs.parameters import retail_parameters
    from chalicelib.jobs.registry import get_job
    from chalicelib.storage.base import iso, utcnow
    from chalicelib.storage.runs import RunRecord, recent_runs

    if query.job and get_job(query.job) is None:
        raise NotFound(f"unknown job {query.job}")
    # Both are UTC with milliseconds, as run records' created_at (models.base.DATETIME).
    until = query.until or iso()
    since = query.since or iso(utcnow() - timedelta(days=retail_parameters()["run_history_retention_days"]))
    condition = None
    if query.status:
        condition = RunRecord.status == query.status
    if query.trigger:
        by_trigger = RunRecord.trigger == query.trigger
        condition = by_trigger if condition is None else condition & by_trigger
    runs, cursor = recent_runs(query.job, since, until, query.limit, query.cursor, condition)
    return list_response("runs", [r.to_api() for r in runs], cursor)


@operation(bp, "GET", "/runs/{run_id}", response="Run", errors=(404,))
def get_run(run_id):
    """One run; a fan-out parent's answer lists its ``shards``."""
    from chalicelib.jobs import fanout, runtime

    run = runtime.get_run(run_id)
    body = run.to_api()
    if run.shards_pending is not None or run.fanned_out:
        body["shards"] = fanout.shard_summaries(run)
    return body


@operation(bp, "GET", "/runs/{run_id}/outputs/{index}", response="OutputLink", errors=(404,))
def run_output(run_id, index):
    """A short-lived link (15 minutes) to download output ``index`` (from 0) of the run: a file the
    run wrote (payroll files, account-activity exports); 404 for an output that is no file."""
    from chalicelib.jobs import runtime
    from chalicelib.storage import exports

    outputs = runtime.get_run(run_id).outputs or []
    output = outputs[int(index)] if index.isdigit() and int(index) < len(outputs) else None
    link = exports.output_link(output) if output else None
    if link is None:
        raise NotFound(f"run {run_id} has no downloadable output {index}")
    return link


@operation(bp, "POST", "/runs/{run_id}/cancel", body="NoBody", response="Run", errors=(404, 409))
def cancel_run(run_id, body):
    """Cancel a run: it stops at its next page (409 when it has ended)."""
    from chalicelib.jobs import runtime

    return runtime.cancel(run_id).to_api()


def _entity(entity: str) -> str:
    from chalicelib.models.records import ENTITY_MODELS

    if entity not in ENTITY_MODELS:
        raise NotFound(f"unknown entity {entity}; one of {', '.join(ENTITY_MODELS)}")
    return entity


@operation(bp, "PUT", "/data/{entity}", body="DataItems", records="entities", response="DataWritten", errors=(404,))
def put_data(entity, body):
    """Validate every item, then upsert them all; one invalid item answers 400 and writes nothing.
    Answers ``{"accepted", "written", "unchanged"}`` (an unchanged record is not written)."""
    from chalicelib.models.parsing import parse_records
    from chalicelib.storage import records

    entity = _entity(entity)
    cleaned = parse_records(entity, body.items)
    _check_references(entity, cleaned)
    written = records.upsert(entity, cleaned)
    return {"accepted": len(cleaned), "written": written, "unchanged": len(cleaned) - written}


def _check_references(entity: str, items: list[dict]) -> None:
    """400 for a reference to a record neither stored nor in the request, or a cycle in a tree."""
    from chalicelib.domain.references import reference_errors
    from chalicelib.storage import records

    errors = reference_errors(entity, items, records.get_by_ids)
    if errors:
        raise ValidationError(errors)


def _refuse_referred(entity: str, record_id: str) -> None:
    """409 for deleting the parameters or a record that others refer to, naming them."""
    from chalicelib.storage import records

    if entity == "parameters":
        raise Conflict("the parameters record is required; change it with PUT /data/parameters")
    referrers = records.referrers(entity, record_id)
    if referrers:
        named = "; ".join(f"{source} {', '.join(ids)}" for source, ids in referrers.items())
        raise Conflict(f"{entity} {record_id} is referred to by {named}: change or delete them first")


@operation(bp, "GET", "/data/{entity}", query="DataListQuery", response="ItemList", errors=(404,),
           order="by id")
def list_data(entity, query):
    """The entity's records."""
    from chalicelib.storage import records

    items, cursor = records.page(_entity(entity), query.limit, query.cursor)
    return list_response("items", items, cursor)


@operation(bp, "GET", "/data/{entity}/{record_id}", errors=(404,))
def get_data(entity, record_id):
    """One record, as stored (every field of the entity's model)."""
    from chalicelib.storage import records

    record = records.get(_entity(entity), record_id)
    if record is None:
        raise NotFound(f"{entity} {record_id} not found")
    return record


@operation(bp, "DELETE", "/data/{entity}/{record_id}", response="Deleted", errors=(404, 409))
def delete_data(entity, record_id):
    """Delete one record → ``{"deleted": id}``; 409 naming the records that refer to it, and for the
    parameters record (change it with PUT)."""
    from chalicelib.storage import records

    entity = _entity(entity)
    _refuse_referred(entity, record_id)
    if not records.delete(entity, record_id):
        raise NotFound(f"{entity} {record_id} not found")
    return json_response({"deleted": record_id})


@operation(bp, "GET", "/stores/{store_id}", auth="store", errors=(404,))
def get_store(store_id):
    """A store's own master record (its POS reads its configuration; operators read any)."""
    from chalicelib.storage import records

    record = records.get("stores", store_id)
    if record is None:
        raise NotFound(f"store {store_id} not found")
    return record


@operation(bp, "GET", "/openapi.json", auth=None)
def openapi_document():
    """This contract: the API's OpenAPI 3.1 document; no token needed."""
    from chalicelib.http.openapi import document

    return document()
