"""Time registrations (store upload, operator approval) and transfer to pay (DOMAIN §2) on moto,
driven through the routes; the payroll files are read back from S3 with the csv module."""
import csv
import io
import json
from datetime import UTC, date, datetime, time, timedelta

import pytest

from tests.conftest import bare_stores, run_directly, store_headers
from tests.unit.test_pay import adds_up

TODAY = date(2026, 10, 5)  # a Monday: the week 2026-09-28..10-04 has just ended, across a month boundary
WORKERS = [
    {"id": "W-WEEK", "name": "Wendy Weekly", "export_id": "E100", "store_id": "S1",
     "pay_period_type": "weekly", "base_rate": "20.00"},
    {"id": "W-BI", "name": "Bill Biweekly", "export_id": "E200", "store_id": "S1",
     "pay_period_type": "biweekly", "base_rate": "18.50"},
    {"id": "W-MON", "name": "Mona Monthly", "export_id": "E300", "store_id": "S1",
     "pay_period_type": "monthly", "base_rate": "30.00"},
    {"id": "W-OTHER", "name": "Otto Elsewhere", "export_id": "E400", "store_id": "S2",
     "pay_period_type": "weekly", "base_rate": "20.00"},
]
PAY_TYPES = [{"id": "REG", "export_id": "100", "include_in_export": True},
             {"id": "OT", "export_id": "150", "include_in_export": True},
             {"id": "VAC", "export_id": "300", "include_in_export": False}]


@pytest.fixture
def today(monkeypatch):
    from chalicelib.jobs import transfer_to_pay

    class Clock:
        def set(self, day: date, at: time = time(3)) -> None:
            """The run's wall clock: ``day`` at ``at`` UTC (03:00, the schedule, unless told)."""
            monkeypatch.setattr(transfer_to_pay, "now", lambda: datetime.combine(day, at, UTC))

    clock = Clock()
    clock.set(TODAY)
    return clock


@pytest.fixture
def setup(client, operator, today):
    data = {**bare_stores(["S1", "S2"]), "workers": WORKERS, "pay-types": PAY_TYPES}
    for entity, items in data.items():
        response = client.http.put(f"/data/{entity}", headers=operator, body=json.dumps({"items": items}))
        assert response.status_code == 200, response.body
    return client


def shift(worker_id: str, day: date, hours: float, start_hour: int = 8, n: int = 1) -> dict:
    clock_in = f"{day.isoformat()}T{start_hour:02d}:00:00Z"
    end = start_hour * 60 + int(hours * 60)
    clock_out = f"{day.isoformat()}T{end // 60:02d}:{end % 60:02d}:00Z"
    return {"registration_id": f"TR-{worker_id}-{day:%Y%m%d}-{n}", "worker_id": worker_id,
            "clock_in": clock_in, "clock_out": clock_out}


def upload(client, registrations, store_id="S1", headers=None):
    return client.http.post(f"/stores/{store_id}/time-registrations", headers=headers or store_headers(store_id),
                            body=json.dumps({"registrations": registrations}))


def approve(client, operator, worker_id, start="2026-01-01", end="2026-12-31"):
    response = client.http.post("/time-registrations/approve", headers=operator,
                                body=json.dumps({"worker_id": worker_id, "from": start, "to": end}))
    assert response.status_code == 200, response.body
    return response.json_body


def transfer(client, operator, **params):
    response = client.http.post("/jobs/transfer-to-pay/runs", headers=operator, body=json.dumps({"params": params}))
    assert response.status_code == 202, response.body
    return response.json_body["run"]


def payroll(run) -> dict[str, list[dict]]:
    """Each payroll file the run wrote, parsed: period type -> rows."""
    from chalicelib.storage import aws

    files = {}
    for output in run["outputs"]:
        body = aws.client("s3").get_object(Bucket=output["bucket"], Key=output["key"])["Body"].read().decode()
        files[output["key"].split("/")[1]] = list(csv.DictReader(io.StringIO(body, newline="")))
    lines = [row for rows in files.values() for row in rows]
    assert [row for row in lines if not adds_up(row)] == []  # every line: hours x rate = amount
    return files


