"""Bench of store operations: every generated transaction uploaded over the store routes, then
post-statements, post-inventory and send-email-receipts over all of them.

Targets (issue 4, scale M): post-statements ≤ 0.1 AWS requests per transaction line, post-inventory
≤ 0.1 per journal line, send-email-receipts ≤ 1 SES call and ≤ 3 DynamoDB requests per receipt,
peak memory ≤ 512 MB each.

The jobs run in a process of their own, as in their Lambda: the peak memory reported is that
process's (the job modules' imports included), not the bench's, which holds the generated retailer.
"""
from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

from devstack.demo_store import seed_stock, store_batches


def store_operations(bench: Any) -> None:
    lines = Counter()
    bench.measure("upload transactions (POST /stores/{id}/transactions)", "transactions",
                  lambda: _upload_all(bench, lines), lambda run: run["records"])
    seed_stock(SimpleNamespace(retailer=bench.retailer, say=lambda text: print(f"  {text}", flush=True)))
    bench.measure("post-statements", "transaction lines", lambda: bench.run_job("post-statements"),
                  lambda run: lines["posted"])
    bench.measure("post-inventory", "journal lines", lambda: bench.run_job("post-inventory"),
                  lambda run: run["counters"]["read"])
    run = bench.measure("send-email-receipts", "receipts", lambda: bench.run_job("send-email-receipts"),
                        lambda run: run["counters"]["written"])
    sent = max(run["counters"]["written"], 1)
    by_service = Counter()
    for operation, count in run["aws_requests"].items():
        by_service[operation.split(".")[0]] += count
    print(f"  per receipt: {by_service['sesv2'] / sent:.3f} SES calls, {by_service['dynamodb'] / sent:.3f} "
          "DynamoDB requests", flush=True)
    # Every 30 and 15 minutes respectively, these jobs mostly find nothing new: what such a run costs.
    for job in ("post-inventory", "send-email-receipts"):
        bench.measure(f"{job}, rerun with no change", "runs", lambda job=job: bench.run_job(job), lambda run: 1)


def _upload_all(bench: Any, lines: Counter) -> dict:
    from chalicelib.auth import issue_token
    from chalicelib.storage.metering import metered

    tokens: dict[str, str] = {}
    uploaded = 0
    with metered(Counter()) as requests:
        for store_id, batch in store_batches(bench.retailer):
            token = tokens.get(store_id) or tokens.setdefault(store_id, issue_token("store", store_id=store_id))
            response = bench.stack.http("POST", f"/stores/{store_id}/transactions", token, {"transactions": batch})
            if response.status_code != 200:
                raise SystemExit(f"upload for {store_id}: HTTP {response.status_code} {response.body[:300]!r}")
            uploaded += len(batch)
            lines["posted"] += sum(len(t["lines"]) for t in batch if t["status"] == "Completed")
    return {"status": "Ended", "aws_requests": dict(requests), "records": uploaded}
