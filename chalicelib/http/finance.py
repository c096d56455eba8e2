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
    from chalicelib.domain.pay import store_zone
    from chalicelib.domain.schemas import validate_many
    from chalicelib.storage import pay, records

    request = bp.current_request
    require_store(request, store_id)
    body = read_body(request, allowed={"registrations"}, required={"registrations"})
    items = body["registrations"]
    if not isinstance(items, list) or not items:
        raise ValidationError([FieldError("registrations", "must be a non-empty list")])
    if len(items) > MAX_REGISTRATIONS:
        raise ValidationError([FieldError("registrations", f"at most {MAX_REGISTRATIONS} per request")])
    registrations = validate_many("time-registrations", items, path="registrations")
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


@bp.route("/time-registrations/approve", methods=["POST"], **AUTH)
@api
def approve_time_registrations():
    """Approve a worker's registrations of the days ``from`` through ``to`` (the store's local days)."""
    from chalicelib.storage import pay, records

    request = bp.current_request
    require_operator(request)
    body = read_body(request, allowed={"worker_id", "from", "to"}, required={"worker_id", "from", "to"})
    errors = [] if isinstance(body["worker_id"], str) and body["worker_id"] else [
        FieldError("worker_id", "must be a worker id")]
    start, start_errors = _date(body["from"], "from")
    end, end_errors = _date(body["to"], "to")
    errors += start_errors + end_errors
    if not errors and start > end:
        errors.append(FieldError("to", "must not be before from"))
    if errors:
        raise ValidationError(errors)
    worker = records.get("workers", body["worker_id"])
    if worker is None:
        raise NotFound(f"worker {body['worker_id']} not found")
    approved, already = pay.approve(body["worker_id"], worker["pay_period_type"], start, end)
    return {"worker_id": body["worker_id"], "from": start.isoformat(), "to": end.isoformat(),
            "approved": approved, "already_approved": already}


def _date(value, path: str) -> tuple[date | None, list[FieldError]]:
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value), []
        except ValueError:
            pass
    return None, [FieldError(path, "must be a date YYYY-MM-DD")]
