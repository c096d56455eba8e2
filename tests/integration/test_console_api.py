"""The API the operator console works from (issue 15): every job's runs across jobs, who asked for
a run and what its requests cost, a fan-out parent's shards, schedules in words, a package's first
rows, links to a run's output files, tokens that expire; all of it for operators only."""
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from tests.conftest import store_headers
from tests.integration import test_runtime  # noqa: F401  (registers the test-sharded job)
from tests.integration.retail import run_job

PURGE = "purge-run-history"


def runs(client, headers, query=""):
    answer = client.http.get(f"/runs{query}", headers=headers)
    assert answer.status_code == 200, answer.body
    return answer.json_body


def save_run(job, created_at, status="Ended", trigger="manual"):
    """A run record as the runtime leaves it, created at ``created_at`` (an ISO time)."""
    from chalicelib.storage.runs import RunRecord, new_run_id

    run = RunRecord(f"{created_at[:10]}-{new_run_id()}", job=job, created_at=created_at, created_day=created_at[:10],
                    status=status, trigger=trigger)
    run.save()
    return run


def iso_days_ago(days, hour=12):
    return (datetime.now(UTC) - timedelta(days=days)).replace(hour=hour, minute=0, second=0,
                                                              microsecond=0).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# --- GET /runs ----------------------------------------------------------------------------

def test_every_jobs_runs_newest_first_across_days_with_combinable_filters(client, operator):
    made = [save_run("post-inventory", iso_days_ago(3), "Error", "schedule"),
            save_run(PURGE, iso_days_ago(2), "Ended", "manual"),
            save_run("post-statements", iso_days_ago(2, hour=13), "Error", "manual"),
            save_run(PURGE, iso_days_ago(0, hour=0), "Ended", "schedule")]
    newest_first = [r.run_id for r in sorted(made, key=lambda r: r.created_at, reverse=True)]
    assert [r["run_id"] for r in runs(client, operator)["runs"]] == newest_first
    assert [r["run_id"] for r in runs(client, operator, "?status=Error")["runs"]] == [made[2].run_id, made[0].run_id]
    assert [r["run_id"] for r in runs(client, operator, "?status=Error&trigger=manual")["runs"]] == [made[2].run_id]
    assert [r["run_id"] for r in runs(client, operator, f"?job={PURGE}")["runs"]] == [made[3].run_id, made[1].run_id]
    since = iso_days_ago(2, hour=12).replace(".000Z", "Z")
    until = iso_days_ago(1).replace(".000Z", "Z")
    assert [r["run_id"] for r in runs(client, operator, f"?since={since}&until={until}")["runs"]] == [
        made[2].run_id, made[1].run_id]
    assert [r["run_id"] for r in runs(client, operator, f"?job={PURGE}&since={since}&until={until}")["runs"]] == [
        made[1].run_id]


def test_runs_page_with_the_cursor_until_the_range_is_exhausted(client, operator):
    # Whole days back: hours of today may still be ahead (before 03:00 UTC), and a run of the future is not listed.
    made = [save_run(PURGE, iso_days_ago(day, hour)) for day in (1, 2, 4) for hour in (1, 2, 3)]
    expected = [r.run_id for r in sorted(made, key=lambda r: r.created_at, reverse=True)]
    since = iso_days_ago(5, hour=0).replace(".000Z", "Z")
    seen, cursor, calls = [], None, 0
    while True:
        page = runs(client, operator, f"?limit=2&since={since}" + (f"&cursor={cursor}" if cursor else ""))
        assert len(page["runs"]) <= 2
        seen += [r["run_id"] for r in page["runs"]]
        cursor, calls = page["cursor"], calls + 1
        if cursor is None:
            break
    assert seen == expected and calls <= 6
    # A cursor belongs to its list: another filter's cursor is refused.
    first = runs(client, operator, f"?limit=2&since={since}")["cursor"]
    refused = client.http.get(f"/runs?limit=2&since={since}&status=Error&cursor={first}", headers=operator)
    assert refused.status_code == 400 and refused.json_body["error"]["details"][0]["field"] == "cursor"


