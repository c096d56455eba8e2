"""Demo steps of store operations: stores upload their POS transactions, HQ posts statements and
inventory, customers get their receipts; one receipt email and its PDF land in ``demo-output/``."""
from __future__ import annotations

import email
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from itertools import groupby
from typing import Any

BATCH = 500
SPARE_STOCK = Decimal(5)


def upload_transactions(demo: Any) -> None:
    """Each store uploads its generated transactions over its own route, 500 at a time; one batch
    is sent twice, as a POS retrying after a timeout would."""
    accepted, stores, first_batch = 0, set(), None
    for store_id, batch in store_batches(demo.retailer):
        accepted += _upload(demo, store_id, batch)["accepted"]
        stores.add(store_id)
        first_batch = first_batch or (store_id, batch)
    resent = _upload(demo, *first_batch)
    demo.say(f"{len(stores)} stores uploaded {accepted} transactions; resending a batch of {len(first_batch[1])} "
             f"changed nothing ({resent['duplicates']} duplicates)")
    _late_and_changed(demo, *first_batch)


def _late_and_changed(demo: Any, store_id: str, batch: list[dict]) -> None:
    """A corrected resend (same id, other content) is a conflict an operator accepts; a record
    naming an unknown product is refused alone, and both are listed as upload issues."""
    corrected = {**batch[0], "terminal_id": f"{store_id}-T99"}
    bad = {**batch[1], "transaction_id": f"{batch[1]['transaction_id']}-X",
           "lines": [{**batch[1]["lines"][0], "product_id": "NO-SUCH-PRODUCT"}, *batch[1]["lines"][1:]]}
    answer = _upload(demo, store_id, [corrected, bad])
    [conflict], [rejected] = answer["conflicts"], answer["rejected"]
    listed = demo.stack.http("GET", f"/stores/{store_id}/upload-issues", demo.operator).json_body["issues"]
    accepted = demo.stack.http("POST", f"/stores/{store_id}/upload-issues/{conflict['issue_id']}/accept",
                               demo.operator)
    if accepted.status_code != 200:
        raise SystemExit(f"accept {conflict['issue_id']}: HTTP {accepted.status_code} {accepted.body!r}")
    demo.say(f"{store_id} resent {conflict['transaction_id']} changed: a conflict (issue {conflict['issue_id']}), "
             f"accepted by HQ; {rejected['transaction_id']} refused alone ({rejected['errors'][0]['field']}: "
             f"{rejected['errors'][0]['message']}); {len(listed)} upload issues listed")


def seed_stock(demo: Any) -> None:
    """Starting stock: enough of every item the stores sold, except one item that may not go
    negative, left one short so that post inventory refuses its last line."""
    from chalicelib.storage.base import write_all
    from chalicelib.storage.inventory import OnHand, item_key
    from devstack.datagen import transactions

    warehouse = {store["id"]: store.get("warehouse_id") or store["id"] for store in demo.retailer.stores}
    strict = {p["id"] for p in demo.retailer.products if not p.get("allow_negative_inventory", True)}
    sold: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for transaction in transactions(demo.retailer):
        if transaction["status"] == "Completed":
            for line in transaction["lines"]:
                key = (warehouse[transaction["store_id"]], line["product_id"], line.get("variant_id") or "*")
                sold[key] += Decimal(line["qty"])
    short = next(key for key, qty in sorted(sold.items()) if key[1] in strict and qty > 1)
    stock = {key: max(qty, Decimal(0)) + SPARE_STOCK for key, qty in sold.items()}
    stock[short] = sold[short] - 1
    write_all(OnHand, [OnHand(w, item_key(p, v), product_id=p, variant_id=v, qty=qty)
                       for (w, p, v), qty in stock.items()])
    demo.say(f"on-hand for {len(stock)} items in {len(warehouse)} warehouses; {short[1]} in {short[0]} "
             f"left one short ({stock[short]} for {sold[short]} sold)")


def post_statements(demo: Any) -> None:
    from datetime import timedelta

    run = demo.fire("post_statements")
    yesterday = (demo.today - timedelta(days=1)).isoformat()
    response = demo.stack.http("GET", f"/statements?business_date={yesterday}&limit=500", demo.operator)
    statements = response.json_body["statements"]
    sales = sum(Decimal(s["totals"]["sales"]) for s in statements)
    demo.say(f"{yesterday}: {len(statements)} statements, net sales {sales}, tax "
             f"{sum(Decimal(s['totals']['tax']) for s in statements)} ({run['counters']['read']} transactions posted)")


def post_inventory(demo: Any) -> None:
    run = demo.fire("post_inventory")
    for error in run["errors"][:3]:
        demo.say(f"refused {error['key']}: {error['message']}")


def send_receipts(demo: Any) -> None:
    """Send the receipts, then keep one of them as the customer received it (.eml) and its PDF."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    run = demo.fire("send_email_receipts")
    message = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages[0]
    (demo.out / "receipt.eml").write_text(message.raw_data)
    name, pdf = next((part.get_filename(), part.get_payload(decode=True))
                     for part in email.message_from_string(message.raw_data).walk() if part.get_filename())
    (demo.out / name).write_bytes(pdf)
    demo.say(f"{run['counters']['written']} receipts sent; wrote {demo.out / 'receipt.eml'} and {demo.out / name}")


def store_batches(retailer: Any) -> Iterator[tuple[str, list[dict]]]:
    """The generated transactions as each store uploads them: its own, at most 500 a request."""
    from devstack.datagen import transactions

    for store_id, stream in groupby(transactions(retailer), key=lambda t: t["store_id"]):
        batch: list[dict] = []
        for transaction in stream:
            batch.append(transaction)
            if len(batch) == BATCH:
                yield store_id, batch
                batch = []
        if batch:
            yield store_id, batch


def _upload(demo: Any, store_id: str, batch: list[dict]) -> dict:
    response = demo.stack.http("POST", f"/stores/{store_id}/transactions", demo.store_token(store_id),
                               {"transactions": batch})
    if response.status_code != 200:
        raise SystemExit(f"upload for {store_id}: HTTP {response.status_code} {response.body[:500]!r}")
    return response.json_body