def payroll_objects() -> list[str]:
    from chalicelib import settings
    from chalicelib.storage import aws

    listing = aws.client("s3").list_objects_v2(Bucket=settings.data_bucket(), Prefix="payroll/")
    return sorted(o["Key"] for o in listing.get("Contents", []))


WEEK = [date(2026, 9, 28) + timedelta(days=i) for i in range(7)]


def work_the_week(client, operator, hours=8):
    """Every worker of S1 works every day of the week 09-28..10-04, all approved."""
    response = upload(client, [shift(w, day, hours) for w in ("W-WEEK", "W-BI", "W-MON") for day in WEEK])
    assert response.status_code == 200, response.body
    for worker in ("W-WEEK", "W-BI", "W-MON"):
        approve(client, operator, worker)


# --- the pay calculation and periods ----------------------------------------------------------------

def test_a_ten_hour_day_is_eight_regular_and_two_overtime_hours_at_one_and_a_half(setup, operator):
    client = setup
    upload(client, [shift("W-WEEK", date(2026, 9, 30), 10)])
    approve(client, operator, "W-WEEK")

    run = transfer(client, operator, pay_date="2026-09-30", period_type="weekly")

    assert run["status"] == "Ended", run
    assert payroll(run)["weekly"] == [
        {"worker_export_id": "E100", "pay_type_export_id": "100", "profile_date": "2026-09-30", "hours": "8.00",
         "rate": "20.00", "amount": "160.00", "period_start": "2026-09-28", "period_end": "2026-10-04",
         "pay_date": "2026-09-30"},
        {"worker_export_id": "E100", "pay_type_export_id": "150", "profile_date": "2026-09-30", "hours": "2.00",
         "rate": "30.00", "amount": "60.00", "period_start": "2026-09-28", "period_end": "2026-10-04",
         "pay_date": "2026-09-30"},
    ]
    assert run["outputs"][0]["key"] == f"payroll/weekly/2026-09-28_2026-10-04-{run['run_id']}.csv"
    assert "warning" not in run["message"]


def test_a_period_that_has_not_ended_is_transferred_with_a_warning(setup, operator, today):
    client = setup
    upload(client, [shift("W-WEEK", date(2026, 9, 30), 8)])
    approve(client, operator, "W-WEEK")
    today.set(date(2026, 10, 1))
    run = transfer(client, operator, pay_date="2026-09-30", period_type="weekly")
    assert run["status"] == "Ended" and "2026-09-28..2026-10-04 has not ended yet" in run["message"]


def test_a_week_across_a_month_boundary_lands_in_the_right_period_per_type(setup, operator, today):
    client = setup
    work_the_week(client, operator)

    run = transfer(client, operator)  # each type's most recently ended period

    assert run["status"] == "Ended", run
    files = payroll(run)
    days = {kind: sorted({r["profile_date"] for r in rows}) for kind, rows in files.items()}
    assert days["weekly"] == [d.isoformat() for d in WEEK]
    assert days["biweekly"] == [d.isoformat() for d in WEEK]  # 2026-09-21..10-04 holds the whole week
    assert days["monthly"] == ["2026-09-28", "2026-09-29", "2026-09-30"]  # September only
    assert {(r["period_start"], r["period_end"], r["pay_date"]) for r in files["monthly"]} == {
        ("2026-09-01", "2026-09-30", "2026-09-30")}
    assert {r["worker_export_id"] for rows in files.values() for r in rows} == {"E100", "E200", "E300"}
    assert {kind: {r["worker_export_id"] for r in rows} for kind, rows in files.items()} == {
        "weekly": {"E100"}, "biweekly": {"E200"}, "monthly": {"E300"}}

    today.set(date(2026, 11, 2))  # October has ended: its days of that week are paid now
    october = payroll(transfer(client, operator, period_type="monthly"))["monthly"]
    assert [r["profile_date"] for r in october] == ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04"]


def test_a_second_run_exports_no_line_twice(setup, operator):
    client = setup
    work_the_week(client, operator)
    first = transfer(client, operator)

    second = transfer(client, operator)
    explicit = transfer(client, operator, pay_date="2026-09-30")

    assert second["status"] == explicit["status"] == "Ended"
    assert second["outputs"] == explicit["outputs"] == []
    assert "already transferred" in second["message"]
    assert "nothing to transfer" in explicit["message"] and explicit["counters"]["written"] == 0
    assert len(payroll_objects()) == len(first["outputs"]) == 3


