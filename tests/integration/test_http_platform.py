"""HTTP platform: the token matrix, the error format, /data validation and limits, run routes."""
import json

import pytest

from tests.conftest import store_headers


def _store(id_="S1"):
    return {"id": id_, "name": f"Store {id_}", "legal_entity": "USRT", "org_node_id": "ROOT"}


@pytest.fixture
def with_store(client, operator):
    client.http.put("/data/org-nodes", headers=operator,
                    body=json.dumps({"items": [{"id": "ROOT", "name": "Contoso", "parent_id": None}]}))
    r = client.http.put("/data/stores", headers=operator, body=json.dumps({"items": [_store("S1"), _store("S2")]}))
    assert r.status_code == 200, r.body


def test_token_matrix(client, operator, with_store):
    from chalicelib.auth import issue_token, revoke
    from chalicelib.storage.tokens import ApiToken

    revoked = issue_token("store", store_id="S1", label="lost device")
    revoke(next(t.token_id for t in ApiToken.scan() if t.label == "lost device"))
    s1 = store_headers("S1")
    cases = [
        ("no token", "/jobs", {}, 401),
        ("unknown token", "/jobs", {"Authorization": "Bearer rs_not-a-real-token"}, 401),
        ("not a bearer", "/jobs", {"Authorization": "Basic abc"}, 401),
        ("revoked token", "/stores/S1", {"Authorization": f"Bearer {revoked}"}, 401),
        ("store token on an operator route", "/jobs", s1, 403),
        ("store token on another store", "/stores/S2", s1, 403),
        ("store token on its own store", "/stores/S1", s1, 200),
        ("operator on an operator route", "/jobs", operator, 200),
        ("operator on a store route", "/stores/S2", operator, 200),
        ("health needs no token", "/health", {}, 200),
    ]
    for name, path, headers, expected in cases:
        assert client.http.get(path, headers=headers).status_code == expected, name
    body = client.http.get("/jobs", headers={"Authorization": "Bearer rs_unknown"}).json_body
    assert body["error"]["code"] == "unauthorized"


def test_tokens_are_stored_only_as_hashes(aws):
    from chalicelib.auth import hash_token, issue_token
    from chalicelib.storage.tokens import ApiToken

    token = issue_token("operator", label="ops")
    stored = list(ApiToken.scan())
    assert [t.token_hash for t in stored] == [hash_token(token)]
    assert token not in json.dumps([t.attribute_values for t in stored], default=str)


def test_one_invalid_item_in_a_hundred_writes_nothing(client, operator):
    items = [{"id": f"P{i:03d}", "name": f"Product {i}", "category_id": "ALL", "price": "9.99",
              "released_to": ["USRT"]} for i in range(100)]
    items[57]["price"] = 9.99  # a float: money must never pass through binary floating point
    items[57]["price"] = "nine"
    r = client.http.put("/data/products", headers=operator, body=json.dumps({"items": items}))
    assert r.status_code == 400
    error = r.json_body["error"]
    assert error["code"] == "invalid_input"
    assert [d["field"] for d in error["details"]] == ["items[57].price"]
    listing = client.http.get("/data/products", headers=operator).json_body
    assert listing["items"] == []


def test_decimals_are_kept_exact(client, operator):
    client.http.put("/data/categories", headers=operator,
                    body=json.dumps({"items": [{"id": "ALL", "name": "All", "parent_id": None}]}))
    item = {"id": "P1", "name": "Scarf", "category_id": "ALL", "price": 19.99, "released_to": ["USRT"]}
    r = client.http.put("/data/products", headers=operator, body=json.dumps({"items": [item]}))
    assert r.status_code == 200, r.body
    assert client.http.get("/data/products/P1", headers=operator).json_body["price"] == "19.99"


def test_unknown_fields_are_rejected(client, operator):
    r = client.http.put("/data/stores", headers=operator,
                        body=json.dumps({"items": [{**_store(), "colour": "red"}]}))
    assert r.status_code == 400
    assert r.json_body["error"]["details"][0]["field"] == "items[0].colour"
    r = client.http.put("/data/stores", headers=operator, body=json.dumps({"items": [_store()], "upsert": True}))
    assert r.status_code == 400 and r.json_body["error"]["details"][0]["field"] == "upsert"


def test_oversized_body_is_rejected_with_413(client, operator):
    big = [{**_store(f"S{i}"), "name": "x" * 4000} for i in range(1100)]
    r = client.http.put("/data/stores", headers=operator, body=json.dumps({"items": big}))
    assert r.status_code == 413
    assert r.json_body["error"]["code"] == "payload_too_large"


