"""Download sessions and status messages: §9's moves through process-status-messages, try count,
stale and purge, the operator's routes and what a store token may do."""
import json
from datetime import UTC, datetime, timedelta

from chalicelib.domain.sessions import ALLOWED, SessionStatus
from tests.conftest import store_headers
from tests.integration.distribution_data import (
    available,
    download,
    load,
    pairs,
    product,
    publish,
    put,
    run_job,
    sessions_of,
    shard_of,
)

STATUSES = [s.value for s in SessionStatus]
T0 = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)


def at(minutes: int, base: datetime = T0) -> str:
    return (base + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def make_session(session_id: str, store_id: str = "S1", status: str = "Available", changed: str | None = None,
                 try_count: int = 0):
    """A session as a job leaves it (with its package), in any status, last changed at ``changed``."""
    from chalicelib.domain.sessions import assortment_rows, build_package_lines
    from chalicelib.storage.download_sessions import DownloadSession, package_key, package_location, put_package

    created = changed or at(0)
    package = package_location(package_key(store_id, 1, session_id))
    rows = assortment_rows({("APPLE", "*")}, set(), False)
    checksum = put_package(package, build_package_lines(
        {"session_id": session_id, "store_id": store_id, "data_group": "assortments", "seq": 1,
         "created_at": created, "full": False}, rows))
    session = DownloadSession(session_id, store_id=store_id, data_group="assortments", seq=1, job_run_id="run-1",
                              status=status, rows=1, checksum=checksum, package=package, created_at=created,
                              changed_at=created, try_count=try_count)
    session.save()
    return session


def post(client, store_id, messages, headers=None):
    return client.http.post(f"/stores/{store_id}/status-messages", headers=headers or store_headers(store_id),
                            body=json.dumps({"messages": messages}))


def report(client, store_id, *messages):
    response = post(client, store_id, [{"session_id": s, "status": st, "at": t} for s, st, t in messages])
    assert response.status_code == 202, response.body
    assert response.json_body == {"accepted": len(messages), "rejected": []}


def session(client, operator, session_id):
    response = client.http.get(f"/download-sessions/{session_id}", headers=operator)
    assert response.status_code == 200, response.body
    return response.json_body


def process(client, operator):
    return run_job(client, operator, "process-status-messages")


def test_every_move_of_the_table_through_the_job_allowed_and_refused(client, operator):
    from chalicelib.storage.download_sessions import session_messages

    cases = [(source, target) for source in STATUSES for target in STATUSES]
    messages = []
    for n, (source, target) in enumerate(cases):
        make_session(f"T{n:03d}", status=source)
        messages.append((f"T{n:03d}", target, at(5)))
    for start in range(0, len(messages), 50):
        report(client, "S1", *messages[start:start + 50])

    run = process(client, operator)
    allowed = sum(len(ALLOWED[SessionStatus(s)]) for s in STATUSES)
    assert run["counters"] == {"read": 121, "written": allowed, "skipped": 0, "failed": 121 - allowed}
    assert len(run["errors"]) == 100  # the run lists the first 100; every message keeps its own
    for n, (source, target) in enumerate(cases):
        after = session(client, operator, f"T{n:03d}")
        [kept] = session_messages(f"T{n:03d}")
        if SessionStatus(target) in ALLOWED[SessionStatus(source)]:
            assert (after["status"], kept.outcome, kept.error) == (target, "applied", None), (source, target)
        else:
            assert (after["status"], kept.outcome) == (source, "refused"), (source, target)
            assert kept.error.startswith(f"illegal move {source} → {target}")
            if source in ("Applied", "Canceled", "NoData", "CreateFailed"):
                assert kept.error.endswith(f"session is final ({source})")
            assert after["message_errors"] == [{"at": at(5), "status": target, "error": kept.error}]


def test_messages_posted_out_of_order_are_applied_in_time_order(client, operator):
    from chalicelib.storage.download_sessions import session_messages

    make_session("X1")
    report(client, "S1", ("X1", "Applied", at(30)))
    report(client, "S1", ("X1", "Downloaded", at(20)), ("X1", "Requested", at(10)))
    run = process(client, operator)
    after = session(client, operator, "X1")
    assert after["status"] == "Applied" and run["errors"] == []
    assert (after["requested_at"], after["downloaded_at"], after["applied_at"]) == (at(10), at(20), at(30))
    # A message older than the session's last change, arriving late, is kept and ignored.
    report(client, "S1", ("X1", "Requested", at(15)))
    late = process(client, operator)
    assert late["counters"]["skipped"] == 1 and late["errors"] == []
    assert "1 arrived late" in late["message"]
    kept = {(m.status, m.outcome) for m in session_messages("X1")}
    assert kept == {("Applied", "applied"), ("Downloaded", "applied"), ("Requested", "applied"),
                    ("Requested", "ignored")}
    assert all(m.pending is None and m.expires is not None for m in session_messages("X1"))


def test_suspended_after_try_count_failures_and_a_manual_retry(client, operator):
    put(client, operator, "parameters", [{"id": "default", "try_count": 2}])
    make_session("F1")
    report(client, "S1", ("F1", "Requested", at(1)), ("F1", "Downloaded", at(2)), ("F1", "ApplyFailed", at(3)),
           ("F1", "Requested", at(4)), ("F1", "Downloaded", at(5)))
    post(client, "S1", [{"session_id": "F1", "status": "ApplyFailed", "at": at(6), "message": "disk full"}])
    run = process(client, operator)
    after = session(client, operator, "F1")
    assert after["status"] == "Suspended" and after["try_count"] == 2
    assert after["message"] == "suspended after 2 failed tries (ApplyFailed: disk full)"
    assert "1 session(s) suspended" in run["message"]
    # The store retries by hand: Suspended → Requested keeps the count, so the next failure suspends again.
    report(client, "S1", ("F1", "Requested", at(7)), ("F1", "DownloadFailed", at(8)))
    process(client, operator)
    assert session(client, operator, "F1")["status"] == "Suspended"


def test_what_can_be_decided_on_receipt_is_refused_per_message_and_not_stored(client, operator):
    from chalicelib.storage.download_sessions import StatusMessageRecord

    make_session("MINE", store_id="S1")
    make_session("THEIRS", store_id="S2")
    soon = (datetime.now(UTC) + timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    response = post(client, "S1", [{"session_id": "MINE", "status": "Requested", "at": at(1)},
                                   {"session_id": "THEIRS", "status": "Requested", "at": at(1)},
                                   {"session_id": "GHOST", "status": "Requested", "at": at(1)},
                                   {"session_id": "MINE", "status": "Downloaded", "at": "2099-01-01T00:00:00Z"},
                                   {"session_id": "MINE", "status": "Done", "at": "yesterday"},
                                   "Requested",
                                   {"session_id": "MINE", "status": "Downloaded", "at": soon}])

    assert response.status_code == 202, response.body
    body = response.json_body
    assert body["accepted"] == 2
    assert [(r["index"], r["session_id"], [e["field"] for e in r["errors"]]) for r in body["rejected"]] == [
        (1, "THEIRS", ["messages[1].session_id"]), (2, "GHOST", ["messages[2].session_id"]),
        (3, "MINE", ["messages[3].at"]), (4, "MINE", ["messages[4].status", "messages[4].at"]),
        (5, None, ["messages[5]"])]
    assert body["rejected"][0]["errors"][0]["message"] == "session of another store: THEIRS"
    assert body["rejected"][1]["errors"][0]["message"] == "unknown session: GHOST"
    assert "more than 5 minutes in the future" in body["rejected"][2]["errors"][0]["message"]
    assert sorted(m.at for m in StatusMessageRecord.scan()) == [at(1), soon]

    elsewhere = post(client, "S2", [{"session_id": "THEIRS", "status": "Requested", "at": at(1)}],
                     headers=store_headers("S1"))
    assert elsewhere.status_code == 403
    for envelope in ([], "MINE", [{"session_id": "MINE", "status": "Requested", "at": at(1)}] * 1001):
        assert post(client, "S1", envelope).status_code == 400


def test_a_message_dated_2099_no_longer_freezes_its_session(client, operator):
    """Issue 11: a message dated 2099 moved the session's clock to 2099 and every later real message
    was ignored ("0 applied, 1 ignored", no error)."""
    make_session("X1")
    refused = post(client, "S1", [{"session_id": "X1", "status": "Requested", "at": "2099-01-01T00:00:00Z"}])
    [rejection] = refused.json_body["rejected"]
    assert refused.json_body["accepted"] == 0 and rejection["errors"][0]["field"] == "messages[0].at"

    report(client, "S1", ("X1", "Requested", at(10)), ("X1", "Downloaded", at(20)))
    run = process(client, operator)

    assert run["counters"]["written"] == 2 and run["errors"] == [], run
    assert session(client, operator, "X1")["status"] == "Downloaded"


def test_a_future_message_kept_before_the_route_refused_them_is_refused_by_the_job(client, operator):
    from chalicelib.storage.base import iso
    from chalicelib.storage.download_sessions import new_message, session_messages

    make_session("X1")
    new_message("S1", {"session_id": "X1", "status": "Requested", "at": "2099-01-01T00:00:00.000Z"}, iso()).save()
    report(client, "S1", ("X1", "Requested", at(10)))

    run = process(client, operator)

    after = session(client, operator, "X1")
    assert (after["status"], after["requested_at"]) == ("Requested", at(10))
    assert run["counters"]["failed"] == 1 and "more than 5 minutes after it was received" in run["errors"][0]["message"]
    assert [e["at"] for e in after["message_errors"]] == ["2099-01-01T00:00:00.000Z"]
    assert {m.outcome for m in session_messages("X1")} == {"applied", "refused"}


def test_illegal_moves_are_recorded_on_the_session_capped(client, operator):
    make_session("A1", status="Applied")
    for start in range(0, 25, 5):
        report(client, "S1", *[("A1", "Requested", at(n + 1)) for n in range(start, start + 5)])
        process(client, operator)

    errors = session(client, operator, "A1")["message_errors"]

    assert len(errors) == 20 and errors[-1]["at"] == at(25) and errors[0]["at"] == at(6)
    assert errors[-1] == {"at": at(25), "status": "Requested",
                          "error": "illegal move Applied → Requested: session is final (Applied)"}


def test_stale_sessions_are_flagged_and_named(client, operator):
    old = (datetime.now(UTC) - timedelta(hours=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    make_session("OLD", store_id="S2", changed=old)
    make_session("NEW", store_id="S2", changed=(datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    run = process(client, operator)
    assert "1 stale session(s): S2 OLD (Available)" in run["message"]
    assert session(client, operator, "OLD")["stale"] is True and session(client, operator, "NEW")["stale"] is False
    report(client, "S2", ("OLD", "Requested", at(0, datetime.now(UTC))))
    process(client, operator)
    assert session(client, operator, "OLD")["stale"] is False


def test_purge_deletes_final_sessions_past_retention_with_their_package_objects(client, operator):
    from chalicelib.storage import aws

    long_ago = (datetime.now(UTC) - timedelta(days=31)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    gone = make_session("GONE", status="Applied", changed=long_ago)
    kept_old = make_session("WAITING", status="Available", changed=long_ago)
    kept_new = make_session("RECENT", status="Applied")
    run = process(client, operator)
    assert "purged 1 final session(s)" in run["message"]
    assert client.http.get("/download-sessions/GONE", headers=operator).status_code == 404
    s3 = aws.client("s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=gone.package["bucket"]).get("Contents", [])}
    assert gone.package["key"] not in keys
    assert {kept_old.package["key"], kept_new.package["key"]} <= keys


def _rerun(client, operator, session_id, expect=202):
    response = client.http.post(f"/download-sessions/{session_id}/rerun", headers=operator)
    assert response.status_code == expect, response.body
    return response.json_body["run"]


def test_operator_cancel_and_rerun(client, operator):
    load(client, operator)
    publish(client, operator, "CORE")
    [first] = available(client, "S1")
    cancel = client.http.post(f"/download-sessions/{first['session_id']}/cancel", headers=operator)
    assert cancel.status_code == 200 and cancel.json_body["status"] == "Canceled"
    again = client.http.post(f"/download-sessions/{first['session_id']}/cancel", headers=operator)
    assert again.status_code == 409
    assert "illegal move Canceled → Canceled: session is final (Canceled)" in again.json_body["error"]["message"]

    run = _rerun(client, operator, first["session_id"])
    assert run["job"] == "process-assortments" and run["status"] == "Ended", run
    assert run["params"] == {"store_ids": ["S1"], "full_sync": True, "rerun_of": first["session_id"]}
    [new] = available(client, "S1")
    assert [o["id"] for o in run["outputs"]] == [new["session_id"]]
    assert new["session_id"] != first["session_id"] and new["seq"] > first["seq"]
    assert session(client, operator, first["session_id"])["replaced_by"] == new["session_id"]
    header, rows = download(new)
    assert header["full"] and pairs(rows) == pairs(download(first)[1])
    # Asking again finds the same run rather than making a third session.
    assert _rerun(client, operator, first["session_id"], expect=200)["run_id"] == run["run_id"]

    # Rerunning a live session cancels it in favour of its replacement.
    [s2] = available(client, "S2")
    _rerun(client, operator, s2["session_id"])
    [replacement] = available(client, "S2")
    old = session(client, operator, s2["session_id"])
    assert old["status"] == "Canceled" and old["replaced_by"] == replacement["session_id"]
    assert old["message"] == f"replaced by {replacement['session_id']}"


def test_a_rerun_sends_the_stores_current_data_not_the_old_package(client, operator):
    load(client, operator)
    publish(client, operator, "CORE")
    [full] = available(client, "S1")
    put(client, operator, "products", [product("PEAR", "FOOD")])
    delta = run_job(client, operator, "process-assortments")
    [_, second] = available(client, "S1")
    assert second["job_run_id"] == shard_of(delta["run_id"], "S1") and pairs(download(second)[1]) == {"PEAR/*"}

    _rerun(client, operator, full["session_id"])
    latest = available(client, "S1")[-1]
    header, rows = download(latest)
    assert header["full"] and latest["seq"] > second["seq"]
    assert "PEAR/*" in pairs(rows) and pairs(rows) == pairs(download(full)[1]) | {"PEAR/*"}
    assert session(client, operator, full["session_id"])["replaced_by"] == latest["session_id"]
    assert sessions_of(run_job(client, operator, "process-assortments")) == []


def test_a_rerun_while_the_job_is_busy_can_be_asked_again(client, operator):
    from chalicelib.storage.runs import acquire_lock, release_lock

    load(client, operator)
    publish(client, operator, "CORE")
    [first] = available(client, "S1")
    acquire_lock("process-assortments", "store#S1", "another-run", 60)  # a one-store run locks its store
    busy = _rerun(client, operator, first["session_id"])
    assert busy["status"] == "NotRun"
    release_lock("process-assortments", "store#S1", "another-run")
    again = _rerun(client, operator, first["session_id"])
    assert again["status"] == "Ended" and again["run_id"] != busy["run_id"]
    assert session(client, operator, first["session_id"])["replaced_by"] == available(client, "S1")[-1]["session_id"]


def test_cancelling_an_unapplied_session_makes_the_next_run_send_a_full_package(client, operator):
    load(client, operator)
    publish(client, operator, "CORE")
    [full] = available(client, "S1")
    put(client, operator, "products", [product("PEAR", "FOOD")])
    assert client.http.post(f"/download-sessions/{full['session_id']}/cancel", headers=operator).status_code == 200

    run = run_job(client, operator, "process-assortments")
    assert len(sessions_of(run)) == 3  # PEAR for every store
    header, rows = download(available(client, "S1")[-1])
    assert header["full"] and pairs(rows) == pairs(download(full)[1]) | {"PEAR/*"}
    assert not download(available(client, "S2")[-1])[0]["full"]
    assert sessions_of(run_job(client, operator, "process-assortments")) == []  # the request is satisfied


def test_cancelling_a_delivery_mode_session_resends_every_mode(client, operator):
    from tests.integration.distribution_data import DELIVERY_MODES

    load(client, operator, delivery_modes=DELIVERY_MODES)
    run_job(client, operator, "process-delivery-modes")
    [first] = available(client, "S1")
    assert client.http.post(f"/download-sessions/{first['session_id']}/cancel", headers=operator).status_code == 200
    run = run_job(client, operator, "process-delivery-modes")
    [resent] = [s for s in available(client, "S1")]
    assert sessions_of(run) == [resent["session_id"]]
    header, rows = download(resent)
    assert header["full"] and {r["key"] for r in rows} == {"STD", "PICKUP"}
    assert sessions_of(run_job(client, operator, "process-delivery-modes")) == []


def test_operator_lists_and_errors(client, operator):
    make_session("A1", store_id="S1")
    make_session("A2", store_id="S2", status="Applied")
    make_session("A3", store_id="S2", status="Requested")

    def ids(query):
        response = client.http.get(f"/download-sessions{query}", headers=operator)
        assert response.status_code == 200, response.body
        return sorted(s["session_id"] for s in response.json_body["sessions"])

    assert ids("?store_id=S2") == ["A2", "A3"]
    assert ids("?store_id=S2&status=Applied") == ["A2"]
    assert ids("?status=Available") == ["A1"]
    assert ids("") == ["A1", "A2", "A3"]
    page = client.http.get("/download-sessions?limit=2", headers=operator).json_body
    rest = client.http.get(f"/download-sessions?limit=2&cursor={page['cursor']}", headers=operator).json_body
    assert len(page["sessions"]) == 2 and len(rest["sessions"]) == 1
    bad = client.http.get("/download-sessions?status=Lost", headers=operator)
    assert bad.status_code == 400 and bad.json_body["error"]["details"][0]["field"] == "status"
    assert client.http.get("/download-sessions/NOPE", headers=operator).status_code == 404
    assert client.http.post("/download-sessions/NOPE/cancel", headers=operator).status_code == 404
    assert client.http.post("/download-sessions/A1/rerun", headers=store_headers("S1")).status_code == 403
    started = make_session("BUSY", status="Started")
    assert client.http.post(f"/download-sessions/{started.session_id}/rerun", headers=operator).status_code == 409


def test_a_session_changed_by_an_operator_meanwhile_keeps_its_messages_for_the_next_run(client, operator, monkeypatch):
    from chalicelib.jobs import distribution, process_status_messages

    make_session("RACE")
    make_session("CALM")
    report(client, "S1", ("RACE", "Requested", at(1)), ("CALM", "Requested", at(1)))
    real = process_status_messages.get_sessions

    def read_then_operator_cancels(ids):
        found = real(ids)
        distribution.cancel_session("RACE")
        return found

    monkeypatch.setattr(process_status_messages, "get_sessions", read_then_operator_cancels)
    run = process(client, operator)
    assert "session RACE changed while its messages were applied" in run["message"]
    assert session(client, operator, "CALM")["status"] == "Requested"
    assert session(client, operator, "RACE")["status"] == "Canceled"
    monkeypatch.setattr(process_status_messages, "get_sessions", real)
    # Applied to the session as it is now: older than the operator's cancel, so ignored.
    after = process(client, operator)
    assert after["counters"] == {"read": 1, "written": 0, "skipped": 1, "failed": 0}


def test_requests_per_message_stay_within_budget(client, operator):
    # A run's fixed part is ~12 requests (lock, run record, stale and purge queries); 100 sessions
    # each reported Requested, Downloaded, Applied is a quiet quarter hour at scale M.
    sessions = 100
    for n in range(sessions):
        make_session(f"B{n:03d}", store_id="S1")
    messages = [(f"B{n:03d}", status, at(minute)) for n in range(sessions)
                for minute, status in ((1, "Requested"), (2, "Downloaded"), (3, "Applied"))]
    for start in range(0, len(messages), 90):
        report(client, "S1", *messages[start:start + 90])
    run = process(client, operator)
    assert run["counters"]["written"] == len(messages)
    assert sum(run["aws_requests"].values()) / len(messages) <= 0.1, run["aws_requests"]
