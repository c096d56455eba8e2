"""Alerts (issue 15): each kind produced through the real job or route where its event happens,
once however often the event is recorded; the operator's list and acknowledgement; the hourly
digest read back from an SQS queue subscribed to the topic."""
from datetime import UTC, datetime, timedelta

from tests.conftest import run_directly
from tests.integration import test_download_sessions as sessions
from tests.integration.retail import load_master_data, sale, upload
from tests.integration.test_transfer_to_pay import WEEK, approve, setup, shift, today, transfer  # noqa: F401
from tests.integration.test_transfer_to_pay import upload as upload_registrations


def open_alerts(client, operator, **query) -> list[dict]:
    response = client.http.get("/alerts" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""),
                               headers=operator)
    assert response.status_code == 200, response.body
    return response.json_body["alerts"]


def of_kind(client, operator, kind: str) -> list[dict]:
    return [a for a in open_alerts(client, operator) if a["kind"] == kind]


# --- each kind, where it happens ----------------------------------------------------------------

def test_a_refused_pay_period_raises_one_alert_and_its_run_error_another(setup, operator):  # noqa: F811
    client = setup
    upload_registrations(client, [shift("W-WEEK", day, 8) for day in WEEK])
    approve(client, operator, "W-WEEK", end="2026-10-02")  # Saturday and Sunday are not approved

    run = transfer(client, operator, period_type="weekly")

    assert run["status"] == "Error"
    [refused] = of_kind(client, operator, "pay_period_refused")
    assert refused["job"] == "transfer-to-pay" and refused["run_id"] == run["run_id"]
    assert refused["subject_id"] == "weekly 2026-09-28..2026-10-04"
    assert "W-WEEK" in refused["message"] and refused["status"] == "open" and refused["published_at"] is None
    [error] = of_kind(client, operator, "run_error")
    assert (error["job"], error["run_id"], error["store_id"]) == ("transfer-to-pay", run["run_id"], None)
    assert error["message"].startswith("run of transfer-to-pay ended Error: ")


def test_a_run_with_failed_records_raises_failed_records_once(client, operator):
    sessions.make_session("A1", status="Applied")
    sessions.report(client, "S1", ("A1", "Requested", sessions.at(1)))  # an illegal move: a failed record

    run = sessions.process(client, operator)

    assert run["status"] == "Ended" and run["counters"]["failed"] == 1
    [alert] = of_kind(client, operator, "failed_records")
    assert (alert["job"], alert["run_id"]) == ("process-status-messages", run["run_id"])
    assert "1 failed record(s)" in alert["message"]
    assert of_kind(client, operator, "run_error") == []


def test_a_suspended_session_raises_an_alert_each_time_it_is_suspended(client, operator):
    sessions.put(client, operator, "parameters", [{"id": "default", "try_count": 1}])
    sessions.make_session("F1")
    sessions.report(client, "S1", ("F1", "Requested", sessions.at(1)), ("F1", "Downloaded", sessions.at(2)))
    sessions.post(client, "S1", [{"session_id": "F1", "status": "ApplyFailed", "at": sessions.at(3),
                                  "message": "disk full, mail ops@store.example"}])
    run = sessions.process(client, operator)

    [alert] = of_kind(client, operator, "session_suspended")
    assert (alert["store_id"], alert["subject_id"], alert["run_id"]) == ("S1", "F1", run["run_id"])
    assert "disk full" in alert["message"] and "@" not in alert["message"]  # no email address
    sessions.process(client, operator)  # nothing new: no second alert
    assert len(of_kind(client, operator, "session_suspended")) == 1

    sessions.report(client, "S1", ("F1", "Requested", sessions.at(4)), ("F1", "DownloadFailed", sessions.at(5)))
    sessions.process(client, operator)

    assert sessions.session(client, operator, "F1")["status"] == "Suspended"
    assert len(of_kind(client, operator, "session_suspended")) == 2


