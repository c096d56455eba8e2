"""``make demo``: a realistic retailer on the local stack, every job in business order.

Steps are plain functions ``step(demo) -> None`` listed in ``STEPS``; each job family adds its
own (stores downloading packages, statement posting, exports, a migration drop ...).
"""
from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from devstack import demo_distribution, demo_finance, demo_migration, demo_store
from devstack.stack import LocalStack, local_stack

OUTPUT = Path("demo-output")


@dataclass
class Demo:
    stack: LocalStack
    retailer: Any
    today: date
    operator: str
    out: Path
    store_tokens: dict[str, str] = field(default_factory=dict)
    summary: list[tuple[str, str, str, str]] = field(default_factory=list)

    def say(self, text: str) -> None:
        print(f"  {text}", flush=True)

    def store_token(self, store_id: str) -> str:
        from chalicelib.auth import issue_token

        if store_id not in self.store_tokens:
            self.store_tokens[store_id] = issue_token("store", store_id=store_id, label=f"POS {store_id}")
        return self.store_tokens[store_id]

    def store_post(self, store_id: str, path: str, body: dict) -> dict:
        """POST ``/stores/{store_id}/{path}`` with the store's token, as its POS would; 200 or exit."""
        response = self.stack.http("POST", f"/stores/{store_id}/{path}", self.store_token(store_id), body)
        if response.status_code != 200:
            raise SystemExit(f"POST {path} for {store_id}: HTTP {response.status_code} {response.body[:500]!r}")
        return response.json_body

    def run_job(self, job: str, params: dict | None = None, expect: tuple[str, ...] = ("Ended",)) -> dict:
        """Start a job over HTTP as an operator would; it runs inline on the local stack."""
        started = time.monotonic()
        response = self.stack.http("POST", f"/jobs/{job}/runs", self.operator, {"params": params or {}})
        if response.status_code not in (200, 202):
            raise SystemExit(f"{job}: HTTP {response.status_code} {response.body!r}")
        run = response.json_body["run"]
        self.record(job, run, time.monotonic() - started)
        if run["status"] not in expect:
            raise SystemExit(f"{job} ended {run['status']}: {run['message']}")
        return run

    def fire(self, function: str, expect: tuple[str, ...] = ("Ended",)) -> dict:
        """Fire a function's schedule, as EventBridge would."""
        started = time.monotonic()
        run = self.stack.fire_schedule(function, datetime.now(UTC))
        self.record(run["job"], run, time.monotonic() - started)
        if run["status"] not in expect:
            raise SystemExit(f"{run['job']} ended {run['status']}: {run['message']}")
        return run

    def record(self, job: str, run: dict, seconds: float) -> None:
        c = run["counters"]
        requests = sum(run["aws_requests"].values())
        self.summary.append((job, run["status"], f"{seconds:6.2f}s",
                             f"read {c['read']}, written {c['written']}, failed {c['failed']}, "
                             f"{requests} AWS requests"))
        self.say(f"{job}: {run['status']} — {run['message'] or ''}")

    def put_data(self, entity: str, items: list[dict]) -> None:
        for start in range(0, len(items), 1000):
            response = self.stack.http("PUT", f"/data/{entity}", self.operator, {"items": items[start:start + 1000]})
            if response.status_code != 200:
                raise SystemExit(f"PUT /data/{entity}: {response.status_code} {response.body!r}")


def load_master_data(demo: Demo) -> None:
    """HQ loads its master data through the API."""
    for entity, items in demo.retailer.master_data().items():
        demo.put_data(entity, items)
        demo.say(f"loaded {len(items):5d} {entity}")


def purge_history(demo: Demo) -> None:
    demo.fire("purge_run_history")


STEPS = [
    ("Load master data", load_master_data),
    *demo_distribution.STEPS,
    ("Stores upload transactions", demo_store.upload_transactions),
    ("Starting stock", demo_store.seed_stock),
    ("Post statements", demo_store.post_statements),
    ("Post inventory", demo_store.post_inventory),
    ("Send email receipts", demo_store.send_receipts),
    *demo_finance.STEPS,
    *demo_migration.STEPS,
    ("Purge run history", purge_history),
]


def main(scale: str = "S") -> int:
    from chalicelib.auth import issue_token
    from devstack.datagen import generate

    started = time.monotonic()
    shutil.rmtree(OUTPUT, ignore_errors=True)
    OUTPUT.mkdir(parents=True)
    print(f"retail-sync demo: starting the local stack (moto on 127.0.0.1), scale {scale}", flush=True)
    with local_stack() as stack:
        today = datetime.now(UTC).date()
        demo = Demo(stack, generate(scale, end_date=today), today,
                    issue_token("operator", label="demo"), OUTPUT)
        print(f"  moto endpoint {stack.endpoint}", flush=True)
        for number, (title, step) in enumerate(STEPS, 1):
            print(f"[{number}/{len(STEPS)}] {title}", flush=True)
            step(demo)
    width = max(len(row[0]) for row in demo.summary)
    print("\nSummary")
    for job, status, seconds, detail in demo.summary:
        print(f"  {job:<{width}}  {status:<8} {seconds}  {detail}")
    print(f"\nOutputs in {OUTPUT.resolve()}; finished in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
