"""Migration from RMS on moto: files dropped in the migration bucket, staging jobs, copy to target
and clean up staging, observed through the routes, the staging tables, live data and S3."""
from __future__ import annotations

import codecs
import json
from urllib.parse import quote_plus

import pytest

from chalicelib import settings
from chalicelib.storage import aws, records
from chalicelib.storage import migration as staging

PRODUCTS_CSV = (
    "ItemLookupCode,Description,CategoryID,Price,Inactive\r\n"
    "P1,Espresso,C1,2.50,0\r\n"
    "P2,Latte,C1,abc,0\r\n"
    "P3,,C2,1.00,0\r\n"
    "P4,Tea,C9,1.00,0\r\n"
    "P5,Mocha,C2,3.00,1\r\n"
)


@pytest.fixture
def hq(aws):
    """HQ master data the migrated rows refer to."""
    records.upsert("org-nodes", [{"id": "HQ", "name": "Company", "parent_id": None}])
    records.upsert("stores", [{"id": "S1", "name": "Main street", "legal_entity": "USRT", "org_node_id": "HQ",
                               "warehouse_id": "WH1"}])
    records.upsert("categories", [{"id": "ALL", "name": "All", "parent_id": None},
                                  {"id": "C1", "name": "Coffee", "parent_id": "ALL"},
                                  {"id": "C2", "name": "Tea", "parent_id": "ALL"}])


def put(key: str, body: bytes | str) -> str:
    data = body.encode() if isinstance(body, str) else body
    response = aws.client("s3").put_object(Bucket=settings.migration_bucket(), Key=key, Body=data)
    return response["ETag"].strip('"')


def s3_event(key: str, etag: str, bucket: str | None = None) -> dict:
    """The notification S3 sends: the key URL-encoded, the ETag without quotes."""
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "eventTime": "2026-11-25T10:00:00.000Z",
        "s3": {"bucket": {"name": bucket or settings.migration_bucket()},
               "object": {"key": quote_plus(key, safe="/"), "size": 1, "eTag": etag, "sequencer": "0A1B"}},
    }]}


def drop(client, key: str, body: bytes | str) -> dict:
    """Put the object and deliver its notification to ``on_migration_drop``; the handled record."""
    etag = put(key, body)
    return client.lambda_.invoke("on_migration_drop", s3_event(key, etag)).payload["handled"][0]


def job_of(client, operator, job_id: str) -> dict:
    response = client.http.get(f"/migration/jobs/{job_id}", headers=operator)
    assert response.status_code == 200, response.body
    return response.json_body


def staged_rows(job_id: str) -> dict[int, staging.StagingRow]:
    return {int(row.row): row for row in staging.StagingRow.query(job_id)}


def copy(client, operator, job_id: str, rows: str = "all"):
    return client.http.post(f"/migration/jobs/{job_id}/copy-to-target", headers=operator,
                            body=json.dumps({"rows": rows}))


def in_bucket(key: str) -> bool:
    listed = aws.client("s3").list_objects_v2(Bucket=settings.migration_bucket(), Prefix=key)
    return any(item["Key"] == key for item in listed.get("Contents", []))


# --- staging and copy to target -----------------------------------------------------------

