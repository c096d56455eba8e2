"""The harness itself: it reaches boto3 and PynamoDB calls, passes a job that recovers, and fails a
job that a crash leaves with an item missing (the harness would catch that bug)."""
import pytest

from tests.crash.harness import MODES, Crashes, Invocation
from tests.crash.scenarios import Scenario


def _write_both(ctx, skip_when_started: bool) -> str:
    from chalicelib import settings
    from chalicelib.storage import aws
    from chalicelib.storage.records import MasterRecord

    if skip_when_started and MasterRecord.count("selftest", MasterRecord.id == "a"):
        return "already done"  # the bug: "a" exists, so it believes "b" and the object exist too
    MasterRecord("selftest", "a", data={"n": 1}, updated_at="2026-01-01T00:00:00.000Z").save()
    MasterRecord("selftest", "b", data={"n": 2}, updated_at="2026-01-01T00:00:00.000Z").save()
    aws.client("s3").put_object(Bucket=settings.data_bucket(), Key="selftest/done.txt", Body=b"a and b")
    return "wrote a and b"


@pytest.fixture
def selftest_jobs(monkeypatch):
    from chalicelib.jobs import registry

    for name, skip in (("crash-selftest-good", False), ("crash-selftest-broken", True)):
        monkeypatch.setitem(registry.JOBS, name, registry.Job(
            name=name, title=name, description="crash harness self-test", schedule="",
            run=lambda ctx, skip=skip: _write_both(ctx, skip)))


def _scenario(job: str) -> Scenario:
    def submit() -> Invocation:
        from chalicelib.jobs import runtime

        run, _ = runtime.submit(job, trigger="schedule")
        return Invocation("run_job", {"run_id": run.run_id})

    holder = {}

    def setup(world):
        holder["first"] = submit()

    return Scenario(job, setup, start=lambda world: holder["first"], again=lambda world, n: submit(), ticks=True)


@pytest.mark.crash
def test_a_job_that_recovers_ends_in_the_fault_free_state_at_every_crash_point(crash_world, selftest_jobs):
    outcome = Crashes(crash_world, _scenario("crash-selftest-good")).run()
    assert {"dynamodb.PutItem", "s3.PutObject", "dynamodb.UpdateItem"} <= set(outcome.calls)  # PynamoDB and boto3
    assert outcome.tried == len(MODES) * len(outcome.calls) > 0
    assert outcome.failures == [], outcome.failures


@pytest.mark.crash
def test_a_crash_that_leaves_an_item_missing_fails_the_harness(crash_world, selftest_jobs):
    outcome = Crashes(crash_world, _scenario("crash-selftest-broken")).run()
    assert outcome.failures, "the harness missed a job that loses an item"
    put_a = outcome.calls.index("dynamodb.Query") + 1  # the job's check, then its first write
    assert outcome.calls[put_a:put_a + 3] == ["dynamodb.PutItem", "dynamodb.PutItem", "s3.PutObject"]
    killed_after_a = [f for f in outcome.failures if f.startswith(f"kill-after k={put_a} ")]
    assert killed_after_a and "table:MasterRecord: 1 missing" in killed_after_a[0], outcome.failures
    assert "s3: 1 missing" in killed_after_a[0]
    # Killed before "a" is written, or "a" throttled, the next run starts from scratch and recovers.
    assert not [f for f in outcome.failures if f.startswith((f"kill-before k={put_a} ", f"throttle k={put_a} "))]
