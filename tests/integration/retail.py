"""Helpers for store-operation tests: a small retailer in master data, transactions built by hand or
generated, uploads over the store route and job runs over the operator route."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.conftest import store_headers


class Crash(BaseException):
    """A Lambda dying mid-run: no except clause of the job or the runtime catches it."""


TODAY = datetime.now(UTC).date()
YESTERDAY = (TODAY - timedelta(days=1)).isoformat()  # what post-statements posts through by default

STORES = [
    {"id": "S1", "name": "Contoso Houston", "legal_entity": "USRT", "org_node_id": "D1", "warehouse_id": "WH-S1"},
    {"id": "S2", "name": "Contoso Dallas", "legal_entity": "USRT", "org_node_id": "D1"},
    {"id": "S3", "name": "Contoso Toronto", "legal_entity": "CART", "org_node_id": "D2"},
]
ORG_NODES = [
    {"id": "HQ", "name": "Contoso", "parent_id": None},
    {"id": "D1", "name": "Texas", "parent_id": "HQ"},
    {"id": "D2", "name": "Ontario", "parent_id": "HQ"},
]
CATEGORIES = [
    {"id": "ALL", "name": "All", "parent_id": None},
    {"id": "SHIRTS", "name": "Shirts", "parent_id": "ALL", "revenue_account": "401200"},
    {"id": "TOYS", "name": "Toys", "parent_id": "ALL"},
]
PRODUCTS = [
    {"id": "SHIRT", "name": "Oxford Shirt", "category_id": "SHIRTS", "price": "20.00", "released_to": ["USRT"],
     "variants": [{"id": "M-RED", "size": "M", "color": "Red"}, {"id": "L-RED", "size": "L", "color": "Red"}]},
    {"id": "BALL", "name": "Beach Ball", "category_id": "TOYS", "price": "5.00", "released_to": ["USRT"]},
    {"id": "LAMP", "name": "Table Lamp", "category_id": "TOYS", "price": "40.00", "released_to": ["USRT"],
     "allow_negative_inventory": False},
]
CUSTOMERS = [
    {"id": "C1", "name": "Jürgen Müller", "email": "juergen@example.com", "language": "de-de",
     "receipt_option": "Email"},
    {"id": "C2", "name": "Mary Smith", "email": "mary@example.com", "language": "en-us", "receipt_option": "POS"},
    {"id": "C3", "name": "Léa Dubois", "email": "lea@example.com", "language": "fr-fr", "receipt_option": "Both"},
]
PARAMETERS = {"id": "default", "receipt_subject": "Your receipt {receipt_id} from {store_name}",
              "receipt_file_name": "Kassenbon"}


def load_master_data() -> None:
    from chalicelib.models.parsing import parse_records
    from chalicelib.storage import records

    for entity, items in (("org-nodes", ORG_NODES), ("stores", STORES), ("categories", CATEGORIES),
                          ("products", PRODUCTS), ("customers", CUSTOMERS), ("parameters", [PARAMETERS])):
        records.upsert(entity, parse_records(entity, items))


def sale(transaction_id: str, lines: list[tuple], *, store_id: str = "S1", business_date: str = YESTERDAY,
         kind: str = "Sale", status: str = "Completed", customer_id: str | None = None,
         receipt_email: str | None = None, tender: str = "card", paid_delta: str = "0") -> dict:
    """A transaction from ``(product_id, variant_id, qty, unit_price)`` lines with 8 % tax."""
    built, total = [], Decimal(0)
    for number, (product_id, variant_id, qty, unit_price) in enumerate(lines, start=1):
        net = Decimal(str(qty)) * Decimal(unit_price)
        tax = (net * Decimal("0.08")).quantize(Decimal("0.01"))
        line = {"line_no": number, "product_id": product_id, "qty": str(qty), "unit_price": unit_price,
                "net_amount": str(net.quantize(Decimal("0.01"))), "tax_amount": str(tax)}
        if variant_id:
            line["variant_id"] = variant_id
        built.append(line)
        total += net + tax
    transaction = {
        "transaction_id": transaction_id, "store_id": store_id, "terminal_id": f"{store_id}-T1",
        "receipt_id": f"R-{transaction_id}", "business_date": business_date,
        "created_at": f"{business_date}T10:00:00Z", "kind": kind, "status": status, "lines": built,
        "payments": [{"tender": tender, "amount": str((total + Decimal(paid_delta)).quantize(Decimal("0.01")))}],
    }
    if customer_id:
        transaction["customer_id"] = customer_id
    if receipt_email:
        transaction["receipt_email"] = receipt_email
    return transaction


def upload(client, store_id: str, transactions: list[dict]):
    return client.http.post(f"/stores/{store_id}/transactions", headers=store_headers(store_id),
                            body=json.dumps({"transactions": transactions}))


def run_job(client, operator: dict, job: str, params: dict | None = None) -> dict:
    response = client.http.post(f"/jobs/{job}/runs", headers=operator, body=json.dumps({"params": params or {}}))
    assert response.status_code == 202, response.body
    return response.json_body["run"]


def transaction(client, store_id: str, transaction_id: str) -> dict:
    response = client.http.get(f"/stores/{store_id}/transactions/{transaction_id}", headers=store_headers(store_id))
    assert response.status_code == 200, response.body
    return response.json_body


def on_hand(client, operator: dict, store_id: str, product_id: str | None = None) -> dict[tuple[str, str], Decimal]:
    query = f"store_id={store_id}&limit=1000" + (f"&product_id={product_id}" if product_id else "")
    response = client.http.get(f"/inventory/on-hand?{query}", headers=operator)
    assert response.status_code == 200, response.body
    return {(i["product_id"], i["variant_id"]): Decimal(i["qty"]) for i in response.json_body["items"]}


def set_on_hand(warehouse_id: str, quantities: dict[tuple[str, str], str]) -> None:
    from chalicelib.storage.base import write_all
    from chalicelib.storage.inventory import OnHand, item_key

    write_all(OnHand, [OnHand(warehouse_id, item_key(p, v), product_id=p, variant_id=v, qty=Decimal(q))
                       for (p, v), q in quantities.items()])


def sent_messages() -> list:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages


def expire_locks() -> None:
    """A crashed run's lease would run out after its lease time; let the rerun take over now."""
    from chalicelib.storage.runs import Coordination

    for lock in Coordination.scan():
        if lock.key.startswith("lock#"):
            lock.delete()