def test_good_and_bad_rows_are_counted_errors_name_the_column_and_only_good_rows_are_copied(client, operator, hq):
    handled = drop(client, "migration/data/products/items.csv", PRODUCTS_CSV)
    job = job_of(client, operator, handled["staging_job_id"])
    assert (job["status"], job["rows"], job["errors"], job["valid_rows"]) == ("StagedWithErrors", 5, 3, 2)
    assert job["sample_errors"] == [
        {"row": 3, "errors": [{"column": "Price", "message": "must be a decimal number such as \"12.50\", got 'abc'"}]},
        {"row": 4, "errors": [{"column": "Description", "message": "is required"}]},
        {"row": 5, "errors": [{"column": "CategoryID", "message": "unknown category 'C9'"}]},
    ]
    rows = staged_rows(job["job_id"])
    assert rows[3].errors == job["sample_errors"][0]["errors"] and rows[3].record is None
    assert rows[2].record["price"] == "2.50" and rows[2].source["Description"] == "Espresso"

    response = copy(client, operator, job["job_id"])
    assert response.status_code == 202, response.body
    assert response.json_body["run"]["status"] == "Ended"
    copied = response.json_body["job"]
    assert (copied["status"], copied["copied"], copied["copy_failed"]) == ("CompletedWithErrors", 2, 3)
    assert records.get("products", "P1") == {
        "id": "P1", "name": "Espresso", "category_id": "C1", "price": "2.50", "released_to": ["USRT"],
        "stopped": False, "allow_negative_inventory": True, "variants": []}
    assert records.get("products", "P5")["stopped"] is True
    assert [records.get("products", p) for p in ("P2", "P3", "P4")] == [None, None, None]
    assert {e["key"] for e in response.json_body["run"]["errors"]} == {"row 3", "row 4", "row 5"}


def test_windows_1252_with_accents_and_utf8_with_bom_import_correctly(client, operator, hq):
    rms = ("ItemLookupCode;Description;CategoryID;Price;Inactive\r\n"
           "W1;Crème brûlée;C1;4,50;0\r\nW2;Café Señor ½;C2;1.234,00;0\r\n").encode("cp1252")
    bom = codecs.BOM_UTF8 + "AccountNumber,FirstName,LastName,EmailAddress\nK1,Zoë,Ødegård,zoe@example.com\n".encode()
    products = drop(client, "migration/data/products/rms export.csv", rms)
    customers = drop(client, "migration/data/customers/crm.csv", bom)
    assert job_of(client, operator, products["staging_job_id"])["encoding"] == "cp1252"
    assert job_of(client, operator, customers["staging_job_id"])["status"] == "Staged"
    for job_id in (products["staging_job_id"], customers["staging_job_id"]):
        assert copy(client, operator, job_id).json_body["job"]["status"] == "Completed"
    assert records.get("products", "W1")["name"] == "Crème brûlée"
    w2 = records.get("products", "W2")
    assert (w2["name"], w2["price"]) == ("Café Señor ½", "1234.00")
    assert records.get("customers", "K1") == {"id": "K1", "name": "Zoë Ødegård", "email": "zoe@example.com",
                                              "language": "en-us", "receipt_option": "Email"}


def test_a_utf8_file_with_one_invalid_byte_stages_that_row_as_an_error_and_copies_the_rest(client, operator, hq):
    head = "ItemLookupCode,Description,CategoryID,Price,Inactive\r\nU1,Café crème,C1,3.20,0\r\n".encode()
    bad_row = b"U2,Th\xe9 vert,C2,2.10,0\r\n"  # one Windows-1252 byte in a UTF-8 file
    tail = "U3,Crêpe Suzette,C1,5.00,0\r\n".encode()
    handled = drop(client, "migration/data/products/mixed.csv", head + bad_row + tail)
    job = job_of(client, operator, handled["staging_job_id"])
    offset = len(head) + bad_row.index(b"\xe9")
    assert (job["status"], job["rows"], job["errors"], job["encoding"]) == ("StagedWithErrors", 3, 1, "utf-8-sig")
    assert job["sample_errors"] == [{"row": 3, "errors": [
        {"column": "Description", "message": f"invalid UTF-8 byte 0xE9 at byte offset {offset}"}]}]
    rows = staged_rows(job["job_id"])
    assert rows[3].record is None and rows[3].source["Description"] == "Th\ufffd vert"

    copied = copy(client, operator, job["job_id"]).json_body["job"]
    assert (copied["status"], copied["copied"], copied["copy_failed"]) == ("CompletedWithErrors", 2, 1)
    assert records.get("products", "U1")["name"] == "Café crème"
    assert records.get("products", "U3")["name"] == "Crêpe Suzette"
    assert records.get("products", "U2") is None


