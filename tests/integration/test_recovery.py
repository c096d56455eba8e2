"""Runs that die or meet a transient AWS fault (DOMAIN §13 "Runs that die"), on moto: the run
stays resumable, the handler fails so AWS delivers again, and a redelivery or the next trigger
finishes the work; leases of minutes; a fan-out that dies leaves no shard waiting for good; a
cancel that comes too late is reported."""
from __future__ import annotations

import json

import botocore.client
import pytest
from botocore.exceptions import ClientError

from chalicelib import clock, settings
from chalicelib.jobs import runtime
from chalicelib.storage.runs import RunRecord, lock_owner
from tests.integration.test_runtime import HOOKS, Crash, Event, effects  # noqa: F401  (registers the test jobs)


@pytest.fixture(autouse=True)
def _clock():
    clock.reset()
    yield
    clock.reset()


class Faults:
    """Throttle AWS calls below the SDK, as if DynamoDB kept throttling past its retries."""

    def __init__(self):
        self.rules: list[tuple[str, set[int] | None]] = []
        self.calls: dict[str, int] = {}

    def throttle(self, operation: str, calls: set[int] | None = None) -> None:
        """Throttle ``operation`` on these call numbers (1-based), or on every call."""
        self.rules.append((operation, calls))

    def clear(self) -> None:
        self.rules.clear()

    def check(self, operation: str) -> None:
        self.calls[operation] = number = self.calls.get(operation, 0) + 1
        for name, calls in self.rules:
            if name == operation and (calls is None or number in calls):
                raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                             "Message": "Rate of requests exceeds the allowed throughput."},
                                   "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)


@pytest.fixture
def faults(monkeypatch):
    injected = Faults()
    original = botocore.client.BaseClient._make_api_call

    def make_api_call(self, operation, params):
        injected.check(operation)
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)
    return injected


def runs_of(job: str) -> list[RunRecord]:
    return list(RunRecord.by_job.query(job))


# --- transient faults -------------------------------------------------------------------

def test_a_throttled_run_waits_keeps_its_checkpoint_and_the_redelivered_event_finishes_it(aws, faults):
    from chalicelib.jobs.triggers import on_schedule

    faults.throttle("TransactWriteItems", {4})  # after the run's own: the first item of the second page
    with pytest.raises(runtime.RunWillRetry):
        on_schedule("test-paged", Event("evt-throttled"))
    [run] = runs_of("test-paged")
    assert run.status == "Waiting"
    assert "ProvisionedThroughputExceededException" in run.message and "1 of 5" in run.message
    assert run.checkpoint["state"]["cursor:items"] == 2  # the first page stays done
    assert lock_owner("test-paged", "all")[0] == run.run_id  # kept for the retry

    final = on_schedule("test-paged", Event("evt-throttled"))  # what Lambda's async retry does

    assert (final["run_id"], final["status"]) == (run.run_id, "Ended")
    assert final["counters"]["read"] == 10
    assert effects() == {f"item-{i:02d}": 1 for i in range(10)}
    assert HOOKS["pages"].count(["item-00", "item-01"]) == 1  # resumed after the saved page
    assert lock_owner("test-paged", "all")[0] is None


def test_the_next_scheduled_run_resumes_a_run_left_waiting(aws, faults):
    from chalicelib.jobs.triggers import on_schedule

    faults.throttle("TransactWriteItems", {6})
    with pytest.raises(runtime.RunWillRetry):
        on_schedule("test-paged", Event("tick-1"))
    # Lambda's retries are spent; an hour later the next tick (a new event id) comes.
    clock.advance(3600)
    resumed = on_schedule("test-paged", Event("tick-2"))
    assert resumed["status"] == "Ended"
    assert [r.run_id for r in runs_of("test-paged")] == [resumed["run_id"]]  # no second run
    assert effects() == {f"item-{i:02d}": 1 for i in range(10)}
    # A late redelivery of either tick finds the same, finished run.
    assert on_schedule("test-paged", Event("tick-1"))["run_id"] == resumed["run_id"]


