"""The published contract: GET /openapi.json, its committed copy, its validity, and that it
describes what the routes answer."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COPY = ROOT / "docs" / "openapi.json"


def test_openapi_json_is_public_and_matches_the_committed_copy(client):
    response = client.http.get("/openapi.json")
    assert response.status_code == 200
    assert response.json_body == json.loads(COPY.read_text()), \
        "docs/openapi.json differs from what the code generates: run `make openapi` and commit it"


def test_the_document_is_valid_openapi_3_1(client):
    from openapi_spec_validator import OpenAPIV31SpecValidator, validate

    document = client.http.get("/openapi.json").json_body
    validate(document, cls=OpenAPIV31SpecValidator)
    assert document["openapi"].startswith("3.1")


def test_every_operation_names_its_security_errors_and_list_order(client):
    document = client.http.get("/openapi.json").json_body
    operations = {(method.upper(), path): spec for path, item in document["paths"].items()
                  for method, spec in item.items()}
    public = {key for key, spec in operations.items() if spec["security"] == []}
    assert public == {("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/console"), ("GET", "/console/{asset}")}
    for key, spec in operations.items():
        errors = {status for status in spec["responses"] if status[0] in "45"}
        if key not in public:
            assert {"401", "403"} <= errors, key
        if "requestBody" in spec:
            assert {"400", "413", "415"} <= errors, key
        answer = next(r for status, r in spec["responses"].items() if status[0] == "2")
        if "application/json" not in answer["content"]:  # a file: the console's page and its assets
            assert key[1].startswith("/console")
            assert set(answer["content"]) <= {"text/html", "text/javascript", "text/css"}
            continue
        is_list = answer["content"]["application/json"]["schema"].get("$ref", "").endswith("List")
        if is_list:
            assert "List order: " in spec["description"], key
        elif key[0] == "GET" and any(p["in"] == "path" for p in spec.get("parameters", ())):
            assert "404" in errors, key  # one object, named by its path
    run_history = operations[("GET", "/jobs/{job}/runs")]
    status = next(p for p in run_history["parameters"] if p["name"] == "status")
    assert set(status["schema"]["enum"]) == {"Waiting", "Executing", "Ended", "Error", "Canceled", "Cancelling",
                                             "NotRun"}
    assert "newest first" in run_history["description"]
    assert document["components"]["responses"]["Error400"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/ErrorDocument"}


def _architecture() -> Path | None:
    for folder in (ROOT.parent / "shared" / "design", ROOT.parents[1] / "shared" / "design"):
        if (folder / "ARCHITECTURE.md").exists():
            return folder / "ARCHITECTURE.md"
    return None


# Named in ARCHITECTURE.md but not served (none since the console issue).
NOT_BUILT_YET: set = set()
# Served and published, but missing from ARCHITECTURE.md's route tables (the document is the contract).
NOT_IN_ARCHITECTURE = {("GET", "/data/{}"), ("GET", "/stores/{}"),
                       # the console's: a package's first rows, a link to a run's output file (README)
                       ("GET", "/download-sessions/{}/package"), ("GET", "/runs/{}/outputs/{}"),
                       # its files: ARCHITECTURE.md names them in words ("`GET /console` and its static assets")
                       ("GET", "/console/{}"),
                       # the alert routes (issue 15) are in the README and the published document until
                       # ARCHITECTURE.md lists them
                       ("GET", "/alerts"), ("POST", "/alerts/{}/acknowledge")}


def test_architecture_route_list_matches_the_generated_paths(client):
    architecture = _architecture()
    if architecture is None:
        pytest.skip("the specification (../shared/design/ARCHITECTURE.md) is not beside the repository")
    listed = {(method, re.sub(r"{\w+}", "{}", path))
              for method, path in re.findall(r"`(GET|POST|PUT|DELETE|PATCH) (/[^`?\s]*)", architecture.read_text())}
    document = client.http.get("/openapi.json").json_body
    generated = {(method.upper(), re.sub(r"{\w+}", "{}", path))
                 for path, item in document["paths"].items() for method in item}
    assert listed - generated == NOT_BUILT_YET
    assert generated - listed == NOT_IN_ARCHITECTURE


def test_answers_match_their_published_models(client, operator):
    from chalicelib.models import api

    assert api.Health.model_validate(client.http.get("/health").json_body)
    jobs = client.http.get("/jobs", headers=operator).json_body
    api.JobList.model_validate(jobs)
    body = json.dumps({"params": {"older_than_days": 30}, "dry_run": True})
    started = client.http.post("/jobs/purge-run-history/runs", headers=operator, body=body)
    assert started.status_code == 202, started.body
    run = api.RunAnswer.model_validate(started.json_body).run
    assert api.Run.model_validate(client.http.get(f"/runs/{run.run_id}", headers=operator).json_body)
    api.RunList.model_validate(client.http.get("/jobs/purge-run-history/runs", headers=operator).json_body)
    api.JobList.model_validate(client.http.get("/jobs", headers=operator).json_body)
    api.SessionList.model_validate(client.http.get("/download-sessions", headers=operator).json_body)
    refused = client.http.get("/jobs/purge-run-history/runs?status=Bogus", headers=operator)
    assert api.ErrorDocument.model_validate(refused.json_body).error.details[0].field == "status"
    unknown = client.http.get("/jobs", headers={"Authorization": "Bearer rs_unknown"})
    assert api.ErrorDocument.model_validate(unknown.json_body).error.code == "unauthorized"


def test_the_authorizer_and_import_app_load_no_model():
    """Models load when a route first needs them: never at ``import app`` nor in the authorizer."""
    script = """
