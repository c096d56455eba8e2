"""Post statements on moto: balanced statements from generated data, exactly-once posting across a
crash, late transactions, voided and training transactions left out."""
from datetime import date, timedelta
from decimal import Decimal

import pytest

from chalicelib.jobs import post_statements
from tests.integration.retail import (
    YESTERDAY,
    Crash,
    expire_locks,
    load_master_data,
    run_job,
    sale,
    transaction,
    upload,
)


@pytest.fixture
def retailer(client):
    load_master_data()
    return client


def statements(client, operator, store_id, business_date=None):
    query = f"store_id={store_id}" + (f"&business_date={business_date}" if business_date else "")
    response = client.http.get(f"/statements?{query}", headers=operator)
    assert response.status_code == 200, response.body
    return response.json_body["statements"]


def ledger_lines(statement_id=None):
    from chalicelib.storage.ledger import LedgerLine

    return [line for line in LedgerLine.scan() if statement_id in (None, line.statement_id)]


def journals():
    from chalicelib.storage.journals import InventoryJournalRecord

    return list(InventoryJournalRecord.scan())


def test_a_day_becomes_one_balanced_statement_with_its_journal(retailer, operator):
    day = [sale("T1", [("SHIRT", "M-RED", 2, "20.00"), ("BALL", None, 1, "5.00")], customer_id="C1"),
           sale("T2", [("BALL", None, 3, "5.00")], tender="cash"),
           sale("T3", [("SHIRT", "M-RED", -1, "20.00")], kind="Return", customer_id="C3"),
           sale("T4", [("LAMP", None, 5, "40.00")], status="Voided", customer_id="C1"),
           sale("T5", [("LAMP", None, 1, "40.00")], status="Training", receipt_email="trainee@example.com")]
    assert upload(retailer, "S1", day).status_code == 200

    run = run_job(retailer, operator, "post-statements", {"store_ids": ["S1"]})

    assert run["status"] == "Ended", run
    assert "posted 1 statement(s) of 3 transaction(s)" in run["message"]
    [statement] = statements(retailer, operator, "S1", YESTERDAY)
    assert (statement["statement_id"], statement["status"]) == (f"S1-{YESTERDAY}-1", "Posted")
    # shirts 40 - 20 = 20.00 (401200), balls 20.00 (401100); tax 8 %
    assert statement["totals"]["sales"] == "40.00" and statement["totals"]["tax"] == "3.20"
    assert statement["totals"]["tenders"] == {"card": "27.00", "cash": "16.20"}
    lines = ledger_lines(statement["statement_id"])
    assert sum(line.debit for line in lines) == sum(line.credit for line in lines) == Decimal("43.20")
    [journal] = journals()
    assert {(line["product_id"], line["variant_id"]): line["qty"] for line in journal.lines} == {
        ("SHIRT", "M-RED"): "-1", ("BALL", "*"): "-4"}
    assert journal.status == "Created"
    posted = transaction(retailer, "S1", "T1")
    assert (posted["status"], posted["statement_id"], posted["email_status"]) == (
        "Posted", statement["statement_id"], "Pending")
    assert transaction(retailer, "S1", "T2")["email_status"] is None
    for never in ("T4", "T5"):
        assert (transaction(retailer, "S1", never)["statement_id"], transaction(retailer, "S1", never)["status"]) \
            in [(None, "Voided"), (None, "Training")]


def test_generated_days_with_returns_balance_to_the_cent(client, operator):
    from chalicelib.models.parsing import parse_records
    from chalicelib.storage import records
    from devstack.datagen import generate, transactions

    retailer = generate("S", seed=7, end_date=date(2026, 11, 25))
    for entity, items in retailer.master_data().items():
        records.upsert(entity, parse_records(entity, items))
    generated = list(transactions(retailer, days=3, store_ids=["S001", "S002"]))
    assert any(t["kind"] == "Return" for t in generated)
    for store_id in ("S001", "S002"):
        mine = [t for t in generated if t["store_id"] == store_id]
        assert upload(client, store_id, mine).json_body["accepted"] == len(mine)

    run = run_job(client, operator, "post-statements", {"store_ids": ["S001", "S002"]})

    assert run["status"] == "Ended", run
    assert run["counters"]["failed"] == 0
    all_statements = statements(client, operator, "S001") + statements(client, operator, "S002")
    assert len(all_statements) == 6 and {s["status"] for s in all_statements} == {"Posted"}
    for statement in all_statements:
        lines = ledger_lines(statement["statement_id"])
        assert sum(line.debit for line in lines) == sum(line.credit for line in lines)
        totals = statement["totals"]
        assert Decimal(totals["gross"]) + Decimal(totals["rounding"]) == sum(
            Decimal(amount) for amount in totals["tenders"].values())
    completed = [t for t in generated if t["status"] == "Completed"]
    assert sum(s["totals"]["transactions"] for s in all_statements) == len(completed)
    tendered = sum(Decimal(p["amount"]) for t in completed for p in t["payments"])
    debits = sum(line.debit - line.credit for line in ledger_lines() if line.main_account in ("110100", "110200",
                                                                                               "220500"))
    assert debits == tendered


