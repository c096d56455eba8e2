"""Process delivery modes end to end: what each store downloads, reruns, removals, warnings."""
from tests.integration.distribution_data import (
    DELIVERY_MODES,
    STORES,
    available,
    download,
    line,
    load,
    put,
    run_job,
    sessions_of,
)


def mode_rows(store_id, client):
    [session] = [s for s in available(client, store_id) if s["data_group"] == "delivery-modes"][-1:]
    header, rows = download(session)
    return header, {r["key"]: (r["op"], r["data"]) for r in rows}


def test_each_store_receives_its_modes_with_products_and_addresses(client, operator):
    load(client, operator, delivery_modes=DELIVERY_MODES)
    run = run_job(client, operator, "process-delivery-modes")
    assert len(sessions_of(run)) == 3
    assert "warning: delivery mode PICKUP: no product lines: the mode has no products" in run["message"]

    header, rows = mode_rows("S1", client)
    assert header["full"] is True and set(rows) == {"STD", "PICKUP"}
    op, std = rows["STD"]
    assert op == "upsert"
    # Exclude wins at variant level; the root category is every product (stopped ones too: §1 has no filter).
    assert std["products"] == ["APPLE/*", "MAPLE/*", "OLDCOLA/*", "TEE/BLUE-M", "TEE/RED-L", "TEE/RED-M"]
    # "USA minus AK and HI".
    assert std["addresses"] == [{"country": "USA", "state": "*"}]
    assert std["excluded_addresses"] == [{"country": "USA", "state": "AK"}, {"country": "USA", "state": "HI"}]
    assert rows["PICKUP"][1]["products"] == []
    assert set(mode_rows("S3", client)[1]) == {"STD"}


def test_a_rerun_with_nothing_changed_writes_nothing_and_creates_no_session(client, operator):
    load(client, operator, delivery_modes=DELIVERY_MODES)
    run_job(client, operator, "process-delivery-modes")
    rerun = run_job(client, operator, "process-delivery-modes")
    assert sessions_of(rerun) == [] and rerun["counters"]["written"] == 0 and rerun["counters"]["skipped"] == 3
    assert not {"dynamodb.BatchWriteItem", "dynamodb.TransactWriteItems", "s3.PutObject"} & set(rerun["aws_requests"])
    assert shards_of(rerun) == [] and "0 session(s)" in rerun["message"], rerun["message"]


def shards_of(run):
    from chalicelib.storage.runs import RunRecord

    return sorted(r.params["store_ids"][0] for r in RunRecord.scan() if r.parent_run_id == run["run_id"])


def test_a_run_fans_out_to_one_shard_per_changed_store_only(client, operator):
    from chalicelib.storage.runs import RunRecord

    load(client, operator, delivery_modes=DELIVERY_MODES)
    assert shards_of(run_job(client, operator, "process-delivery-modes")) == ["S1", "S2", "S3"]
    std, pickup = DELIVERY_MODES
    put(client, operator, "delivery-modes", [{**pickup, "channel_lines": [{"store_id": "S1"}, {"store_id": "S2"}]}])

    run = run_job(client, operator, "process-delivery-modes")  # S2 gains PICKUP; nothing else changed

    assert shards_of(run) == ["S2"] and [o["store_id"] for o in run["outputs"]] == ["S2"]
    assert run["counters"]["skipped"] == 2 and run["counters"]["written"] == 1, run
    assert mode_rows("S2", client)[1]["PICKUP"][0] == "upsert"
    # The shard read its store's modes from the parent's plan (one object), not the catalogue.
    [shard] = [r for r in RunRecord.scan() if r.parent_run_id == run["run_id"]]
    assert shard.aws_requests["s3.GetObject"] == 1 and shard.aws_requests.get("dynamodb.Query", 0) <= 1, \
        shard.aws_requests


def test_removing_a_channel_line_deletes_that_stores_rows_and_a_change_updates_every_store(client, operator):
    load(client, operator, delivery_modes=DELIVERY_MODES)
    run_job(client, operator, "process-delivery-modes")
    std, pickup = DELIVERY_MODES
    put(client, operator, "delivery-modes", [{**pickup, "channel_lines": [{"store_id": "S2"}]},
                                             {**std, "product_lines": [line("category", "FOOD")]}])
    run = run_job(client, operator, "process-delivery-modes")
    assert len(sessions_of(run)) == 3
    header, s1 = mode_rows("S1", client)
    assert header["full"] is False
    assert s1["PICKUP"] == ("delete", None)
    assert s1["STD"][0] == "upsert" and s1["STD"][1]["products"] == ["APPLE/*", "MAPLE/*", "OLDCOLA/*"]
    assert set(mode_rows("S2", client)[1]) == {"STD", "PICKUP"}
    assert set(mode_rows("S3", client)[1]) == {"STD"}


def test_full_sync_resends_everything_to_the_targeted_stores(client, operator):
    load(client, operator, delivery_modes=DELIVERY_MODES)
    run_job(client, operator, "process-delivery-modes")
    run = run_job(client, operator, "process-delivery-modes", {"full_sync": True, "store_ids": ["S1"]})
    assert [o["store_id"] for o in run["outputs"]] == ["S1"]
    header, rows = mode_rows("S1", client)
    assert header["full"] is True and set(rows) == {"STD", "PICKUP"}
    assert [len(available(client, s["id"])) for s in STORES] == [2, 1, 1]
