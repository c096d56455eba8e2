"""Process assortments end to end: publish, what each store downloads, reruns, targeting, crashes."""
import json
import time
from datetime import timedelta

import pytest

from tests.conftest import store_headers
from tests.integration.distribution_data import (
    CORE,
    EVERY_US_PAIR,
    NO_RED_M_IN_SEATTLE,
    PRODUCTS,
    STORES,
    TODAY,
    assortment,
    available,
    download,
    line,
    load,
    pairs,
    product,
    publish,
    put,
    run_job,
    sessions_of,
    shard_of,
)


def status_of(client, operator, assortment_id):
    return client.http.get(f"/data/assortments/{assortment_id}", headers=operator).json_body["status"]


def test_publishing_sends_every_covered_store_its_whole_assortment(client, operator):
    load(client, operator, assortments=[CORE, NO_RED_M_IN_SEATTLE])
    assert status_of(client, operator, "CORE") == "Draft"

    run = publish(client, operator, "CORE")
    assert run["status"] == "Ended" and run["trigger"] == "event", run
    assert run["params"] == {"assortment_ids": ["CORE"], "full_sync": False}
    assert status_of(client, operator, "CORE") == "Published"
    assert status_of(client, operator, "SEA") == "Draft"  # never published: invisible
    assert len(sessions_of(run)) == 3

    packages = {}
    for store in STORES:
        [session] = available(client, store["id"])
        assert session["data_group"] == "assortments" and session["job_run_id"] == shard_of(run["run_id"], store["id"])
        assert session["package_url"].startswith("http") and session["seq"] == 1
        header, rows = download(session)
        assert header["full"] is True and header["store_id"] == store["id"] and header["rows"] == len(rows)
        packages[store["id"]] = pairs(rows)
    # Stopped products never, unreleased ones only where released.
    assert packages == {"S1": EVERY_US_PAIR, "S2": EVERY_US_PAIR, "S3": EVERY_US_PAIR | {"MAPLE/*"}}


def test_a_rerun_with_nothing_changed_writes_nothing_and_creates_no_session(client, operator):
    from chalicelib.storage.distribution import StoreState

    load(client, operator)
    publish(client, operator, "CORE")
    state_before = {(i.store_id, i.part): i.updated_at for i in StoreState.scan()}

    rerun = run_job(client, operator, "process-assortments")
    assert sessions_of(rerun) == []
    assert rerun["counters"]["written"] == 0 and rerun["counters"]["skipped"] == 3
    writes = {op for op in rerun["aws_requests"]
              if op in ("dynamodb.BatchWriteItem", "dynamodb.TransactWriteItems", "s3.PutObject")}
    assert writes == set(), rerun["aws_requests"]
    assert {(i.store_id, i.part): i.updated_at for i in StoreState.scan()} == state_before
    assert all(len(available(client, s["id"])) == 1 for s in STORES)
    # Found in the parent from the stores' digest items: no store needed a shard.
    assert "nothing to do" not in rerun["message"] and "shard" not in rerun["message"], rerun["message"]
    assert shards_of(rerun) == []
    assert rerun["aws_requests"]["dynamodb.BatchGetItem"] == 1  # 3 stores' digest and resend items


def shards_of(run):
    from chalicelib.storage.runs import RunRecord

    return sorted(r.params["store_ids"][0] for r in RunRecord.scan() if r.parent_run_id == run["run_id"])


def test_a_run_fans_out_to_one_shard_per_changed_store_only(client, operator):
    load(client, operator)
    published = publish(client, operator, "CORE")
    assert shards_of(published) == ["S1", "S2", "S3"]  # a first run: every store changed
    put(client, operator, "products", [product("MAPLE2", "FOOD", released=["CART"])])  # released in Canada: S3

    run = run_job(client, operator, "process-assortments")

    assert shards_of(run) == ["S3"]
    assert run["message"].startswith("1 shard: 1 Ended; 3 store(s)"), run["message"]
    assert run["counters"]["skipped"] == 2 and run["counters"]["written"] == 1  # the parent's count and S3's
    assert [o["store_id"] for o in run["outputs"]] == ["S3"]


def shard_runs(run):
    from chalicelib.storage.runs import RunRecord

    return {r.params["store_ids"][0]: r for r in RunRecord.scan() if r.parent_run_id == run["run_id"]}


def plan_objects():
    import boto3

    from chalicelib import settings

    listed = boto3.client("s3").list_objects_v2(Bucket=settings.data_bucket(), Prefix="fanout-plans/")
    return [o["Key"] for o in listed.get("Contents", [])]


