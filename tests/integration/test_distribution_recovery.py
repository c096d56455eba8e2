"""Runs of process-assortments and process-delivery-modes that die or meet throttling mid-page:
the next scheduled run — a new run id — finishes what they committed (DOMAIN §13).

Faults are injected below the code under test, with botocore's event hooks on the application's
clients: a kill (a ``BaseException`` nothing in the runtime catches) after AWS accepted the call,
or a throttling error past the SDK's retries.
"""
import contextlib
import json

import pytest
from botocore.exceptions import ClientError

from tests.conftest import schedule_event
from tests.integration.distribution_data import (
    DELIVERY_MODES,
    PRODUCTS,
    STORES,
    available,
    download,
    load,
    pairs,
    product,
    publish,
    put,
    run_job,
    sessions_of,
)

NEW = product("PEAR", "FOOD")


class Killed(BaseException):
    """The Lambda is gone: no except-clause of the runtime or the job catches it."""


def _clients():
    from chalicelib.storage import aws
    from chalicelib.storage.tables import ALL_MODELS

    return [model._get_connection().connection.client for model in ALL_MODELS] + [aws.client("s3")]


@contextlib.contextmanager
def fault(operation: str, *, nth: int = 1, kill: bool = False, table: str | None = None):
    """Fail the ``nth`` ``service.Operation`` call (on ``table`` if given) of the application's
    clients: ``kill`` after AWS accepted it — and every later call, as the process is gone — or
    throttle it (before it is sent). Yields the calls seen, to assert the fault was hit."""
    service, name = operation.split(".")
    seen: list[int] = []
    dead: list[bool] = []

    def matches(request) -> bool:  # the HTTP request botocore is about to send
        if table is None:
            return True
        body = json.loads(request.get("body") or b"{}")
        return any(t.endswith(table) for t in [body.get("TableName", ""), *body.get("RequestItems", {})])

    def before(params, model, **_):
        if dead:
            raise Killed("the process is gone")
        if not kill and model.name == name and matches(params):
            seen.append(1)
            if len(seen) == nth:
                raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                             "Message": "throttled past the SDK's retries"}}, name)

    def after(model, context, **_):
        if kill and matches(context.get("params", {})):
            seen.append(1)
            if len(seen) == nth:
                dead.append(True)
                raise Killed(f"killed after {operation} #{nth} was accepted")

    def remember(params, context, **_):
        context["params"] = params

    clients = _clients()
    for c in clients:
        c.meta.events.register("before-call", before, unique_id="fault-before")
        c.meta.events.register(f"before-call.{service}.{name}", remember, unique_id="fault-remember")
        c.meta.events.register(f"after-call.{service}.{name}", after, unique_id="fault-after")
    try:
        yield seen
    finally:
        for c in clients:
            c.meta.events.unregister("before-call", unique_id="fault-before")
            c.meta.events.unregister(f"before-call.{service}.{name}", unique_id="fault-remember")
            c.meta.events.unregister(f"after-call.{service}.{name}", unique_id="fault-after")


def left_started() -> list[str]:
    from chalicelib.storage.download_sessions import DownloadSession

    return [s.session_id for s in DownloadSession.by_status.query("Started")]


def scheduled(client, job: str, event_id: str):
    """The job's schedule fires (its own EventBridge event id: a new run id)."""
    from chalicelib.jobs import runtime

    return runtime.run_scheduled(job, schedule_event(client, event_id)["id"])


def next_tick(client, job: str, event_id: str):
    """Minutes later — the dead run's lease has expired — the schedule fires again."""
    from chalicelib import clock

    clock.advance(3600)
    try:
        return scheduled(client, job, event_id)
    finally:
        clock.reset()


def _published(client, operator):
    """CORE is published (every store has its first session); then HQ adds PEAR to the catalog."""
    load(client, operator)
    publish(client, operator, "CORE")
    put(client, operator, "products", [*PRODUCTS, NEW])
    assert all(len(available(client, store["id"])) == 1 for store in STORES)


def _assert_every_store_has(client, key: str, group: str = "assortments"):
    """Each store has an Available session of ``group`` carrying ``key``, and none is left Started."""
    for store in STORES:
        sessions = [s for s in available(client, store["id"]) if s["session_id"].startswith(group[:2].upper())]
        assert any(key in pairs(download(s)[1]) for s in sessions), (store["id"], sessions)
    assert left_started() == []


