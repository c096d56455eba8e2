"""Deployed dispatch: manual runs handed to ``run_job`` asynchronously; shards through SQS."""
import json

import botocore.client
import pytest

from chalicelib import settings
from chalicelib.jobs import runtime
from chalicelib.storage import aws as clients
from tests.integration.test_runtime import effects  # noqa: F401  (registers the test jobs)


@pytest.fixture
def lambda_invocations(monkeypatch):
    """Capture Lambda Invoke calls: moto cannot run our function, the test plays Lambda."""
    invoked = []
    original = botocore.client.BaseClient._make_api_call

    def make_api_call(self, operation, params):
        if operation == "Invoke":
            invoked.append(params)
            return {"StatusCode": 202}
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)
    monkeypatch.setenv("RUN_DISPATCH", "lambda")
    return invoked


def test_lambda_dispatch_hands_the_run_to_run_job_and_continues_there(client, lambda_invocations, monkeypatch):
    run, _ = runtime.submit("test-paged", {"items": 6}, trigger="manual")
    runtime.dispatch(run.run_id)
    assert runtime.get_run(run.run_id).status == "Waiting"
    assert lambda_invocations[0]["FunctionName"] == "retail-sync-local-run_job"
    assert lambda_invocations[0]["InvocationType"] == "Event"
    payload = json.loads(lambda_invocations[0]["Payload"])
    assert payload == {"run_id": run.run_id}

    # Lambda runs it; with a spent budget each invocation hands over to the next one.
    monkeypatch.setenv("JOB_TIME_BUDGET_MS", "0")
    result = runtime.run_invoked(payload)
    assert result["status"] == "Executing"
    assert json.loads(lambda_invocations[-1]["Payload"]) == {"run_id": run.run_id}
    while runtime.get_run(run.run_id).status == "Executing":
        client.lambda_.invoke("run_job", {"run_id": run.run_id})
    assert runtime.get_run(run.run_id).status == "Ended"
    assert runtime.get_run(run.run_id).counters["read"] == 6


def test_shards_fan_out_through_sqs_to_run_shard(client, lambda_invocations, monkeypatch):
    sqs = clients.client("sqs")
    queue = sqs.get_queue_url(QueueName=settings.shard_queue_name())["QueueUrl"]
    monkeypatch.setenv("SHARD_QUEUE_URL", queue)
    parent, _ = runtime.submit("test-sharded", trigger="manual")
    runtime.execute(parent.run_id, runtime.Budget(None))
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 3
    assert runtime.get_run(parent.run_id).status == "Executing"
    for message in messages:
        event = client.events.generate_sqs_event(message_bodies=[message["Body"]], queue_name="retail-sync-shards")
        client.lambda_.invoke("run_shard", event)
    parent = runtime.get_run(parent.run_id)
    assert parent.status == "Ended" and parent.counters["written"] == 3
