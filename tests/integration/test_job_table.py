"""GET /jobs describes every job exactly as before the job table (the document is frozen in
``expected/jobs.json``; issue 15 added ``schedule_text``, and ``next_run_at``, which moves with the
clock), and a fan-out creates its shards without the parameter models."""
import json
from pathlib import Path

from chalicelib.jobs import runtime
from tests.integration import test_runtime  # noqa: F401  (lists the test-sharded job)

EXPECTED = Path(__file__).parent / "expected" / "jobs.json"


def test_get_jobs_answers_the_same_document(client, operator):
    jobs = client.http.get("/jobs", headers=operator).json_body["jobs"]
    described = [{k: v for k, v in job.items() if k not in ("last_run", "next_run_at")} for job in jobs
                 if not job["name"].startswith(("test-", "iam-", "crash-"))]
    assert described == json.loads(EXPECTED.read_text())


def test_a_fan_out_submits_its_shards_without_cleaning_their_parameters(aws, monkeypatch):
    from chalicelib.models import params

    parent, _ = runtime.submit("test-sharded", {"store_ids": []}, trigger="manual")

    def refuse(*args, **kwargs):
        raise AssertionError("run_job validated a shard's parameters with the models")

    monkeypatch.setattr(params, "clean", refuse)
    runtime.dispatch(parent.run_id)
    parent = runtime.get_run(parent.run_id)
    assert parent.status == "Ended", parent.message
    assert "3 shards: 3 Ended" in parent.message


def test_log_lines_still_carry_the_lambda_context(client, operator):
    """Powertools loads with the first event now, not with ``import app``: the middleware still
    puts the function's context into the keys of every log line."""
    from chalicelib.observability import logger

    logger().remove_keys(["function_name", "function_request_id"])
    started = client.http.post("/jobs/purge-run-history/runs", headers=operator, body=json.dumps({"params": {}}))
    assert started.status_code == 202, started.body
    assert logger().get_current_keys().get("function_name") == "api_handler"
