"""Transaction upload and read over the store routes: per-record outcomes (accepted, duplicates,
conflicts, rejected with field paths), upload issues for operators, implausible dates."""
import json
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import store_headers
from tests.integration.retail import TODAY, load_master_data, run_job, sale, transaction, upload


@pytest.fixture
def retailer(client):
    load_master_data()
    return client


def test_a_batch_is_accepted_and_each_transaction_reads_back_with_its_status(retailer, operator):
    batch = [sale("T1", [("SHIRT", "M-RED", 2, "20.00"), ("BALL", None, 1, "5.00")], customer_id="C1"),
             sale("T2", [("BALL", None, -1, "5.00")], kind="Return"),
             sale("T3", [("BALL", None, 1, "5.00")], status="Voided")]

    response = upload(retailer, "S1", batch)

    assert response.status_code == 200, response.body
    assert response.json_body == {"accepted": 3, "duplicates": 0, "conflicts": [], "rejected": []}
    read = transaction(retailer, "S1", "T1")
    assert (read["status"], read["email_status"], read["statement_id"]) == ("Completed", "Pending", None)
    assert read["lines"][0]["net_amount"] == "40.00"
    assert transaction(retailer, "S1", "T2")["email_status"] is None  # no receipt asked for
    voided = retailer.http.get("/stores/S1/transactions/T3", headers=operator).json_body  # operators too
    assert (voided["status"], voided["email_status"]) == ("Voided", None)


def test_an_identical_resend_is_a_duplicate_and_changes_nothing(retailer):
    first = [sale("T1", [("BALL", None, 1, "5.00")]), sale("T2", [("BALL", None, 2, "5.00")])]
    assert upload(retailer, "S1", first).json_body["accepted"] == 2
    uploaded_at = transaction(retailer, "S1", "T1")["uploaded_at"]
    reordered = json.loads(json.dumps(first[0]))
    reordered["created_at"] = reordered["created_at"].replace("T10:00:00Z", "T11:00:00+01:00")  # the same instant

    response = upload(retailer, "S1", [reordered, first[1], sale("T3", [("BALL", None, 1, "5.00")])])

    assert response.json_body == {"accepted": 1, "duplicates": 2, "conflicts": [], "rejected": []}
    assert transaction(retailer, "S1", "T1")["uploaded_at"] == uploaded_at


def test_a_changed_resend_is_a_conflict_not_a_silent_duplicate(retailer, operator):
    """Issue 11: a resend with the same id and changed lines answered {"accepted": 0, "duplicates": 1}."""
    assert upload(retailer, "S1", [sale("T1", [("BALL", None, 1, "5.00")])]).json_body["accepted"] == 1
    changed = sale("T1", [("BALL", None, 3, "5.00")])

    body = upload(retailer, "S1", [changed]).json_body

    assert (body["accepted"], body["duplicates"], body["rejected"]) == (0, 0, [])
    [conflict] = body["conflicts"]
    assert (conflict["index"], conflict["transaction_id"]) == (0, "T1")
    assert "already stored with other content" in conflict["message"]
    assert transaction(retailer, "S1", "T1")["lines"][0]["qty"] == "1"  # not applied
    issues = retailer.http.get("/stores/S1/upload-issues", headers=operator).json_body
    assert [(i["issue_id"], i["kind"], i["status"], i["transaction_id"]) for i in issues["issues"]] == [
        (conflict["issue_id"], "conflict", "Open", "T1")]
    assert issues["issues"][0]["record"]["lines"][0]["qty"] == "3"
    assert issues["cursor"] is None


def test_one_bad_record_is_rejected_and_the_others_are_taken(retailer, operator):
    """Issue 11: one transaction with an unknown product made the whole upload 400."""
    batch = [sale("T1", [("BALL", None, 1, "5.00")]), sale("T2", [("NOPE", None, 1, "5.00")]),
             sale("T3", [("SHIRT", "M-RED", 1, "20.00")])]

    response = upload(retailer, "S1", batch)

    assert response.status_code == 200, response.body
    body = response.json_body
    assert (body["accepted"], body["duplicates"], body["conflicts"]) == (2, 0, [])
    [rejected] = body["rejected"]
    assert (rejected["index"], rejected["transaction_id"]) == (1, "T2")
    assert rejected["errors"] == [{"field": "transactions[1].lines[0].product_id", "message": "unknown product NOPE"}]
    assert transaction(retailer, "S1", "T3")["status"] == "Completed"
    assert retailer.http.get("/stores/S1/transactions/T2", headers=store_headers("S1")).status_code == 404
    [issue] = retailer.http.get("/stores/S1/upload-issues?kind=rejected", headers=operator).json_body["issues"]
    assert (issue["issue_id"], issue["errors"]) == (rejected["issue_id"], rejected["errors"])