def test_a_mapping_may_force_the_encoding(client, operator, hq):
    # Valid UTF-8 by accident: "Ã©" in Windows-1252 is the UTF-8 of "é"; the mapping says what the file is.
    mapping = {**staging_default("products"), "encoding": "windows-1252"}
    drop(client, "migration/mappings/products.json", json.dumps(mapping))
    handled = drop(client, "migration/data/products/forced.csv",
                   "ItemLookupCode,Description,CategoryID,Price\nF1,MÃ©tal,C1,1.00\n".encode("cp1252"))
    job = job_of(client, operator, handled["staging_job_id"])
    assert (job["status"], job["encoding"]) == ("Staged", "cp1252")
    assert copy(client, operator, job["job_id"]).json_body["job"]["status"] == "Completed"
    assert records.get("products", "F1")["name"] == "MÃ©tal"

    rejected = drop(client, "migration/mappings/products.json", json.dumps({**mapping, "encoding": "utf-16"}))
    assert rejected["status"] == "Rejected"
    assert ("encoding: unknown encoding 'utf-16'; expected one of: utf-8, windows-1252, latin-1"
            in job_of(client, operator, rejected["staging_job_id"])["message"])


@pytest.mark.parametrize(("body", "reason"), [
    (b"PK\x03\x04\x14\x00\x06\x00garbage", "file is not text: it is a ZIP archive or an Excel .xlsx workbook"),
    (bytes(range(256)) * 4, "file is not text: NUL bytes at offset 0"),
    (b"", "file is empty"),
    (b"ItemLookupCode,Description,CategoryID\nP1,Espresso,C1\n", "missing required column(s): Price"),
])
def test_an_unreadable_file_fails_with_a_reason_naming_the_problem_and_stays_in_the_bucket(
        client, operator, hq, body, reason):
    key = "migration/data/products/bad.csv"
    handled = drop(client, key, body)
    job = job_of(client, operator, handled["staging_job_id"])
    assert job["status"] == "Failed"
    assert reason in job["message"] and reason in handled["message"]
    assert in_bucket(key)
    assert copy(client, operator, job["job_id"]).status_code == 409


def test_the_same_notification_twice_makes_one_staging_job(client, operator, hq):
    key = "migration/data/products/items.csv"
    event = s3_event(key, put(key, PRODUCTS_CSV))
    first = client.lambda_.invoke("on_migration_drop", event).payload["handled"][0]
    second = client.lambda_.invoke("on_migration_drop", event).payload["handled"][0]
    assert first["staging_job_id"] == second["staging_job_id"]
    jobs = client.http.get("/migration/jobs?entity=products", headers=operator).json_body["jobs"]
    assert [j["job_id"] for j in jobs] == [first["staging_job_id"]]
    assert len(staged_rows(first["staging_job_id"])) == 5


def test_url_encoded_keys_and_the_s3_test_event_are_handled(client, operator, hq):
    handled = drop(client, "migration/data/products/spring sale+50%.csv", PRODUCTS_CSV)
    job = job_of(client, operator, handled["staging_job_id"])
    assert (job["source_key"], job["rows"]) == ("migration/data/products/spring sale+50%.csv", 5)
    result = client.lambda_.invoke("on_migration_drop", {"Service": "Amazon S3", "Event": "s3:TestEvent",
                                                         "Bucket": settings.migration_bucket()}).payload
    assert result == {"handled": [], "ignored": "s3:TestEvent"}


def test_every_record_of_an_event_is_handled(client, operator, hq):
    first, second = "migration/data/products/a.csv", "migration/data/products/b.csv"
    event = s3_event(first, put(first, PRODUCTS_CSV))
    event["Records"] += s3_event(second, put(second, PRODUCTS_CSV))["Records"]
    handled = client.lambda_.invoke("on_migration_drop", event).payload["handled"]
    assert [h["key"] for h in handled] == [first, second]
    assert len({h["staging_job_id"] for h in handled}) == 2


