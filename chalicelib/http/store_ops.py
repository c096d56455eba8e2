"""Routes of store operations: transaction upload and read (store routes); upload issues,
statements and on-hand stock (operator routes)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.http.common import NotFound, list_response, operation, principal, query_response

bp = Blueprint(__name__)


@operation(bp, "POST", "/stores/{store_id}/transactions", auth="store", body="TransactionUpload",
           records="transactions", response="TransactionOutcome", errors=(404,))
def upload_transactions(store_id, body):
    """Store each transaction once: ``{"accepted", "duplicates", "conflicts", "rejected"}``, per record."""
    from chalicelib.jobs.transaction_upload import upload

    return upload(store_id, body.transactions)


@operation(bp, "GET", "/stores/{store_id}/transactions/{transaction_id}", auth="store", errors=(404,))
def get_transaction(store_id, transaction_id):
    """One transaction with its status and email status."""
    from chalicelib.storage.transactions import get_one

    transaction = get_one(store_id, transaction_id)
    if transaction is None:
        raise NotFound(f"transaction {transaction_id} of store {store_id} not found")
    return transaction.to_api()


# A store token passes the gateway for /stores/<its id>/*; the upload issues are for operators only.
@operation(bp, "GET", "/stores/{store_id}/upload-issues", query="UploadIssuesQuery", response="IssueList",
           order="last seen first")
def list_upload_issues(store_id, query):
    """The store's conflicts and rejections of the last 30 days, last seen first (``?kind=conflict|rejected``)."""
    from chalicelib.jobs.transaction_upload import list_issues

    items, next_key = list_issues(store_id, query.kind, query.limit, query.cursor)
    return list_response("issues", items, next_key)


@operation(bp, "POST", "/stores/{store_id}/upload-issues/{issue_id}/accept", body="NoBody", errors=(404, 409))
def accept_upload_issue(store_id, issue_id, body):
    """Accept a conflicting version while the original is unposted (→ the issue, ``Accepted``)."""
    from chalicelib.jobs.transaction_upload import accept_issue

    return accept_issue(store_id, issue_id, principal(bp.current_request).token_id)


@operation(bp, "GET", "/statements", query="StatementsQuery", response="StatementList",
           order="a store's: by business date, then statement number; one date's: by statement id")
def list_statements(query):
    """Statements with their totals, of a store (and a business date) or of a business date."""
    from chalicelib.storage.statements import StatementRecord

    store_id, business_date, limit = query.store_id, query.business_date, query.limit
    if store_id:
        condition = StatementRecord.statement_key.startswith(f"{business_date}#") if business_date else None
        results = StatementRecord.query(store_id, condition, limit=limit, page_size=limit,
                                        last_evaluated_key=query.cursor)
    else:
        results = StatementRecord.by_date.query(business_date, limit=limit, page_size=limit,
                                                last_evaluated_key=query.cursor)
    return query_response("statements", results, limit)


@operation(bp, "GET", "/inventory/on-hand", query="OnHandQuery", response="ItemList", errors=(404,),
           order="by product id, then variant")
def on_hand(query):
    """On-hand quantities of the store's warehouse: ``{warehouse_id, product_id, variant_id, qty}``."""
    from chalicelib.storage import records
    from chalicelib.storage.inventory import OnHand

    store_id, product_id = query.store_id, query.product_id
    store = records.get("stores", store_id)
    if store is None:
        raise NotFound(f"store {store_id} not found")
    limit = query.limit
    condition = OnHand.item_key.startswith(f"{product_id}/") if product_id else None
    results = OnHand.query(store.get("warehouse_id") or store_id, condition, limit=limit, page_size=limit,
                           last_evaluated_key=query.cursor)
    return query_response("items", results, limit)
