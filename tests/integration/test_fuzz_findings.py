"""What ``make fuzz`` found, each reproduced: through the test client, or on the local stack's
HTTP server as ``make serve`` runs it (a fresh process, its own moto, real tokens)."""
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
SERVE = """
import time
from devstack.fuzz import local_api
with local_api() as api:
    print(api.base, api.operator, flush=True)
    time.sleep(600)
"""


@pytest.fixture(scope="module")
def served():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(PROJECT)
    server = subprocess.Popen([sys.executable, "-c", SERVE], cwd=PROJECT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base, token = server.stdout.readline().split()
        yield base, token
    finally:
        server.terminate()
        server.wait(timeout=30)


def send(served, method: str, path: str, token: str | None = None) -> tuple[int, str, str]:
    """``token``: the operator's when None, no Authorization header when empty."""
    base, operator = served
    token = operator if token is None else token
    request = urllib.request.Request(f"{base}{path}", method=method,
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_a_method_no_route_has_is_refused_by_the_api_not_answered_501_html(served):
    # found: TRACE on every path answered 501 with http.server's HTML page (a server error)
    for method, path in [("TRACE", "/health"), ("TRACE", "/jobs"), ("PATCH", "/jobs")]:
        status, content_type, body = send(served, method, path)
        assert (status, content_type) == (405, "application/json"), (method, path, body)
        assert method in body


def test_the_local_gateway_answers_in_the_contracts_error_format(served):
    # found: GET /jobs without a token answered 401 {"message": "Unauthorized"} (API Gateway's own
    # words, which the deployed gateway responses replace); an unknown route echoed the token
    for path, token, status, code in [("/jobs", "", 401, "unauthorized"), ("/jobs", "unknown", 401, "unauthorized"),
                                      ("/no-such-route", "rs_secret", 404, "not_found")]:
        answer_status, content_type, body = send(served, "GET", path, token)
        assert (answer_status, content_type) == (status, "application/json"), body
        assert json.loads(body)["error"]["code"] == code and "rs_secret" not in body


def test_a_cursor_is_refused_by_any_list_but_the_one_that_answered_it(client, operator):
    # found: GET /stores/S006/upload-issues?cursor=<a cursor of GET /data/products> answered 500 (the
    # other table's key went to DynamoDB as the start key)
    from tests.integration.retail import load_master_data, sale, upload

    load_master_data()
    paid = sale("T1", [("BALL", None, 1, "5.00")])
    assert upload(client, "S1", [paid]).status_code == 200
    assert upload(client, "S1", [{**paid, "receipt_id": "R-changed"}]).json_body["conflicts"]  # an issue
    page = client.http.get("/data/products?limit=1", headers=operator).json_body
    assert page["cursor"]
    for path in ("/stores/S1/upload-issues", "/stores/S2/upload-issues", "/data/categories", "/download-sessions",
                 "/statements?store_id=S1", "/jobs/purge-run-history/runs", "/inventory/on-hand?store_id=S1"):
        sep = "&" if "?" in path else "?"
        r = client.http.get(f"{path}{sep}cursor={page['cursor']}", headers=operator)
        assert r.status_code == 400, (path, r.body)
        assert r.json_body["error"]["details"] == [{"field": "cursor", "message": "is not a cursor this list returned"}]

    # the list that answered it takes it, whatever the page size
    rest = client.http.get(f"/data/products?limit=5&cursor={page['cursor']}", headers=operator).json_body
    assert [item["id"] for item in rest["items"]] == ["LAMP", "SHIRT"]
    # and a list whose filters differ is another list: store S1's statements are not S2's
    statements = client.http.get("/statements?store_id=S1&limit=1", headers=operator)
    assert statements.status_code == 200


def test_a_run_a_repeated_request_finds_answers_200_as_the_contract_declares(client, operator):
    # found: POST /jobs/{job}/runs with an Idempotency-Key used before answered 200, which the
    # document did not declare (202 only); so did a repeated rerun and publish (common.run_started)
    import app
    from chalicelib.http.openapi import document

    headers = {**operator, "Idempotency-Key": "fuzz-1"}
    body = json.dumps({"params": {}, "dry_run": True})
    assert client.http.post("/jobs/purge-run-history/runs", headers=headers, body=body).status_code == 202
    again = client.http.post("/jobs/purge-run-history/runs", headers=headers, body=body)
    assert again.status_code == 200

    paths = document()["paths"]
    assert app.app  # the routes are registered
    for path in ("/jobs/{job}/runs", "/assortments/{assortment_id}/publish",
                 "/download-sessions/{session_id}/rerun", "/migration/jobs/{job_id}/copy-to-target"):
        answers = paths[path]["post"]["responses"]
        assert answers["200"]["content"] == answers["202"]["content"], path