@pytest.mark.parametrize(("key", "entity", "reason"), [
    ("migration/data/vendors/all.csv", "unknown", "unknown entity 'vendors'"),
    ("migration/data/products/items.xlsx", "products", "a data file must be migration/data/<entity>/<name>.csv"),
    ("migration/incoming/items.csv", "unknown", "not under migration/mappings/ or migration/data/"),
])
def test_an_unknown_prefix_or_entity_is_a_failed_staging_job_with_its_reason(client, operator, hq, key, entity,
                                                                             reason):
    handled = drop(client, key, PRODUCTS_CSV)
    job = job_of(client, operator, handled["staging_job_id"])
    assert (job["status"], job["entity"], job["rows"]) == ("Failed", entity, 0)
    assert reason in job["message"]
    listed = client.http.get(f"/migration/jobs?entity={entity}", headers=operator).json_body["jobs"]
    assert job["job_id"] in [j["job_id"] for j in listed]


def test_inventory_rows_set_on_hand_in_the_warehouse_of_their_store(client, operator, hq):
    from chalicelib.storage.inventory import OnHand

    drop(client, "migration/data/products/items.csv", PRODUCTS_CSV)
    products_job = client.http.get("/migration/jobs?entity=products", headers=operator).json_body["jobs"][0]
    copy(client, operator, products_job["job_id"])
    handled = drop(client, "migration/data/inventory/stock.csv",
                   "StoreID,ItemLookupCode,Quantity\nS1,P1,12\nS1,P5,-3.5\nS9,P1,1\nS1,P2,4\n")
    job = copy(client, operator, handled["staging_job_id"]).json_body["job"]
    assert (job["status"], job["copied"], job["copy_failed"]) == ("CompletedWithErrors", 2, 2)
    on_hand = {(o.warehouse_id, o.product_id): o.qty for o in OnHand.scan()}
    assert {k: str(v) for k, v in on_hand.items()} == {("WH1", "P1"): "12", ("WH1", "P5"): "-3.5"}


def test_copy_rows_errors_retries_only_rows_that_failed_after_a_mapping_fix_and_re_stage(client, operator, hq):
    export = ("Code,Title,Cat,Cost\n"
              "R1,One,C1,1.00\nR2,Two,C1,2.00\nR3,,C1,3.00\n")
    key = "migration/data/products/renamed.csv"
    mapping = {"id": "Code", "name": "Title", "category_id": "Cat", "price": "Cost"}
    drop(client, "migration/mappings/products.json", json.dumps(mapping))
    first = drop(client, key, export)
    assert copy(client, operator, first["staging_job_id"]).json_body["job"]["copy_failed"] == 1
    records.save("products", {**records.get("products", "R1"), "name": "Edited since"})

    # The fix: an empty Title falls back to the code. A new mapping cleans staging; the file is dropped again.
    drop(client, "migration/mappings/products.json", json.dumps({**mapping, "name": ["Title", "Code"]}))
    assert job_of(client, operator, first["staging_job_id"])["status"] == "Cleaned"
    second = drop(client, key, export)
    assert second["staging_job_id"] != first["staging_job_id"]
    response = copy(client, operator, second["staging_job_id"], rows="errors")
    job = response.json_body["job"]
    assert (job["status"], job["copied"], job["copy_failed"]) == ("Completed", 1, 0)
    assert response.json_body["run"]["counters"]["skipped"] == 2
    assert records.get("products", "R3")["name"] == "R3"
    assert records.get("products", "R1")["name"] == "Edited since"  # not copied again