import sys
from tests.conftest import mock_aws  # test credentials and the local stage's settings
with mock_aws():
    from chalicelib.provision import provision
    provision()
    from chalicelib.auth import issue_token
    token = issue_token("operator")
    import app
    from chalicelib.http.common import token_authorizer
    answer = token_authorizer({"type": "TOKEN", "authorizationToken": f"Bearer {token}",
                               "methodArn": "arn:aws:execute-api:us-east-1:123456789012:api/api/GET/jobs"}, None)
    assert answer["principalId"], answer
    print(sorted(m for m in sys.modules if m.startswith("chalicelib.models")))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_upload_approval_and_data_answers_match_their_published_models(client, operator):
    from chalicelib.models import api

    def sent(method, path, body):
        response = getattr(client.http, method)(path, headers=operator, body=json.dumps(body))
        assert response.status_code in (200, 202), response.body
        return response.json_body

    api.DataWritten.model_validate(sent("put", "/data/org-nodes", {"items": [{"id": "ROOT", "name": "Contoso",
                                                                               "parent_id": None}]}))
    sent("put", "/data/stores", {"items": [{"id": "S1", "name": "Store S1", "legal_entity": "USRT",
                                            "org_node_id": "ROOT"}]})
    sent("put", "/data/workers", {"items": [{"id": "W1", "name": "Wendy", "export_id": "E1", "store_id": "S1",
                                             "pay_period_type": "weekly", "base_rate": "20.00"}]})
    shift = {"registration_id": "TR-1", "worker_id": "W1", "clock_in": "2026-09-28T08:00:00Z",
             "clock_out": "2026-09-28T16:00:00Z"}
    uploaded = api.RegistrationOutcome.model_validate(
        sent("post", "/stores/S1/time-registrations", {"registrations": [shift]}))
    assert uploaded.accepted == 1
    approved = api.ApprovalOutcome.model_validate(
        sent("post", "/time-registrations/approve", {"worker_id": "W1", "from": "2026-09-28", "to": "2026-09-28"}))
    assert (approved.worker_id, approved.start, approved.approved) == ("W1", "2026-09-28", 1)
    outcome = api.TransactionOutcome.model_validate(
        sent("post", "/stores/S1/transactions", {"transactions": [{"transaction_id": "T1"}]}))
    assert [r["index"] for r in outcome.rejected] == [0]
    messages = api.MessageOutcome.model_validate(
        sent("post", "/stores/S1/status-messages", {"messages": [{"session_id": "GHOST", "status": "Downloaded",
                                                                  "at": "2026-09-28T08:00:00Z"}]}))
    assert messages.rejected[0].session_id == "GHOST"
    deleted = client.http.delete("/data/workers/W1", headers=operator)
    assert api.Deleted.model_validate(deleted.json_body).deleted == "W1"
