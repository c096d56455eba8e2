"""One small scenario per job: data loaded through the routes or storage, then the trigger AWS would
deliver. Each fault-free run writes at least one item and makes a few dozen AWS calls at most.

A job registered without a scenario here fails ``test_every_job_has_a_crash_scenario``.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from tests.conftest import bare_stores, store_headers
from tests.crash.harness import Invocation, World

TODAY = date.today()
YESTERDAY = TODAY - timedelta(days=1)


@dataclass
class Scenario:
    """``setup`` loads the data; ``start`` is the first delivery (default: a schedule tick);
    ``again`` what comes next after a failure (default: the next tick, a new event id)."""

    job: str
    setup: Callable[[World], None]
    start: Callable[[World], Invocation] | None = None
    again: Callable[[World, int], Invocation] | None = None
    ticks: bool | None = None  # a next trigger comes whatever happened (default: scheduled jobs)

    @property
    def scheduled(self) -> bool:
        return self.start is None if self.ticks is None else self.ticks

    def trigger(self, world: World) -> Invocation:
        return self.start(world) if self.start else tick(world, self.job, "evt-first")

    def next_trigger(self, world: World, round_number: int) -> Invocation:
        if self.again:
            return self.again(world, round_number)
        return tick(world, self.job, f"evt-next-{round_number}") if self.scheduled else self.trigger(world)


def tick(world: World, job: str, event_id: str) -> Invocation:
    """An EventBridge scheduled delivery to the job's function."""
    event = world.client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={},
        resources=[f"arn:aws:events:us-east-1:123456789012:rule/{job}"])
    event["id"] = event_id
    return Invocation(job.replace("-", "_"), event)


def operator() -> dict:
    from chalicelib.auth import issue_token

    return {"Authorization": f"Bearer {issue_token('operator', label='crash')}", "Content-Type": "application/json"}


def put(world: World, entity: str, items: list, headers: dict | None = None) -> None:
    response = world.client.http.put(f"/data/{entity}", headers=headers or operator(),
                                     body=json.dumps({"items": items}))
    assert response.status_code == 200, response.body


def run_fault_free(world: World, job: str, params: dict | None = None) -> dict:
    """Setup only: a run of another job (or of this one) before the crash points start."""
    response = world.client.http.post(f"/jobs/{job}/runs", headers=operator(),
                                      body=json.dumps({"params": params or {}}))
    assert response.status_code == 202, response.body
    world.deliver_queued()
    return response.json_body["run"]


# --- purge-run-history -------------------------------------------------------------------------

def _purge_setup(world: World) -> None:
    from chalicelib.storage.base import iso, utcnow
    from chalicelib.storage.runs import RunRecord

    old = iso(utcnow() - timedelta(days=400))
    for n, (job, created, status) in enumerate([
            ("post-statements", old, "Ended"), ("transfer-to-pay", old, "Error"),
            ("post-statements", old, "Executing"), ("transfer-to-pay", iso(), "Ended")]):
        RunRecord(f"20200101T000000-00000000000{n}", job=job, created_at=created, status=status,
                  trigger="schedule").save()


# --- generate / export account activity ----------------------------------------------------------

PROFILE = {"id": "RE", "name": "RE profile", "file_format": "csv", "file_prefix": "RE-",
           "start_date": (TODAY - timedelta(days=3)).isoformat(),
           "lines": [{"exported_account_name": "Sales", "main_account": "401100"},
                     {"exported_account_name": "Cash", "main_account": "110100"}]}


def _ledger_setup(world: World) -> None:
    from chalicelib.storage.base import write_all
    from chalicelib.storage.ledger import LedgerLine, make_line

    put(world, "account-export-profiles", [PROFILE])
    lines = []
    for days_ago in (1, 2):
        day = (TODAY - timedelta(days=days_ago)).isoformat()
        lines += [make_line(f"ST-S1-{day}", 1, posting_date=day, main_account="401100", debit=Decimal(0),
                            credit=Decimal("100.00"), store_id="S1"),
                  make_line(f"ST-S1-{day}", 2, posting_date=day, main_account="110100", debit=Decimal("100.00"),
                            credit=Decimal(0), store_id="S1")]
    write_all(LedgerLine, puts=lines)