def test_copy_to_target_answers_what_is_wrong(client, operator, hq):
    handled = drop(client, "migration/data/products/items.csv", PRODUCTS_CSV)
    assert client.http.post("/migration/jobs/nope/copy-to-target", headers=operator,
                            body="{}").status_code == 404
    bad = client.http.post(f"/migration/jobs/{handled['staging_job_id']}/copy-to-target", headers=operator,
                           body=json.dumps({"rows": "some", "extra": 1}))
    assert bad.status_code == 400
    assert {d["field"] for d in bad.json_body["error"]["details"]} == {"rows", "extra"}
    bad = copy(client, operator, handled["staging_job_id"], rows="some")
    assert bad.json_body["error"]["details"] == [{"field": "rows", "message": "must be one of: all, errors"}]
    never_copied = copy(client, operator, handled["staging_job_id"], rows="errors")
    assert never_copied.status_code == 409 and "nothing" in never_copied.json_body["error"]["message"]
    assert records.get("products", "P1") is None


# --- mappings and clean up staging --------------------------------------------------------

def test_dropping_a_mapping_cleans_that_entitys_staging_rows_only_and_leaves_live_data(client, operator, hq):
    products = drop(client, "migration/data/products/items.csv", PRODUCTS_CSV)["staging_job_id"]
    customers = drop(client, "migration/data/customers/crm.csv",
                     "AccountNumber,FirstName,LastName\nK1,Ann,Lee\n")["staging_job_id"]
    copy(client, operator, products)
    live_before = records.get("products", "P1")

    handled = drop(client, "migration/mappings/products.json", json.dumps(
        {"id": "ItemLookupCode", "name": "ExtendedDescription", "category_id": "CategoryID", "price": "Price"}))
    assert (handled["status"], handled["mapping_version"], handled["run_status"]) == ("Applied", 1, "Ended")
    assert staged_rows(products) == {}
    assert len(staged_rows(customers)) == 1
    assert job_of(client, operator, products)["status"] == "Cleaned"
    assert job_of(client, operator, products)["cleaned_rows"] == 5
    assert job_of(client, operator, customers)["status"] == "Staged"
    assert records.get("products", "P1") == live_before
    run = client.http.get(f"/runs/{handled['clean_up_run_id']}", headers=operator).json_body
    assert run["outputs"] == [{"kind": "staging-job", "job_id": products, "entity": "products", "rows_deleted": 5}]
    assert f"products 5 (job {products} 5)" in run["message"]
    assert staging.current_mapping("products")[1]["name"] == "ExtendedDescription"


def test_a_bad_mapping_is_recorded_with_its_reason_and_not_applied(client, operator, hq):
    staged = drop(client, "migration/data/products/items.csv", PRODUCTS_CSV)["staging_job_id"]
    handled = drop(client, "migration/mappings/products.json", json.dumps({"id": "ItemLookupCode", "colour": "X"}))
    assert handled["status"] == "Rejected"
    job = job_of(client, operator, handled["staging_job_id"])
    assert job["status"] == "Failed"
    assert "colour: is not a field of products" in job["message"] and "price: is required" in job["message"]
    not_json = drop(client, "migration/mappings/products.json", "{oops")
    assert "mapping file is not valid JSON" in job_of(client, operator, not_json["staging_job_id"])["message"]
    assert staging.current_mapping("products") == (0, staging_default("products"))
    assert len(staged_rows(staged)) == 5  # nothing cleaned


def staging_default(entity: str) -> dict:
    from chalicelib.domain.migration import DEFAULT_MAPPINGS

    return DEFAULT_MAPPINGS[entity]