def test_transient_faults_end_the_run_in_error_after_five_attempts(aws, faults):
    from chalicelib.jobs.triggers import on_schedule

    faults.throttle("TransactWriteItems", set(range(2, 100)))  # every effect (the first is the run's own)
    for _attempt in range(4):
        with pytest.raises(runtime.RunWillRetry):
            on_schedule("test-paged", Event("evt-always"))
    final = on_schedule("test-paged", Event("evt-always"))  # the fifth: final, the handler succeeds
    assert final["status"] == "Error"
    assert "gave up after 5 transient AWS fault(s)" in final["message"]
    assert "ProvisionedThroughputExceededException" in final["message"]
    assert lock_owner("test-paged", "all")[0] is None


def test_a_fatal_aws_error_still_ends_the_run_in_error(aws, monkeypatch):
    from chalicelib.jobs.triggers import on_schedule

    def denied(ctx):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutItem")

    HOOKS["after_page"] = denied
    final = on_schedule("test-paged", Event("evt-denied"))
    assert final["status"] == "Error" and "AccessDenied" in final["message"]


def test_a_throttled_shard_is_redelivered_by_sqs_and_its_parent_closes(client, faults, monkeypatch):
    from chalicelib.storage import aws as clients

    sqs = clients.client("sqs")
    queue = sqs.get_queue_url(QueueName=settings.shard_queue_name())["QueueUrl"]
    monkeypatch.setenv("SHARD_QUEUE_URL", queue)
    monkeypatch.setenv("RUN_DISPATCH", "lambda")
    parent, _ = runtime.submit("test-sharded", trigger="manual")
    runtime.execute(parent.run_id, runtime.Budget(None))
    # Once its shards exist the parent no longer holds the job lock; they lock their stores.
    assert lock_owner("test-sharded", "all")[0] is None
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 3

    faults.throttle("TransactWriteItems", {faults.calls.get("TransactWriteItems", 0) + 1})
    events = [client.events.generate_sqs_event(message_bodies=[m["Body"]], queue_name="retail-sync-shards")
              for m in messages]
    with pytest.raises(runtime.RunWillRetry):
        client.lambda_.invoke("run_shard", events[0])
    for event in events:  # SQS delivers the failed message again, and the others
        client.lambda_.invoke("run_shard", event)
    parent = runtime.get_run(parent.run_id)
    assert parent.status == "Ended" and parent.counters["written"] == 3, parent.message
    assert effects() == {"store-S1": 1, "store-S2": 1, "store-S3": 1}


# --- migration: a throttled batch write while staging -----------------------------------

def test_a_throttled_batch_write_while_staging_is_redelivered_and_finishes_staging(client, operator, faults):
    from tests.integration.test_migration import PRODUCTS_CSV, put, s3_event, staged_rows

    key = "migration/data/products/items.csv"
    event = s3_event(key, put(key, PRODUCTS_CSV))
    faults.throttle("BatchWriteItem")
    with pytest.raises(runtime.RunWillRetry):  # on_migration_drop fails: S3's async invoke retries
        client.lambda_.invoke("on_migration_drop", event)
    [run] = runs_of("stage-migration-file")
    assert run.status == "Waiting" and "ProvisionedThroughputExceededException" in run.message
    job = client.http.get(f"/migration/jobs/{run.run_id}", headers=operator).json_body
    assert job["status"] == "Staging"

    faults.clear()
    handled = client.lambda_.invoke("on_migration_drop", event).payload["handled"][0]

    assert handled["staging_job_id"] == run.run_id and handled["run_status"] == "Ended"
    job = client.http.get(f"/migration/jobs/{run.run_id}", headers=operator).json_body
    assert (job["status"], job["rows"]) == ("StagedWithErrors", 5)
    assert len(staged_rows(run.run_id)) == 5
    assert len(runs_of("stage-migration-file")) == 1


# --- leases: a killed run blocks its job for one lease, then the next tick takes over ---

def test_a_killed_run_blocks_its_job_for_one_lease_then_the_next_tick_finishes_it(aws):
    from chalicelib.jobs.triggers import on_schedule

    lease = settings.lock_lease_seconds()
    assert 120 <= lease <= 300  # minutes, not hours

    def die_after_second_page(ctx):
        if ctx.counters["read"] == 4 and not HOOKS.get("died"):
            HOOKS["died"] = True
            raise Crash()

    HOOKS["after_page"] = die_after_second_page
    with pytest.raises(Crash):
        on_schedule("test-paged", Event("tick-1"))
    killed_at = clock.now()
    owner, lease_until = lock_owner("test-paged", "all")
    blocked_for = lease_until - killed_at
    assert 0 < blocked_for <= lease

    clock.advance(blocked_for - 1)
    assert on_schedule("test-paged", Event("tick-2"))["status"] == "NotRun"
    clock.advance(2)
    final = on_schedule("test-paged", Event("tick-3"))

    assert (final["run_id"], final["status"]) == (owner, "Ended")  # the dead run, resumed
    assert final["counters"]["read"] == 10
    assert effects() == {f"item-{i:02d}": 1 for i in range(10)}
    assert "Waiting" not in {r.status for r in runs_of("test-paged")}


