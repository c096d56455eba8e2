"""Transaction upload and read over the store routes: strict validation, whole-batch rejection,
idempotent resends."""
import json

import pytest

from tests.conftest import store_headers
from tests.integration.retail import load_master_data, sale, transaction, upload


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
    assert response.json_body == {"accepted": 3, "duplicates": 0}
    read = transaction(retailer, "S1", "T1")
    assert (read["status"], read["email_status"], read["statement_id"]) == ("Completed", "Pending", None)
    assert read["lines"][0]["net_amount"] == "40.00"
    assert transaction(retailer, "S1", "T2")["email_status"] is None  # no receipt asked for
    voided = retailer.http.get("/stores/S1/transactions/T3", headers=operator).json_body  # operators too
    assert (voided["status"], voided["email_status"]) == ("Voided", None)


def test_a_resend_is_counted_as_duplicates_and_changes_nothing(retailer):
    first = [sale("T1", [("BALL", None, 1, "5.00")]), sale("T2", [("BALL", None, 2, "5.00")])]
    assert upload(retailer, "S1", first).json_body == {"accepted": 2, "duplicates": 0}
    uploaded_at = transaction(retailer, "S1", "T1")["uploaded_at"]

    changed = sale("T1", [("BALL", None, 3, "5.00")])  # same id, other content: still a duplicate
    response = upload(retailer, "S1", [changed, first[1], sale("T3", [("BALL", None, 1, "5.00")])])

    assert response.json_body == {"accepted": 1, "duplicates": 2}
    kept = transaction(retailer, "S1", "T1")
    assert (kept["lines"][0]["qty"], kept["uploaded_at"]) == ("1", uploaded_at)


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
])
def test_one_invalid_transaction_rejects_the_batch_with_its_field_path(retailer, bad, field):
    batch = [sale("T1", [("BALL", None, 1, "5.00")]), sale("T2", [("SHIRT", "M-RED", 1, "20.00")])]
    bad(batch[1])

    response = upload(retailer, "S1", batch)

    assert response.status_code == 400, response.body
    assert field in [detail["field"] for detail in response.json_body["error"]["details"]]
    assert retailer.http.get("/stores/S1/transactions/T1", headers=store_headers("S1")).status_code == 404


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