def test_a_crash_between_ledger_and_marking_posts_nothing_twice(retailer, operator, monkeypatch):
    day = [sale(f"T{n:03d}", [("BALL", None, 1, "5.00")], customer_id="C1") for n in range(150)]
    assert upload(retailer, "S1", day).status_code == 200
    real_mark = post_statements._mark_transactions

    def crash(*args, **kwargs):
        raise Crash()

    monkeypatch.setattr(post_statements, "_mark_transactions", crash)
    with pytest.raises(Crash):
        run_job(retailer, operator, "post-statements", {"store_ids": ["S1"]})
    lines_before = sorted((line.line_no, line.debit, line.credit) for line in ledger_lines())
    assert lines_before and [s["status"] for s in statements(retailer, operator, "S1")] == ["Posting"]
    assert transaction(retailer, "S1", "T000")["status"] == "Completed"

    monkeypatch.setattr(post_statements, "_mark_transactions", real_mark)
    expire_locks()
    run = run_job(retailer, operator, "post-statements", {"store_ids": ["S1"]})

    assert run["status"] == "Ended", run
    assert "finished 1 interrupted statement(s)" in run["message"]
    [statement] = statements(retailer, operator, "S1")
    assert statement["status"] == "Posted"
    assert sorted((line.line_no, line.debit, line.credit) for line in ledger_lines()) == lines_before
    assert len(journals()) == 1
    assert set(stored(day, "statement_id")) == {statement["statement_id"]}
    again = run_job(retailer, operator, "post-statements", {"store_ids": ["S1"]})
    assert "posted 0 statement(s)" in again["message"]
    assert len(ledger_lines()) == len(lines_before) and len(journals()) == 1


def test_a_crash_between_marking_chunks_finishes_the_rest_once(retailer, operator, monkeypatch):
    day = [sale(f"T{n:03d}", [("BALL", None, 1, "5.00")]) for n in range(150)]
    assert upload(retailer, "S1", day).status_code == 200
    real_write = post_statements.write_transaction
    calls = []

    def crash_on_second_chunk(*args, **kwargs):
        if kwargs.get("updates") and not kwargs.get("puts"):
            calls.append(1)
            if len(calls) == 2:
                raise Crash()
        return real_write(*args, **kwargs)

    monkeypatch.setattr(post_statements, "write_transaction", crash_on_second_chunk)
    with pytest.raises(Crash):
        run_job(retailer, operator, "post-statements", {"store_ids": ["S1"]})
    statuses = stored(day, "status")
    assert statuses.count("Posted") == 99 and statuses.count("Completed") == 51

    expire_locks()
    run = run_job(retailer, operator, "post-statements", {"store_ids": ["S1"]})

    assert run["status"] == "Ended", run
    assert [s["status"] for s in statements(retailer, operator, "S1")] == ["Posted"]
    assert set(stored(day, "status")) == {"Posted"}
    assert len(journals()) == 1


def test_late_transactions_for_a_posted_date_go_into_the_next_statement(retailer, operator):
    upload(retailer, "S1", [sale("T1", [("BALL", None, 1, "5.00")])])
    run_job(retailer, operator, "post-statements", {"store_ids": ["S1"]})
    upload(retailer, "S1", [sale("T2", [("BALL", None, 2, "5.00")]), sale("T1", [("BALL", None, 1, "5.00")])])

    run = run_job(retailer, operator, "post-statements", {"store_ids": ["S1"]})

    assert "posted 1 statement(s) of 1 transaction(s)" in run["message"]
    assert run["message"].endswith(f"; 1 late statement for {YESTERDAY}"), run["message"]
    posted = statements(retailer, operator, "S1", YESTERDAY)
    assert [(s["statement_id"], s["totals"]["transactions"]) for s in posted] == [
        (f"S1-{YESTERDAY}-1", 1), (f"S1-{YESTERDAY}-2", 1)]
    assert transaction(retailer, "S1", "T2")["statement_id"] == f"S1-{YESTERDAY}-2"