def rows_of(run, kind="weekly") -> list[tuple]:
    return [(r["profile_date"], r["pay_type_export_id"], r["hours"], r["rate"], r["amount"])
            for r in payroll(run)[kind]]


def test_hours_added_to_a_transferred_day_are_reversed_and_sent_anew_in_a_supplement(setup, operator):
    client = setup
    work_the_week(client, operator, hours=6)
    transfer(client, operator, period_type="weekly")

    assert upload(client, [shift("W-WEEK", WEEK[-1], 1, start_hour=18, n=2)]).status_code == 200
    approve(client, operator, "W-WEEK")
    late = transfer(client, operator, period_type="weekly")
    # REG of that day was sent as 6 h, it is 7 h now: payroll gets the reversal and the new line
    assert late["status"] == "Ended" and rows_of(late) == [
        ("2026-10-04", "100", "-6.00", "20.00", "-120.00"), ("2026-10-04", "100", "7.00", "20.00", "140.00")]
    assert late["outputs"][0]["key"] == "payroll/weekly/2026-09-28_2026-10-04-supplement-1.csv"

    assert upload(client, [shift("W-WEEK", WEEK[-1], 3, start_hour=19, n=3)]).status_code == 200
    approve(client, operator, "W-WEEK")
    overtime = transfer(client, operator, period_type="weekly")
    assert rows_of(overtime) == [  # 10 h that day: REG 7 -> 8, and the OT item is new
        ("2026-10-04", "100", "-7.00", "20.00", "-140.00"), ("2026-10-04", "100", "8.00", "20.00", "160.00"),
        ("2026-10-04", "150", "2.00", "30.00", "60.00")]
    assert overtime["outputs"][0]["key"].endswith("-supplement-2.csv")


def test_a_registration_approved_after_its_week_was_transferred_goes_out_in_one_supplementary_file(
        setup, operator, today):
    """Issue 11: the scheduled run looked only at the latest ended week and answered "already
    transferred"; late registrations were never exported."""
    client = setup
    work_the_week(client, operator)
    first = transfer(client, operator)
    today.set(date(2026, 10, 12))  # a week later: the next week has ended too (nothing worked in it)
    late = [shift("W-WEEK", WEEK[2], 2, start_hour=18, n=2), shift("W-BI", WEEK[3], 3, start_hour=18, n=2)]
    assert upload(client, late).status_code == 200
    approve(client, operator, "W-WEEK")
    approve(client, operator, "W-BI")

    runs = [transfer(client, operator), transfer(client, operator)]

    assert runs[0]["status"] == "Ended", runs[0]
    assert rows_of(runs[0]) == [("2026-09-30", "150", "2.00", "30.00", "60.00")]
    assert rows_of(runs[0], "biweekly") == [("2026-10-01", "150", "3.00", "27.75", "83.25")]
    assert "1 late pay line(s) for 2026-09-28..2026-10-04 in a supplementary file" in runs[0]["message"]
    assert sorted(o["key"] for o in runs[0]["outputs"]) == [
        "payroll/biweekly/2026-09-21_2026-10-04-supplement-1.csv",
        "payroll/weekly/2026-09-28_2026-10-04-supplement-1.csv"]
    assert runs[1]["status"] == "Ended" and runs[1]["outputs"] == []  # two runs, one supplementary file
    assert len(payroll_objects()) == len(first["outputs"]) + 2


def test_a_registration_changed_after_transfer_needs_approval_again_then_is_reversed(setup, operator):
    client = setup
    work_the_week(client, operator)
    transfer(client, operator, period_type="weekly")
    registration = shift("W-WEEK", WEEK[1], 8)

    changed = upload(client, [{**registration, "clock_out": "2026-09-29T14:00:00Z"}])  # 6 h, not 8

    assert changed.status_code == 200, changed.body
    assert changed.json_body == {"accepted": 0, "updated": 1, "duplicates": 0, "approval_withdrawn": 1}
    waiting = transfer(client, operator, period_type="weekly")
    assert waiting["status"] == "Error" and waiting["outputs"] == []  # nothing else could go out
    assert "2026-09-28..2026-10-04 waits for approval" in waiting["message"] and "W-WEEK (1)" in waiting["message"]

    approve(client, operator, "W-WEEK")
    corrected = transfer(client, operator, period_type="weekly")

    assert rows_of(corrected) == [("2026-09-29", "100", "-8.00", "20.00", "-160.00"),
                                  ("2026-09-29", "100", "6.00", "20.00", "120.00")]
    assert transfer(client, operator, period_type="weekly")["outputs"] == []


