"""Post inventory on moto: every journal line moves on-hand stock exactly once, large journals post in
chunks, items that may not go negative are refused with the AX message and posted on a rerun."""
from decimal import Decimal

import pytest

from chalicelib.jobs import post_inventory
from tests.integration.retail import Crash, expire_locks, load_master_data, on_hand, run_job, sale, set_on_hand, upload

D = Decimal



@pytest.fixture
def retailer(client):
    load_master_data()
    return client


def post_day(client, operator, store_id, transactions):
    assert upload(client, store_id, transactions).status_code == 200
    run = run_job(client, operator, "post-statements", {"store_ids": [store_id]})
    assert run["status"] == "Ended", run


def journal(journal_id=None):
    from chalicelib.storage.journals import InventoryJournalRecord

    journals = list(InventoryJournalRecord.scan())
    return journals[0] if journal_id is None else next(j for j in journals if j.journal_id == journal_id)


def test_journal_lines_move_stock_once_and_a_second_run_changes_nothing(retailer, operator):
    set_on_hand("WH-S1", {("BALL", "*"): "10"})
    post_day(retailer, operator, "S1", [
        sale("T1", [("SHIRT", "M-RED", 2, "20.00"), ("BALL", None, 3, "5.00")]),
        sale("T2", [("BALL", None, -1, "5.00")], kind="Return"),
    ])

    first = run_job(retailer, operator, "post-inventory", {"store_ids": ["S1"]})
    stock = on_hand(retailer, operator, "S1")
    second = run_job(retailer, operator, "post-inventory", {"store_ids": ["S1"]})

    assert first["status"] == "Ended" and "posted 2 journal line(s) of 1 journal(s)" in first["message"], first
    assert stock == {("BALL", "*"): D("8"), ("SHIRT", "M-RED"): D("-2")}  # shirts may go negative
    assert journal().status == "Posted"
    assert second["status"] == "Ended" and "posted 0 journal line(s) of 0 journal(s)" in second["message"]
    assert on_hand(retailer, operator, "S1") == stock
    assert on_hand(retailer, operator, "S1", product_id="SHIRT") == {("SHIRT", "M-RED"): D("-2")}


def test_a_journal_with_more_items_than_one_transaction_holds_posts_completely(retailer, operator):
    from chalicelib.models.parsing import parse_records
    from chalicelib.storage import records

    products = [{"id": f"P{n:03d}", "name": f"Item {n}", "category_id": "TOYS", "price": "1.00",
                 "released_to": ["USRT"]} for n in range(120)]
    records.upsert("products", parse_records("products", products))
    post_day(retailer, operator, "S1", [
        sale("T1", [(p["id"], None, 1, "1.00") for p in products[:60]]),
        sale("T2", [(p["id"], None, 2, "1.00") for p in products[60:]]),
    ])
    assert len(journal().lines) == 120

    run = run_job(retailer, operator, "post-inventory", {"store_ids": ["S1"]})

    assert run["status"] == "Ended", run
    assert run["aws_requests"]["dynamodb.TransactWriteItems"] == 2  # 99 + 21 lines, one on-hand item each
    stock = on_hand(retailer, operator, "S1")
    assert len(stock) == 120
    assert stock[("P000", "*")] == D("-1") and stock[("P119", "*")] == D("-2")
    assert journal().status == "Posted" and len(journal().posted_line_nos) == 120


def test_an_item_that_may_not_go_negative_is_refused_then_posted_once_stock_is_fixed(retailer, operator):
    set_on_hand("WH-S1", {("LAMP", "*"): "2", ("BALL", "*"): "5"})
    post_day(retailer, operator, "S1", [sale("T1", [("LAMP", None, 5, "40.00"), ("BALL", None, 1, "5.00")])])

    refused = run_job(retailer, operator, "post-inventory", {"store_ids": ["S1"]})

    message = "Item LAMP cannot be picked because only 2 is/are available from the inventory."
    assert refused["status"] == "Ended", refused
    assert [e["message"] for e in refused["errors"]] == [message]
    assert refused["counters"]["failed"] == 1
    assert (journal().status, journal().message) == ("Error", message)
    assert on_hand(retailer, operator, "S1") == {("LAMP", "*"): D("2"), ("BALL", "*"): D("4")}

    again = run_job(retailer, operator, "post-inventory", {"store_ids": ["S1"]})
    assert on_hand(retailer, operator, "S1") == {("LAMP", "*"): D("2"), ("BALL", "*"): D("4")}
    assert again["errors"][0]["message"] == message

    set_on_hand("WH-S1", {("LAMP", "*"): "9"})  # stock counted and corrected
    fixed = run_job(retailer, operator, "post-inventory", {"store_ids": ["S1"]})

    assert "posted 1 journal line(s)" in fixed["message"] and fixed["errors"] == []
    assert on_hand(retailer, operator, "S1") == {("LAMP", "*"): D("4"), ("BALL", "*"): D("4")}
    assert (journal().status, journal().message) == ("Posted", None)