@pytest.mark.parametrize(("operation", "nth", "table"), [
    ("dynamodb.BatchWriteItem", 2, "distribution-state"),  # the markers: the stores' new state is committed
    ("dynamodb.UpdateItem", 2, "download-sessions"),  # S2's Started → Available (S1 made it)
])
def test_a_kill_after_the_commit_is_finished_by_the_next_scheduled_run(client, operator, operation, nth, table):
    _published(client, operator)
    with fault(operation, nth=nth, kill=True, table=table) as seen, pytest.raises(Killed):
        scheduled(client, "process-assortments", "evt-dies")
    assert len(seen) == nth

    run = next_tick(client, "process-assortments", "evt-next")
    assert run.status == "Ended", run.message
    _assert_every_store_has(client, "PEAR/*")
    assert sessions_of(run_job(client, operator, "process-assortments")) == []


def test_a_throttled_make_available_is_finished_by_the_next_scheduled_run(client, operator):
    _published(client, operator)
    with fault("dynamodb.UpdateItem", table="download-sessions") as seen, contextlib.suppress(Exception):
        scheduled(client, "process-assortments", "evt-throttled")  # each store's Started → Available is throttled
    assert seen == [1, 1, 1]  # once in each store's shard

    run = next_tick(client, "process-assortments", "evt-next")
    assert run.status == "Ended", run.message
    _assert_every_store_has(client, "PEAR/*")
    assert sessions_of(run_job(client, operator, "process-assortments")) == []


@pytest.mark.parametrize(("operation", "nth", "table"), [
    ("dynamodb.PutItem", 1, "download-sessions"),  # S1 Started, no package yet
    ("s3.PutObject", 2, None),  # S1 sent its package, S2's is written; nothing committed
    ("dynamodb.BatchWriteItem", 1, "distribution-state"),  # the chunks, not the markers
])
def test_a_kill_before_the_commit_is_rebuilt_in_place_by_the_next_scheduled_run(client, operator, operation,
                                                                                 nth, table):
    from chalicelib.storage import aws

    _published(client, operator)
    with fault(operation, nth=nth, kill=True, table=table), pytest.raises(Killed):
        scheduled(client, "process-assortments", "evt-dies")

    run = next_tick(client, "process-assortments", "evt-next")
    assert run.status == "Ended", run.message
    _assert_every_store_has(client, "PEAR/*")
    for store in STORES:
        first, second = available(client, store["id"])
        assert second["seq"] > first["seq"]
        # The Started session is rebuilt in place: one package object per session, none left over.
        listed = aws.client("s3").list_objects_v2(Bucket=second["package"]["bucket"], Prefix=f"packages/{store['id']}/")
        assert sorted(o["Key"] for o in listed["Contents"]) == sorted([first["package"]["key"],
                                                                       second["package"]["key"]])


def test_chunks_a_dead_run_wrote_are_swept_when_the_data_changed_meanwhile(client, operator):
    from chalicelib.storage.distribution import ASSORTMENT, StoreState, chunk_part

    _published(client, operator)
    with fault("dynamodb.BatchWriteItem", nth=1, kill=True, table="distribution-state"), pytest.raises(Killed):
        scheduled(client, "process-assortments", "evt-dies")  # PEAR's chunks written, not committed
    put(client, operator, "products", [*PRODUCTS])  # PEAR withdrawn again before the next run
    put(client, operator, "products", [{**NEW, "stopped": True}])

    run = next_tick(client, "process-assortments", "evt-next")
    assert run.status == "Ended", run.message
    for store in STORES:
        marker = StoreState.get(store["id"], ASSORTMENT)
        kept = {chunk_part(b, d) for b, d in enumerate(marker.digests) if d}
        chunks = {i.part for i in StoreState.query(store["id"], StoreState.part.startswith(f"{ASSORTMENT}#"))}
        assert chunks == kept
        assert len(available(client, store["id"])) == 1  # nothing is left to send: the Started one is NoData


def test_delivery_modes_share_the_recovery(client, operator):
    load(client, operator, delivery_modes=DELIVERY_MODES)
    run_job(client, operator, "process-delivery-modes")
    put(client, operator, "products", [*PRODUCTS, NEW])  # STD covers every product but JACKET
    with fault("dynamodb.BatchWriteItem", nth=1, kill=True, table="distribution-state"), pytest.raises(Killed):
        scheduled(client, "process-delivery-modes", "evt-dies")

    run = next_tick(client, "process-delivery-modes", "evt-next")
    assert run.status == "Ended", run.message
    for store in STORES:
        latest = available(client, store["id"])[-1]
        [row] = [r for r in download(latest)[1] if r["key"] == "STD"]
        assert "PEAR/*" in row["data"]["products"]
    assert left_started() == []
    assert sessions_of(run_job(client, operator, "process-delivery-modes")) == []
