"""A store uploads its POS transactions (DOMAIN §10, §13 "Uploads are per record").

The envelope is all or nothing: not a list, empty, or more than 500 records is a 400 and takes
nothing. Inside a valid envelope each record has its own outcome, so one bad record never blocks
a store's upload queue:

- ``rejected`` — fails the schema (lines and payments add up, signs match the kind, decimals
  exact), belongs to another store, names an unknown product, variant or customer, has an
  implausible ``business_date`` (more than ``max_backdated_days`` before the store's local today
  or after its tomorrow), or repeats an earlier record's id with other content. Each comes back
  with its field reasons (``transactions[3].lines[0].product_id``).
- ``duplicates`` — the id is stored with the same canonical record (``domain/uploads.py``): a resend.
- ``conflicts`` — the id is stored with other content: not applied. The store voids the original
  and sends the correction under a new id, or, while the original is unposted, an operator
  accepts the new version (``accept_issue``).
- ``accepted`` — the rest, written with conditional puts (a race between two uploads of one id
  gives one accepted and one duplicate or conflict).

Rejections and conflicts are kept 30 days as upload issues (``storage/upload_issues.py``).
"""
from __future__ import annotations

from chalicelib.domain.alerts import UPLOAD_CONFLICT, alert_id
from chalicelib.domain.days import business_date_problem, local_today
from chalicelib.domain.errors import ConflictError, FieldError, NotFoundError
from chalicelib.domain.parameters import parameters_with_defaults
from chalicelib.domain.receipts import receipt_address, sold_products
from chalicelib.domain.uploads import UploadOutcome, canonical_hash
from chalicelib.models.parsing import check_record
from chalicelib.storage import alerts, records
from chalicelib.storage.base import iso, utcnow
from chalicelib.storage.statements import in_range
from chalicelib.storage.transact import Put
from chalicelib.storage.transactions import POSTED, from_upload, get_one, insert_new, replace_version, stored_hash
from chalicelib.storage.upload_issues import (
    ACCEPTED,
    CONFLICT,
    REJECTED,
    get_issue,
    new_issue,
    save_issues,
    store_issues,
)


class StoreNotFound(NotFoundError):
    pass


class IssueNotFound(NotFoundError):
    pass


class IssueConflict(ConflictError):
    """An upload issue that cannot be accepted (→ 409)."""


def upload(store_id: str, items: list) -> dict:
    """Validate and store ``items`` (1 to 500, the route's model checks) record by record; returns
    ``{"accepted": n, "duplicates": m, "conflicts": [...], "rejected": [...]}``."""
    found = records.get_records([("stores", store_id), ("parameters", "default")])
    store = found.get(("stores", store_id))
    if store is None:
        raise StoreNotFound(f"store {store_id} not found")
    max_backdated = parameters_with_defaults(found.get(("parameters", "default")))["max_backdated_days"]
    today = local_today(store.get("time_zone"), utcnow())

    now = iso()
    outcome, issues = UploadOutcome(), _Issues(store_id, now)
    valid: dict[int, dict] = {}
    first_at: dict[str, tuple[int, dict]] = {}
    for i, item in enumerate(items):
        path = f"transactions[{i}]"
        cleaned, errors = check_record("transactions", item, path)
        if cleaned is not None:
            errors = _own_errors(store_id, path, cleaned, today, max_backdated, first_at)
        if errors:
            issues.reject(outcome, i, item, errors)
        elif cleaned["transaction_id"] in first_at:
            outcome.duplicates += 1  # the same record twice in one request
        else:
            first_at[cleaned["transaction_id"]] = (i, cleaned)
            valid[i] = cleaned

    customers = records.get_by_ids("customers", {t["customer_id"] for t in valid.values() if t["customer_id"]})
    products = records.get_by_ids("products", {line["product_id"] for t in valid.values() for line in t["lines"]})
    for i, cleaned in list(valid.items()):
        errors = _reference_errors(f"transactions[{i}]", cleaned, customers, products)
        if errors:
            issues.reject(outcome, i, items[i], errors)
            del valid[i]

    stored = {i: from_upload(t, receipt_address(t, customers.get(t["customer_id"])) is not None, now,
                             sold_products(t, products)) for i, t in valid.items()}
    existing = insert_new(list(stored.values()))
    for i, item in stored.items():
        old = existing.get(item.transaction_id)
        if old is None:
            outcome.accepted += 1
        elif stored_hash(old) == item.content_hash:
            outcome.duplicates += 1
        else:
            issues.conflict(outcome, i, item, old)
    issues.save()
    return outcome.to_api()


class _Issues:
    """The upload issues of one request, written together at its end (25 a batch)."""

    def __init__(self, store_id: str, now: str):
        self.store_id, self.now, self.items = store_id, now, []

    def reject(self, outcome, index: int, record: object, errors: list[FieldError]) -> None:
        reasons = [e.to_dict() for e in errors]
        transaction_id = record.get("transaction_id") if isinstance(record, dict) else None
        if not isinstance(transaction_id, str):
            transaction_id = None
        issue = new_issue(self.store_id, REJECTED, self.now, transaction_id=transaction_id, record=record,
                          errors=reasons, message="; ".join(f"{e.path}: {e.message}" for e in errors))
        self.items.append(issue)
        outcome.reject(index, transaction_id, reasons, issue.issue_id)

    def conflict(self, outcome, index: int, item, old) -> None:
        if old.status == POSTED:
            remedy = (f"it is already posted (statement {old.statement_id}): void it and send the correction "
                      "under a new transaction id")
        else:
            remedy = ("void it and send the correction under a new transaction id, or ask HQ to accept "
                      "this version while it is unposted")
        message = (f"transaction {item.transaction_id} is already stored with other content (uploaded "
                   f"{old.uploaded_at}); this version was not applied: {remedy}")
        issue = new_issue(self.store_id, CONFLICT, self.now, transaction_id=item.transaction_id, record=item.data,
                          message=message, content_hash=item.content_hash)
        self.items.append(issue)
        outcome.conflict(index, item.transaction_id, issue.issue_id, message)

    def save(self) -> None:
        """The issues (25 a batch), then an alert per conflict (a conditional put each: a conflict
        sent again is the same issue, and finds its alert)."""
        if self.items:
            save_issues(self.items)
        alerts.record(alerts.new_alert(alert_id(UPLOAD_CONFLICT, issue.store_id, issue.issue_id), UPLOAD_CONFLICT,
                                       issue.message, store_id=issue.store_id, subject_id=issue.issue_id)
                      for issue in self.items if issue.kind == CONFLICT)


