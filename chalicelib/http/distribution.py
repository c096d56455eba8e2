"""Routes for distribution: publishing assortments, download sessions (operators and stores) and
the status messages stores post."""
from __future__ import annotations

import hashlib

from chalice import Blueprint

from chalicelib.http.common import Conflict, NotFound, json_response, list_response, operation, requester, run_started

bp = Blueprint(__name__)


@operation(bp, "POST", "/assortments/{assortment_id}/publish", body="NoBody", response="RunAnswer", status=202,
           errors=(404, 409, 503))
def publish_assortment(assortment_id, body):
    """Draft → InProgress, then a process-assortments run for the stores it covers (→ 202 {run})."""
    from chalicelib.jobs import runtime
    from chalicelib.storage import records
    from chalicelib.storage.base import dumps

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
                                     **requester(bp.current_request),
                                     idempotency_key=f"publish#{assortment_id}#{content}"))


@operation(bp, "GET", "/download-sessions", query="SessionsQuery", response="SessionList",
           order="a store's: newest first by seq; one status's: latest change first; all: in table order")
def list_sessions(query):
    """Download sessions of a store, of a status, or all."""
    from chalicelib.storage import download_sessions as storage

    store_id, status, limit, cursor = query.store_id, query.status, query.limit, query.cursor
    if store_id:
        items, next_key = storage.store_sessions(store_id, status, limit, cursor, newest_first=True)
    elif status:
        items, next_key = storage.sessions_in_status(status, limit, cursor)
    else:
        items, next_key = storage.all_sessions(limit, cursor)
    return list_response("sessions", [s.to_api() for s in items], next_key)


@operation(bp, "GET", "/download-sessions/{session_id}", response="Session", errors=(404,))
def get_session(session_id):
    """One download session."""
    from chalicelib.jobs.distribution import require_session

    return require_session(session_id).to_api()


@operation(bp, "GET", "/download-sessions/{session_id}/package", query="PackagePreviewQuery",
           response="PackagePreview", errors=(404, 409))
def preview_package(session_id, query):
    """The header and first ``limit`` rows of the session's package (read as a stream: the rest of
    the object is not read); 409 when the session has no package."""
    from chalicelib.jobs.distribution import require_session
    from chalicelib.storage.download_sessions import package_head

    session = require_session(session_id)
    if not session.package:
        raise Conflict(f"session {session_id} has no package ({session.status})")
    header, rows = package_head(session.package, query.limit)
    return {"session_id": session.session_id, "store_id": session.store_id, "data_group": session.data_group,
            "seq": int(session.seq), "header": header, "rows": rows, "total_rows": int(header.get("rows", 0))}


@operation(bp, "POST", "/download-sessions/{session_id}/cancel", body="NoBody", response="Session",
           errors=(404, 409))
def cancel_session(session_id, body):
    """Cancel a session the store has not applied yet (409 when it can no longer be canceled)."""
    from chalicelib.jobs.distribution import cancel_session as cancel

    return cancel(session_id).to_api()


@operation(bp, "POST", "/download-sessions/{session_id}/rerun", body="NoBody", response="RunAnswer", status=202,
           errors=(404, 409, 503))
def rerun_session(session_id, body):
    """A targeted full_sync run for the session's store and data group (→ 202 {run}): its new
    session carries the store's current data and the old one gets ``replaced_by``."""
    from chalicelib.jobs.distribution import rerun_session as rerun

    return run_started(rerun(session_id, **requester(bp.current_request)))


@operation(bp, "GET", "/stores/{store_id}/download-sessions", auth="store", query="StoreSessionsQuery",
           response="StoreSessionList", order="by seq, oldest first")
def store_sessions(store_id, query):
    """A store's sessions in ``seq`` order (default: the Available ones), each with a short-lived
    ``package_url`` to download its package."""
    from chalicelib.storage import download_sessions as storage

    items, next_key = storage.store_sessions(store_id, query.status, query.limit, query.cursor, newest_first=False)
    sessions = []
    for session in items:
        body = session.to_api()
        body["package_url"] = storage.package_url(session.package) if session.package else None
        sessions.append(body)
    return list_response("sessions", sessions, next_key)


@operation(bp, "POST", "/stores/{store_id}/status-messages", auth="store", body="StatusMessageUpload",
           records="status-messages", response="MessageOutcome", status=202)
def post_status_messages(store_id, body):
    """Keep the store's messages for process-status-messages (→ 202 {accepted, rejected}); what can
    be decided on receipt is refused per message (``jobs/status_message_upload.py``)."""
    from chalicelib.jobs.status_message_upload import receive

    return json_response(receive(store_id, body.messages), 202)
