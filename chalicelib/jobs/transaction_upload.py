"""A store uploads its POS transactions (DOMAIN §10): validate all, then keep the new ones.

Strict: every transaction must pass the schema (lines and payments add up, signs match the kind,
decimals exact), belong to the store of the request, and name known products, variants and
customers. One invalid transaction rejects the whole batch with the field paths, and nothing is
written. Idempotent by ``transaction_id``: a resend is counted as duplicates and changes nothing.
"""
from __future__ import annotations

from chalicelib.domain.errors import DomainError, FieldError, ValidationError
from chalicelib.storage import records

MAX_TRANSACTIONS = 500


class StoreNotFound(DomainError):
    pass


def upload(store_id: str, items: object) -> dict:
    """Validate and store ``items``; returns ``{"accepted": n, "duplicates": m}``."""
    from chalicelib.domain.receipts import receipt_address
    from chalicelib.domain.schemas import validate_many
    from chalicelib.storage.base import iso
    from chalicelib.storage.transactions import from_upload, insert_new

    if not isinstance(items, list) or not items:
        raise ValidationError([FieldError("transactions", "must be a non-empty list")])
    if len(items) > MAX_TRANSACTIONS:
        raise ValidationError([FieldError("transactions", f"at most {MAX_TRANSACTIONS} per request")])
    if records.get("stores", store_id) is None:
        raise StoreNotFound(f"store {store_id} not found")
    cleaned = validate_many("transactions", items, path="transactions")
    customers = records.get_by_ids("customers", {t["customer_id"] for t in cleaned if t["customer_id"]})
    _check_references(store_id, cleaned, customers)

    now = iso()
    stored = [from_upload(t, receipt_address(t, customers.get(t["customer_id"])) is not None, now)
              for t in cleaned]
    duplicates = insert_new(stored)
    return {"accepted": len(stored) - len(duplicates), "duplicates": len(duplicates)}


def _check_references(store_id: str, transactions: list[dict], customers: dict[str, dict]) -> None:
    products = records.get_by_ids("products", {line["product_id"] for t in transactions for line in t["lines"]})
    errors = []
    for i, transaction in enumerate(transactions):
        path = f"transactions[{i}]"
        if transaction["store_id"] != store_id:
            errors.append(FieldError(f"{path}.store_id", f"must be {store_id}, the store of the request path"))
        customer_id = transaction["customer_id"]
        if customer_id and customer_id not in customers:
            errors.append(FieldError(f"{path}.customer_id", f"unknown customer {customer_id}"))
        for j, line in enumerate(transaction["lines"]):
            errors += _line_errors(f"{path}.lines[{j}]", line, products.get(line["product_id"]))
    if errors:
        raise ValidationError(errors)


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
