"""Local shard workers: on the local stack a fan-out's shards go through the shard queue (SQS on
moto), and ``WORKERS`` separate Python processes (default 1) drain it the way Lambda's event
source feeds ``run_shard``: one message per invocation, deleted once handled, made visible again
after a few seconds when the invocation fails (SQS redelivers; the queue's own visibility is
Lambda's 90 minutes). Each shard run appends a line to the stats file: run, job, seconds and the
worker process's peak RSS so far (``VmHWM``: a worker's peak is the largest shard it ran).

``python -m devstack.workers ENDPOINT QUEUE_URL STATS`` is one worker; ``start`` launches N.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from devstack import localenv

RETRY_AFTER_SECONDS = 2  # a failed invocation's message comes back this soon (Lambda: its own timeout)


def workers_wanted(default: int = 1) -> int:
    """``WORKERS`` from the environment (``make serve|bench WORKERS=2``)."""
    return int(os.environ.get("WORKERS") or default)


class Workers:
    """N worker processes on the stack's shard queue; ``stop()`` ends them (by their pids)."""

    def __init__(self, count: int, endpoint: str, queue_url: str, stats: Path):
        stats = stats.resolve()  # the workers run in the project folder, not in the caller's
        self.stats, self.count, self.args = stats, count, [endpoint, queue_url, str(stats)]
        stats.parent.mkdir(parents=True, exist_ok=True)
        stats.write_text("")
        self.processes = self._start()

    def _start(self) -> list[subprocess.Popen]:
        return [subprocess.Popen([sys.executable, "-m", "devstack.workers", *self.args], cwd=localenv.PROJECT_DIR)
                for _ in range(self.count)]

    def restart(self) -> None:
        """Fresh worker processes (between two runs, the queue empty): a worker's peak RSS is then
        that of the shards it runs from now on."""
        self.stop()
        self.processes = self._start()

    def shard_stats(self, run_ids: set[str] | None = None) -> list[dict]:
        """The shard runs handled so far (of ``run_ids`` if given), one dict each."""
        lines = [json.loads(line) for line in self.stats.read_text().splitlines() if line.strip()]
        return [s for s in lines if run_ids is None or s["run_id"] in run_ids]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until_final(run_id: str, timeout: float = 7200.0) -> dict:
    """A fanned-out run closes when its last shard ends (in a worker): poll its record."""
    from chalicelib.jobs import runtime

    deadline = time.monotonic() + timeout
    while True:
        run = runtime.get_run(run_id)
        if run.is_final or time.monotonic() > deadline:
            return run.to_api()
        time.sleep(0.2)


def work(endpoint: str, queue_url: str, stats: str) -> None:
    """One worker: receive a shard message, invoke ``run_shard`` with it, record the shard's figures."""
    localenv.apply("local", endpoint=endpoint)
    os.environ["SHARD_QUEUE_URL"] = queue_url
    os.environ["LOCAL_SHARD_WORKERS"] = "1"
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    from chalice.test import Client

    import app
    from chalicelib.storage import aws

    sqs = aws.client("sqs")
    # SIGTERM (``stop``) ends the worker after its receive: killed mid-poll, moto would still hand
    # the next message to the dead poll and hide it for the queue's 90-minute visibility.
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    with Client(app.app, stage_name="local", project_dir=str(localenv.PROJECT_DIR)) as client:
        while not stopping:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1,
                                           WaitTimeSeconds=1).get("Messages", [])
            for message in messages:
                started = time.monotonic()
                event = client.events.generate_sqs_event(message_bodies=[message["Body"]],
                                                         queue_name=app.SHARD_QUEUE)
                try:
                    client.lambda_.invoke("run_shard", event)
                except Exception as exc:  # noqa: BLE001 - as Lambda: the message comes back
                    print(f"worker {os.getpid()}: shard failed, redelivered: {type(exc).__name__}", flush=True)
                    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"],
                                                  VisibilityTimeout=RETRY_AFTER_SECONDS)
                    continue
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                run_id = json.loads(message["Body"])["run_id"]
                line = {"run_id": run_id, "seconds": round(time.monotonic() - started, 3), "pid": os.getpid(),
                        "maxrss_mb": round(localenv.peak_rss_mb(), 1)}
                with open(stats, "a") as out:
                    out.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    work(*sys.argv[1:4])
