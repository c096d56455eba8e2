"""Demo steps for the finance exports: account activity (generate, export) and transfer to pay
(stores upload time registrations, the operator approves, payroll files are written).

Works with or without ledger lines: before any statement is posted the results carry every mapped
account with zero totals. The export files are copied into ``demo-output/exports/``.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devstack.demo import Demo

REGISTRATION_DAYS = 42  # six weeks: the last ended week, two-week block and part of last month


def account_activity(demo: Demo) -> None:
    """The nightly schedules: totals up to yesterday, then one file per result."""
    demo.fire("generate_account_activity")
    demo.fire("export_account_activity")
    for key in copy_exports(demo, "account-activity/"):
        demo.say(f"wrote {key}")


def late_statement(demo: Demo) -> None:
    """A store uploads a sale two days late, for a date the results already cover: posting it
    numbers its ledger lines after the results' marks, and the next generate run puts them into
    an adjustment result (``-adj1``), which the export writes as its own file."""
    from chalicelib.datagen import transactions

    store = next(s for s in demo.retailer.stores if s["legal_entity"] == "USRT")
    late_day = demo.today - timedelta(days=2)
    sale = next(t for t in transactions(demo.retailer, store_ids=[store["id"]]) if t["status"] == "Completed")
    sale = {**sale, "transaction_id": f"LATE-{store['id']}-1", "receipt_id": f"LATE-{store['id']}-1",
            "business_date": late_day.isoformat(), "created_at": f"{late_day.isoformat()}T18:00:00Z"}
    sale.pop("customer_id", None)
    sale.pop("receipt_email", None)
    response = demo.stack.http("POST", f"/stores/{store['id']}/transactions", demo.store_token(store["id"]),
                               {"transactions": [sale]})
    if response.status_code != 200 or response.json_body.get("accepted") != 1:
        raise SystemExit(f"late upload for {store['id']}: {response.status_code} {response.body!r}")
    demo.say(f"{store['id']} uploaded a sale for {late_day}, already covered by the results")
    demo.run_job("post-statements", {"store_ids": [store["id"]], "through_date": late_day.isoformat()})
    run = demo.run_job("generate-account-activity")
    if "-adj1" not in (run["message"] or ""):
        raise SystemExit(f"no adjustment result: {run['message']}")
    before = set(copy_exports(demo, "account-activity/"))
    demo.run_job("export-account-activity")
    for key in sorted(set(copy_exports(demo, "account-activity/")) - before):
        demo.say(f"wrote {key}")


def upload_time_registrations(demo: Demo) -> None:
    """Each store's POS uploads its workers' clock-ins and clock-outs (a resend is harmless)."""
    from chalicelib.datagen import time_registrations

    store_of = {w["id"]: w["store_id"] for w in demo.retailer.workers}
    by_store: dict[str, list[dict]] = defaultdict(list)
    for registration in time_registrations(demo.retailer, days=REGISTRATION_DAYS):
        by_store[store_of[registration["worker_id"]]].append(registration)
    accepted = 0
    for store_id, registrations in sorted(by_store.items()):
        for start in range(0, len(registrations), 1000):
            response = demo.stack.http("POST", f"/stores/{store_id}/time-registrations", demo.store_token(store_id),
                                       {"registrations": registrations[start:start + 1000]})
            if response.status_code != 200:
                raise SystemExit(f"time registrations of {store_id}: {response.status_code} {response.body!r}")
            accepted += response.json_body["accepted"]
    demo.say(f"{len(by_store)} stores uploaded {accepted} time registrations")


def transfer_to_pay(demo: Demo) -> None:
    """The operator approves all but one worker's last week: the transfer refuses that period,
    naming the worker; after the approval the next run exports it."""
    from chalicelib.domain.pay import last_ended_period

    first = demo.today - timedelta(days=REGISTRATION_DAYS)
    last_week = last_ended_period("weekly", demo.today)
    held = next((w["id"] for w in demo.retailer.workers if w["pay_period_type"] == "weekly"), None)
    approved = 0
    for worker in demo.retailer.workers:
        end = last_week.start - timedelta(days=1) if worker["id"] == held else demo.today - timedelta(days=1)
        approved += _approve(demo, worker["id"], first, end)
    demo.say(f"operator approved {approved} registrations, holding back {held}'s week {last_week.start}..")
    demo.fire("transfer_to_pay", expect=("Error", "Ended"))
    if held:
        _approve(demo, held, last_week.start, last_week.end)
        demo.run_job("transfer-to-pay", {"period_type": "weekly"})
    for key in copy_exports(demo, "payroll/"):
        demo.say(f"wrote {key}")


def _approve(demo: Demo, worker_id: str, start: date, end: date) -> int:
    response = demo.stack.http("POST", "/time-registrations/approve", demo.operator,
                               {"worker_id": worker_id, "from": start.isoformat(), "to": end.isoformat()})
    if response.status_code != 200:
        raise SystemExit(f"approve {worker_id}: {response.status_code} {response.body!r}")
    return response.json_body["approved"]


def copy_exports(demo: Demo, prefix: str) -> list[str]:
    """Copy the data bucket's objects under ``prefix`` into ``demo-output/exports/``."""
    from chalicelib import settings
    from chalicelib.storage import aws

    s3 = aws.client("s3")
    copied = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.data_bucket(), Prefix=prefix):
        for item in page.get("Contents", []):
            target = demo.out / "exports" / item["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(settings.data_bucket(), item["Key"], str(target))
            copied.append(str(target))
    return copied


STEPS = [
    ("Generate and export account activity", account_activity),
    ("A late statement: adjustment result", late_statement),
    ("Stores upload time registrations", upload_time_registrations),
    ("Approve time registrations and transfer to pay", transfer_to_pay),
]