def test_unapproved_registrations_hold_back_only_their_own_week(setup, operator):
    """Issue 11: one unapproved registration in the latest week held back an older week's lines."""
    client = setup
    older = [date(2026, 9, 21) + timedelta(days=i) for i in range(7)]
    upload(client, [shift("W-WEEK", day, 8) for day in older + WEEK])
    approve(client, operator, "W-WEEK", end="2026-10-03")  # the latest Sunday is not approved

    run = transfer(client, operator, period_type="weekly")

    assert run["status"] == "Ended", run
    assert [o["key"].split("/")[2][:21] for o in run["outputs"]] == ["2026-09-21_2026-09-27"]
    assert len(payroll(run)["weekly"]) == 7
    assert "2026-09-28..2026-10-04 waits for approval" in run["message"] and "W-WEEK (1)" in run["message"]

    approve(client, operator, "W-WEEK")
    later = transfer(client, operator, period_type="weekly")
    assert [o["key"].split("/")[2][:21] for o in later["outputs"]] == ["2026-09-28_2026-10-04"]
    assert not later["outputs"][0]["key"].endswith("supplement-1.csv")  # the week's first file


def test_days_and_the_end_of_a_week_are_the_stores_local_ones(setup, operator, today):
    client = setup
    store = {"id": "S-NY", "name": "New York", "legal_entity": "US01", "org_node_id": "HQ",
             "time_zone": "America/New_York"}
    worker = {"id": "W-NY", "name": "Nora York", "export_id": "E500", "store_id": "S-NY",
              "pay_period_type": "weekly", "base_rate": "20.00"}
    for entity, item in (("stores", store), ("workers", worker)):
        assert client.http.put(f"/data/{entity}", headers=operator,
                               body=json.dumps({"items": [item]})).status_code == 200
    night_shifts = [  # EDT is UTC-4
        # Saturday 20:00 to Sunday 06:00 local: 10 h of Saturday, though mostly Sunday in UTC
        {"registration_id": "NY-1", "worker_id": "W-NY", "clock_in": "2026-10-04T00:00:00Z",
         "clock_out": "2026-10-04T10:00:00Z"},
        # Sunday 22:00 to Monday 02:00 local: 4 h of Sunday (in UTC: Monday, the next week)
        {"registration_id": "NY-2", "worker_id": "W-NY", "clock_in": "2026-10-05T02:00:00Z",
         "clock_out": "2026-10-05T06:00:00Z"}]
    assert upload(client, night_shifts, store_id="S-NY").status_code == 200
    # approval goes by the local day too: Sunday is the 22:00 shift, though it clocked in on Monday UTC
    assert approve(client, operator, "W-NY", "2026-10-04", "2026-10-04")["approved"] == 1
    approve(client, operator, "W-NY")

    today.set(date(2026, 10, 5), time(3, 30))  # 23:30 on Sunday in New York: the week has not ended
    early = transfer(client, operator, period_type="weekly")
    assert early["outputs"] == [] and early["status"] == "Ended"

    today.set(date(2026, 10, 5), time(4, 30))  # 00:30 on Monday in New York
    run = transfer(client, operator, period_type="weekly")
    assert rows_of(run) == [("2026-10-03", "100", "8.00", "20.00", "160.00"),
                            ("2026-10-03", "150", "2.00", "30.00", "60.00"),
                            ("2026-10-04", "100", "4.00", "20.00", "80.00")]


