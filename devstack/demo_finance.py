"""Demo steps for the finance exports: account activity (generate, export) and transfer to pay
(stores upload time registrations, the operator approves, payroll files are written; a late and a
corrected registration for a transferred week make a supplementary payroll file).

Works with or without ledger lines: before any statement is posted the results carry every mapped
account with zero totals. The export files are copied into ``demo-output/exports/``.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
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
    from devstack.datagen import transactions

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
    from devstack.datagen import time_registrations

    store_of = {w["id"]: w["store_id"] for w in demo.retailer.workers}
    by_store: dict[str, list[dict]] = defaultdict(list)
    for registration in time_registrations(demo.retailer, days=REGISTRATION_DAYS):
        by_store[store_of[registration["worker_id"]]].append(registration)
    accepted = 0
    for store_id, registrations in sorted(by_store.items()):
        for start in range(0, len(registrations), 1000):
            accepted += _upload(demo, store_id, registrations[start:start + 1000])["accepted"]
    demo.say(f"{len(by_store)} stores uploaded {accepted} time registrations")


def transfer_to_pay(demo: Demo) -> None:
    """The operator approves all but one worker's last week: the transfer sends every other ended
    period and holds that week back, naming the worker; after the approval the next run sends it."""
    # The first registrations' local day is the day before in the western zones.
    first = demo.today - timedelta(days=REGISTRATION_DAYS + 1)
    week = _held_week(demo)
    held = next((w["id"] for w in demo.retailer.workers if w["pay_period_type"] == "weekly"), None)
    approved = 0
    for worker in demo.retailer.workers:
        if worker["id"] == held:
            approved += _approve(demo, held, first, week.start - timedelta(days=1))
            approved += _approve(demo, held, week.end + timedelta(days=1), demo.today - timedelta(days=1))
        else:
            approved += _approve(demo, worker["id"], first, demo.today - timedelta(days=1))
    demo.say(f"operator approved {approved} registrations, holding back {held}'s week {week.start}..")
    demo.fire("transfer_to_pay", expect=("Error", "Ended"))
    if held:
        _approve(demo, held, week.start, week.end)
        demo.run_job("transfer-to-pay", {"period_type": "weekly"})
    for key in copy_exports(demo, "payroll/"):
        demo.say(f"wrote {key}")


def late_pay_lines(demo: Demo) -> None:
    """After the week went to payroll, a store uploads a forgotten shift and corrects another one;
    the operator approves both; the next transfer sends a supplementary file for that week (the
    new line, and the corrected one as a reversal plus the new line); a second run finds nothing."""
    from devstack.datagen import time_registrations

    week = _held_week(demo)
    weekly = [w for w in demo.retailer.workers if w["pay_period_type"] == "weekly"]
    if len(weekly) < 2:
        return
    late_worker, changed_worker = weekly[0], weekly[1]
    wednesday = week.start + timedelta(days=2)
    late = {"registration_id": f"TR-{late_worker['id']}-{wednesday:%Y%m%d}-late", "worker_id": late_worker["id"],
            # 20:00 UTC is the afternoon in every store's zone: the shift belongs to that Wednesday
            "clock_in": f"{wednesday}T20:00:00Z", "clock_out": f"{wednesday}T22:30:00Z"}
    _upload(demo, late_worker["store_id"], [late])
    inside = (week.start.isoformat(), week.end.isoformat())  # strictly: the local day stays in the week
    mine = [r for r in time_registrations(demo.retailer, days=REGISTRATION_DAYS)
            if r["worker_id"] == changed_worker["id"] and inside[0] < r["clock_in"][:10] < inside[1]]
    if mine:
        shorter = {**mine[0], "clock_out": (datetime.fromisoformat(mine[0]["clock_out"].replace("Z", "+00:00"))
                                            - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        result = _upload(demo, changed_worker["store_id"], [shorter])
        demo.say(f"{changed_worker['store_id']} corrected {shorter['registration_id']} (one hour less): "
                 f"approval withdrawn from {result['approval_withdrawn']}")
    demo.say(f"{late_worker['store_id']} uploaded a forgotten shift {late['registration_id']} "
             f"for the transferred week {week.start}..{week.end}")
    _approve(demo, late_worker["id"], week.start, week.end)
    _approve(demo, changed_worker["id"], week.start, week.end)
    demo.fire("transfer_to_pay")
    demo.fire("transfer_to_pay")  # nothing new: one supplementary file
    for key in copy_exports(demo, "payroll/"):
        if "-supplement-" in key:
            demo.say(f"wrote {key}")


def _held_week(demo: Demo):
    """The last week that has ended in every store's zone whatever the hour (ended by yesterday, UTC)."""
    from chalicelib.domain.pay import last_ended_period

    return last_ended_period("weekly", demo.today - timedelta(days=1))


def _upload(demo: Demo, store_id: str, registrations: list[dict]) -> dict:
    return demo.store_post(store_id, "time-registrations", {"registrations": registrations})


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
    ("A late and a corrected registration: a supplementary payroll file", late_pay_lines),
]