def test_a_long_run_keeps_its_lease_with_heartbeats(aws):
    lease = settings.lock_lease_seconds()

    def slow_page(ctx):
        clock.advance(lease / 2)  # each page takes half a lease

    HOOKS["after_page"] = slow_page
    run, _ = runtime.submit("test-paged", trigger="manual")
    seen = {}

    def check(ctx):
        slow_page(ctx)
        seen.setdefault("leases", []).append(lock_owner("test-paged", "all")[1] - clock.now())

    HOOKS["after_page"] = check
    runtime.dispatch(run.run_id)
    assert runtime.get_run(run.run_id).status == "Ended"
    assert min(seen["leases"]) > 0  # never lapsed while the run was alive


# --- fan-out: killed while creating its shards ------------------------------------------

def _dies_at_second_shard(real_submit):
    """``runtime.submit`` that kills the invocation when the second shard run is about to be made."""
    shards = []

    def submit(*args, **kwargs):
        if kwargs.get("parent_run_id"):
            shards.append(1)
            if len(shards) == 2:
                raise Crash()
        return real_submit(*args, **kwargs)

    return submit


def test_post_statements_killed_while_fanning_out_is_finished_by_the_next_tick(client, operator, monkeypatch):
    from chalicelib.jobs.triggers import on_schedule
    from tests.integration.retail import load_master_data, sale, transaction, upload

    load_master_data()
    for store in ("S1", "S2", "S3"):
        sold = sale(f"{store}-T1", [("BALL", None, 1, "5.00")], store_id=store)
        assert upload(client, store, [sold]).status_code == 200
    real_submit = runtime.submit
    monkeypatch.setattr(runtime, "submit", _dies_at_second_shard(real_submit))
    with pytest.raises(Crash):
        on_schedule("post-statements", Event("tick-1"))
    monkeypatch.setattr(runtime, "submit", real_submit)
    [parent] = [r for r in runs_of("post-statements") if not r.parent_run_id]
    assert [r.status for r in runs_of("post-statements") if r.parent_run_id] == ["Waiting"]
    owner, lease_until = lock_owner("post-statements", "all")
    assert owner == parent.run_id and lease_until - clock.now() <= settings.lock_lease_seconds()

    clock.advance(settings.lock_lease_seconds())
    final = on_schedule("post-statements", Event("tick-2"))

    assert (final["run_id"], final["status"]) == (parent.run_id, "Ended"), final["message"]
    assert "2 shards: 2 Ended" in final["message"]  # one per legal entity: S1 and S2 are USRT's, S3 CART's
    history = runs_of("post-statements")
    assert len(history) == 3 and {r.status for r in history} == {"Ended"}
    for store in ("S1", "S2", "S3"):
        assert transaction(client, store, f"{store}-T1")["status"] == "Posted"
    assert lock_owner("post-statements", "all")[0] is None
    assert on_schedule("post-statements", Event("tick-3"))["status"] == "Ended"  # not blocked


def test_a_dead_parent_taken_over_by_another_run_closes_its_unstarted_shards(aws, monkeypatch):
    real_submit = runtime.submit
    monkeypatch.setattr(runtime, "submit", _dies_at_second_shard(real_submit))
    dead, _ = runtime.submit("test-sharded", trigger="manual")
    with pytest.raises(Crash):
        runtime.dispatch(dead.run_id)
    monkeypatch.setattr(runtime, "submit", real_submit)

    clock.advance(settings.lock_lease_seconds())
    other, _ = runtime.submit("test-sharded", {"store_ids": ["S1", "S2"]}, trigger="manual")
    runtime.dispatch(other.run_id)

    dead = runtime.get_run(dead.run_id)
    assert dead.status == "Error" and other.run_id in dead.message
    [orphan] = [r for r in runs_of("test-sharded") if r.parent_run_id == dead.run_id]
    assert orphan.status == "NotRun" and dead.run_id in orphan.message
    assert runtime.get_run(other.run_id).status == "Ended"
    assert "Waiting" not in {r.status for r in runs_of("test-sharded")}


