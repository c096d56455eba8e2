"""Bench of store operations: every generated transaction uploaded over the store routes, then
post-statements, post-inventory and send-email-receipts over all of them.

Targets (issue 4, scale M): post-statements ≤ 0.1 AWS requests per transaction line, post-inventory
≤ 0.1 per journal line, send-email-receipts ≤ 1 SES call and ≤ 3 DynamoDB requests per receipt,
peak memory ≤ 512 MB each.

The jobs run in a process of their own, as in their Lambda (``bench.run_job``). The stores upload
at once, as stores do: ``max(WORKERS, 1)`` processes, each uploading a share of the stores.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
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
    """Every store uploads its transactions, as stores do: at once, here ``max(WORKERS, 1)``
    processes each uploading the stores of its share (``python -m devstack.bench_store``)."""
    from devstack import localenv

    count = max(bench.workers, 1)
    children = [subprocess.Popen([sys.executable, "-m", "devstack.bench_store", bench.scale,
                                  bench.retailer.end_date.isoformat(), str(index), str(count)],
                                 cwd=localenv.PROJECT_DIR, env=os.environ.copy(), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for index in range(count)]
    requests: Counter = Counter()
    uploaded = 0
    for child in children:
        out, err = child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"upload failed in its process:\n{err[-3000:]}")
        share = json.loads(out.strip().splitlines()[-1])
        requests.update(share["aws_requests"])
        uploaded += share["records"]
        lines["posted"] += share["posted"]
    return {"status": "Ended", "aws_requests": dict(requests), "records": uploaded}


def upload_share(scale: str, end_date: str, index: int, count: int) -> None:
    """A child: the stores whose position in the store list is ``index`` modulo ``count`` upload
    their transactions through the API (a test client of its own); prints what it did."""
    from datetime import date

    from chalice.test import Client

    from devstack import localenv

    localenv.apply("local", endpoint=os.environ["AWS_ENDPOINT_URL"])
    import app
    from chalicelib.auth import issue_token
    from chalicelib.storage.metering import metered
    from devstack.datagen import generate

    retailer = generate(scale, end_date=date.fromisoformat(end_date))
    mine = {store["id"] for position, store in enumerate(retailer.stores) if position % count == index}
    tokens: dict[str, str] = {}
    uploaded = posted = 0
    with Client(app.app, stage_name="local", project_dir=str(localenv.PROJECT_DIR)) as client, \
            metered(Counter()) as requests:
        for store_id, batch in store_batches(retailer):
            if store_id not in mine:
                continue
            token = tokens.get(store_id) or tokens.setdefault(store_id, issue_token("store", store_id=store_id))
            response = client.http.post(f"/stores/{store_id}/transactions", body=json.dumps(
                {"transactions": batch}, default=str), headers={"Content-Type": "application/json",
                                                                "Authorization": f"Bearer {token}"})
            if response.status_code != 200:
                raise SystemExit(f"upload for {store_id}: HTTP {response.status_code} {response.body[:300]!r}")
            uploaded += len(batch)
            posted += sum(len(t["lines"]) for t in batch if t["status"] == "Completed")
    print(json.dumps({"aws_requests": dict(requests), "records": uploaded, "posted": posted}))


if __name__ == "__main__":
    upload_share(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