def test_upsert_writes_only_what_changed(client, operator, with_store):
    r = client.http.put("/data/stores", headers=operator, body=json.dumps({"items": [_store("S1"), _store("S2")]}))
    assert r.json_body == {"accepted": 2, "written": 0, "unchanged": 2}
    changed = {**_store("S2"), "name": "Renamed"}
    r = client.http.put("/data/stores", headers=operator, body=json.dumps({"items": [_store("S1"), changed]}))
    assert r.json_body == {"accepted": 2, "written": 1, "unchanged": 1}


def test_data_read_delete_and_unknown_entity(client, operator, with_store):
    assert client.http.get("/data/stores/S1", headers=operator).json_body["warehouse_id"] == "S1"
    assert client.http.delete("/data/stores/S1", headers=operator).status_code == 200
    assert client.http.get("/data/stores/S1", headers=operator).status_code == 404
    assert client.http.delete("/data/stores/S1", headers=operator).status_code == 404
    r = client.http.get("/data/planets/X", headers=operator)
    assert r.status_code == 404 and r.json_body["error"]["code"] == "not_found"


def test_run_routes(client, operator):
    start = client.http.post("/jobs/purge-run-history/runs", headers={**operator, "Idempotency-Key": "k1"},
                             body=json.dumps({"params": {"older_than_days": 30}, "dry_run": True}))
    assert start.status_code == 202
    run = start.json_body["run"]
    assert run["status"] == "Ended" and run["dry_run"] is True and run["trigger"] == "manual"
    again = client.http.post("/jobs/purge-run-history/runs", headers={**operator, "Idempotency-Key": "k1"},
                             body=json.dumps({"params": {"older_than_days": 30}, "dry_run": True}))
    assert again.status_code == 200 and again.json_body["run"]["run_id"] == run["run_id"]
    assert client.http.get(f"/runs/{run['run_id']}", headers=operator).json_body["status"] == "Ended"
    history = client.http.get("/jobs/purge-run-history/runs?status=Ended", headers=operator).json_body
    assert [r["run_id"] for r in history["runs"]] == [run["run_id"]]
    cancel = client.http.post(f"/runs/{run['run_id']}/cancel", headers=operator)
    assert cancel.status_code == 409 and cancel.json_body["error"]["code"] == "conflict"
    bad = client.http.post("/jobs/purge-run-history/runs", headers=operator,
                           body=json.dumps({"params": {"older_than_days": 0, "force": True}}))
    assert bad.status_code == 400
    assert {d["field"] for d in bad.json_body["error"]["details"]} == {"params.older_than_days", "params.force"}
    assert client.http.post("/jobs/no-such-job/runs", headers=operator, body="{}").status_code == 404
    assert client.http.get("/runs/nope", headers=operator).status_code == 404


def test_paged_run_history(client, operator):
    ids = [client.http.post("/jobs/purge-run-history/runs", headers=operator, body="{}").json_body["run"]["run_id"]
           for _ in range(3)]
    first = client.http.get("/jobs/purge-run-history/runs?limit=2", headers=operator).json_body
    assert len(first["runs"]) == 2 and first["cursor"]
    second = client.http.get(f"/jobs/purge-run-history/runs?limit=2&cursor={first['cursor']}",
                             headers=operator).json_body
    seen = [r["run_id"] for r in first["runs"] + second["runs"]]
    assert seen == list(reversed(ids))  # newest first


def test_purge_deletes_only_old_finished_runs(aws):
    from datetime import timedelta

    from chalicelib.jobs import runtime
    from chalicelib.storage.base import iso, utcnow
    from chalicelib.storage.runs import RunRecord

    old = RunRecord("old-run", job="purge-run-history", created_at=iso(utcnow() - timedelta(days=100)),
                    status="Ended")
    old.save()
    stuck = RunRecord("old-waiting", job="purge-run-history", created_at=iso(utcnow() - timedelta(days=100)),
                      status="Waiting")
    stuck.save()
    recent = RunRecord("recent-run", job="purge-run-history", created_at=iso(utcnow() - timedelta(days=3)),
                       status="Ended")
    recent.save()
    run, _ = runtime.submit("purge-run-history", trigger="manual")
    runtime.dispatch(run.run_id)
    remaining = {r.run_id for r in RunRecord.scan()}
    assert "old-run" not in remaining
    assert {"old-waiting", "recent-run", run.run_id} <= remaining
    assert "deleted 1 run record" in runtime.get_run(run.run_id).message