def _own_errors(store_id: str, path: str, transaction: dict, today, max_backdated: int,
                first_at: dict[str, tuple[int, dict]]) -> list[FieldError]:
    """What is wrong with a schema-valid record on its own: store, date, a repeated id."""
    errors = []
    if transaction["store_id"] != store_id:
        errors.append(FieldError(f"{path}.store_id", f"must be {store_id}, the store of the request path"))
    problem = business_date_problem(transaction["business_date"], today, max_backdated)
    if problem:
        errors.append(FieldError(f"{path}.business_date", problem))
    earlier = first_at.get(transaction["transaction_id"])
    if earlier and canonical_hash(earlier[1]) != canonical_hash(transaction):
        errors.append(FieldError(f"{path}.transaction_id", f"repeats transactions[{earlier[0]}] with other content"))
    return errors


def _reference_errors(path: str, transaction: dict, customers: dict[str, dict],
                      products: dict[str, dict]) -> list[FieldError]:
    errors = []
    customer_id = transaction["customer_id"]
    if customer_id and customer_id not in customers:
        errors.append(FieldError(f"{path}.customer_id", f"unknown customer {customer_id}"))
    for j, line in enumerate(transaction["lines"]):
        errors += _line_errors(f"{path}.lines[{j}]", line, products.get(line["product_id"]))
    return errors


def _line_errors(path: str, line: dict, product: dict | None) -> list[FieldError]:
    product_id, variant_id = line["product_id"], line["variant_id"]
    if product is None:
        return [FieldError(f"{path}.product_id", f"unknown product {product_id}")]
    variants = {variant["id"] for variant in product.get("variants") or ()}
    if variant_id is None and variants:
        return [FieldError(f"{path}.variant_id", f"is required: product {product_id} has variants")]
    if variant_id is not None and variant_id not in variants:
        return [FieldError(f"{path}.variant_id", f"unknown variant {variant_id} of product {product_id}")]
    return []


def list_issues(store_id: str, kind: str | None, limit: int, cursor: dict | None) -> tuple[list[dict], dict | None]:
    items, next_key = store_issues(store_id, kind, limit, cursor)
    return [issue.to_api() for issue in items], next_key


def accept_issue(store_id: str, issue_id: str, accepted_by: str) -> dict:
    """Accept the version of a conflict: it replaces the stored transaction while that is unposted.

    Accepting twice answers the accepted issue again (idempotent). A rejection has nothing to
    accept, and a posted original cannot change (409 for both): the store voids it and sends the
    correction under a new id.
    """
    issue = get_issue(store_id, issue_id)
    if issue is None:
        raise IssueNotFound(f"upload issue {issue_id} of store {store_id} not found")
    if issue.kind != CONFLICT:
        raise IssueConflict(f"upload issue {issue_id} is a rejected record: there is no valid version to accept; "
                            "the store must correct it and send it again")
    if issue.status == ACCEPTED:
        return issue.to_api()
    current = get_one(store_id, issue.transaction_id, consistent=True)
    if current is None:
        raise IssueConflict(f"transaction {issue.transaction_id} of store {store_id} is no longer stored")
    now = iso()
    issue.status, issue.accepted_at, issue.accepted_by = ACCEPTED, now, accepted_by
    if stored_hash(current) == issue.content_hash:  # this version is the stored one already
        issue.save()
        return issue.to_api()
    posted = _posted_or_posting(current)
    if posted:
        raise IssueConflict(f"transaction {issue.transaction_id} {posted}; it can no longer change: the store "
                            "must void it and send the correction under a new transaction id")
    record = issue.record
    customer = records.get("customers", record["customer_id"]) if record.get("customer_id") else None
    products = records.get_by_ids("products", {line["product_id"] for line in record["lines"]})
    new = from_upload(record, receipt_address(record, customer) is not None, now, sold_products(record, products))
    if current.email_status not in (None, "Pending"):  # a receipt already sent or given up is not sent again
        new.email_status, new.email_queue, new.email_order = current.email_status, None, None
        new.email_attempts, new.email_sent_at = current.email_attempts, current.email_sent_at
        new.email_message_id, new.email_error = current.email_message_id, current.email_error
    if not replace_version(current, new, also=[Put(issue)]):
        raise IssueConflict(f"transaction {issue.transaction_id} changed or was posted meanwhile; try again")
    return issue.to_api()


def _posted_or_posting(current) -> str | None:
    """Why a stored transaction can no longer be replaced, or None."""
    if current.status == POSTED or current.statement_id:
        return f"is already posted (statement {current.statement_id})"
    for statement in in_range(current.store_id, current.business_date, current.business_date):
        if statement.status != POSTED and current.transaction_id in statement.transaction_ids:
            return f"is being posted (statement {statement.statement_id})"
    return None