def test_by_default_each_store_posts_through_its_own_local_yesterday(retailer, operator):
    """Issue 11: every "day" was a UTC day. UTC+14 and UTC-11: at any hour one of them is not on UTC's date."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from chalicelib.storage import records

    local = {}
    for store_id, time_zone in (("S2", "Pacific/Kiritimati"), ("S3", "Pacific/Pago_Pago")):
        records.save("stores", {**records.get("stores", store_id), "time_zone": time_zone})
        today = datetime.now(ZoneInfo(time_zone)).date()
        local[store_id] = (today - timedelta(days=1)).isoformat(), today.isoformat()
        body = upload(retailer, store_id, [
            sale(f"{store_id}-{tag}", [("BALL", None, 1, "5.00")], store_id=store_id, business_date=day)
            for tag, day in zip("YT", local[store_id], strict=True)]).json_body
        assert body["accepted"] == 2, body

    for store_id in local:
        run = run_job(retailer, operator, "post-statements", {"store_ids": [store_id]})
        assert "through yesterday in each store's time zone" in run["message"], run
    for store_id, (yesterday, today) in local.items():
        assert transaction(retailer, store_id, f"{store_id}-Y")["status"] == "Posted", (store_id, yesterday)
        assert transaction(retailer, store_id, f"{store_id}-T")["status"] == "Completed", (store_id, today)


def test_through_date_and_targeting(retailer, operator):
    today = date.fromisoformat(YESTERDAY) + timedelta(days=1)
    upload(retailer, "S1", [sale("A1", [("BALL", None, 1, "5.00")]),
                            sale("A2", [("BALL", None, 1, "5.00")], business_date=today.isoformat())])
    upload(retailer, "S2", [sale("B1", [("BALL", None, 1, "5.00")], store_id="S2")])
    upload(retailer, "S3", [sale("C1", [("BALL", None, 1, "5.00")], store_id="S3")])

    run = run_job(retailer, operator, "post-statements", {"org_node_ids": ["D1"], "through_date": YESTERDAY})

    # S1 and S2 are both USRT's: one run posts them one after the other, no shards.
    assert run["status"] == "Ended" and "shard" not in run["message"], run
    assert "posted 2 statement(s) of 2 transaction(s) for 2 store(s)" in run["message"], run
    assert transaction(retailer, "S1", "A1")["status"] == "Posted"
    assert transaction(retailer, "S1", "A2")["status"] == "Completed"  # after through_date
    assert transaction(retailer, "S2", "B1")["status"] == "Posted"
    assert transaction(retailer, "S3", "C1")["status"] == "Completed"  # not under D1


def test_each_legal_entity_posts_in_a_shard_of_its_own_with_its_own_gapless_numbers(retailer, operator):
    for store_id in ("S1", "S2", "S3"):
        upload(retailer, store_id, [sale(f"{store_id}-{n}", [("BALL", None, 1, "5.00")], store_id=store_id,
                                         business_date=(date.fromisoformat(YESTERDAY) - timedelta(days=n)).isoformat())
                                    for n in range(3)])

    run = run_job(retailer, operator, "post-statements", {"through_date": YESTERDAY})

    assert run["status"] == "Ended" and run["message"].startswith("2 shards: 2 Ended"), run
    detail = retailer.http.get(f"/runs/{run['run_id']}", headers=operator).json_body
    assert sorted(s["scope"] for s in detail["shards"]) == ["CART", "USRT"]
    assert run["counters"]["written"] == 9  # 3 stores x 3 days
    for store_id in ("S1", "S2", "S3"):
        assert all(transaction(retailer, store_id, f"{store_id}-{n}")["status"] == "Posted" for n in range(3))
    numbers: dict[str, list[int]] = {}
    for line in ledger_lines():
        numbers.setdefault(line.legal_entity, []).append(line.seq)
    assert {entity: sorted(seqs) == list(range(1, len(seqs) + 1)) for entity, seqs in numbers.items()} == \
        {"USRT": True, "CART": True}
    # Nothing contended: one transaction per statement, and one creating each shard (the shards'
    # requests add up on the parent).
    assert run["aws_requests"]["dynamodb.TransactWriteItems"] == 9 + 2, run["aws_requests"]


def test_dry_run_posts_nothing(retailer, operator):
    import json

    upload(retailer, "S1", [sale("T1", [("BALL", None, 1, "5.00")])])
    response = retailer.http.post("/jobs/post-statements/runs", headers=operator,
                                  body=json.dumps({"params": {"store_ids": ["S1"]}, "dry_run": True}))
    run = response.json_body["run"]

    assert "would post 1 statement(s) of 1 transaction(s)" in run["message"]
    assert statements(retailer, operator, "S1") == [] and ledger_lines() == []
    assert transaction(retailer, "S1", "T1")["status"] == "Completed"


def stored(transactions, attribute):
    """One attribute of each uploaded transaction as stored (many at once; the route reads one)."""
    from chalicelib.storage.transactions import read_consistent

    found = read_consistent("S1", [t["transaction_id"] for t in transactions])
    return [getattr(found[t["transaction_id"]], attribute) for t in transactions]


def test_statements_route_lists_a_date_across_stores_and_needs_a_filter(retailer, operator):
    upload(retailer, "S1", [sale("A1", [("BALL", None, 1, "5.00")])])
    upload(retailer, "S2", [sale("B1", [("BALL", None, 2, "5.00")], store_id="S2")])
    run_job(retailer, operator, "post-statements")

    response = retailer.http.get(f"/statements?business_date={YESTERDAY}", headers=operator)
    unfiltered = retailer.http.get("/statements", headers=operator)

    assert sorted((s["store_id"], s["totals"]["sales"]) for s in response.json_body["statements"]) == [
        ("S1", "5.00"), ("S2", "10.00")]
    assert unfiltered.status_code == 400
    assert unfiltered.json_body["error"]["details"][0]["field"] == "store_id"