def test_a_shard_takes_its_stores_assortment_from_the_parents_plan_not_the_catalogue(client, operator):
    load(client, operator)
    publish(client, operator, "CORE")
    put(client, operator, "products", [product("MAPLE2", "FOOD", released=["CART"])])

    run = run_job(client, operator, "process-assortments")

    [shard] = shard_runs(run).values()
    # Two plan reads (the store's group, its keys) and no master-data query: the parent exploded.
    assert shard.aws_requests["s3.GetObject"] == 2, shard.aws_requests
    assert shard.aws_requests.get("dynamodb.Query", 0) <= 1, shard.aws_requests  # the Started sessions only
    assert "MAPLE2/*" in pairs(download(available(client, "S3")[-1])[1], "upsert")
    assert plan_objects() == []  # the parent's close deleted them


def test_a_shard_whose_plan_is_gone_explodes_its_store_itself(client, operator, monkeypatch):
    from chalicelib.storage import fanout_plans

    load(client, operator)
    publish(client, operator, "CORE")
    put(client, operator, "products", [product("MAPLE2", "FOOD", released=["CART"])])
    monkeypatch.setattr(fanout_plans, "read_lines", lambda run_id, name: None)  # e.g. removed by the lifecycle

    run = run_job(client, operator, "process-assortments")

    assert run["status"] == "Ended" and shards_of(run) == ["S3"]
    assert "MAPLE2/*" in pairs(download(available(client, "S3")[-1])[1], "upsert")


def test_one_product_added_to_a_category_sends_exactly_that_change(client, operator):
    load(client, operator)
    publish(client, operator, "CORE")
    put(client, operator, "products", [product("POLO", "TSHIRTS", ["S", "M"], released=["USRT"])])

    run = run_job(client, operator, "process-assortments")
    assert run["counters"]["written"] == 4 and run["counters"]["skipped"] == 1  # S3 is Canadian: not released
    for store_id in ("S1", "S2"):
        newest = available(client, store_id)[-1]
        header, rows = download(newest)
        assert newest["seq"] == 2 and header["full"] is False
        assert rows == [{"op": "upsert", "entity": "assortment", "key": f"POLO/{v}",
                         "data": {"product_id": "POLO", "variant_id": v}} for v in ("M", "S")]
    assert len(available(client, "S3")) == 1
    assert sorted(run["outputs"], key=lambda o: o["store_id"]) == [
        {"kind": "session", "id": available(client, s)[-1]["session_id"], "store_id": s,
         "data_group": "assortments", "rows": 2} for s in ("S1", "S2")]


def test_removed_and_excluded_items_are_sent_as_deletes(client, operator):
    load(client, operator, assortments=[CORE, NO_RED_M_IN_SEATTLE])
    publish(client, operator, "CORE")
    publish(client, operator, "SEA")  # an exclusion in any of the store's assortments wins
    [_, change] = available(client, "S1")
    assert download(change)[1] == [{"op": "delete", "entity": "assortment", "key": "TEE/RED-M",
                                    "data": {"product_id": "TEE", "variant_id": "RED-M"}}]
    assert len(available(client, "S2")) == 1  # not in Seattle: untouched

    put(client, operator, "products", [{**PRODUCTS[2], "stopped": True}])  # APPLE stopped
    run = run_job(client, operator, "process-assortments")
    assert len(sessions_of(run)) == 3
    assert {s: pairs(download(available(client, s)[-1])[1], "delete") for s in ("S1", "S2", "S3")} == {
        "S1": {"APPLE/*"}, "S2": {"APPLE/*"}, "S3": {"APPLE/*"}}


def test_a_new_store_under_a_node_receives_the_full_assortment_on_the_next_run(client, operator):
    load(client, operator)
    publish(client, operator, "CORE")
    put(client, operator, "stores", [{"id": "S4", "name": "Spokane", "legal_entity": "USRT",
                                      "org_node_id": "SEATTLE"}])
    run = run_job(client, operator, "process-assortments")
    assert [o["store_id"] for o in run["outputs"]] == ["S4"]
    [session] = available(client, "S4")
    header, rows = download(session)
    assert header["full"] is True and pairs(rows) == EVERY_US_PAIR and session["seq"] == 1


def test_full_sync_sends_the_targeted_stores_everything_again(client, operator):
    load(client, operator)
    publish(client, operator, "CORE")
    run = run_job(client, operator, "process-assortments", {"full_sync": True, "org_node_ids": ["WEST"]})
    assert sorted(o["store_id"] for o in run["outputs"]) == ["S1", "S2"]
    header, rows = download(available(client, "S2")[-1])
    assert header["full"] is True and pairs(rows) == EVERY_US_PAIR and pairs(rows, "delete") == set()
    assert len(available(client, "S3")) == 1


