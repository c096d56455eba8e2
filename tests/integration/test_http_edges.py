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