def test_settled_backlog_entries_are_deleted_so_a_run_reads_only_what_changed(setup, operator):
    from chalicelib import clock
    from chalicelib.storage import pay

    client = setup
    work_the_week(client, operator)
    first = transfer(client, operator)
    assert first["counters"]["read"] == 21
    again = transfer(client, operator)  # the entries are too young to trust the index: read again
    assert again["outputs"] == [] and again["counters"]["read"] == 21
    assert list(pay.PayBacklog.scan())

    clock.advance(pay.SETTLE_SECONDS + 60)
    try:
        settled = transfer(client, operator)
        quiet = transfer(client, operator)
    finally:
        clock.reset()

    assert settled["outputs"] == []
    # only what waits for October to end is left
    assert {(e.worker_id, min(e.days)) for e in pay.PayBacklog.scan()} == {("W-MON", "2026-10-01")}
    assert quiet["counters"]["read"] == 0 and quiet["aws_requests"].get("dynamodb.BatchGetItem", 0) == 0
    assert "nothing to transfer" in quiet["message"]


def test_include_already_exported_exports_again(setup, operator):
    client = setup
    work_the_week(client, operator)
    first = transfer(client, operator, period_type="weekly")

    again = transfer(client, operator, period_type="weekly", include_already_exported=True)

    assert again["status"] == "Ended"
    assert payroll(again)["weekly"] == payroll(first)["weekly"]
    assert again["outputs"][0]["key"] != first["outputs"][0]["key"]


def test_unapproved_registrations_refuse_the_period_naming_the_worker(setup, operator):
    client = setup
    upload(client, [shift("W-WEEK", day, 8) for day in WEEK])
    approve(client, operator, "W-WEEK", end="2026-10-02")  # Saturday and Sunday are not approved

    run = transfer(client, operator, period_type="weekly")

    assert run["status"] == "Error"
    assert "W-WEEK (2)" in run["message"] and "2026-09-28..2026-10-04" in run["message"]
    assert run["outputs"] == [] and payroll_objects() == []

    accepted = transfer(client, operator, period_type="weekly", accept_errors=True)

    assert accepted["status"] == "Ended", accepted
    assert "warning" in accepted["message"] and "W-WEEK (2)" in accepted["message"]
    assert sorted({r["profile_date"] for r in payroll(accepted)["weekly"]}) == [d.isoformat() for d in WEEK[:5]]


def test_a_refused_type_does_not_hold_back_the_others(setup, operator):
    client = setup
    work_the_week(client, operator)
    upload(client, [shift("W-MON", date(2026, 9, 10), 8)])  # never approved

    run = transfer(client, operator)

    assert run["status"] == "Ended" and "W-MON (1)" in run["message"]
    assert "monthly 2026-09-01..2026-09-30 waits for approval" in run["message"]
    assert sorted(payroll(run)) == ["biweekly", "weekly"]


def test_continuations_transfer_each_period_once(setup, operator, monkeypatch):
    client = setup
    work_the_week(client, operator)
    monkeypatch.setenv("JOB_TIME_BUDGET_MS", "0")  # every checkpoint hands over to a fresh invocation
    monkeypatch.setenv("JOB_MAX_HOPS", "50")  # (run directly: the test client would apply the stage's budget)

    run = run_directly("transfer-to-pay")

    assert run["status"] == "Ended", run
    assert run["hops"] >= 3  # one per period type at least
    assert {kind: len(rows) for kind, rows in payroll(run).items()} == {"weekly": 7, "biweekly": 7, "monthly": 3}
    assert len(payroll_objects()) == 3


def test_a_run_that_died_before_writing_its_file_is_exported_again(setup, operator, monkeypatch):
    from chalicelib.storage import exports

    client = setup
    work_the_week(client, operator)
    real = exports.upload
    monkeypatch.setattr(exports, "upload", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("Lambda died")))
    died = transfer(client, operator, period_type="weekly")
    assert died["status"] == "Error" and payroll_objects() == []
    monkeypatch.setattr(exports, "upload", real)

    run = transfer(client, operator, period_type="weekly")

    assert len(payroll(run)["weekly"]) == 7


