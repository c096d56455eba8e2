"""The alert rules and the digest (domain/alerts.py), without AWS."""
from chalicelib.domain import alerts
from chalicelib.domain.alerts import AlertView, digest, plain, run_end_kind


def view(i: int, kind: str = "run_error", job: str | None = "post-inventory", store_id: str | None = None,
         message: str = "failed") -> AlertView:
    return AlertView(f"a{i:04d}", kind, job, store_id, None, None, message, f"2026-11-30T10:00:{i % 60:02d}.000Z")


def test_which_run_ends_raise_an_alert():
    assert run_end_kind("Error", {"failed": 0}) == alerts.RUN_ERROR
    assert run_end_kind("Error", {"failed": 3}) == alerts.RUN_ERROR  # one alert per run
    assert run_end_kind("Ended", {"failed": 2}) == alerts.FAILED_RECORDS
    assert run_end_kind("Canceled", {"failed": 1}) == alerts.FAILED_RECORDS
    assert run_end_kind("Ended", {"failed": 0}) is None
    assert run_end_kind("NotRun", {"failed": 1}) is None


def test_an_alert_id_is_the_same_for_the_same_event():
    assert alerts.alert_id("run_error", "r1") == alerts.alert_id("run_error", "r1")
    assert alerts.alert_id("run_error", "r1") != alerts.alert_id("failed_records", "r1")
    assert alerts.alert_id("run_error", "r1").startswith("run_error-")


def test_alert_text_is_one_line_without_email_addresses_and_bounded():
    assert plain("sending to anna.smith@example.com failed:\n bounce") == "sending to <email> failed: bounce"
    assert len(plain("x" * 5000)) == alerts.MAX_ALERT_MESSAGE_CHARS


def test_one_message_per_kind_and_job_or_store():
    found = digest([view(1), view(2), view(3, kind="failed_records"), view(4, job=None, store_id="S1",
                                                                              kind="upload_conflict")])
    assert [(m.subject, m.alert_ids) for m in found] == [
        ("retail-sync: 1 failed_records alert for post-inventory", ("a0003",)),
        ("retail-sync: 2 run_error alerts for post-inventory", ("a0001", "a0002")),
        ("retail-sync: 1 upload_conflict alert for store S1", ("a0004",))]
    assert "a0001" in found[1].body and "failed" in found[1].body


def test_a_group_over_the_limit_is_split_into_parts_keeping_every_alert():
    members = [view(i, message="m" * 900) for i in range(100)]
    found = digest(members, max_bytes=20_000)
    assert len(found) > 1 and all(len(m.body.encode()) <= 20_000 for m in found)
    assert [i for m in found for i in m.alert_ids] == [a.alert_id for a in sorted(members, key=lambda a: (
        a.created_at, a.alert_id))]
    assert found[0].subject.endswith(f"(part 1 of {len(found)})")