def test_clean_up_during_a_running_staging_job_is_refused(client, operator, hq, monkeypatch):
    from chalicelib.jobs import runtime, stage_migration_file

    monkeypatch.setattr(stage_migration_file, "CHECKPOINT_ROWS", 2)
    refused = {}
    write_rows = staging.write_rows

    def clean_up_meanwhile(job_id, batch):
        if not refused:
            run, _ = runtime.submit("clean-up-staging", {"entity": "products"}, trigger="manual")
            runtime.dispatch(run.run_id)
            refused["run"] = runtime.get_run(run.run_id)
            mapping = drop(client, "migration/mappings/products.json", json.dumps(staging_default("products")))
            refused["mapping"] = runtime.get_run(mapping["clean_up_run_id"])
        return write_rows(job_id, batch)

    monkeypatch.setattr(staging, "write_rows", clean_up_meanwhile)
    handled = drop(client, "migration/data/products/items.csv", PRODUCTS_CSV)
    for run in refused.values():
        assert run.status == "NotRun"
        assert f"staging job {handled['staging_job_id']} of products" in run.message
    assert len(staged_rows(handled["staging_job_id"])) == 5
    monkeypatch.setattr(staging, "write_rows", write_rows)
    after = client.http.post("/jobs/clean-up-staging/runs", headers=operator,
                             body=json.dumps({"params": {"entity": "products"}})).json_body["run"]
    assert after["status"] == "Ended" and staged_rows(handled["staging_job_id"]) == {}


def test_weekly_clean_up_deletes_only_jobs_older_than_30_days(client, operator, hq):
    from tests.conftest import schedule_event

    old = drop(client, "migration/data/products/old.csv", PRODUCTS_CSV)["staging_job_id"]
    new = drop(client, "migration/data/customers/new.csv", "AccountNumber,FirstName,LastName\nK1,Ann,Lee\n")[
        "staging_job_id"]
    staging.StagingJob(old).update(actions=[staging.StagingJob.created_at.set("2026-01-01T00:00:00.000Z")])
    run = client.lambda_.invoke("clean_up_staging", schedule_event(client, "weekly-1")).payload
    assert run["status"] == "Ended", run
    assert staged_rows(old) == {} and len(staged_rows(new)) == 1
    assert [o["job_id"] for o in run["outputs"]] == [old]


@pytest.mark.parametrize(("scope", "left", "status"), [
    ("errors", {2, 6}, "CompletedWithErrors"),
    ("copied", set(), "Cleaned"),
])
def test_clean_up_scopes(client, operator, hq, scope, left, status):
    job_id = drop(client, "migration/data/products/items.csv", PRODUCTS_CSV)["staging_job_id"]
    copy(client, operator, job_id)
    uncopied = drop(client, "migration/data/products/later.csv", PRODUCTS_CSV)["staging_job_id"]
    run = client.http.post("/jobs/clean-up-staging/runs", headers=operator, body=json.dumps(
        {"params": {"entity": "products", "scope": scope}})).json_body["run"]
    assert run["status"] == "Ended", run
    assert set(staged_rows(job_id)) == left
    assert job_of(client, operator, job_id)["status"] == status
    assert len(staged_rows(uncopied)) == (2 if scope == "errors" else 5)


def test_clean_up_a_single_job_as_a_dry_run_deletes_nothing(client, operator, hq):
    job_id = drop(client, "migration/data/products/items.csv", PRODUCTS_CSV)["staging_job_id"]
    run = client.http.post("/jobs/clean-up-staging/runs", headers=operator, body=json.dumps(
        {"params": {"staging_job_id": job_id}, "dry_run": True})).json_body["run"]
    assert run["message"] == f"would delete 5 staging row(s) of 1 staging job(s): products 5 (job {job_id} 5)"
    assert len(staged_rows(job_id)) == 5 and job_of(client, operator, job_id)["status"] == "StagedWithErrors"


# --- large files ---------------------------------------------------------------------------

