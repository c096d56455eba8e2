"""The API's rough edges (issue 14): what a newcomer driving it with curl meets."""
import json


def test_a_form_body_gets_415_in_the_contracts_error_format(client, operator):
    headers = {**operator, "Content-Type": "application/x-www-form-urlencoded"}  # what `curl -d` sends
    r = client.http.post("/jobs/purge-run-history/runs", headers=headers, body='{"params": {}}')
    assert r.status_code == 415
    error = r.json_body["error"]
    assert error["code"] == "unsupported_media_type" and error["details"] == []
    assert "application/json" in error["message"]


def test_nesting_deeper_than_any_model_gets_400_not_500(client, operator):
    for depth in (40, 100_000):
        body = '{"params": ' + "[" * depth + "]" * depth + "}"
        r = client.http.post("/jobs/purge-run-history/runs", headers=operator, body=body)
        assert r.status_code == 400, (depth, r.body)
        assert r.json_body["error"]["code"] == "invalid_json"
        assert "nested deeper than" in r.json_body["error"]["message"]
    items = [{"id": "P1", "name": "Scarf", "category_id": "ALL", "price": "1.00", "released_to": ["USRT"],
              "variants": [{"id": "M", "size": "M", "color": "Red"}]}]
    r = client.http.put("/data/categories", headers=operator,
                        body=json.dumps({"items": [{"id": "ALL", "name": "All", "parent_id": None}]}))
    assert r.status_code == 200, r.body
    r = client.http.put("/data/products", headers=operator, body=json.dumps({"items": items}))
    assert r.status_code == 200, r.body


def test_a_reused_idempotency_key_with_another_body_gets_422_naming_the_run(client, operator):
    headers = {**operator, "Idempotency-Key": "2026-11-25-purge"}
    body = {"params": {"older_than_days": 30}, "dry_run": True}
    first = client.http.post("/jobs/purge-run-history/runs", headers=headers, body=json.dumps(body))
    assert first.status_code == 202
    run_id = first.json_body["run"]["run_id"]
    # the same body, keys in another order and spaced otherwise: the same request
    again = client.http.post("/jobs/purge-run-history/runs", headers=headers,
                             body='{ "dry_run": true, "params": {"older_than_days": 30} }')
    assert again.status_code == 200 and again.json_body["run"]["run_id"] == run_id

    other = client.http.post("/jobs/purge-run-history/runs", headers=headers,
                             body=json.dumps({"params": {"older_than_days": 60}, "dry_run": True}))
    assert other.status_code == 422
    error = other.json_body["error"]
    assert error["code"] == "idempotency_key_reused" and run_id in error["message"]
    history = client.http.get("/jobs/purge-run-history/runs", headers=operator).json_body["runs"]
    assert [r["run_id"] for r in history] == [run_id]  # nothing else started


def test_the_operators_session_list_is_last_change_first_across_pages(client, operator):
    from chalicelib.storage.download_sessions import DownloadSession

    changes = {"AS-1": ("Applied", "2026-11-20T10:00:00Z"), "AS-2": ("Available", "2026-11-25T10:00:00Z"),
               "AS-3": ("Applied", "2026-11-23T10:00:00Z"), "DM-4": ("Canceled", "2026-11-21T10:00:00Z"),
               "DM-5": ("Requested", "2026-11-24T10:00:00Z"), "AS-6": ("Available", "2026-11-22T10:00:00Z"),
               "AS-7": ("Suspended", "2026-11-19T10:00:00Z")}
    for seq, (session_id, (status, at)) in enumerate(changes.items(), 1):
        DownloadSession(session_id, store_id="S1", data_group="assortments", seq=seq, status=status,
                        created_at=at, changed_at=at).save()
    seen, cursor = [], None
    for _ in range(5):
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = client.http.get(f"/download-sessions{query}", headers=operator).json_body
        seen += [s["session_id"] for s in body["sessions"]]
        cursor = body["cursor"]
        if not cursor:
            break
    assert seen == sorted(changes, key=lambda s: changes[s][1], reverse=True)


def test_the_largest_allowed_data_request_is_accepted_and_a_byte_more_is_413(client, operator):
    from chalicelib import settings

    limit = settings.max_body_bytes()
    assert limit == 4 * 1024 * 1024
    r = client.http.put("/data/categories", headers=operator,
                        body=json.dumps({"items": [{"id": "ALL", "name": "All", "parent_id": None}]}))
    assert r.status_code == 200
    # 1,000 products (the item limit), each at the longest name and with 15 variants at the longest
    # size and colour, padded with whitespace to exactly the body limit
    items = [{"id": f"P{i:04d}", "name": "N" * 200, "category_id": "ALL", "price": "1234.56",
              "released_to": ["USRT"],
              "variants": [{"id": f"V{v:02d}", "size": "S" * 64, "color": "C" * 64} for v in range(15)]}
             for i in range(1000)]
    body = json.dumps({"items": items})
    assert len(body) < limit
    largest = body + " " * (limit - len(body))
    r = client.http.put("/data/products", headers=operator, body=largest)
    assert r.status_code == 200, r.body[:500]
    assert r.json_body["accepted"] == 1000

    r = client.http.put("/data/products", headers=operator, body=largest + " ")
    assert r.status_code == 413
    assert r.json_body["error"]["code"] == "payload_too_large"
    assert r.json_body["error"]["message"] == f"body exceeds {limit} bytes"