@pytest.mark.parametrize("bad, field", [
    (lambda t: t["lines"][0].update(qty="-1"), "transactions[1].lines[0].qty"),
    (lambda t: t["payments"][0].update(amount="1.00"), "transactions[1].payments"),
    (lambda t: t["lines"][0].update(net_amount="20.005"), "transactions[1].lines[0].net_amount"),
    (lambda t: t.update(store_id="S2"), "transactions[1].store_id"),
    (lambda t: t["lines"][0].update(product_id="NOPE"), "transactions[1].lines[0].product_id"),
    (lambda t: t["lines"][0].pop("variant_id"), "transactions[1].lines[0].variant_id"),
    (lambda t: t["lines"][0].update(variant_id="XXL-RED"), "transactions[1].lines[0].variant_id"),
    (lambda t: t.update(customer_id="C404"), "transactions[1].customer_id"),
    (lambda t: t.update(surprise=True), "transactions[1].surprise"),
    (lambda t: t.update(business_date="1999-01-01"), "transactions[1].business_date"),
    (lambda t: t.update(business_date=(TODAY + timedelta(days=2)).isoformat()), "transactions[1].business_date"),
    (lambda t: t.update(transaction_id="T1"), "transactions[1].transaction_id"),
])
def test_an_invalid_transaction_is_rejected_with_its_field_path(retailer, bad, field):
    batch = [sale("T1", [("BALL", None, 1, "5.00")]), sale("T2", [("SHIRT", "M-RED", 1, "20.00")])]
    bad(batch[1])

    response = upload(retailer, "S1", batch)

    assert response.status_code == 200, response.body
    assert response.json_body["accepted"] == 1
    [rejected] = response.json_body["rejected"]
    assert field in [error["field"] for error in rejected["errors"]]
    assert transaction(retailer, "S1", "T1")["lines"][0]["product_id"] == "BALL"


def test_a_record_that_is_not_an_object_or_too_big_to_keep_is_rejected_alone(retailer, operator):
    huge = sale("T3", [("BALL", None, 1, "5.00")])
    huge["lines"] = [{**huge["lines"][0], "line_no": n, "product_id": f"NOPE{n}"} for n in range(1, 1001)]
    huge["payments"][0]["amount"] = str(Decimal(huge["payments"][0]["amount"]) * 1000)

    body = upload(retailer, "S1", [sale("T1", [("BALL", None, 1, "5.00")]), "T2", huge]).json_body

    assert body["accepted"] == 1
    assert [(r["index"], r["transaction_id"], r["errors"][0]["field"]) for r in body["rejected"]] == [
        (1, None, "transactions[1]"), (2, "T3", "transactions[2].lines[0].product_id")]
    issues = retailer.http.get("/stores/S1/upload-issues?kind=rejected", headers=operator).json_body["issues"]
    kept = {i["issue_id"]: i for i in issues}[body["rejected"][1]["issue_id"]]
    assert kept["record"]["transaction_id"] == "T3" and "omitted" in kept["record"] and len(kept["errors"]) == 50


def test_a_transaction_dated_1999_is_rejected_not_posted(retailer, operator):
    """Issue 11: a transaction dated 1999-01-01 was accepted and posted."""
    body = upload(retailer, "S1", [sale("T1", [("BALL", None, 1, "5.00")], business_date="1999-01-01")]).json_body

    assert body["accepted"] == 0
    [error] = body["rejected"][0]["errors"]
    assert error["field"] == "transactions[0].business_date"
    assert "max_backdated_days" in error["message"]
    run = run_job(retailer, operator, "post-statements", {"through_date": "2000-01-01"})
    assert run["counters"]["read"] == 0