def _export_setup(world: World) -> None:
    _ledger_setup(world)
    put(world, "account-export-profiles", [PROFILE, {**PROFILE, "id": "RX", "file_format": "xml",
                                                     "file_prefix": "RX-"}])
    run_fault_free(world, "generate-account-activity")


# --- store operations ---------------------------------------------------------------------------

def _upload_sales(world: World) -> None:
    from tests.integration.retail import load_master_data, sale, upload

    load_master_data()
    response = upload(world.client, "S1", [
        sale("T1", [("BALL", None, 2, "5.00"), ("SHIRT", "M-RED", 1, "20.00")], customer_id="C1"),
        sale("T2", [("BALL", None, 1, "5.00")], business_date=YESTERDAY.isoformat())])
    assert response.status_code == 200, response.body


def _posted_sales(world: World) -> None:
    from tests.integration.retail import set_on_hand

    _upload_sales(world)
    set_on_hand("WH-S1", {("BALL", "*"): "10"})
    run_fault_free(world, "post-statements")


def _receipts_in_two_queues(world: World) -> None:
    """Posted sales of S1 and S2, two receipts asked for in each: two partitions of the email queue."""
    from tests.integration.retail import sale, upload

    _upload_sales(world)
    response = upload(world.client, "S1", [sale("T3", [("BALL", None, 1, "5.00")], receipt_email="t3@example.com")])
    assert response.status_code == 200, response.body
    response = upload(world.client, "S2", [sale(f"U{n}", [("BALL", None, 1, "5.00")], store_id="S2",
                                                receipt_email=f"u{n}@example.com") for n in (1, 2)])
    assert response.status_code == 200, response.body
    run_fault_free(world, "post-statements")


# --- distribution ---------------------------------------------------------------------------------

def _published(world: World) -> None:
    from tests.integration import distribution_data as d

    d.load(world.client, operator())
    response = world.client.http.post("/assortments/CORE/publish", headers=operator())
    assert response.status_code in (200, 202), response.body
    world.deliver_queued()


def _assortment_changed(world: World) -> None:
    from tests.integration import distribution_data as d

    _published(world)
    put(world, "products", [d.product("PEAR", "FOOD"), d.product("TEE", "TSHIRTS", ["RED-M", "RED-L"])])


def _delivery_modes(world: World) -> None:
    from tests.integration import distribution_data as d

    d.load(world.client, operator(), assortments=(), delivery_modes=d.DELIVERY_MODES)


def _status_reported(world: World) -> None:
    _published(world)
    for store_id, status in (("S1", "Requested"), ("S2", "Applied")):
        headers = store_headers(store_id)
        listed = world.client.http.get(f"/stores/{store_id}/download-sessions?status=Available", headers=headers)
        [session] = listed.json_body["sessions"]
        response = world.client.http.post(f"/stores/{store_id}/status-messages", headers=headers, body=json.dumps(
            {"messages": [{"session_id": session["session_id"], "status": status,
                           "at": f"{TODAY.isoformat()}T00:00:01Z"}]}))
        assert response.status_code in (200, 202), response.body


# --- payroll ---------------------------------------------------------------------------------------

def _time_registered(world: World) -> None:
    for entity, items in bare_stores(["S1"]).items():
        put(world, entity, items)
    put(world, "workers", [{"id": "W1", "name": "Wendy Weekly", "export_id": "E100", "store_id": "S1",
                            "pay_period_type": "weekly", "base_rate": "20.00"}])
    put(world, "pay-types", [{"id": "REG", "export_id": "100", "include_in_export": True},
                             {"id": "OT", "export_id": "150", "include_in_export": True}])
    registrations = [{"registration_id": f"TR-{n}", "worker_id": "W1",
                      "clock_in": f"{TODAY - timedelta(days=n)}T08:00:00Z",
                      "clock_out": f"{TODAY - timedelta(days=n)}T17:30:00Z"} for n in range(1, 15)]
    response = world.client.http.post("/stores/S1/time-registrations", headers=store_headers("S1"),
                                      body=json.dumps({"registrations": registrations}))
    assert response.status_code == 200, response.body
    response = world.client.http.post("/time-registrations/approve", headers=operator(), body=json.dumps(
        {"worker_id": "W1", "from": (TODAY - timedelta(days=30)).isoformat(), "to": TODAY.isoformat()}))
    assert response.status_code == 200, response.body