def _put(client, operator, entity: str, items: list[dict]):
    return client.http.put(f"/data/{entity}", headers=operator, body=json.dumps({"items": items}))


def _node(id_, parent):
    return {"id": id_, "name": f"Node {id_}", "parent_id": parent}


def _fields(response) -> dict[str, str]:
    assert response.status_code == 400, response.body
    return {d["field"]: d["message"] for d in response.json_body["error"]["details"]}


def test_data_references_name_stored_records_or_the_same_requests(client, operator):
    # a tree in one request, parents after their children: resolved against the request itself
    assert _put(client, operator, "org-nodes", [_node("D1", "HQ"), _node("HQ", None)]).status_code == 200
    r = _put(client, operator, "org-nodes", [_node("D2", "HQ"), _node("D3", "NOWHERE")])
    assert _fields(r) == {"items[1].parent_id": "unknown org node NOWHERE"}
    assert client.http.get("/data/org-nodes/D2", headers=operator).status_code == 404  # nothing written

    stores = [{"id": f"S{i}", "name": "Store", "legal_entity": "USRT", "org_node_id": "D1"} for i in range(5)]
    stores[3]["org_node_id"] = "D9"
    assert _fields(_put(client, operator, "stores", stores)) == {"items[3].org_node_id": "unknown org node D9"}

    assert _put(client, operator, "categories", [{"id": "ALL", "name": "All", "parent_id": None}]).status_code == 200
    products = [{"id": f"P{i}", "name": "Scarf", "category_id": "ALL", "price": "1.00", "released_to": ["USRT"]}
                for i in range(5)]
    products[3]["category_id"] = "X"
    assert _fields(_put(client, operator, "products", products)) == {"items[3].category_id": "unknown category X"}
    products[3]["category_id"] = "ALL"
    assert _put(client, operator, "products", products).status_code == 200


def test_an_org_node_cycle_is_refused(client, operator):
    tree = [_node("HQ", None), _node("D1", "HQ"), _node("R1", "D1")]
    assert _put(client, operator, "org-nodes", tree).status_code == 200
    # moving D1 under its own descendant R1: the stored R1 points back to D1
    r = _put(client, operator, "org-nodes", [_node("D1", "R1")])
    assert _fields(r) == {"items[0].parent_id": "makes a cycle: D1 → R1 → D1"}
    r = _put(client, operator, "org-nodes", [_node("A", "B"), _node("B", "A")])
    assert set(_fields(r)) == {"items[0].parent_id", "items[1].parent_id"}
    assert client.http.get("/data/org-nodes/D1", headers=operator).json_body["parent_id"] == "HQ"


def test_deleting_a_record_others_refer_to_is_409_naming_them(client, operator):
    _put(client, operator, "org-nodes", [_node("HQ", None), _node("D1", "HQ")])
    _put(client, operator, "stores", [{"id": s, "name": "Store", "legal_entity": "USRT", "org_node_id": "D1"}
                                      for s in ("S1", "S2")])
    _put(client, operator, "categories", [{"id": "ALL", "name": "All", "parent_id": None}])
    _put(client, operator, "products", [{"id": "P1", "name": "Scarf", "category_id": "ALL", "price": "1.00",
                                         "released_to": ["USRT"]}])
    _put(client, operator, "parameters", [{"id": "default"}])
    refused = {
        "/data/org-nodes/HQ": "org-nodes D1",  # the tree root
        "/data/org-nodes/D1": "stores S1, S2",
        "/data/categories/ALL": "products P1",
        "/data/parameters/default": "parameters record is required",
    }
    for path, named in refused.items():
        r = client.http.delete(path, headers=operator)
        assert r.status_code == 409, path
        assert r.json_body["error"]["code"] == "conflict" and named in r.json_body["error"]["message"], path
        assert client.http.get(path, headers=operator).status_code == 200, path
    for path in ("/data/stores/S1", "/data/stores/S2", "/data/org-nodes/D1", "/data/org-nodes/HQ"):
        assert client.http.delete(path, headers=operator).status_code == 200, path