def test_a_run_that_died_after_writing_its_file_is_not_exported_twice(setup, operator, monkeypatch):
    from chalicelib.storage import pay

    client = setup
    work_the_week(client, operator)
    real = pay.finish_transfer
    monkeypatch.setattr(pay, "finish_transfer", lambda t: (_ for _ in ()).throw(RuntimeError("Lambda died")))
    died = transfer(client, operator, period_type="weekly")
    assert died["status"] == "Error" and len(payroll_objects()) == 1
    monkeypatch.setattr(pay, "finish_transfer", real)

    run = transfer(client, operator, period_type="weekly", pay_date="2026-10-01")

    assert run["outputs"] == [] and len(payroll_objects()) == 1
    assert "nothing to transfer (7 pay line(s), 7 already transferred)" in run["message"]
    assert "already transferred" in transfer(client, operator, period_type="weekly")["message"]


def test_a_run_that_lost_its_job_lock_marks_and_writes_nothing(setup, operator, monkeypatch):
    """Single flight guards "at most once": a run whose lease another run took stops before it
    marks a pay item or writes a file."""
    from chalicelib.jobs import context
    from chalicelib.storage import pay
    from chalicelib.storage.runs import LockHeld

    client = setup
    work_the_week(client, operator)

    def taken(job, scope, owner, lease):
        raise LockHeld("another run")

    monkeypatch.setattr(context, "renew_lock", taken)

    run = transfer(client, operator, period_type="weekly")

    assert run["status"] == "Error" and "lost the job lock" in run["message"]
    assert payroll_objects() == [] and list(pay.PayItem.scan()) == []


def test_transfer_reads_registrations_by_day_in_few_requests(setup, operator):
    client = setup
    work_the_week(client, operator)
    run = transfer(client, operator, period_type="weekly")
    queries = run["aws_requests"].get("dynamodb.Query", 0)
    assert run["counters"]["read"] == 21
    # one per day, plus workers, pay types, stores, the backlog (one per period type) and the
    # period's earlier transfers
    assert queries <= 7 + 7


# --- the store and operator routes --------------------------------------------------------------------

def test_upload_is_idempotent_by_registration_id(setup, operator):
    client = setup
    registrations = [shift("W-WEEK", day, 8) for day in WEEK[:3]]
    assert upload(client, registrations).json_body == {"accepted": 3, "updated": 0, "duplicates": 0,
                                                    "approval_withdrawn": 0}
    moved = {**registrations[0], "clock_out": "2026-09-28T17:30:00Z"}
    assert upload(client, [moved, *registrations[1:]]).json_body == {"accepted": 0, "updated": 1, "duplicates": 2,
                                                                                  "approval_withdrawn": 0}
    assert approve(client, operator, "W-WEEK")["approved"] == 3


def test_a_worker_of_another_store_or_a_bad_registration_is_refused_and_nothing_is_written(setup, operator):
    client = setup
    response = upload(client, [shift("W-WEEK", WEEK[0], 8), shift("W-OTHER", WEEK[0], 8),
                               shift("W-NOBODY", WEEK[0], 8)])
    assert response.status_code == 400
    assert {d["field"]: d["message"] for d in response.json_body["error"]["details"]} == {
        "registrations[1].worker_id": "worker W-OTHER does not belong to store S1",
        "registrations[2].worker_id": "unknown worker W-NOBODY"}
    bad = upload(client, [{**shift("W-WEEK", WEEK[0], 8), "clock_out": "2026-09-28T07:00:00Z"}])
    assert bad.status_code == 400 and bad.json_body["error"]["details"][0]["field"] == "registrations[0].clock_out"
    assert approve(client, operator, "W-WEEK") == {"worker_id": "W-WEEK", "from": "2026-01-01", "to": "2026-12-31",
                                                   "approved": 0, "already_approved": 0, "not_approved": []}


def test_a_store_token_only_uploads_for_its_own_store(setup):
    response = upload(setup, [shift("W-WEEK", WEEK[0], 8)], store_id="S1", headers=store_headers("S2"))
    assert response.status_code == 403