def test_runs_is_a_bounded_number_of_queries_never_a_scan(client, operator, monkeypatch):
    from chalicelib.storage import runs as storage
    from chalicelib.storage.runs import RunRecord

    save_run(PURGE, iso_days_ago(80))
    queries = []
    real_query = RunRecord.by_day.query
    monkeypatch.setattr(RunRecord, "scan", lambda *a, **k: pytest.fail("GET /runs scanned the runs table"))
    monkeypatch.setattr(RunRecord.by_day, "query", lambda *a, **k: queries.append(a) or real_query(*a, **k))
    page = runs(client, operator)  # 90 days of history, one old run: walked in bounded steps
    assert page["runs"] == [] and page["cursor"] and len(queries) == storage.MAX_RUN_QUERIES
    found, calls = [], 1
    while page["cursor"]:
        page = runs(client, operator, f"?cursor={page['cursor']}")
        found += page["runs"]
        calls += 1
    assert len(found) == 1 and calls == 10  # 91 days, 10 a call


def test_runs_refuses_bad_filters_naming_them(client, operator):
    for query, field in [("?status=Done", "status"), ("?trigger=cron", "trigger"), ("?since=yesterday", "since"),
                         ("?since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z", "until"), ("?limit=0", "limit"),
                         ("?job=no-such-job", None), ("?colour=red", "colour"),
                         ("?since=0001-01-01T00:30:00+01:00", "since")]:
        answer = client.http.get(f"/runs{query}", headers=operator)
        if field is None:
            assert answer.status_code == 404, query
        else:
            assert answer.status_code == 400, query
            assert answer.json_body["error"]["details"][0]["field"] == field, query
    # A range that holds no run by default: since in the future, or until before the retention.
    for query in ("?since=2999-01-01T00:00:00Z", "?until=2001-01-01T00:00:00Z"):
        assert runs(client, operator, query) == {"runs": [], "cursor": None}, query


# --- run answers --------------------------------------------------------------------------

def test_a_run_names_the_label_of_the_token_that_asked_and_its_estimated_cost(client, aws):
    from chalicelib.auth import issue_token
    from chalicelib.prices import estimate_usd

    headers = {"Authorization": f"Bearer {issue_token('operator', label='Ana (HQ ops)')}",
               "Content-Type": "application/json"}
    run = run_job(client, headers, PURGE)
    assert run["requested_by_label"] == "Ana (HQ ops)" and run["requested_by"]
    stored = client.http.get(f"/runs/{run['run_id']}", headers=headers).json_body
    assert stored["requested_by_label"] == "Ana (HQ ops)"
    assert stored["aws_requests"] and stored["estimated_cost_usd"] == f"{estimate_usd(stored['aws_requests']):f}"
    assert float(stored["estimated_cost_usd"]) > 0
    listed = runs(client, headers, f"?job={PURGE}")["runs"][0]
    assert listed["requested_by_label"] == "Ana (HQ ops)" and listed["estimated_cost_usd"]


def test_a_scheduled_run_has_no_label(client):
    from chalicelib.jobs import runtime

    run = runtime.run_scheduled(PURGE, "evt-console")
    assert run.trigger == "schedule" and run.to_api()["requested_by_label"] is None


def test_a_fan_out_parent_lists_its_shards_and_names_the_failing_ones(client, operator, monkeypatch):
    from chalicelib.jobs import runtime
    from chalicelib.jobs.registry import get_job

    job = get_job("test-sharded")

    def fail_on_s2(ctx):
        if ctx.params["store_ids"] == ["S2"]:
            raise RuntimeError("store S2 is unreachable")
        ctx.count(written=1)

    monkeypatch.setattr(job, "run", fail_on_s2)
    parent = runtime.start("test-sharded", {}, trigger="manual", requested_by="tests").run
    body = client.http.get(f"/runs/{parent.run_id}", headers=operator).json_body
    assert body["status"] == "Error" and body["message"] == "3 shards: 2 Ended, 1 Error (S2)"
    assert [(s["scope"], s["status"]) for s in body["shards"]] == [("S1", "Ended"), ("S2", "Error"), ("S3", "Ended")]
    assert all(s["ended_at"] and s["run_id"] for s in body["shards"])
    shard = client.http.get(f"/runs/{body['shards'][0]['run_id']}", headers=operator).json_body
    assert shard["parent_run_id"] == parent.run_id and "shards" not in shard
    listed = runs(client, operator, "?job=test-sharded")["runs"]
    assert all("shards" not in r for r in listed) and len(listed) == 4