def test_dates_are_plausible_in_the_stores_own_time_zone(retailer):
    """Today in Pacific/Kiritimati (UTC+14) is a day or two after today in Pacific/Pago_Pago (UTC-11)."""
    from chalicelib.storage import records

    far_east = datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    far_west = datetime.now(ZoneInfo("Pacific/Pago_Pago")).date()
    assert far_east > far_west
    store = records.get("stores", "S1")
    for time_zone, today, verdict in (("Pacific/Kiritimati", far_east, 1), ("Pacific/Pago_Pago", far_west, 0)):
        records.save("stores", {**store, "time_zone": time_zone})
        day_after = (far_west + timedelta(days=2)).isoformat()  # the east's tomorrow or before; the west's after
        assert (far_east + timedelta(days=1)).isoformat() >= day_after
        body = upload(retailer, "S1", [sale(f"T-{time_zone[-4:]}", [("BALL", None, 1, "5.00")],
                                             business_date=day_after)]).json_body
        assert body["accepted"] == verdict, (time_zone, today, body)
    params = {"id": "default", "max_backdated_days": 5}
    records.save("parameters", params)
    body = upload(retailer, "S1", [sale("T-OLD", [("BALL", None, 1, "5.00")],
                                         business_date=(far_west - timedelta(days=6)).isoformat())]).json_body
    assert body["accepted"] == 0 and "more than 5 days" in body["rejected"][0]["errors"][0]["message"]


def test_a_store_token_reaches_only_its_own_store(retailer):
    response = retailer.http.post("/stores/S1/transactions", headers=store_headers("S2"),
                                  body=json.dumps({"transactions": [sale("T1", [("BALL", None, 1, "5.00")])]}))
    assert response.status_code == 403
    assert retailer.http.get("/stores/S1/transactions/T1", headers=store_headers("S2")).status_code == 403


def test_batch_limits_and_unknown_store(retailer):
    too_many = [sale(f"T{n}", [("BALL", None, 1, "5.00")]) for n in range(501)]
    response = upload(retailer, "S1", too_many)
    assert response.status_code == 400
    assert response.json_body["error"]["details"][0]["field"] == "transactions"
    assert upload(retailer, "S9", [sale("T1", [("BALL", None, 1, "5.00")], store_id="S9")]).status_code == 404


def _conflict(client, transaction_id: str = "T1") -> dict:
    assert upload(client, "S1", [sale(transaction_id, [("BALL", None, 1, "5.00")])]).json_body["accepted"] == 1
    [conflict] = upload(client, "S1", [sale(transaction_id, [("BALL", None, 2, "5.00")])]).json_body["conflicts"]
    return conflict


def test_an_operator_accepts_a_conflicting_version_while_the_original_is_unposted(retailer, operator):
    conflict = _conflict(retailer)
    path = f"/stores/S1/upload-issues/{conflict['issue_id']}/accept"

    response = retailer.http.post(path, headers=operator)

    assert response.status_code == 200, response.body
    assert (response.json_body["status"], response.json_body["accepted_by"] is not None) == ("Accepted", True)
    assert transaction(retailer, "S1", "T1")["lines"][0]["qty"] == "2"
    again = retailer.http.post(path, headers=operator)  # idempotent: the same accepted issue
    assert (again.status_code, again.json_body["accepted_at"]) == (200, response.json_body["accepted_at"])
    resend = upload(retailer, "S1", [sale("T1", [("BALL", None, 2, "5.00")])]).json_body
    assert (resend["duplicates"], resend["conflicts"]) == (1, [])  # the accepted version is the stored one now
    run = run_job(retailer, operator, "post-statements")
    assert run["counters"]["read"] == 1
    assert transaction(retailer, "S1", "T1")["status"] == "Posted"


def test_accepting_a_conflict_whose_original_is_posted_is_refused(retailer, operator):
    assert upload(retailer, "S1", [sale("T1", [("BALL", None, 1, "5.00")])]).json_body["accepted"] == 1
    run_job(retailer, operator, "post-statements")
    [conflict] = upload(retailer, "S1", [sale("T1", [("BALL", None, 2, "5.00")])]).json_body["conflicts"]
    assert "already posted" in conflict["message"]

    response = retailer.http.post(f"/stores/S1/upload-issues/{conflict['issue_id']}/accept", headers=operator)

    assert response.status_code == 409, response.body
    assert "void it and send the correction under a new transaction id" in response.json_body["error"]["message"]
    assert transaction(retailer, "S1", "T1")["lines"][0]["qty"] == "1"


