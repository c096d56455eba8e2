"""Routes for distribution: publishing assortments, download sessions (operators and stores) and
the status messages stores post."""
from __future__ import annotations

import hashlib

from chalice import Blueprint

from chalicelib.domain.errors import FieldError, ValidationError
from chalicelib.http.common import (
    AUTH,
    Conflict,
    NotFound,
    api,
    decode_cursor,
    json_response,
    limit_param,
    list_response,
    query_param,
    read_body,
    require_operator,
    require_store,
    run_started,
)

bp = Blueprint(__name__)


@bp.route("/assortments/{assortment_id}/publish", methods=["POST"], **AUTH)
@api
def publish_assortment(assortment_id):
    """Draft → InProgress, then a process-assortments run for the stores it covers (→ 202 {run})."""
    from chalicelib.jobs import runtime
    from chalicelib.storage import records
    from chalicelib.storage.base import dumps

    who = require_operator(bp.current_request)
    assortment = records.get("assortments", assortment_id)
    if assortment is None:
        raise NotFound(f"assortment {assortment_id} not found")
    status = assortment.get("status")
    if status == "Draft":
        if not records.replace("assortments", assortment, {**assortment, "status": "InProgress"}):
            raise Conflict(f"assortment {assortment_id} changed while it was being published; try again")
    elif status != "InProgress":
        raise Conflict(f"assortment {assortment_id} is {status}; edit it (it becomes Draft) to publish it again")
    # Publishing the same content twice (a double click, a retried request) finds the same run.
    content = hashlib.blake2b(dumps({k: v for k, v in assortment.items() if k != "status"}).encode(),
                              digest_size=8).hexdigest()
    return run_started(runtime.start("process-assortments", {"assortment_ids": [assortment_id]}, trigger="event",
                                     requested_by=who.token_id, idempotency_key=f"publish#{assortment_id}#{content}"))


def _status_param(request) -> str | None:
    from chalicelib.domain.schemas import SESSION_STATUSES

    status = query_param(request, "status")
    if status is not None and status not in SESSION_STATUSES:
        raise ValidationError([FieldError("status", f"must be one of {', '.join(SESSION_STATUSES)}")])
    return status


@bp.route("/download-sessions", methods=["GET"], **AUTH)
@api
def list_sessions():
    """Newest first: a store's sessions by ``seq``, or one status's by last change, or all."""
    from chalicelib.storage import download_sessions as storage

    request = bp.current_request
    require_operator(request)
    store_id, status = query_param(request, "store_id"), _status_param(request)
    limit, cursor = limit_param(request), decode_cursor(request)
    if store_id:
        items, next_key = storage.store_sessions(store_id, status, limit, cursor, newest_first=True)
    elif status:
        items, next_key = storage.sessions_in_status(status, limit, cursor)
    else:
        items, next_key = storage.all_sessions(limit, cursor)
    return list_response("sessions", [s.to_api() for s in items], next_key)


@bp.route("/download-sessions/{session_id}", methods=["GET"], **AUTH)
@api
def get_session(session_id):
    from chalicelib.jobs.distribution import require_session

    require_operator(bp.current_request)
    return require_session(session_id).to_api()


@bp.route("/download-sessions/{session_id}/cancel", methods=["POST"], **AUTH)
@api
def cancel_session(session_id):
    from chalicelib.jobs.distribution import cancel_session as cancel

    require_operator(bp.current_request)
    return cancel(session_id).to_api()


@bp.route("/download-sessions/{session_id}/rerun", methods=["POST"], **AUTH)
@api
def rerun_session(session_id):
    """A targeted full_sync run for the session's store and data group (→ 202 {run}): its new
    session carries the store's current data and the old one gets ``replaced_by``."""
    from chalicelib.jobs.distribution import rerun_session as rerun

    who = require_operator(bp.current_request)
    return run_started(rerun(session_id, requested_by=who.token_id))


@bp.route("/stores/{store_id}/download-sessions", methods=["GET"], **AUTH)
@api
def store_sessions(store_id):
    """A store's sessions in ``seq`` order (default: the Available ones), each with a short-lived
    ``package_url`` to download its package."""
    from chalicelib.storage import download_sessions as storage

    request = bp.current_request
    require_store(request, store_id)
    status = _status_param(request) or "Available"
    items, next_key = storage.store_sessions(store_id, status, limit_param(request), decode_cursor(request),
                                             newest_first=False)
    sessions = []
    for session in items:
        body = session.to_api()
        body["package_url"] = storage.package_url(session.package) if session.package else None
        sessions.append(body)
    return list_response("sessions", sessions, next_key)


@bp.route("/stores/{store_id}/status-messages", methods=["POST"], **AUTH)
@api
def post_status_messages(store_id):
    """Keep the store's messages for process-status-messages (→ 202 {accepted, rejected}); what can
    be decided on receipt is refused per message (``jobs/status_message_upload.py``)."""
    from chalicelib.jobs.status_message_upload import receive

    request = bp.current_request
    require_store(request, store_id)
    body = read_body(request, allowed={"messages"}, required={"messages"})
    return json_response(receive(store_id, body["messages"]), 202)