# --- GET /jobs ----------------------------------------------------------------------------

def test_jobs_say_their_schedule_in_words_and_when_it_fires_next(client, operator, monkeypatch):
    from chalicelib.storage.runs import RunRecord

    queries = []
    real_query = RunRecord.by_job.query
    monkeypatch.setattr(RunRecord.by_job, "query", lambda *a, **k: queries.append(a) or real_query(*a, **k))
    before = datetime.now(UTC)
    jobs = {j["name"]: j for j in client.http.get("/jobs", headers=operator).json_body["jobs"]}
    assert len(queries) == len(jobs)  # one query per job, as before: nothing more per job
    assert jobs["process-status-messages"]["schedule_text"] == "every 15 minutes"
    assert jobs["generate-account-activity"]["schedule_text"] == "daily at 02:00 UTC"
    assert jobs["clean-up-staging"]["schedule_text"] == "Sundays at 03:00 UTC"
    fifteen = datetime.fromisoformat(jobs["process-status-messages"]["next_run_at"].replace("Z", "+00:00"))
    assert before < fifteen <= before + timedelta(minutes=15) and fifteen.minute % 15 == 0
    sunday = datetime.fromisoformat(jobs["clean-up-staging"]["next_run_at"].replace("Z", "+00:00"))
    assert sunday.isoweekday() == 7 and (sunday.hour, sunday.minute) == (3, 0)
    assert before < sunday <= before + timedelta(days=7)
    unscheduled = [j for j in jobs.values() if not j["schedule"]]
    assert unscheduled and all(j["schedule_text"] is None and j["next_run_at"] is None for j in unscheduled)


# --- package preview ----------------------------------------------------------------------

def make_session(session_id, rows=120, package=True):
    from chalicelib.domain.sessions import build_package_lines
    from chalicelib.storage.download_sessions import DownloadSession, package_key, package_location, put_package

    created = iso_days_ago(0, hour=0)
    location = package_location(package_key("S1", 7, session_id)) if package else None
    if package:
        lines = build_package_lines(
            {"session_id": session_id, "store_id": "S1", "data_group": "assortments", "seq": 7,
             "created_at": created, "full": True},
            [{"op": "upsert", "entity": "assortment", "key": f"P{i:06d}", "data": {"n": i, "name": f"Product {i}"}}
             for i in range(rows)])
        put_package(location, lines)
    DownloadSession(session_id, store_id="S1", data_group="assortments", seq=7, status="Available" if package
                    else "Started", rows=rows, package=location, created_at=created, changed_at=created).save()


def test_a_package_preview_shows_its_header_and_first_rows(client, operator):
    make_session("SES-1", rows=120)
    body = client.http.get("/download-sessions/SES-1/package?limit=3", headers=operator).json_body
    assert (body["session_id"], body["store_id"], body["data_group"], body["seq"]) == ("SES-1", "S1", "assortments", 7)
    assert body["header"]["rows"] == 120 and body["header"]["full"] is True and body["total_rows"] == 120
    assert [r["key"] for r in body["rows"]] == ["P000000", "P000001", "P000002"]
    assert body["rows"][1] == {"op": "upsert", "entity": "assortment", "key": "P000001",
                               "data": {"n": 1, "name": "Product 1"}}
    assert len(client.http.get("/download-sessions/SES-1/package", headers=operator).json_body["rows"]) == 50
    too_many = client.http.get("/download-sessions/SES-1/package?limit=501", headers=operator)
    assert too_many.status_code == 400 and too_many.json_body["error"]["details"][0]["field"] == "limit"


def test_a_package_preview_reads_only_the_head_of_a_large_package(aws):
    import tracemalloc

    from chalicelib.storage.download_sessions import DownloadSession, package_head

    make_session("SES-BIG", rows=60_000)
    package = DownloadSession.get("SES-BIG").package
    tracemalloc.start()
    header, rows = package_head(package, 10)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert header["rows"] == 60_000 and len(rows) == 10
    assert peak < 1_000_000  # the package holds ~4 MB of JSON lines