def test_upload_issue_routes_are_for_operators_and_name_what_is_missing(retailer, operator):
    conflict = _conflict(retailer)
    [rejected] = upload(retailer, "S1", [sale("T9", [("NOPE", None, 1, "5.00")])]).json_body["rejected"]
    own_store = store_headers("S1")

    assert retailer.http.get("/stores/S1/upload-issues", headers=own_store).status_code == 403
    assert retailer.http.post(f"/stores/S1/upload-issues/{conflict['issue_id']}/accept",
                              headers=own_store).status_code == 403
    assert retailer.http.post("/stores/S1/upload-issues/UC-nope/accept", headers=operator).status_code == 404
    assert retailer.http.post(f"/stores/S2/upload-issues/{conflict['issue_id']}/accept",
                              headers=operator).status_code == 404
    refused = retailer.http.post(f"/stores/S1/upload-issues/{rejected['issue_id']}/accept", headers=operator)
    assert refused.status_code == 409 and "rejected record" in refused.json_body["error"]["message"]
    listed = retailer.http.get("/stores/S1/upload-issues?limit=1", headers=operator).json_body
    assert [i["issue_id"] for i in listed["issues"]] == [rejected["issue_id"]]  # newest first
    following = retailer.http.get(f"/stores/S1/upload-issues?limit=1&cursor={listed['cursor']}", headers=operator)
    assert [i["issue_id"] for i in following.json_body["issues"]] == [conflict["issue_id"]]
    assert retailer.http.get("/stores/S1/upload-issues?kind=late", headers=operator).status_code == 400


def test_the_same_refused_record_sent_again_is_one_issue_kept_30_days(retailer, operator):
    from chalicelib.storage.upload_issues import UploadIssue

    bad = [sale("T9", [("NOPE", None, 1, "5.00")])]
    first, second = (upload(retailer, "S1", bad).json_body["rejected"][0]["issue_id"] for _ in range(2))

    assert first == second
    [issue] = list(UploadIssue.query("S1"))
    assert 29 <= (issue.expires - datetime.now(issue.expires.tzinfo)).days <= 30


@pytest.mark.parametrize("body", ['{"transactions": "T1"}', '{"transactions": []}', "[1, 2]", "{not json",
                                  '{"transactions": [], "extra": 1}'])
def test_a_malformed_envelope_is_400_and_takes_nothing(retailer, body):
    response = retailer.http.post("/stores/S1/transactions", headers=store_headers("S1"), body=body)
    assert response.status_code == 400, response.body


@pytest.mark.parametrize("same", [True, False])
def test_two_uploads_of_one_id_racing_give_one_accepted_and_one_duplicate_or_conflict(retailer, monkeypatch, same):
    from chalicelib.jobs.transaction_upload import upload as direct_upload
    from chalicelib.storage import transactions

    real, raced = transactions.write_transaction_reasons, []

    def other_upload_first(*args, **kwargs):
        if not raced:
            raced.append(None)
            raced[0] = direct_upload("S1", [sale("T1", [("BALL", None, 1, "5.00")])])
        return real(*args, **kwargs)

    monkeypatch.setattr(transactions, "write_transaction_reasons", other_upload_first)
    body = upload(retailer, "S1", [sale("T1", [("BALL", None, 1 if same else 2, "5.00")])]).json_body

    assert raced[0]["accepted"] == 1
    assert (body["accepted"], body["duplicates"], len(body["conflicts"])) == ((0, 1, 0) if same else (0, 0, 1))
    assert transaction(retailer, "S1", "T1")["lines"][0]["qty"] == "1"


def test_telling_duplicates_from_conflicts_costs_no_extra_request(retailer):
    from collections import Counter

    from chalicelib.jobs.transaction_upload import upload as direct_upload
    from chalicelib.storage.metering import metered

    batch = [sale(f"T{n}", [("BALL", None, 1, "5.00")]) for n in range(150)]
    with metered(Counter()) as first:
        assert direct_upload("S1", batch)["accepted"] == 150
    batch[0]["lines"][0].update(qty="2", net_amount="10.00", tax_amount="0.80")
    batch[0]["payments"][0]["amount"] = "10.80"
    with metered(Counter()) as resend:
        body = direct_upload("S1", batch)
    assert (body["duplicates"], len(body["conflicts"])) == (149, 1)
    # store and parameters in one batch get, products in another; a transaction per 100; the issue
    # and the conflict's alert.
    assert first == {"dynamodb.BatchGetItem": 2, "dynamodb.TransactWriteItems": 2}
    assert resend == {"dynamodb.BatchGetItem": 2, "dynamodb.TransactWriteItems": 2, "dynamodb.BatchWriteItem": 1,
                      "dynamodb.PutItem": 1}
