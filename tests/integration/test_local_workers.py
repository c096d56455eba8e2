"""The local stack's shard workers: a fan-out's shards go through the shard queue (SQS on moto) and
separate worker processes drain it, as run_shard does deployed (``devstack/workers.py``)."""
import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
FAN_OUT = """
import json, os, sys
from tests.integration.distribution_data import load  # first: tests.conftest clears AWS_ENDPOINT_URL at import
from devstack.stack import local_stack
from devstack.workers import wait_until_final
with local_stack(moto_process=True, workers=2, stats=__import__("pathlib").Path(sys.argv[1])) as stack:
    from chalicelib.auth import issue_token
    from chalicelib.jobs import runtime
    import boto3
    load(stack.client, {"Authorization": "Bearer " + issue_token("operator", label="t"),
                        "Content-Type": "application/json"})
    from chalicelib.storage import records
    records.save("assortments", {**records.get("assortments", "CORE"), "status": "InProgress"})  # as published
    started = runtime.start("process-assortments", {}, trigger="manual").run.to_api()
    final = wait_until_final(started["run_id"], timeout=120)
    sqs = boto3.client("sqs", endpoint_url=stack.endpoint, region_name="us-east-1")
    queue = sqs.get_queue_attributes(QueueUrl=os.environ["SHARD_QUEUE_URL"],
                                     AttributeNames=["ApproximateNumberOfMessages"])
    print(json.dumps({"started": started["status"], "final": final, "pid": os.getpid(),
                      "shards": stack.workers.shard_stats(),
                      "queued": queue["Attributes"]["ApproximateNumberOfMessages"]}), flush=True)
"""


def test_worker_processes_drain_the_shard_queue_and_the_parent_closes(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "SHARD_QUEUE_URL"}
    env["PYTHONPATH"] = str(PROJECT)
    stats = tmp_path / "shards.jsonl"
    done = subprocess.run([sys.executable, "-c", FAN_OUT, str(stats)], cwd=PROJECT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    # The request returned once the shards were queued; the workers ran them and the last closed the run.
    assert result["started"] != "Ended"
    final = result["final"]
    assert final["status"] == "Ended" and final["message"].startswith("3 shards: 3 Ended"), final
    assert sorted(o["store_id"] for o in final["outputs"]) == ["S1", "S2", "S3"]
    shards = result["shards"]
    assert len(shards) == 3 and result["pid"] not in {s["pid"] for s in shards}  # in the worker processes
    assert all(s["seconds"] > 0 and s["maxrss_mb"] > 0 for s in shards)
    assert result["queued"] == "0"