def test_a_package_preview_of_an_unknown_session_or_one_without_package(client, operator):
    make_session("SES-2", package=False)
    unknown = client.http.get("/download-sessions/NOPE/package", headers=operator)
    assert unknown.status_code == 404
    none = client.http.get("/download-sessions/SES-2/package", headers=operator)
    assert none.status_code == 409 and "has no package" in none.json_body["error"]["message"]


# --- run outputs --------------------------------------------------------------------------

def test_a_runs_output_file_is_downloaded_through_a_short_lived_link(client, operator):
    import requests

    from chalicelib import settings
    from chalicelib.storage import aws as aws_clients
    from chalicelib.storage.runs import RunRecord

    key = "payroll/2026-11-23/payroll.csv"
    aws_clients.client("s3").put_object(Bucket=settings.data_bucket(), Key=key, Body=b"worker,hours\nW1,8\n")
    run = save_run("transfer-to-pay", iso_days_ago(0, hour=0))
    run.update(actions=[RunRecord.outputs.set([{"kind": "s3", "bucket": settings.data_bucket(), "key": key},
                                               {"kind": "session", "id": "SES-1"},
                                               {"kind": "s3", "bucket": "someone-elses", "key": key}])])
    before = datetime.now(UTC)
    link = client.http.get(f"/runs/{run.run_id}/outputs/0", headers=operator).json_body
    assert link["key"] == key and link["kind"] == "payroll"
    expires = datetime.fromisoformat(link["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=14) < expires - before <= timedelta(minutes=15, seconds=5)
    query = parse_qs(urlparse(link["url"]).query)
    assert urlparse(link["url"]).path.endswith(key) and ("Signature" in query or "X-Amz-Signature" in query)
    fetched = requests.get(link["url"], timeout=10)  # moto answers the signed URL in process
    assert fetched.status_code == 200 and fetched.content == b"worker,hours\nW1,8\n"
    for index in ("1", "2", "3", "x"):
        answer = client.http.get(f"/runs/{run.run_id}/outputs/{index}", headers=operator)
        assert answer.status_code == 404, index
    assert client.http.get("/runs/nope/outputs/0", headers=operator).status_code == 404


# --- operators only -----------------------------------------------------------------------

def test_a_store_token_is_refused_on_every_console_route(client, operator):
    make_session("SES-3")
    run = run_job(client, operator, PURGE)
    s1 = store_headers("S1")
    for path in ["/runs", f"/runs/{run['run_id']}", f"/runs/{run['run_id']}/outputs/0", "/jobs",
                 "/download-sessions/SES-3/package"]:
        assert client.http.get(path, headers=s1).status_code == 403, path


# --- tokens that expire -------------------------------------------------------------------

def test_a_token_expired_a_second_ago_is_refused_and_a_valid_one_works(client, aws):
    from chalicelib.auth import issue_token, list_tokens
    from chalicelib.storage.tokens import ApiToken

    valid = issue_token("operator", label="Ana", expires_in=timedelta(hours=12))
    expired = issue_token("operator", label="Bo", expires_in=timedelta(hours=1))
    record = next(t for t in ApiToken.scan() if t.label == "Bo")
    gone = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    record.update(actions=[ApiToken.expires_at.set(gone)])
    assert client.http.get("/jobs", headers={"Authorization": f"Bearer {valid}"}).status_code == 200
    refused = client.http.get("/jobs", headers={"Authorization": f"Bearer {expired}"})
    unknown = client.http.get("/jobs", headers={"Authorization": "Bearer rs_unknown"})
    assert refused.status_code == unknown.status_code == 401 and refused.json_body == unknown.json_body
    listed = {t["label"]: t for t in list_tokens()}
    assert listed["Bo"]["expires_at"] == gone and listed["Ana"]["expires_at"] > gone


def test_token_lifetimes_are_written_as_minutes_hours_or_days():
    from chalicelib.auth import parse_duration
    from chalicelib.domain.errors import ValidationError

    assert [parse_duration(t) for t in ("30m", "12h", "7d")] == [
        timedelta(minutes=30), timedelta(hours=12), timedelta(days=7)]
    for bad in ("12", "12 h", "0h", "-1d", "1w", "400d", ""):
        with pytest.raises(ValidationError) as refused:
            parse_duration(bad, "--expires-in")
        assert refused.value.errors[0].path == "--expires-in", bad
