"""Routes for the finance exports: account activity results, time registrations and approval."""
from __future__ import annotations

from datetime import date

from chalice import Blueprint

from chalicelib.domain.errors import FieldError, ValidationError
from chalicelib.http.common import (
    AUTH,
    NotFound,
    api,
    decode_cursor,
    limit_param,
    list_response,
    query_param,
    read_body,
    require_operator,
    require_store,
)

bp = Blueprint(__name__)
MAX_REGISTRATIONS = 1000


@bp.route("/account-activity", methods=["GET"], **AUTH)
@api
def list_account_activity():
    """A profile's results, latest range first, with their lines and export state."""
    from chalicelib.storage import account_activity as results

    request = bp.current_request
    require_operator(request)
    profile_id = query_param(request, "profile_id")
    if not profile_id:
        raise ValidationError([FieldError("profile_id", "is required")])
    items, cursor = results.by_profile_page(profile_id, limit_param(request, 20, 100), decode_cursor(request))
    return list_response("results", items, cursor)


@bp.route("/account-activity/{result_id}/reset-export", methods=["POST"], **AUTH)
@api
def reset_account_activity_export(result_id):
    """Let the next export run write the result again (same key, so it replaces the file)."""
    from chalicelib.storage import account_activity as results

    require_operator(bp.current_request)
    return results.reset_export(result_id).to_api()


@bp.route("/stores/{store_id}/time-registrations", methods=["POST"], **AUTH)
@api
def upload_time_registrations(store_id):
    """A store's POS uploads clock-ins and clock-outs; resending is harmless (counted as duplicates),
    a changed registration needs approval again (``approval_withdrawn`` counts those that had it)."""
    from chalicelib.domain.days import store_zone
    from chalicelib.models.parsing import parse_records
    from chalicelib.storage import pay, records

    request = bp.current_request
    require_store(request, store_id)
    body = read_body(request, allowed={"registrations"}, required={"registrations"})
    items = body["registrations"]
    if not isinstance(items, list) or not items:
        raise ValidationError([FieldError("registrations", "must be a non-empty list")])
    if len(items) > MAX_REGISTRATIONS:
        raise ValidationError([FieldError("registrations", f"at most {MAX_REGISTRATIONS} per request")])
    registrations = parse_records("time-registrations", items, path="registrations")
    workers = records.get_by_ids("workers", {r["worker_id"] for r in registrations})
    errors = []
    for index, registration in enumerate(registrations):
        worker = workers.get(registration["worker_id"])
        if worker is None:
            errors.append(FieldError(f"registrations[{index}].worker_id",
                                     f"unknown worker {registration['worker_id']}"))
        elif worker["store_id"] != store_id:
            errors.append(FieldError(f"registrations[{index}].worker_id",
                                     f"worker {worker['id']} does not belong to store {store_id}"))
    if errors:
        raise ValidationError(errors)
    period_types = {worker_id: worker["pay_period_type"] for worker_id, worker in workers.items()}
    zone = store_zone(records.get("stores", store_id))
    return pay.save_registrations(store_id, registrations, period_types, zone).to_api()


MAX_APPROVAL_WORKERS = 100
MAX_BATCH_DAYS = 62  # worker_ids / store_id / the list: about two months
MAX_WORKER_DAYS = 366  # one worker's approval
SELECTORS = ("worker_id", "worker_ids", "store_id")


@bp.route("/time-registrations/approve", methods=["POST"], **AUTH)
@api
def approve_time_registrations():
    """Approve the pending registrations of a worker, up to 100 workers or a store's, of the days
    ``from`` through ``to`` (the store's local days); answers the counts and what was not approved."""
    from chalicelib.storage import pay, records

    request = bp.current_request
    require_operator(request)
    body = read_body(request, allowed={*SELECTORS, "from", "to"}, required={"from", "to"})
    given = [name for name in SELECTORS if name in body]
    errors = []
    if not given:
        errors.append(FieldError("worker_id", "one of worker_id, worker_ids or store_id is required"))
    errors += [FieldError(name, f"give only one of worker_id, worker_ids or store_id (got {given[0]} too)")
               for name in given[1:]]
    selector = given[0] if len(given) == 1 else None
    if selector in ("worker_id", "store_id") and not _is_id(body[selector]):
        errors.append(FieldError(selector, f"must be a {selector.removesuffix('_id')} id"))
    if selector == "worker_ids":
        errors += _worker_ids_errors(body["worker_ids"])
    start, end, range_errors = _date_range(body["from"], body["to"],
                                           MAX_WORKER_DAYS if selector == "worker_id" else MAX_BATCH_DAYS)
    errors += range_errors
    if errors:
        raise ValidationError(errors)
    answer = {selector: body[selector], "from": start.isoformat(), "to": end.isoformat()}
    if selector == "store_id":
        found = pay.store_registrations(body["store_id"], start, end)
        # Registrations carry their worker's period type; only older ones need the worker read.
        workers = records.get_by_ids("workers", {r.worker_id for r in found if r.period_type is None})
        # Looked up only when nothing was found: the store's query answers for it otherwise.
        if not found and records.get("stores", body["store_id"]) is None:
            raise NotFound(f"store {body['store_id']} not found")
    else:
        ids = [body["worker_id"]] if selector == "worker_id" else body["worker_ids"]
        workers = records.get_by_ids("workers", ids)
        unknown = [(i, worker_id) for i, worker_id in enumerate(ids) if worker_id not in workers]
        if selector == "worker_id" and unknown:
            raise NotFound(f"worker {body['worker_id']} not found")
        if unknown:
            raise ValidationError([FieldError(f"worker_ids[{i}]", f"unknown worker {w}") for i, w in unknown])
        found = [r for worker_id in ids for r in pay.worker_registrations(worker_id, start, end)]
    period_types = {r.worker_id: r.period_type for r in found if r.period_type}
    period_types.update((worker_id, worker["pay_period_type"]) for worker_id, worker in workers.items())
    return {**answer, **pay.approve(found, period_types).to_api()}