# --- cancel after the last safe point -----------------------------------------------------

def test_a_cancel_after_the_last_page_is_reported_on_the_run(aws):
    def cancel_at_the_end(ctx):
        if ctx.counters["read"] == 10:
            runtime.cancel(ctx.run_id)

    HOOKS["after_page"] = cancel_at_the_end
    run, _ = runtime.submit("test-paged", trigger="manual")
    runtime.dispatch(run.run_id)
    run = runtime.get_run(run.run_id)
    assert run.status == "Ended"
    assert run.message.startswith("cancel requested after the last safe point; the run had done all its work")
    assert "processed 10" in run.message
    assert len(effects()) == 10


def test_cancelling_a_run_waiting_to_retry_releases_its_lock(aws, faults):
    from chalicelib.jobs.triggers import on_schedule

    faults.throttle("TransactWriteItems", {2})  # the first item (the first is the run's own)
    with pytest.raises(runtime.RunWillRetry):
        on_schedule("test-paged", Event("evt-c"))
    [run] = runs_of("test-paged")
    canceled = runtime.cancel(run.run_id)
    assert canceled.status == "Canceled" and canceled.message == "canceled while waiting to retry"
    assert lock_owner("test-paged", "all")[0] is None
    assert on_schedule("test-paged", Event("evt-c"))["status"] == "Canceled"  # a late redelivery


def test_run_job_raises_for_a_transient_fault_so_lambda_retries(client, faults):
    run, _ = runtime.submit("test-paged", {"items": 4}, trigger="manual")
    faults.throttle("TransactWriteItems", {1})
    with pytest.raises(runtime.RunWillRetry):
        client.lambda_.invoke("run_job", {"run_id": run.run_id})
    assert client.lambda_.invoke("run_job", {"run_id": run.run_id}).payload["status"] == "Ended"
    assert json.loads(json.dumps(effects())) == {f"item-{i:02d}": 1 for i in range(4)}


def test_cancelling_a_fanned_out_parent_cancels_its_queued_shards_and_closes_it(client, monkeypatch):
    from chalicelib.storage import aws as clients

    queue = clients.client("sqs").get_queue_url(QueueName=settings.shard_queue_name())["QueueUrl"]
    monkeypatch.setenv("SHARD_QUEUE_URL", queue)
    monkeypatch.setenv("RUN_DISPATCH", "lambda")
    parent, _ = runtime.submit("test-sharded", trigger="manual")
    runtime.execute(parent.run_id, runtime.Budget(None))
    runtime.cancel(parent.run_id)
    parent = runtime.get_run(parent.run_id)
    assert parent.status == "Canceled", parent.message
    assert {r.status for r in runs_of("test-sharded") if r.parent_run_id} == {"Canceled"}
    assert effects() == {}


def test_a_single_store_run_of_a_fanning_out_job_waits_for_that_stores_shard(aws):
    from chalicelib.storage.runs import acquire_lock

    acquire_lock("test-sharded", "store#S1", "shard-of-another-run", settings.lock_lease_seconds())
    run, _ = runtime.submit("test-sharded", {"store_ids": ["S1"]}, trigger="manual")
    runtime.dispatch(run.run_id)
    run = runtime.get_run(run.run_id)
    assert run.status == "NotRun" and "shard-of-another-run" in run.message
    other, _ = runtime.submit("test-sharded", {"store_ids": ["S2"]}, trigger="manual")
    runtime.dispatch(other.run_id)
    assert runtime.get_run(other.run_id).status == "Ended"


# --- a fan-out parent whose close was lost --------------------------------------------------

