"""Handing runs to other invocations, deployed: a run (or its continuation) to ``run_job`` by an
asynchronous Lambda invocation, a fan-out's shards to ``run_shard`` through the shard queue (SQS).
On the local stack and in tests runs execute inline instead (``runtime.dispatch``)."""
from __future__ import annotations

import json

from chalicelib import settings
from chalicelib.storage import aws

SQS_BATCH = 10  # SendMessageBatch's limit


def to_lambda() -> bool:
    """Whether runs are handed to Lambda (deployed) rather than executed in this process."""
    return settings.run_dispatch() == "lambda"


def via_queue() -> bool:
    """Whether a fan-out's shards go through the shard queue: deployed, or on the local stack
    with worker processes draining it (``devstack/workers.py``)."""
    return bool(settings.shard_queue_url()) and (to_lambda() or settings.local_shard_workers())


def invoke_run_job(run_id: str) -> None:
    """Start or continue the run in ``run_job`` (an asynchronous invocation: Lambda retries it)."""
    aws.client("lambda").invoke(FunctionName=settings.run_job_function(), InvocationType="Event",
                                Payload=json.dumps({"run_id": run_id}).encode())


def queue_batches(count: int) -> int:
    """The ``SendMessageBatch`` requests ``send_shards`` makes for ``count`` shards."""
    return -(-count // SQS_BATCH)


def send_shards(run_ids: list[str]) -> None:
    """Queue shard runs for ``run_shard``, ten to a request."""
    sqs, queue = aws.client("sqs"), settings.shard_queue_url()
    for start in range(0, len(run_ids), SQS_BATCH):
        sqs.send_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(i), "MessageBody": json.dumps({"run_id": run_id})}
            for i, run_id in enumerate(run_ids[start:start + SQS_BATCH])])
