"""Query strings and bodies are parsed by the route models: an unknown filter value or parameter
answers 400 naming it, in the contract's error format, and a refused request writes nothing."""
import base64
import json

import pytest

CURSOR_OF_A_LIST = base64.urlsafe_b64encode(json.dumps(["not", "a", "key"]).encode()).decode()


@pytest.mark.parametrize("path, field", [
    ("/jobs/purge-run-history/runs?status=Bogus", "status"),  # was 200 with an empty list
    ("/jobs/purge-run-history/runs?limit=0", "limit"),
    ("/jobs/purge-run-history/runs?limit=ten", "limit"),
    ("/jobs/purge-run-history/runs?cursor=bm9wZQ", "cursor"),
    (f"/jobs/purge-run-history/runs?cursor={CURSOR_OF_A_LIST}", "cursor"),
    ("/jobs/purge-run-history/runs?state=Ended", "state"),
    ("/download-sessions?status=Lost", "status"),
    ("/migration/jobs?entity=vendors", "entity"),
    ("/stores/S1/upload-issues?kind=bogus", "kind"),
    ("/statements?business_date=yesterday", "business_date"),
    ("/statements", "store_id"),
    ("/inventory/on-hand", "store_id"),
    ("/account-activity", "profile_id"),
    ("/data/stores?limit=1001", "limit"),
    ("/time-registrations?store_id=S1&from=2026-09-28&to=2026-10-04&status=open", "status"),
])
def test_an_unknown_filter_value_or_parameter_answers_400_naming_it(client, operator, path, field):
    response = client.http.get(path, headers=operator)
    assert response.status_code == 400, response.body
    error = response.json_body["error"]
    assert error["code"] == "invalid_input"
    assert field in [d["field"] for d in error["details"]], error


def test_run_history_filters_by_a_known_status(client, operator):
    body = json.dumps({"params": {"older_than_days": 30}})
    assert client.http.post("/jobs/purge-run-history/runs", headers=operator, body=body).status_code == 202
    ended = client.http.get("/jobs/purge-run-history/runs?status=Ended", headers=operator).json_body["runs"]
    assert [r["status"] for r in ended] == ["Ended"]
    assert client.http.get("/jobs/purge-run-history/runs?status=Error", headers=operator).json_body["runs"] == []


@pytest.mark.parametrize("body, fields", [
    ({"params": {"older_than_days": 30}, "dry_run": "yes"}, ["dry_run"]),
    ({"params": [30]}, ["params"]),
    ({"parameters": {}}, ["parameters"]),
    ([], [""]),
])
def test_a_bad_run_request_names_the_field_and_starts_nothing(client, operator, body, fields):
    response = client.http.post("/jobs/purge-run-history/runs", headers=operator, body=json.dumps(body))
    assert response.status_code == 400, response.body
    assert [d["field"] for d in response.json_body["error"]["details"]] == fields
    assert client.http.get("/jobs/purge-run-history/runs", headers=operator).json_body["runs"] == []


def test_a_route_without_a_body_refuses_fields(client, operator):
    response = client.http.post("/runs/nope/cancel", headers=operator, body=json.dumps({"force": True}))
    assert response.status_code == 400
    assert response.json_body["error"]["details"] == [{"field": "force", "message": "unknown field"}]
    assert client.http.post("/runs/nope/cancel", headers=operator, body="{}").status_code == 404


def test_who_may_call_is_checked_before_the_input(client):
    from tests.conftest import store_headers

    response = client.http.get("/jobs/purge-run-history/runs?status=Bogus", headers=store_headers("S1"))
    assert response.status_code == 403


@pytest.mark.parametrize("path, key, limit", [
    ("/stores/S1/transactions", "transactions", 500),
    ("/stores/S1/status-messages", "messages", 1000),
    ("/stores/S1/time-registrations", "registrations", 1000),
])
def test_an_upload_of_no_records_or_too_many_is_refused_whole(client, operator, path, key, limit):
    for items, message in (([], "must be a non-empty list"), ({"a": 1}, "must be a non-empty list"),
                           ([{}] * (limit + 1), f"at most {limit} items per request")):
        response = client.http.post(path, headers=operator, body=json.dumps({key: items}))
        assert response.status_code == 400, response.body
        assert response.json_body["error"]["details"] == [{"field": key, "message": message}]