def test_editing_makes_an_assortment_draft_and_its_items_leave_the_stores(client, operator):
    load(client, operator, assortments=[CORE, assortment("EXTRA", [{"store_id": "S3"}], [line("product", "APPLE")])])
    publish(client, operator, "CORE")
    put(client, operator, "assortments", [{**CORE, "name": "Core range (edited)"}])
    assert status_of(client, operator, "CORE") == "Draft"
    run = run_job(client, operator, "process-assortments")
    assert pairs(download(available(client, "S1")[-1])[1], "delete") == EVERY_US_PAIR
    assert len(sessions_of(run)) == 3

    again = publish(client, operator, "CORE")
    assert len(sessions_of(again)) == 3 and status_of(client, operator, "CORE") == "Published"


def test_publishing_twice_finds_the_same_run_and_a_published_one_is_refused(client, operator):
    load(client, operator)
    first = publish(client, operator, "CORE")
    response = client.http.post("/assortments/CORE/publish", headers=operator)
    assert response.status_code == 409 and "Published" in response.json_body["error"]["message"]
    missing = client.http.post("/assortments/NOPE/publish", headers=operator)
    assert missing.status_code == 404
    assert first["run_id"]


def test_an_assortment_past_valid_to_expires_and_leaves_the_stores(client, operator):
    from chalicelib.storage import records

    load(client, operator)
    publish(client, operator, "CORE")
    ended = {**records.get("assortments", "CORE"), "valid_to": (TODAY - timedelta(days=1)).isoformat()}
    records.save("assortments", ended)  # as if the days had passed since it was published
    run = run_job(client, operator, "process-assortments")
    assert status_of(client, operator, "CORE") == "Expired"
    assert "expired CORE" in run["message"]
    assert pairs(download(available(client, "S2")[-1])[1], "delete") == EVERY_US_PAIR


def test_dry_run_reports_and_writes_nothing(client, operator):
    load(client, operator)
    put(client, operator, "assortments", [CORE])
    from chalicelib.storage import records

    records.save("assortments", {**records.get("assortments", "CORE"), "status": "InProgress"})
    run = run_job(client, operator, "process-assortments", dry_run=True)
    assert "would send 3 session(s) with 16 row(s)" in run["message"] and "would be published CORE" in run["message"]
    assert status_of(client, operator, "CORE") == "InProgress"
    assert all(available(client, s["id"]) == [] for s in STORES)


class Crash(BaseException):
    """A Lambda dying mid-run: no except-clause of the runtime catches it."""


def _in_progress(client, operator):
    from chalicelib.storage import records

    load(client, operator)
    put(client, operator, "assortments", [CORE])
    records.save("assortments", {**records.get("assortments", "CORE"), "status": "InProgress"})


def _die_on_call(monkeypatch, module, name, call):
    """Make ``module.name`` die (after doing its work) on its ``call``-th call."""
    real, calls = getattr(module, name), []

    def dying(*args):
        calls.append(1)
        real(*args)
        if len(calls) == call:
            raise Crash()

    monkeypatch.setattr(module, name, dying)


def _resume(monkeypatch, run_id):
    from chalicelib.jobs import runtime

    monkeypatch.undo()
    time.sleep(1.2)  # the dead invocation's lease (1 s) expires; the retried delivery resumes the run
    runtime.dispatch(run_id)
    return runtime.get_run(run_id)


def test_a_run_that_dies_before_committing_sends_each_store_once_what_is_true_now(aws, client, operator,
                                                                                   monkeypatch):
    from chalicelib.jobs import distribution, runtime

    _in_progress(client, operator)
    monkeypatch.setenv("JOB_LOCK_LEASE_SECONDS", "1")
    _die_on_call(monkeypatch, distribution, "put_package", 1)  # S1's shard: Started with its package; no state
    run, _ = runtime.submit("process-assortments", trigger="manual")
    with pytest.raises(Crash):
        runtime.dispatch(run.run_id)
    put(client, operator, "products", [{**PRODUCTS[2], "stopped": True}])  # HQ stops APPLE meanwhile

    final = _resume(monkeypatch, run.run_id)
    assert final.status == "Ended", final.message
    from chalicelib.storage import aws as clients

    for store in STORES:
        [session] = available(client, store["id"])
        assert session["job_run_id"] == shard_of(run.run_id, store["id"]) and session["seq"] == 1
        assert "APPLE/*" not in pairs(download(session)[1])
        # A Started session is rebuilt in place: the same seq, one package object.
        listed = clients.client("s3").list_objects_v2(Bucket=session["package"]["bucket"],
                                                      Prefix=f"packages/{store['id']}/")
        assert [o["Key"] for o in listed["Contents"]] == [session["package"]["key"]]
    assert sessions_of(run_job(client, operator, "process-assortments")) == []