# --- migration --------------------------------------------------------------------------------------

MIGRATED = "migration/data/products/items.csv"
PRODUCTS_CSV = "ItemLookupCode,Description,CategoryID,Price,Inactive\r\nP1,Espresso,C1,2.50,0\r\nP2,Latte,C1,abc,0\r\n"


def _migration_hq(world: World) -> None:
    from chalicelib.storage import records

    records.upsert("org-nodes", [{"id": "HQ", "name": "Company", "parent_id": None}])
    records.upsert("categories", [{"id": "ALL", "name": "All", "parent_id": None},
                                  {"id": "C1", "name": "Coffee", "parent_id": "ALL"}])
    from chalicelib import settings
    from chalicelib.storage import aws

    aws.client("s3").put_object(Bucket=settings.migration_bucket(), Key=MIGRATED, Body=PRODUCTS_CSV.encode())


def _dropped(world: World) -> Invocation:
    from urllib.parse import quote_plus

    from chalicelib import settings
    from chalicelib.storage import aws

    etag = aws.client("s3").head_object(Bucket=settings.migration_bucket(), Key=MIGRATED)["ETag"].strip('"')
    return Invocation("on_migration_drop", {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "eventTime": "2026-11-25T10:00:00.000Z",
        "s3": {"bucket": {"name": settings.migration_bucket()},
               "object": {"key": quote_plus(MIGRATED, safe="/"), "size": 1, "eTag": etag, "sequencer": "0A1B"}}}]})


def _staged(world: World) -> None:
    _migration_hq(world)
    world.deliver(_dropped(world))
    world.staging_job_id = _staging_job_id()


def _staging_job_id() -> str:
    from chalicelib.storage import migration as staging

    [job] = [j for j in staging.StagingJob.scan() if j.source_key == MIGRATED]
    return job.job_id


def _copy(world: World, key: str = "copy-1") -> Invocation:
    return Invocation("http", http=("POST", f"/migration/jobs/{world.staging_job_id}/copy-to-target",
                                    json.dumps({"rows": "all"}), {**world.operator, "Idempotency-Key": key}))


def _copy_setup(world: World) -> None:
    _staged(world)
    world.operator = operator()


def _old_staging(world: World) -> None:
    from chalicelib.storage import migration as staging

    _staged(world)
    staging.StagingJob(world.staging_job_id).update(
        actions=[staging.StagingJob.created_at.set((TODAY - timedelta(days=60)).isoformat() + "T00:00:00.000Z")])


def _alerts_recorded(world: World) -> None:
    from chalicelib.storage import alerts

    alerts.record(alerts.new_alert(f"crash-{i}", kind, f"alert {i}", job=job, store_id=store_id)
                  for i, (kind, job, store_id) in enumerate([("run_error", "post-inventory", None)] * 3
                                                            + [("upload_conflict", None, "S1")] * 2))


SCENARIOS: dict[str, Scenario] = {s.job: s for s in [
    Scenario("purge-run-history", _purge_setup),
    Scenario("generate-account-activity", _ledger_setup),
    Scenario("export-account-activity", _export_setup),
    Scenario("post-statements", _upload_sales),
    Scenario("post-inventory", _posted_sales),
    Scenario("send-email-receipts", _receipts_in_two_queues),
    Scenario("process-assortments", _assortment_changed),
    Scenario("process-delivery-modes", _delivery_modes),
    Scenario("process-status-messages", _status_reported),
    Scenario("transfer-to-pay", _time_registered),
    Scenario("stage-migration-file", _migration_hq, start=_dropped),
    Scenario("copy-migration-to-target", _copy_setup, start=_copy,
             again=lambda world, n: _copy(world, f"copy-again-{n}")),
    Scenario("clean-up-staging", _old_staging),
    Scenario("publish-alerts", _alerts_recorded),
]}


def scenario_for(job: str) -> Scenario | None:
    return SCENARIOS.get(job)


__all__ = ["SCENARIOS", "Scenario", "scenario_for", "store_headers"]