def test_a_stale_session_raises_one_alert(client, operator):
    old = (datetime.now(UTC) - timedelta(hours=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    sessions.make_session("OLD", store_id="S2", changed=old)

    sessions.process(client, operator)
    sessions.process(client, operator)  # still stale: flagged before, no second alert

    [alert] = of_kind(client, operator, "session_stale")
    assert (alert["store_id"], alert["subject_id"], alert["job"]) == ("S2", "OLD", "process-status-messages")
    assert f"Available since {old}" in alert["message"]


def test_an_upload_conflict_raises_one_alert_however_often_it_is_resent(client, operator):
    load_master_data()
    assert upload(client, "S1", [sale("T1", [("BALL", None, 1, "5.00")])]).json_body["accepted"] == 1
    changed = sale("T1", [("BALL", None, 3, "5.00")])

    [conflict] = upload(client, "S1", [changed]).json_body["conflicts"]
    upload(client, "S1", [changed])  # the same conflict again: the same issue

    [alert] = of_kind(client, operator, "upload_conflict")
    assert (alert["store_id"], alert["subject_id"], alert["job"], alert["run_id"]) == (
        "S1", conflict["issue_id"], None, None)
    assert "T1" in alert["message"]


def test_a_retried_run_end_records_no_second_alert(client, operator):
    from chalicelib.storage import runs

    sessions.make_session("A1", status="Applied")
    sessions.report(client, "S1", ("A1", "Requested", sessions.at(1)))
    run = sessions.process(client, operator)
    record = runs.find_run(run["run_id"])

    assert not runs.finish(record, "Ended", "again", ("Executing",), results={"counters": {"failed": 1}})
    assert len(of_kind(client, operator, "failed_records")) == 1


# --- the operator's routes ----------------------------------------------------------------------

def test_alerts_list_newest_first_pages_and_acknowledge(client, operator):
    from chalicelib.storage import alerts

    alerts.record(alerts.new_alert(f"test-{i}", "run_error", f"alert {i}", job="post-inventory") for i in range(5))
    first = client.http.get("/alerts?limit=2", headers=operator).json_body
    second = client.http.get(f"/alerts?limit=2&cursor={first['cursor']}", headers=operator).json_body
    assert [a["alert_id"] for a in first["alerts"] + second["alerts"]] == ["test-4", "test-3", "test-2", "test-1"]

    response = client.http.post("/alerts/test-4/acknowledge", headers=operator)
    again = client.http.post("/alerts/test-4/acknowledge", headers=operator)

    assert response.status_code == 200 and response.json_body["status"] == "acknowledged"
    assert again.status_code == 200 and again.json_body == response.json_body
    assert "test-4" not in [a["alert_id"] for a in open_alerts(client, operator)]
    assert [a["alert_id"] for a in open_alerts(client, operator, status="acknowledged")] == ["test-4"]
    assert alerts.get_alert("test-4").expires is not None  # kept 30 days after acknowledgement
    assert client.http.post("/alerts/nope/acknowledge", headers=operator).status_code == 404
    assert client.http.post(f"/alerts/{'x' * 3000}/acknowledge", headers=operator).status_code == 404
    assert client.http.get("/alerts?status=closed", headers=operator).status_code == 400


def test_alerts_are_for_operators_only(client):
    from tests.conftest import store_headers

    assert client.http.get("/alerts", headers=store_headers("S1")).status_code == 403
    assert client.http.get("/alerts").status_code == 401



# --- the hourly digest --------------------------------------------------------------------------

def subscribed_queue() -> str:
    """An SQS queue subscribed to the alerts topic: what an email subscriber would get, readable."""
    from chalicelib import settings
    from chalicelib.storage import aws

    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="alerts-digest-reader")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("sns").subscribe(TopicArn=settings.alerts_topic_arn(), Protocol="sqs", Endpoint=arn)
    return url


def received(url: str) -> list[dict]:
    """The digest messages the subscribed queue got (SNS's envelope: its subject and message)."""
    from devstack.stack import drain

    return [{"subject": envelope["Subject"], "body": envelope["Message"]} for envelope in drain(url)]


def raise_alerts(kind: str, n: int, *, job: str | None = None, store_id: str | None = None, text: str = "x"):
    from chalicelib.storage import alerts

    ids = [f"{kind}-{job or store_id}-{i:03d}" for i in range(n)]
    assert alerts.record(alerts.new_alert(i, kind, f"{text} {i}", job=job, store_id=store_id) for i in ids) == n
    return ids


def test_the_digest_publishes_one_message_per_kind_and_job_or_store_and_nothing_twice(aws):
    url = subscribed_queue()
    ids = (raise_alerts("run_error", 100, job="post-inventory")
           + raise_alerts("failed_records", 90, job="post-inventory")
           + raise_alerts("upload_conflict", 60, store_id="S7"))

    run = run_directly("publish-alerts")

    assert run["status"] == "Ended" and run["counters"]["read"] == 250, run
    messages = received(url)
    assert sorted(m["subject"] for m in messages) == [
        "retail-sync: 100 run_error alerts for post-inventory",
        "retail-sync: 60 upload_conflict alerts for store S7",
        "retail-sync: 90 failed_records alerts for post-inventory"]
    bodies = "\n".join(m["body"] for m in messages)
    assert all(alert_id in bodies for alert_id in ids)
    assert run["aws_requests"]["sns.Publish"] == 3

    again = run_directly("publish-alerts")

    assert again["counters"]["read"] == 0 and received(url) == []
    from chalicelib.storage import alerts
    assert all(alerts.get_alert(i).published_at for i in ids)


def test_a_group_too_big_for_one_sns_message_is_split_and_nothing_is_dropped(aws):
    url = subscribed_queue()
    ids = raise_alerts("run_error", 180, job="post-statements", text="y" * 1900)  # about 380 KB of text

    run_directly("publish-alerts")

    messages = received(url)
    assert sorted(m["subject"] for m in messages) == [
        "retail-sync: 180 run_error alerts for post-statements (part 1 of 2)",
        "retail-sync: 180 run_error alerts for post-statements (part 2 of 2)"]
    assert all(len(m["body"].encode()) <= 256 * 1024 for m in messages)
    bodies = "\n".join(m["body"] for m in messages)
    assert all(alert_id in bodies for alert_id in ids)


def test_the_digest_runs_on_its_schedule(client):
    from tests.conftest import schedule_event

    url = subscribed_queue()
    raise_alerts("session_stale", 2, job="process-status-messages")

    client.lambda_.invoke("publish_alerts", schedule_event(client, "evt-alerts"))

    [message] = received(url)
    assert message["subject"] == "retail-sync: 2 session_stale alerts for process-status-messages"


# --- make serve ---------------------------------------------------------------------------------

def test_make_serve_prints_the_open_alerts_then_each_new_one(aws):
    import time

    from devstack.serve import AlertWatch

    quiet = AlertWatch()  # no alert yet (make serve's start)
    assert quiet.summary() == "Open alerts: 0" and quiet.new() == []
    raise_alerts("run_error", 7, job="post-inventory", text="boom")
    watch = AlertWatch()

    summary = watch.summary().splitlines()

    assert summary[0] == "Open alerts: 7 (newest 5; GET /alerts lists them)"
    assert len(summary) == 6 and all(" run_error post-inventory: boom " in line for line in summary[1:])
    assert watch.new() == []
    time.sleep(0.002)  # alert times are in milliseconds
    raise_alerts("upload_conflict", 1, store_id="S9", text="conflict")
    [line] = watch.new()
    assert line.endswith(" upload_conflict store S9: conflict upload_conflict-S9-000")
    assert watch.new() == []
