"""Routes of store operations: transaction upload and read (store routes); upload issues,
statements and on-hand stock (operator routes)."""
from __future__ import annotations

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
    query_response,
    read_body,
    require_operator,
    require_store,
)

bp = Blueprint(__name__)


@bp.route("/stores/{store_id}/transactions", methods=["POST"], **AUTH)
@api
def upload_transactions(store_id):
    from chalicelib.jobs.transaction_upload import upload

    request = bp.current_request
    require_store(request, store_id)
    body = read_body(request, allowed={"transactions"}, required={"transactions"})
    return upload(store_id, body["transactions"])


@bp.route("/stores/{store_id}/transactions/{transaction_id}", methods=["GET"], **AUTH)
@api
def get_transaction(store_id, transaction_id):
    from chalicelib.storage.transactions import get_one

    require_store(bp.current_request, store_id)
    transaction = get_one(store_id, transaction_id)
    if transaction is None:
        raise NotFound(f"transaction {transaction_id} of store {store_id} not found")
    return transaction.to_api()


@bp.route("/stores/{store_id}/upload-issues", methods=["GET"], **AUTH)
@api
def list_upload_issues(store_id):
    """The store's conflicts and rejections of the last 30 days, last seen first (``?kind=conflict|rejected``)."""
    from chalicelib.jobs.transaction_upload import list_issues
    from chalicelib.storage.upload_issues import CONFLICT, REJECTED

    request = bp.current_request
    require_operator(request)  # a store token passes the gateway for /stores/<its id>/*, not this check
    kind = query_param(request, "kind")
    if kind not in (None, CONFLICT, REJECTED):
        raise ValidationError([FieldError("kind", f"must be {CONFLICT} or {REJECTED}")])
    items, next_key = list_issues(store_id, kind, limit_param(request), decode_cursor(request))
    return list_response("issues", items, next_key)


@bp.route("/stores/{store_id}/upload-issues/{issue_id}/accept", methods=["POST"], **AUTH)
@api
def accept_upload_issue(store_id, issue_id):
    """Accept a conflicting version while the original is unposted (→ the issue, ``Accepted``)."""
    from chalicelib.jobs.transaction_upload import accept_issue

    request = bp.current_request
    who = require_operator(request)
    read_body(request, allowed=set())
    return accept_issue(store_id, issue_id, who.token_id)


@bp.route("/statements", methods=["GET"], **AUTH)
@api
def list_statements():
    from chalicelib.storage.statements import StatementRecord

    request = bp.current_request
    require_operator(request)
    store_id, business_date = query_param(request, "store_id"), query_param(request, "business_date")
    limit = limit_param(request)
    if store_id:
        condition = StatementRecord.statement_key.startswith(f"{business_date}#") if business_date else None
        results = StatementRecord.query(store_id, condition, limit=limit, page_size=limit,
                                        last_evaluated_key=decode_cursor(request))
    elif business_date:
        results = StatementRecord.by_date.query(business_date, limit=limit, page_size=limit,
                                                last_evaluated_key=decode_cursor(request))
    else:
        raise ValidationError([FieldError("store_id", "store_id or business_date is required")])
    return query_response("statements", results, limit)


@bp.route("/inventory/on-hand", methods=["GET"], **AUTH)
@api
def on_hand():
    from chalicelib.storage import records
    from chalicelib.storage.inventory import OnHand

    request = bp.current_request
    require_operator(request)
    store_id, product_id = query_param(request, "store_id"), query_param(request, "product_id")
    if not store_id:
        raise ValidationError([FieldError("store_id", "is required")])
    store = records.get("stores", store_id)
    if store is None:
        raise NotFound(f"store {store_id} not found")
    limit = limit_param(request, 100, 1000)
    condition = OnHand.item_key.startswith(f"{product_id}/") if product_id else None
    results = OnHand.query(store.get("warehouse_id") or store_id, condition, limit=limit, page_size=limit,
                           last_evaluated_key=decode_cursor(request))
    return query_response("items", results, limit)