def test_approval_covers_the_date_range_only_and_counts(setup, operator):
    client = setup
    upload(client, [shift("W-WEEK", day, 8) for day in WEEK])
    assert approve(client, operator, "W-WEEK", "2026-09-29", "2026-09-30")["approved"] == 2
    assert approve(client, operator, "W-WEEK", "2026-09-28", "2026-09-30") == {
        "worker_id": "W-WEEK", "from": "2026-09-28", "to": "2026-09-30", "approved": 1, "already_approved": 2,
        "not_approved": []}
    bad = client.http.post("/time-registrations/approve", headers=operator,
                           body=json.dumps({"worker_id": "W-WEEK", "from": "2026-10-02", "to": "2026-10-01"}))
    assert bad.status_code == 400 and bad.json_body["error"]["details"][0]["field"] == "to"
    unknown = client.http.post("/time-registrations/approve", headers=operator,
                               body=json.dumps({"worker_id": "W-NOBODY", "from": "2026-10-01", "to": "2026-10-01"}))
    assert unknown.status_code == 404


def test_pay_amounts_are_exact_decimals(setup, operator):
    client = setup
    upload(client, [shift("W-BI", WEEK[0], 9.25)])  # 8 h at 18.50 and 1.25 h at 27.75
    approve(client, operator, "W-BI")
    rows = payroll(transfer(client, operator, period_type="biweekly"))["biweekly"]
    assert [(r["hours"], r["rate"], r["amount"]) for r in rows] == [
        ("8.00", "18.50", "148.00"), ("1.25", "27.75", "34.69")]  # 34.6875 rounded half-up


def test_a_supplement_whose_run_died_before_its_file_is_sent_whole_by_the_next_run(setup, operator, monkeypatch):
    """The dead run marked the items with the new hours; payroll still has the old ones, so the
    next run reverses what payroll has (6 h), not what the dead run meant to send."""
    from chalicelib.storage import exports

    client = setup
    work_the_week(client, operator, hours=6)
    transfer(client, operator, period_type="weekly")
    upload(client, [shift("W-WEEK", WEEK[-1], 1, start_hour=18, n=2)])
    approve(client, operator, "W-WEEK")
    real = exports.upload
    monkeypatch.setattr(exports, "upload", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("Lambda died")))
    assert transfer(client, operator, period_type="weekly")["status"] == "Error"
    monkeypatch.setattr(exports, "upload", real)

    run = transfer(client, operator, period_type="weekly")

    assert rows_of(run) == [("2026-10-04", "100", "-6.00", "20.00", "-120.00"),
                            ("2026-10-04", "100", "7.00", "20.00", "140.00")]
    # The dead run's file was never written: its name is the period's second file, as without the crash.
    assert run["outputs"][0]["key"].endswith("-supplement-1.csv") and len(payroll_objects()) == 2
    assert transfer(client, operator, period_type="weekly")["outputs"] == []


# --- runs that die mid-export: any later run finishes them as if nothing happened -----------------

class Killed(BaseException):
    """The Lambda is gone: no except-clause of the runtime or the job catches it."""


def _dies(operation: str, *, after: bool, table: str = ""):
    """Botocore hooks on the application's clients: the first ``service.Operation`` call (on a
    table whose name ends with ``table``) is killed before it is sent (or ``after`` AWS accepted
    it), and so is every later call (the process is gone)."""
    from chalicelib.storage import aws
    from chalicelib.storage.tables import ALL_MODELS

    service, name = operation.split(".")
    dead: list[bool] = []
    hit: list[bool] = []

    def before(model, params, **_):
        if dead:
            raise Killed("the process is gone")
        body = json.loads(params.get("body") or b"{}") if model.service_model.service_name == "dynamodb" else {}
        if model.name == name and not hit and any(
                t.endswith(table) for t in [body.get("TableName", ""), *body.get("RequestItems", {})] or [""]):
            hit.append(True)
            if not after:
                dead.append(True)
                raise Killed(f"killed before {operation}")

    def accepted(**_):
        if hit and not dead:
            dead.append(True)
            raise Killed(f"killed after {operation} was accepted")

    clients = [model._get_connection().connection.client for model in ALL_MODELS] + [aws.client("s3")]
    for c in clients:
        c.meta.events.register("before-call", before, unique_id="pay-kill-before")
        if after:
            c.meta.events.register(f"after-call.{service}.{name}", accepted, unique_id="pay-kill-after")

    def disarm():
        for c in clients:
            c.meta.events.unregister("before-call", unique_id="pay-kill-before")
            c.meta.events.unregister(f"after-call.{service}.{name}", unique_id="pay-kill-after")
    return disarm


