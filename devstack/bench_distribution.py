"""Bench scenarios for distribution: process-assortments (first full run, an unchanged rerun, one
product added), process-delivery-modes (first run, rerun) and process-status-messages over every
session of every store moving through Requested → Downloaded → Applied."""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any


def _pairs(run: dict) -> int:
    return run["counters"]["read"]


def assortments(bench: Any) -> None:
    from chalicelib.storage import records

    for assortment_id in bench.retailer.published_assortment_ids:
        # As the publish route leaves them: the first run processes them all at once.
        records.save("assortments", {**records.get("assortments", assortment_id), "status": "InProgress"})
    bench.measure("process-assortments, first full run", "(store, variant) pairs",
                  lambda: bench.run_job("process-assortments"), _pairs)
    rerun = bench.measure("process-assortments, rerun with no change", "(store, variant) pairs",
                          lambda: bench.run_job("process-assortments"), _pairs)
    _report_per_store(bench, rerun)
    product = next(p for p in bench.retailer.products if p["category_id"] == "APPAREL-MEN" and p["variants"])
    records.upsert("products", [{**product, "id": "P-BENCH-NEW", "name": "Bench Oxford Shirt"}])
    bench.measure("process-assortments, one product added", "(store, variant) pairs",
                  lambda: bench.run_job("process-assortments"), _pairs)


def _report_per_store(bench: Any, run: dict) -> None:
    stores, requests = len(bench.retailer.stores), sum(run["aws_requests"].values())
    writes = {k: v for k, v in run["aws_requests"].items()
              if k in ("dynamodb.BatchWriteItem", "dynamodb.TransactWriteItems", "s3.PutObject")}
    print(f"    rerun: {requests} requests for {stores} stores and "
          f"{len(bench.retailer.assortments)} assortments; item writes: {writes or 'none'}", flush=True)


def delivery_modes(bench: Any) -> None:
    bench.measure("process-delivery-modes, first run", "(store, mode) rows",
                  lambda: bench.run_job("process-delivery-modes"), lambda run: run["counters"]["read"])
    bench.measure("process-delivery-modes, rerun with no change", "(store, mode) rows",
                  lambda: bench.run_job("process-delivery-modes"), lambda run: run["counters"]["read"])


def status_messages(bench: Any) -> None:
    """Every store reports every Available session Requested, Downloaded, Applied (over its route)."""
    from chalicelib.auth import issue_token
    from chalicelib.storage.metering import metered

    def post_all() -> dict:
        total = 0
        at = datetime.now(UTC)
        with metered(Counter()) as requests:
            for store in bench.retailer.stores:
                token = issue_token("store", store_id=store["id"], label="bench")
                listed = bench.stack.http("GET", f"/stores/{store['id']}/download-sessions?status=Available&limit=500",
                                          token).json_body["sessions"]
                messages = []
                for session in listed:
                    for status in ("Requested", "Downloaded", "Applied"):
                        at += timedelta(milliseconds=1)
                        messages.append({"session_id": session["session_id"], "status": status,
                                         "at": at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"})
                if messages:
                    response = bench.stack.http("POST", f"/stores/{store['id']}/status-messages", token,
                                                {"messages": messages})
                    assert response.status_code == 202, response.body
                total += len(messages)
        return {"status": "Ended", "aws_requests": dict(requests), "messages": total}

    bench.measure("stores post status messages (store routes)", "messages", post_all, lambda run: run["messages"])
    bench.measure("process-status-messages", "messages", lambda: bench.run_job("process-status-messages"),
                  lambda run: run["counters"]["read"])
    bench.measure("process-status-messages, rerun with no change", "messages",
                  lambda: bench.run_job("process-status-messages"), lambda run: run["counters"]["read"])


SCENARIOS = [
    ("assortments", assortments),
    ("delivery modes", delivery_modes),
    ("status messages", status_messages),
]