def _fanned_out_with_the_last_shard_killed(client, monkeypatch, at: str):
    """Fan ``test-sharded`` out through SQS and run its shards; the last one dies in ``at``
    (``runtime._finish``: its effect made, not ended; ``fanout.shard_done``: ended, not counted
    off its parent)."""
    sqs = clients_sqs()
    queue = sqs.get_queue_url(QueueName=settings.shard_queue_name())["QueueUrl"]
    monkeypatch.setenv("SHARD_QUEUE_URL", queue)
    monkeypatch.setenv("RUN_DISPATCH", "lambda")
    parent, _ = runtime.submit("test-sharded", trigger="schedule", idempotency_key="tick-1")
    runtime.execute(parent.run_id, runtime.Budget(None))
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    events = [client.events.generate_sqs_event(message_bodies=[m["Body"]], queue_name="retail-sync-shards")
              for m in messages]
    for event in events[:-1]:
        client.lambda_.invoke("run_shard", event)

    def killed(*args, **kwargs):
        raise Crash()

    with monkeypatch.context() as patched:
        patched.setattr(f"chalicelib.jobs.{at}", killed)
        with pytest.raises(Crash):
            client.lambda_.invoke("run_shard", events[-1])
    return runtime.get_run(parent.run_id), events


def _fanned_out_with_the_last_shard_killed_at_its_end(client, monkeypatch):
    """The last shard dies right after its status became final, before it counted itself off the
    parent (so the parent's close is lost)."""
    parent, events = _fanned_out_with_the_last_shard_killed(client, monkeypatch, "fanout.shard_done")
    assert parent.status == "Executing" and parent.shards_pending == 1  # the symptom: open for good
    assert {r.status for r in runs_of("test-sharded") if r.parent_run_id} == {"Ended"}
    return parent, events


def clients_sqs():
    from chalicelib.storage import aws as clients

    return clients.client("sqs")


def test_a_shard_redelivered_after_its_end_closes_its_parent(client, monkeypatch):
    parent, events = _fanned_out_with_the_last_shard_killed_at_its_end(client, monkeypatch)

    client.lambda_.invoke("run_shard", events[-1])  # SQS delivers the message of the dead invocation again

    parent = runtime.get_run(parent.run_id)
    assert parent.status == "Ended" and parent.message == "3 shards: 3 Ended"
    assert parent.counters["written"] == 3
    assert effects() == {"store-S1": 1, "store-S2": 1, "store-S3": 1}
    for store in ("S1", "S2", "S3"):
        assert lock_owner("test-sharded", f"store#{store}")[0] is None
    client.lambda_.invoke("run_shard", events[-1])  # once more: nothing changes
    assert runtime.get_run(parent.run_id).ended_at == parent.ended_at


def test_the_next_tick_closes_a_parent_whose_shards_all_ended(client, monkeypatch):
    from chalicelib.jobs.triggers import on_schedule

    parent, _ = _fanned_out_with_the_last_shard_killed_at_its_end(client, monkeypatch)
    clock.advance(3600)  # SQS gave up on the message; the next tick (a new event id) comes

    tick_2 = on_schedule("test-sharded", Event("tick-2"))

    parent = runtime.get_run(parent.run_id)
    assert parent.status == "Ended" and parent.message == "3 shards: 3 Ended"
    assert parent.counters["written"] == 3
    # Left open: only tick-2's own fan-out, whose shards wait in the queue.
    assert [r.run_id for r in RunRecord.open_fanouts.query("test-sharded")] == [tick_2["run_id"]]


def test_the_next_tick_resumes_a_shard_that_died_mid_way_and_closes_its_parent(client, monkeypatch):
    from chalicelib.jobs.triggers import on_schedule

    # Its effect is made; it dies before it ends.
    parent, events = _fanned_out_with_the_last_shard_killed(client, monkeypatch, "runtime._finish")
    # The redelivery within the lease finds it busy (it may be alive); then nothing delivers it.
    client.lambda_.invoke("run_shard", events[-1])
    [dead] = [r for r in runs_of("test-sharded") if r.parent_run_id and not r.is_final]
    assert dead.status == "Executing"

    clock.advance(settings.lock_lease_seconds() + 1)
    monkeypatch.setenv("RUN_DISPATCH", "inline")
    on_schedule("test-sharded", Event("tick-2"))

    assert runtime.get_run(dead.run_id).status == "Ended"
    parent = runtime.get_run(parent.run_id)
    assert parent.status == "Ended" and parent.message == "3 shards: 3 Ended"
    # Once per fan-out (tick-2 fans out too): the resumed shard did not make its effect twice.
    assert effects() == {"store-S1": 2, "store-S2": 2, "store-S3": 2}