@pytest.mark.parametrize("redelivered", [False, True], ids=["next-tick", "same-event-again"])
@pytest.mark.parametrize("operation, after", [
    ("dynamodb.PutItem", True),  # the transfer is recorded pending, nothing marked
    ("dynamodb.BatchWriteItem", False),  # the lock renewed, the items not marked yet
    ("dynamodb.BatchWriteItem", True),  # the items marked, no file
    ("s3.PutObject", False),  # the items marked, no file
    ("s3.PutObject", True),  # the file written, the transfer still pending
])
def test_a_transfer_killed_mid_export_is_finished_by_the_next_tick_under_its_first_file_name(
        setup, operator, operation, after, redelivered):
    """The next run is a new one (the next tick; a new run id) or the dead one resumed (its
    scheduled event delivered again). Before the fix it sent the period as ``-supplement-1.csv``
    and could leave the dead run's file as a second copy of the same lines."""
    from chalicelib import clock, settings
    from chalicelib.jobs import runtime
    from chalicelib.storage import pay
    from tests.conftest import schedule_event

    client = setup
    work_the_week(client, operator)
    disarm = _dies(operation, after=after, table="pay-transfers" if operation == "dynamodb.PutItem" else "")
    try:
        with pytest.raises(Killed):
            if redelivered:
                runtime.run_scheduled("transfer-to-pay", schedule_event(client, "evt-1")["id"])
            else:  # other parameters than the schedule's: the next tick cannot resume it
                run_directly("transfer-to-pay", {"period_type": "weekly"})
    finally:
        disarm()
    (dead,) = pay.PayTransfer.scan()  # the first period it reached
    first_file = f"payroll/{dead.period_type}/{dead.period_start}_{dead.period_end}-{dead.run_id}.csv"

    clock.advance(settings.lock_lease_seconds() + 1)
    try:
        event_id = "evt-1" if redelivered else "evt-next-tick"
        run = runtime.run_scheduled("transfer-to-pay", schedule_event(client, event_id)["id"]).to_api()
    finally:
        clock.reset()

    assert run["status"] == "Ended" and (run["run_id"] == dead.run_id) == redelivered, run
    objects = payroll_objects()  # one file per period type, none a supplement, no orphan
    assert len(objects) == 3 and first_file in objects and not [k for k in objects if "supplement" in k]
    transfers = {(t.period_type, t.transfer_id): (t.export_key, t.status) for t in pay.PayTransfer.scan()}
    assert len(transfers) == 3 and transfers[(dead.period_type, dead.transfer_id)] == (first_file, pay.DONE)
    assert {status for _, status in transfers.values()} == {pay.DONE}
    assert {i.export_key for i in pay.PayItem.scan() if i.period_type == dead.period_type} == {first_file}
    assert "already transferred" in transfer(client, operator, period_type="weekly")["message"]


def test_a_pay_item_the_dead_run_marked_but_the_next_run_does_not_send_is_not_claimed_sent(setup, operator):
    """The dead run marked Sunday's 8 h; the day changed before the next run, which sends the
    week without it (``accept_errors``): once approved, Sunday goes out whole, not as a reversal
    of 8 h payroll never received."""
    from chalicelib import clock, settings

    client = setup
    work_the_week(client, operator)
    disarm = _dies("s3.PutObject", after=False)
    try:
        with pytest.raises(Killed):
            run_directly("transfer-to-pay", {"period_type": "weekly"})
    finally:
        disarm()
    assert upload(client, [shift("W-WEEK", WEEK[-1], 6)]).json_body["approval_withdrawn"] == 1
    clock.advance(settings.lock_lease_seconds() + 1)
    try:
        first = transfer(client, operator, period_type="weekly", accept_errors=True)
        assert len(payroll(first)["weekly"]) == 6 and "-supplement-" not in first["outputs"][0]["key"]
        approve(client, operator, "W-WEEK")
        late = transfer(client, operator, period_type="weekly")
    finally:
        clock.reset()

    assert rows_of(late) == [("2026-10-04", "100", "6.00", "20.00", "120.00")]
    assert late["outputs"][0]["key"].endswith("-supplement-1.csv")
