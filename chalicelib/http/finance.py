"""Routes for the finance exports: account activity results, time registrations and approval."""
from __future__ import annotations

from datetime import date

from chalice import Blueprint

from chalicelib.domain.errors import FieldError, ValidationError
from chalicelib.http.common import NotFound, list_response, operation

bp = Blueprint(__name__)


@operation(bp, "GET", "/account-activity", query="AccountActivityQuery", response="ResultList",
           order="latest range first")
def list_account_activity(query):
    """A profile's results, latest range first, with their lines and export state."""
    from chalicelib.storage import account_activity as results

    items, cursor = results.by_profile_page(query.profile_id, query.limit, query.cursor)
    return list_response("results", items, cursor)


@operation(bp, "POST", "/account-activity/{result_id}/reset-export", body="NoBody", errors=(404, 409))
def reset_account_activity_export(result_id, body):
    """Let the next export run write the result again (same key, so it replaces the file); 409 when it
    has not been exported yet."""
    from chalicelib.storage import account_activity as results

    return results.reset_export(result_id).to_api()


@operation(bp, "POST", "/stores/{store_id}/time-registrations", auth="store", body="RegistrationUpload",
           records="time-registrations", response="RegistrationOutcome")
def upload_time_registrations(store_id, body):
    """A store's POS uploads clock-ins and clock-outs; resending is harmless (counted as duplicates),
    a changed registration needs approval again (``approval_withdrawn`` counts those that had it)."""
    from chalicelib.domain.days import store_zone
    from chalicelib.models.parsing import parse_records
    from chalicelib.storage import pay, records

    registrations = parse_records("time-registrations", body.registrations, path="registrations")
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


@operation(bp, "POST", "/time-registrations/approve", body="Approval", response="ApprovalOutcome", errors=(404,))
def approve_time_registrations(body):
    """Approve the pending registrations of a worker, up to 100 workers, a store's or up to 50
    stores', of the days ``from`` through ``to`` (the store's local days); answers the counts and
    what was not approved."""
    from chalicelib.storage import pay, records

    selector = body.selector
    start, end = date.fromisoformat(body.start), date.fromisoformat(body.end)
    answer = {selector: getattr(body, selector), "from": body.start, "to": body.end}
    if selector == "store_id":
        found = pay.store_registrations(body.store_id, start, end)
        # Registrations carry their worker's period type; only older ones need the worker read.
        workers = records.get_by_ids("workers", {r.worker_id for r in found if r.period_type is None})
        # Looked up only when nothing was found: the store's query answers for it otherwise.
        if not found and records.get("stores", body.store_id) is None:
            raise NotFound(f"store {body.store_id} not found")
    elif selector == "store_ids":
        stores = records.get_by_ids("stores", body.store_ids)
        unknown = [FieldError(f"store_ids[{i}]", f"unknown store {store_id}")
                   for i, store_id in enumerate(body.store_ids) if store_id not in stores]
        if unknown:
            raise ValidationError(unknown)
        found = pay.stores_registrations(body.store_ids, start, end)
        workers = records.get_by_ids("workers", {r.worker_id for r in found if r.period_type is None})
    else:
        ids = [body.worker_id] if selector == "worker_id" else body.worker_ids
        workers = records.get_by_ids("workers", ids)
        unknown = [(i, worker_id) for i, worker_id in enumerate(ids) if worker_id not in workers]
        if selector == "worker_id" and unknown:
            raise NotFound(f"worker {body.worker_id} not found")
        if unknown:
            raise ValidationError([FieldError(f"worker_ids[{i}]", f"unknown worker {w}") for i, w in unknown])
        found = [r for worker_id in ids for r in pay.worker_registrations(worker_id, start, end)]
    period_types = {r.worker_id: r.period_type for r in found if r.period_type}
    period_types.update((worker_id, worker["pay_period_type"]) for worker_id, worker in workers.items())
    return {**answer, **pay.approve(found, period_types).to_api()}


@operation(bp, "GET", "/time-registrations", query="TimeRegistrationQuery", response="ItemList",
           order="by worker id, then clock-in, then registration id")
def list_time_registrations(query):
    """Registrations of a worker or a store counting for the days ``from`` through ``to``, by
    worker then clock-in, with their status (pending, approved, transferred)."""
    from chalicelib.domain.pay import registration_status
    from chalicelib.storage import pay

    status, store_id, worker_id, limit, after = query.status, query.store_id, query.worker_id, query.limit, query.cursor
    start, end = date.fromisoformat(query.start), date.fromisoformat(query.end)
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
