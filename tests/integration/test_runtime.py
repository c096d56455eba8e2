"""The job runtime on moto: idempotent triggers, single flight, continuations, crash resume,
cancellation and fan-out, observed through run records and the effects jobs leave behind."""
import time

import pytest
from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.jobs import runtime
from chalicelib.jobs.registry import JOBS, Job
from chalicelib.models.params import Params, StoreTargeting, count
from chalicelib.storage.runs import Coordination


class Crash(BaseException):
    """Stands in for a Lambda dying mid-run: no except-clause of the runtime catches it."""


HOOKS: dict = {}


def _effect(item_id: str, run_id: str) -> None:
    """An effect applied exactly once the way jobs do it: the counter's ADD and a per-item marker
    commit together, so re-processing a page that was done before a crash changes nothing."""
    try:
        with TransactWrite(connection=Connection()) as transaction:
            transaction.save(Coordination(f"marker#{run_id}#{item_id}"), condition=Coordination.key.does_not_exist())
            transaction.update(Coordination(f"effect#{item_id}"), actions=[Coordination.fence.add(1)])
    except TransactWriteError as exc:
        if not any(r and r.code == "ConditionalCheckFailed" for r in exc.cancellation_reasons):
            raise


def paged_job(ctx):
    items = [f"item-{i:02d}" for i in range(ctx.params.get("items", 10))]

    def fetch(cursor):
        start = cursor or 0
        page = items[start:start + 2]
        nxt = start + 2
        return page, nxt if nxt < len(items) else None

    for page in ctx.pages("items", fetch):
        HOOKS.setdefault("pages", []).append(list(page))
        for item in page:
            _effect(item, ctx.run_id)
        ctx.count(read=len(page), written=len(page))
        hook = HOOKS.get("after_page")
        if hook:
            hook(ctx)
    return f"processed {ctx.counters['read']}"


class PagedParams(Params):
    items: count(0) = None


JOBS.setdefault("test-paged", Job("test-paged", "Test paged", "pages of two items", "rate(1 day)", paged_job,
                                  params=PagedParams, defaults={"items": 10}))
JOBS.setdefault("test-sharded", Job(
    "test-sharded", "Test sharded", "per-store shards", "rate(1 day)",
    lambda ctx: (_effect(f"store-{ctx.params['store_ids'][0]}", ctx.run_id), ctx.count(written=1))[1],
    params=StoreTargeting, shards=lambda ctx: None if ctx.params.get("store_ids") else ["S1", "S2", "S3"]))


@pytest.fixture(autouse=True)
def _clear_hooks():
    HOOKS.clear()
    yield
    HOOKS.clear()


def effects() -> dict[str, int]:
    return {i.key.removeprefix("effect#"): int(i.fence) for i in Coordination.scan()
            if i.key.startswith("effect#")}


class Event:
    def __init__(self, event_id):
        self.event_id = event_id

    def to_dict(self):
        return {"id": self.event_id}

    time = "2026-11-25T01:00:00Z"
    context = None


def test_duplicated_scheduled_event_makes_one_run(aws):
    from chalicelib.jobs.triggers import on_schedule

    first = on_schedule("test-paged", Event("evt-42"))
    second = on_schedule("test-paged", Event("evt-42"))
    assert first["run_id"] == second["run_id"]
    assert second["status"] == "Ended"
    assert set(effects().values()) == {1}
    assert len(list(runtime.RunRecord.by_job.query("test-paged"))) == 1


def test_duplicated_schedule_through_the_lambda_handler(client):
    from tests.conftest import schedule_event

    event = schedule_event(client, "evt-7")
    a = client.lambda_.invoke("purge_run_history", event).payload
    b = client.lambda_.invoke("purge_run_history", event).payload
    assert a["run_id"] == b["run_id"] and a["status"] == "Ended"


def test_overlapping_run_ends_not_run_naming_the_holder(aws):
    seen = {}

    def start_second(ctx):
        if "second" not in seen:
            run, _ = runtime.submit("test-paged", trigger="manual")
            runtime.execute(run.run_id, runtime.Budget(None))
            seen["second"] = runtime.get_run(run.run_id)

    HOOKS["after_page"] = start_second
    first, _ = runtime.submit("test-paged", trigger="manual")
    runtime.dispatch(first.run_id)
    assert seen["second"].status == "NotRun"
    assert first.run_id in seen["second"].message
    assert runtime.get_run(first.run_id).status == "Ended"