@bp.route("/time-registrations", methods=["GET"], **AUTH)
@api
def list_time_registrations():
    """Registrations of a worker or a store counting for the days ``from`` through ``to``, by
    worker then clock-in, with their status (pending, approved, transferred)."""
    from chalicelib.domain.pay import REGISTRATION_STATUSES, registration_status
    from chalicelib.storage import pay

    request = bp.current_request
    require_operator(request)
    unknown = sorted(set(request.query_params or {}) - {"status", "store_id", "worker_id", "from", "to",
                                                         "limit", "cursor"})
    errors = [FieldError(name, "unknown parameter") for name in unknown]
    status = query_param(request, "status")
    if status is not None and status not in REGISTRATION_STATUSES:
        errors.append(FieldError("status", "must be one of " + ", ".join(REGISTRATION_STATUSES)))
    store_id, worker_id = query_param(request, "store_id"), query_param(request, "worker_id")
    if not store_id and not worker_id:
        errors.append(FieldError("store_id", "store_id or worker_id is required"))
    start, end, range_errors = _date_range(query_param(request, "from"), query_param(request, "to"), MAX_BATCH_DAYS)
    errors += range_errors
    limit = limit_param(request, 100, 500)
    after = _after(decode_cursor(request))
    if errors:
        raise ValidationError(errors)
    if worker_id:
        found = [r for r in pay.worker_registrations(worker_id, start, end) if not store_id or r.store_id == store_id]
    else:
        found = pay.store_registrations(store_id, start, end)
    found.sort(key=_order)
    found = [r for r in found if after is None or _order(r) > after]
    items = []
    # Transfer markers are read for 50 registrations at a time (100 keys, one batch get), as the page fills.
    for chunk_start in range(0, len(found), 50):
        chunk = found[chunk_start:chunk_start + 50]
        markers = pay.transfer_markers(chunk)
        for registration in chunk:
            marker = markers.get((registration.worker_id, registration.work_date))
            state = registration_status(registration.approved, registration.approved_at,
                                        marker.transferred_at if marker else None)
            if status is not None and state != status:
                continue
            if len(items) == limit:
                return list_response("items", items, _cursor_of(items[-1]))
            items.append({"registration_id": registration.registration_id, "worker_id": registration.worker_id,
                          "store_id": registration.store_id, "clock_in": registration.clock_in,
                          "clock_out": registration.clock_out, "work_date": registration.work_date,
                          "hours": registration.to_domain().hours(), "status": state,
                          "approved_at": registration.approved_at,
                          "transfer_key": marker.export_key if state == "transferred" else None})
    return list_response("items", items, None)


def _order(registration) -> tuple[str, str, str]:
    return registration.worker_id, registration.clock_in, registration.registration_id


def _cursor_of(item: dict) -> dict:
    return {"after": [item["worker_id"], item["clock_in"], item["registration_id"]]}


def _after(cursor: dict | None) -> tuple[str, str, str] | None:
    if cursor is None:
        return None
    after = cursor.get("after")
    if not (isinstance(after, list) and len(after) == 3 and all(isinstance(part, str) for part in after)):
        raise ValidationError([FieldError("cursor", "is not a cursor this API returned")])
    return tuple(after)


def _is_id(value) -> bool:
    return isinstance(value, str) and bool(value)


def _worker_ids_errors(value) -> list[FieldError]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_APPROVAL_WORKERS:
        return [FieldError("worker_ids", f"must be a list of 1 to {MAX_APPROVAL_WORKERS} worker ids")]
    errors = [FieldError(f"worker_ids[{i}]", "must be a worker id") for i, w in enumerate(value) if not _is_id(w)]
    seen = set()
    for i, worker_id in enumerate(value):
        if _is_id(worker_id) and worker_id in seen:
            errors.append(FieldError(f"worker_ids[{i}]", f"worker {worker_id} is listed twice"))
        seen.add(worker_id if _is_id(worker_id) else None)
    return errors


def _date_range(first, last, max_days: int) -> tuple[date | None, date | None, list[FieldError]]:
    start, errors = _date(first, "from")
    end, end_errors = _date(last, "to")
    errors += end_errors
    if not errors and start > end:
        errors.append(FieldError("to", "must not be before from"))
    elif not errors and (end - start).days + 1 > max_days:
        errors.append(FieldError("to", f"the range may span at most {max_days} days"))
    return start, end, errors


def _date(value, path: str) -> tuple[date | None, list[FieldError]]:
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value), []
        except ValueError:
            pass
    return None, [FieldError(path, "must be a date YYYY-MM-DD")]