def test_a_run_that_dies_after_committing_finishes_and_sends_what_changed_since(aws, client, operator, monkeypatch):
    from chalicelib.jobs import distribution, runtime
    from chalicelib.storage import records

    _in_progress(client, operator)
    monkeypatch.setenv("JOB_LOCK_LEASE_SECONDS", "1")
    _die_on_call(monkeypatch, distribution, "make_available", 1)  # S1's shard: state committed, still Started
    run, _ = runtime.submit("process-assortments", trigger="manual")
    with pytest.raises(Crash):
        runtime.dispatch(run.run_id)
    put(client, operator, "products", [{**PRODUCTS[2], "stopped": True}])

    final = _resume(monkeypatch, run.run_id)
    assert final.status == "Ended", final.message
    # S1 was committed with APPLE: it is finished, then sent the change; S2 and S3 (their shards had
    # not started) get what is true now.
    first, second = available(client, "S1")
    assert first["job_run_id"] == shard_of(run.run_id, "S1") and "APPLE/*" in pairs(download(first)[1])
    assert pairs(download(second)[1], "delete") == {"APPLE/*"} and second["seq"] > first["seq"]
    for store in STORES[1:]:
        [session] = available(client, store["id"])
        assert session["job_run_id"] == shard_of(run.run_id, store["id"])
        assert "APPLE/*" not in pairs(download(session)[1])
    assert records.get("assortments", "CORE")["status"] == "Published"
    assert sessions_of(run_job(client, operator, "process-assortments")) == []


def test_requests_stay_within_budget_per_store_and_variant_pair(client, operator):
    from devstack.datagen import generate

    retailer = generate("S", end_date=TODAY)
    for entity in ("org-nodes", "stores", "categories", "products", "assortments"):
        items = retailer.master_data()[entity]
        for start in range(0, len(items), 1000):
            put(client, operator, entity, items[start:start + 1000])
    for assortment_id in retailer.published_assortment_ids:
        from chalicelib.storage import records

        records.save("assortments", {**records.get("assortments", assortment_id), "status": "Published"})
    first = run_job(client, operator, "process-assortments")
    pair_count = first["counters"]["read"]
    assert pair_count > 2000
    assert sum(first["aws_requests"].values()) / pair_count <= 0.05, first["aws_requests"]
    rerun = run_job(client, operator, "process-assortments")
    stores = len(retailer.stores)
    assert sum(rerun["aws_requests"].values()) <= 30 + stores, rerun["aws_requests"]


def test_store_targeting_and_unknown_ids_warn(client, operator):
    load(client, operator)
    put(client, operator, "assortments", [CORE])
    response = client.http.post("/jobs/process-assortments/runs", headers=operator,
                                body=json.dumps({"params": {"store_ids": ["S3", "S9"], "assortment_ids": ["X"]}}))
    run = response.json_body["run"]
    assert "unknown store S9" in run["message"] and "unknown assortment X" in run["message"]
    assert run["outputs"] == []


def test_a_store_token_sees_only_its_own_sessions(client, operator):
    load(client, operator)
    publish(client, operator, "CORE")
    s1 = store_headers("S1")
    assert len(available(client, "S1", s1)) == 1
    assert client.http.get("/stores/S2/download-sessions", headers=s1).status_code == 403
    assert client.http.get("/download-sessions?store_id=S2", headers=s1).status_code == 403


def test_a_publish_while_the_job_is_busy_is_completed_by_the_next_run(client, operator):
    from chalicelib.storage.runs import acquire_lock, release_lock

    load(client, operator)
    acquire_lock("process-assortments", "all", "another-run", 60)
    run = publish(client, operator, "CORE")
    assert run["status"] == "NotRun" and "another-run" in run["message"]
    assert status_of(client, operator, "CORE") == "InProgress"
    release_lock("process-assortments", "all", "another-run")

    scheduled = run_job(client, operator, "process-assortments")
    assert len(sessions_of(scheduled)) == 3 and "published CORE" in scheduled["message"]
    assert status_of(client, operator, "CORE") == "Published"
