"""Request floors (issue 16): AWS requests per record of the store jobs, from the run record's
``aws_requests`` (the metering counts every boto3 and PynamoDB call, the run's own bookkeeping and
its shards' included), on a small retailer shaped like the bench's (a store's month posted
at once; M has 50 stores of ~1,160 sales): 5 stores, each with five business days of 40 sales of
three lines from 120 products (every tenth may not go negative and has stock), a receipt requested
for every other sale.

- post-statements ≤ 0.035 requests per transaction line, post-inventory ≤ 0.035 per journal line,
  send-email-receipts ≤ 2.05 per receipt sent (one SES call and one result write each);
- a rerun with nothing changed writes no item (every table but the runs' own bookkeeping as before).
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.integration.retail import TODAY, load_master_data, run_job, sale, set_on_hand, upload

STORES = [f"F{n:02d}" for n in range(1, 6)]
DAYS = [(TODAY - timedelta(days=back)).isoformat() for back in (5, 4, 3, 2, 1)]
SALES_PER_DAY = 40
PRODUCTS = [{"id": f"P{n:03d}", "name": f"Item {n}", "category_id": ("SHIRTS", "TOYS")[n % 2], "price": "3.00",
             "released_to": ["USRT"], "allow_negative_inventory": n % 10 != 0} for n in range(120)]
LINES = len(STORES) * len(DAYS) * SALES_PER_DAY * 3
RECEIPTS = len(STORES) * len(DAYS) * len(range(0, SALES_PER_DAY, 2))


def _sales(store_index: int, store_id: str) -> list[dict]:
    sales = []
    for day_index, day in enumerate(DAYS):
        for n in range(SALES_PER_DAY):
            first = (store_index * 7 + day_index * 31 + n * 3) % len(PRODUCTS)
            lines = [(PRODUCTS[(first + k * 41) % len(PRODUCTS)]["id"], None, 1 + k, "3.00") for k in range(3)]
            sales.append(sale(f"{store_id}-{day}-{n:03d}", lines, store_id=store_id, business_date=day,
                              customer_id="C1" if n % 2 == 0 else None))
    return sales


@pytest.fixture
def retailer(client, local_moto, monkeypatch):
    from chalicelib.models.parsing import parse_records
    from chalicelib.storage import records

    # Heartbeats come every third of the lock's lease: on a loaded test machine the runs' wall
    # time, not their work, would decide how many there are.
    monkeypatch.setenv("JOB_LOCK_LEASE_SECONDS", "3600")
    load_master_data()
    records.upsert("stores", parse_records("stores", [
        {"id": s, "name": f"Store {s}", "legal_entity": "USRT", "org_node_id": "D1", "warehouse_id": f"WH-{s}"}
        for s in STORES]))
    records.upsert("products", parse_records("products", PRODUCTS))
    for index, store_id in enumerate(STORES):
        response = upload(client, store_id, _sales(index, store_id))
        assert response.status_code == 200, response.body
        set_on_hand(f"WH-{store_id}", {(p["id"], "*"): "1000" for p in PRODUCTS if not p["allow_negative_inventory"]})
    return client


def _state() -> dict[str, list[str]]:
    """Every item of every table but the runs' own bookkeeping (runs, locks, idempotency keys)."""
    from chalicelib.storage.runs import Coordination, RunRecord
    from chalicelib.storage.tables import ALL_MODELS

    return {model.Meta.table_name: sorted(json.dumps(item.serialize(), sort_keys=True, default=str)
                                          for item in model.scan())
            for model in ALL_MODELS if model not in (RunRecord, Coordination)}


def _requests(run: dict) -> int:
    return sum(run["aws_requests"].values())


def _rerun_writes_nothing(client, operator, job: str) -> None:
    before = _state()
    again = run_job(client, operator, job, {"store_ids": STORES})
    assert again["status"] == "Ended", again
    assert _state() == before


def test_post_statements_and_post_inventory_stay_under_0_035_requests_per_line(retailer, operator):
    posted = run_job(retailer, operator, "post-statements", {"store_ids": STORES})
    print(f"post-statements: {_requests(posted)} requests, {_requests(posted) / LINES:.4f} per line, "
          f"{posted['aws_requests']}")
    assert posted["status"] == "Ended" and posted["counters"]["written"] == len(STORES) * len(DAYS), posted
    assert _requests(posted) / LINES <= 0.035, posted["aws_requests"]
    _rerun_writes_nothing(retailer, operator, "post-statements")

    inventory = run_job(retailer, operator, "post-inventory", {"store_ids": STORES})
    assert inventory["status"] == "Ended", inventory
    journal_lines = inventory["counters"]["written"]
    print(f"post-inventory: {_requests(inventory)} requests, {journal_lines} lines, "
          f"{_requests(inventory) / journal_lines:.4f} per line, {inventory['aws_requests']}")
    assert journal_lines == inventory["counters"]["read"] > len(STORES) * len(DAYS) * 50, inventory
    assert _requests(inventory) / journal_lines <= 0.035, inventory["aws_requests"]
    _rerun_writes_nothing(retailer, operator, "post-inventory")


def test_send_email_receipts_stays_under_2_05_requests_per_receipt(retailer, operator, monkeypatch):
    from types import SimpleNamespace

    from chalicelib.jobs import send_email_receipts
    from tests.integration.retail import sent_messages

    # A plain one-line email instead of the rendered one with its PDF: requests are measured, and
    # rendering 500 PDFs would take minutes (test_email_receipts covers the real message).
    monkeypatch.setattr(send_email_receipts, "render_receipt", lambda *_: SimpleNamespace(missing_glyphs=()))
    monkeypatch.setattr(send_email_receipts, "build_mime", lambda sender, address, _: (
        f"From: {sender}\r\nTo: {address}\r\nSubject: receipt\r\n\r\nreceipt\r\n").encode())
    assert run_job(retailer, operator, "post-statements", {"store_ids": STORES})["status"] == "Ended"
    run = run_job(retailer, operator, "send-email-receipts")
    assert run["status"] == "Ended", run
    assert run["counters"]["written"] == len(sent_messages()) == RECEIPTS, run
    print(f"send-email-receipts: {_requests(run)} requests, {_requests(run) / RECEIPTS:.4f} per receipt, "
          f"{run['aws_requests']}")
    assert run["aws_requests"]["sesv2.SendEmail"] == RECEIPTS
    assert _requests(run) / RECEIPTS <= 2.05, run["aws_requests"]
    before = _state()
    again = run_job(retailer, operator, "send-email-receipts")
    assert again["status"] == "Ended" and _state() == before, again