def test_a_crash_mid_journal_then_a_rerun_posts_each_line_once(retailer, operator, monkeypatch):
    from chalicelib.models.parsing import parse_records
    from chalicelib.storage import records
    from chalicelib.storage.journals import open_journals

    products = [{"id": f"P{n:03d}", "name": f"Item {n}", "category_id": "TOYS", "price": "1.00",
                 "released_to": ["USRT"]} for n in range(120)]
    records.upsert("products", parse_records("products", products))
    post_day(retailer, operator, "S1", [sale("T1", [(p["id"], None, 1, "1.00") for p in products[:60]]),
                                        sale("T2", [(p["id"], None, 1, "1.00") for p in products[60:]])])
    as_read = list(open_journals("S1"))  # before any line was posted
    real_write = post_inventory.write_transaction

    def crash_after_first_chunk(*args, **kwargs):
        real_write(*args, **kwargs)
        raise Crash()

    monkeypatch.setattr(post_inventory, "write_transaction", crash_after_first_chunk)
    with pytest.raises(Crash):
        run_job(retailer, operator, "post-inventory", {"store_ids": ["S1"]})
    assert len(on_hand(retailer, operator, "S1")) == 99 and len(journal().posted_line_nos) == 99
    # The rerun reads the journal as it was before the crash (an index lags its table): the
    # journal's condition refuses the stale chunk, the rerun re-reads it and posts only the rest.
    monkeypatch.setattr(post_inventory, "open_journals", lambda store_id: as_read)

    monkeypatch.setattr(post_inventory, "write_transaction", real_write)
    expire_locks()
    run = run_job(retailer, operator, "post-inventory", {"store_ids": ["S1"]})

    assert run["status"] == "Ended", run
    stock = on_hand(retailer, operator, "S1")
    assert len(stock) == 120 and set(stock.values()) == {D("-1")}
    assert journal().status == "Posted" and len(journal().posted_line_nos) == 120
    assert run["counters"]["written"] == 21, run


def test_dry_run_moves_no_stock_and_the_route_checks_its_store(retailer, operator):
    import json

    post_day(retailer, operator, "S1", [sale("T1", [("BALL", None, 1, "5.00")])])
    response = retailer.http.post("/jobs/post-inventory/runs", headers=operator,
                                  body=json.dumps({"params": {"store_ids": ["S1"]}, "dry_run": True}))

    assert "would post 1 journal line(s)" in response.json_body["run"]["message"]
    assert on_hand(retailer, operator, "S1") == {} and journal().status == "Created"
    assert retailer.http.get("/inventory/on-hand", headers=operator).status_code == 400
    assert retailer.http.get("/inventory/on-hand?store_id=S9", headers=operator).status_code == 404


def test_targeting_by_org_node(retailer, operator):
    post_day(retailer, operator, "S1", [sale("T1", [("BALL", None, 1, "5.00")])])
    post_day(retailer, operator, "S3", [sale("T2", [("BALL", None, 1, "5.00")], store_id="S3")])

    run = run_job(retailer, operator, "post-inventory", {"org_node_ids": ["D2"]})

    assert run["status"] == "Ended", run
    assert on_hand(retailer, operator, "S3") == {("BALL", "*"): D("-1")}
    assert on_hand(retailer, operator, "S1") == {}


def test_a_run_over_every_store_fans_out_only_to_stores_with_journals_to_post(retailer, operator):
    from chalicelib.storage.runs import RunRecord

    post_day(retailer, operator, "S1", [sale("T1", [("BALL", None, 1, "5.00")])])
    post_day(retailer, operator, "S3", [sale("T2", [("BALL", None, 1, "5.00")], store_id="S3")])

    busy = run_job(retailer, operator, "post-inventory")
    idle = run_job(retailer, operator, "post-inventory")

    assert busy["status"] == "Ended" and "2 shards: 2 Ended" in busy["message"], busy
    children = [r for r in RunRecord.scan() if r.parent_run_id == busy["run_id"]]
    assert sorted(c.params["store_ids"][0] for c in children) == ["S1", "S3"]  # S2 has nothing to post
    # The run's requests are its shards' and its own: the one read of the open-journals index included.
    assert busy["aws_requests"]["dynamodb.Scan"] == 1
    assert busy["aws_requests"]["dynamodb.TransactWriteItems"] == 2 + 2  # two shard runs made, two journals posted
    assert on_hand(retailer, operator, "S1") == on_hand(retailer, operator, "S3") == {("BALL", "*"): D("-1")}
    assert idle["status"] == "Ended" and "nothing to do" in idle["message"], idle
    assert not [r for r in RunRecord.scan() if r.parent_run_id == idle["run_id"]]