def test_looking_for_open_parents_costs_one_query_when_none_is_left(aws):
    from chalicelib.jobs.registry import get_job
    from chalicelib.storage.metering import metered

    run, _ = runtime.submit("test-sharded", trigger="manual")
    runtime.dispatch(run.run_id)  # fans out and closes normally: nothing stays open
    assert runtime.get_run(run.run_id).status == "Ended"
    with metered() as requests:
        runtime._close_open_fan_outs(get_job("test-sharded"), "next-run")
    assert dict(requests) == {"dynamodb.Query": 1}


# --- a run an HTTP request created but never handed over ----------------------------------

@pytest.fixture
def invokes(monkeypatch):
    """As deployed (``RUN_DISPATCH=lambda``, also inside routes) with the test playing Lambda: record
    ``Invoke`` calls; ``throttled`` of them answer a throttle past the SDK's retries."""
    from chalice.test import BaseClient

    patched = BaseClient._patched_env_vars
    monkeypatch.setattr(BaseClient, "_patched_env_vars",
                        lambda self, env: patched(self, {**env, "RUN_DISPATCH": "lambda"}))
    calls = {"invoked": [], "throttled": 0}
    original = botocore.client.BaseClient._make_api_call

    def make_api_call(self, operation, params):
        if operation == "Invoke":
            if calls["throttled"]:
                calls["throttled"] -= 1
                raise ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"},
                                   "ResponseMetadata": {"HTTPStatusCode": 429}}, operation)
            calls["invoked"].append(json.loads(params["Payload"])["run_id"])
            return {"StatusCode": 202}
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)
    return calls


def _staged(client) -> str:
    from tests.integration.test_migration import PRODUCTS_CSV, put, s3_event

    key = "migration/data/products/items.csv"
    handled = client.lambda_.invoke("on_migration_drop", s3_event(key, put(key, PRODUCTS_CSV))).payload["handled"][0]
    return handled["staging_job_id"]


def _copy(client, operator, job_id: str, key: str):
    return client.http.post(f"/migration/jobs/{job_id}/copy-to-target", headers={**operator, "Idempotency-Key": key},
                            body=json.dumps({"rows": "all"}))


def test_a_throttled_hand_over_answers_503_and_the_resent_request_starts_the_run(client, operator, invokes):
    job_id = _staged(client)
    invokes["throttled"] = 1

    refused = _copy(client, operator, job_id, "copy-1")

    assert refused.status_code == 503, refused.body
    assert refused.json_body["error"]["code"] == "service_unavailable"
    assert "same Idempotency-Key" in refused.json_body["error"]["message"]
    assert refused.headers["Retry-After"] == "30"
    [run] = runs_of("copy-migration-to-target")
    assert run.status == "Waiting" and invokes["invoked"] == []

    again = _copy(client, operator, job_id, "copy-1")  # the caller sends the same request again

    assert again.status_code == 202 and again.json_body["run"]["run_id"] == run.run_id
    assert invokes["invoked"] == [run.run_id]
    assert runtime.run_invoked({"run_id": run.run_id})["status"] == "Ended"  # Lambda runs it
    assert len(runs_of("copy-migration-to-target")) == 1


def test_a_run_whose_request_died_before_the_hand_over_is_started_by_the_resent_request(client, operator, invokes,
                                                                                       monkeypatch):
    job_id = _staged(client)
    real_dispatch = runtime.dispatch

    def killed(run_id):
        raise Crash()

    monkeypatch.setattr(runtime, "dispatch", killed)
    with pytest.raises(Crash):
        _copy(client, operator, job_id, "copy-1")
    monkeypatch.setattr(runtime, "dispatch", real_dispatch)
    [run] = runs_of("copy-migration-to-target")
    assert run.status == "Waiting"

    again = _copy(client, operator, job_id, "copy-1")
    assert again.status_code == 202 and invokes["invoked"] == [run.run_id]
    # The first hand-over was slow, not lost: both reach run_job; the run executes once.
    assert runtime.run_invoked({"run_id": run.run_id})["status"] == "Ended"
    ended = runtime.get_run(run.run_id)
    assert runtime.run_invoked({"run_id": run.run_id})["status"] == "Ended"
    assert runtime.get_run(run.run_id).ended_at == ended.ended_at and ended.attempt == 1
    # Once it has run, the same request answers the finished run and dispatches nothing.
    assert _copy(client, operator, job_id, "copy-1").status_code == 200
    assert invokes["invoked"] == [run.run_id]