def big_products(rows: int) -> bytes:
    lines = ["ItemLookupCode,Description,CategoryID,Price,Inactive"]
    lines += [f"B{i:06d},Crème {i},C1,{i % 90 + 1}.25,0" for i in range(rows)]
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def test_a_large_file_continues_across_invocations_from_its_byte_position(client, operator, hq, monkeypatch):
    from chalicelib.jobs import runtime, stage_migration_file

    monkeypatch.setattr(stage_migration_file, "CHECKPOINT_ROWS", 250)
    monkeypatch.setattr(runtime.Budget, "spent", lambda self: True)  # hand over at every checkpoint
    handled = drop(client, "migration/data/products/big.csv", big_products(1000))
    run = client.http.get(f"/runs/{handled['staging_job_id']}", headers=operator).json_body
    assert run["status"] == "Ended", run
    # The whole object, then the header and the rest per continuation; the last starts at the end.
    assert run["aws_requests"]["s3.GetObject"] == 1 + 2 * 3 + 1
    rows = staged_rows(handled["staging_job_id"])
    assert sorted(rows) == list(range(2, 1002))
    assert rows[1001].record["name"] == "Crème 999"
    assert job_of(client, operator, handled["staging_job_id"])["rows"] == 1000


def test_staging_makes_at_most_005_aws_requests_per_row(client, operator, hq):
    handled = drop(client, "migration/data/products/big.csv", big_products(5000))
    run = client.http.get(f"/runs/{handled['staging_job_id']}", headers=operator).json_body
    assert run["aws_requests"]["dynamodb.BatchWriteItem"] == 5000 // 25
    assert sum(run["aws_requests"].values()) / 5000 <= 0.05


def test_clean_up_entities_are_the_migration_entities():
    from chalicelib.domain.migration import MIGRATION_ENTITIES
    from chalicelib.jobs.clean_up_staging import ENTITIES

    assert ENTITIES == (*MIGRATION_ENTITIES, staging.UNKNOWN_ENTITY)


class Killed(BaseException):
    """The Lambda dies: no ``except`` of the job or the runtime sees it."""


@pytest.mark.parametrize(("scope", "cleaned", "status"), [
    ("all", 5, "Cleaned"),
    ("errors", 3, "StagedWithErrors"),
])
def test_a_clean_up_killed_after_deleting_rows_still_records_them_on_the_next_run(client, operator, hq, monkeypatch,
                                                                                  scope, cleaned, status):
    import botocore.client

    from chalicelib import clock
    from chalicelib.jobs import runtime

    job_id = drop(client, "migration/data/products/items.csv", PRODUCTS_CSV)["staging_job_id"]
    params = {"staging_job_id": job_id, "scope": scope}
    real = botocore.client.BaseClient._make_api_call

    def die_after_the_delete(self, operation, api_params):
        answer = real(self, operation, api_params)
        if operation == "BatchWriteItem" and any("DeleteRequest" in request for requests in api_params[
                "RequestItems"].values() for request in requests):
            raise Killed()  # AWS deleted the rows; the run dies before recording them
        return answer

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", die_after_the_delete)
    dead, _ = runtime.submit("clean-up-staging", params, trigger="manual")
    with pytest.raises(Killed):
        runtime.execute(dead.run_id, runtime.Budget.for_invocation())
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", real)
    assert len(staged_rows(job_id)) == 5 - cleaned and job_of(client, operator, job_id)["cleaned_rows"] == 0

    clock.advance(settings.lock_lease_seconds() + 1)
    try:
        rerun = client.http.post("/jobs/clean-up-staging/runs", headers=operator,
                                 body=json.dumps({"params": params})).json_body["run"]
    finally:
        clock.reset()

    assert rerun["status"] == "Ended", rerun
    job = job_of(client, operator, job_id)
    assert (job["cleaned_rows"], job["status"]) == (cleaned, status)
    if scope == "errors":  # then the rest: every row counted once
        client.http.post("/jobs/clean-up-staging/runs", headers=operator,
                         body=json.dumps({"params": {"staging_job_id": job_id}}))
        assert (job_of(client, operator, job_id)["cleaned_rows"], staged_rows(job_id)) == (5, {})