def test_tiny_budget_continues_across_invocations_with_the_same_result(aws, monkeypatch):
    whole, _ = runtime.submit("test-paged", {"items": 9}, trigger="manual")
    runtime.dispatch(whole.run_id)
    expected = runtime.get_run(whole.run_id)
    before = effects()

    monkeypatch.setenv("JOB_TIME_BUDGET_MS", "0")
    invocations = []
    real_execute = runtime.execute
    monkeypatch.setattr(runtime, "execute",
                        lambda run_id, budget: invocations.append(1) or real_execute(run_id, budget))
    split, _ = runtime.submit("test-paged", {"items": 9}, trigger="manual")
    runtime.dispatch(split.run_id)
    result = runtime.get_run(split.run_id)

    assert len(invocations) == 5  # one page of two per invocation
    assert result.status == "Ended"
    assert result.counters == expected.counters == {"read": 9, "written": 9, "skipped": 0, "failed": 0}
    assert result.message == expected.message
    assert {k: v - before[k] for k, v in effects().items()} == {k: 1 for k in before}


def test_too_many_continuations_end_the_run_in_error(aws, monkeypatch):
    monkeypatch.setenv("JOB_TIME_BUDGET_MS", "0")
    monkeypatch.setenv("JOB_MAX_HOPS", "2")
    run, _ = runtime.submit("test-paged", {"items": 10}, trigger="manual")
    runtime.dispatch(run.run_id)
    run = runtime.get_run(run.run_id)
    assert run.status == "Error" and "continuations" in run.message


def expire_lease(job: str) -> None:
    """What the passing of the lease time does: the lock's lease lies in the past."""
    Coordination(f"lock#{job}#all").update(actions=[Coordination.lease_until.set(time.time() - 1)])


def test_a_run_killed_mid_way_resumes_without_repeating_effects(aws):
    from chalicelib.jobs.triggers import on_schedule


    def die_after_second_page(ctx):
        if ctx.counters["read"] == 4 and not HOOKS.get("died"):
            HOOKS["died"] = True
            raise Crash()

    HOOKS["after_page"] = die_after_second_page
    with pytest.raises(Crash):
        on_schedule("test-paged", Event("evt-crash"))
    assert effects() == {f"item-{i:02d}": 1 for i in range(4)}

    # Redelivered at once, the run still holds a live lease: the duplicate leaves it alone.
    assert on_schedule("test-paged", Event("evt-crash"))["status"] == "Executing"
    expire_lease("test-paged")
    # Redelivered after the lease expired (Lambda's async retry): resumes from its checkpoint.
    final = on_schedule("test-paged", Event("evt-crash"))
    assert final["status"] == "Ended"
    # The page in flight at the crash is read again (its checkpoint was never written) ...
    assert HOOKS["pages"].count(["item-02", "item-03"]) == 2
    # ... yet every effect happened once.
    assert effects() == {f"item-{i:02d}": 1 for i in range(10)}


def test_a_new_run_takes_over_from_an_abandoned_one(aws):
    HOOKS["after_page"] = lambda ctx: (_ for _ in ()).throw(Crash())
    crashed, _ = runtime.submit("test-paged", trigger="manual")
    with pytest.raises(Crash):
        runtime.dispatch(crashed.run_id)
    HOOKS.clear()
    expire_lease("test-paged")
    fresh, _ = runtime.submit("test-paged", trigger="manual")
    runtime.dispatch(fresh.run_id)
    assert runtime.get_run(fresh.run_id).status == "Ended"
    old = runtime.get_run(crashed.run_id)
    assert old.status == "Error" and fresh.run_id in old.message


def test_cancel_stops_the_run_at_the_next_page(aws):
    HOOKS["after_page"] = lambda ctx: runtime.cancel(ctx.run_id)
    run, _ = runtime.submit("test-paged", trigger="manual")
    runtime.dispatch(run.run_id)
    run = runtime.get_run(run.run_id)
    assert run.status == "Canceled"
    assert run.counters["read"] == 2
    assert len(effects()) == 2


def test_fan_out_runs_one_shard_per_store_and_closes_the_parent(aws):
    parent, _ = runtime.submit("test-sharded", trigger="manual")
    runtime.dispatch(parent.run_id)
    parent = runtime.get_run(parent.run_id)
    assert parent.status == "Ended", parent.message
    assert parent.counters["written"] == 3
    assert effects() == {"store-S1": 1, "store-S2": 1, "store-S3": 1}
    children = [r for r in runtime.RunRecord.by_job.query("test-sharded") if r.parent_run_id]
    assert sorted(c.params["store_ids"][0] for c in children) == ["S1", "S2", "S3"]


def test_run_records_count_aws_requests_by_operation(aws):
    run, _ = runtime.submit("test-paged", {"items": 4}, trigger="manual")
    runtime.dispatch(run.run_id)
    requests = runtime.get_run(run.run_id).aws_requests
    # One transaction per effect, one UpdateItem per page checkpoint.
    assert requests["dynamodb.TransactWriteItems"] == 4
    assert requests["dynamodb.UpdateItem"] >= 2


def test_unknown_and_mistyped_params_are_rejected(aws):
    from chalicelib.domain.errors import ValidationError

    with pytest.raises(ValidationError) as err:
        runtime.submit("test-paged", {"items": "ten", "colour": "red"}, trigger="manual")
    assert {e.path for e in err.value.errors} == {"params.items", "params.colour"}
