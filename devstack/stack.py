"""Start moto on a random loopback port, point the application at it, provision, and invoke the
Chalice functions the way AWS would (schedules and S3 drops included, which moto never fires)."""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devstack import localenv

MIGRATION_DROP_QUEUE = "migration-drops"


class LocalStack:
    """A running moto server plus a ``chalice.test.Client`` bound to the ``local`` stage."""

    def __init__(self, server, client, workers=None):
        self.server = server
        self.client = client
        self.endpoint = os.environ["AWS_ENDPOINT_URL"]
        self.workers = workers  # devstack.workers.Workers draining the shard queue, or None: shards inline
        self._tick = 0

    # --- invoking functions ---------------------------------------------------------------
    def fire_schedule(self, function: str, when: datetime | None = None) -> dict:
        """Deliver the EventBridge event the function's schedule would send at ``when``."""
        when = when or datetime.now(UTC)
        self._tick += 1
        event = self.client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={},
            resources=[f"arn:aws:events:us-east-1:123456789012:rule/{function}"])
        event["id"] = f"local-{function}-{when:%Y%m%dT%H%M%S}-{self._tick}"
        event["time"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        return self.client.lambda_.invoke(function, event).payload

    def invoke(self, function: str, payload: Any) -> Any:
        return self.client.lambda_.invoke(function, payload).payload

    def http(self, method: str, path: str, token: str | None = None, body: Any = None,
             headers: dict | None = None):
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body, default=str) if body is not None else None
        return getattr(self.client.http, method.lower())(path, headers=all_headers, body=data)

    def deliver_drops(self) -> list[Any]:
        """Drain the migration bucket's notification queue into ``on_migration_drop``."""
        from chalicelib.storage import aws

        url = aws.client("sqs").get_queue_url(QueueName=MIGRATION_DROP_QUEUE)["QueueUrl"]
        results = []
        for body in drain(url):
            if "Records" in body and "on_migration_drop" in self.client._app.handler_map:
                results.append(self.invoke("on_migration_drop", body))
        return results


def drain(url: str) -> Iterator[dict]:
    """Every message of an SQS queue until it is empty, as parsed JSON; each deleted once handled."""
    from chalicelib.storage import aws

    sqs = aws.client("sqs")
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return
        for message in messages:
            yield json.loads(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _wire_migration_notifications() -> None:
    """S3 → SQS in moto (it cannot run our Lambda); ``deliver_drops`` plays Lambda's part."""
    from chalicelib import settings
    from chalicelib.storage import aws

    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=MIGRATION_DROP_QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("s3").put_bucket_notification_configuration(
        Bucket=settings.migration_bucket(),
        NotificationConfiguration={"QueueConfigurations": [{
            "QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "migration/"}]}}}]})


class MotoProcess:
    """moto's server, with the transaction patch, in a child process and with ``ThreadedMotoServer``'s
    interface: what the benchmark measures (time, Python memory) is then the application's alone."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0):
        self.ip_address, self.port = ip_address, port or _free_port(ip_address)
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "devstack.moto_transactions", "-H", self.ip_address, "-p", str(self.port)],
            cwd=localenv.PROJECT_DIR,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.ip_address, self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not start on {self.ip_address}:{self.port}")

    def get_host_and_port(self) -> tuple[str, int]:
        return self.ip_address, self.port

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # moto shuts down slowly when it holds much data
            self._process.kill()
            self._process.wait()


def _free_port(ip_address: str) -> int:
    with socket.socket() as probe:
        probe.bind((ip_address, 0))
        return probe.getsockname()[1]


@contextmanager
def local_stack(port: int = 0, moto_process: bool = False, workers: int = 0,
                stats: Path | None = None) -> Iterator[LocalStack]:
    """moto on 127.0.0.1 (``port`` 0 = random), provisioned, with a test client on stage local;
    ``moto_process``: moto in a child process rather than a thread of this one; ``workers``: that
    many worker processes run the fan-outs' shards from the shard queue (0: shards run inline),
    each shard's figures appended to ``stats``."""
    from moto.server import ThreadedMotoServer

    from devstack import moto_transactions

    moto_transactions.install()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = MotoProcess("127.0.0.1", port) if moto_process else \
        ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # kill or a CI timeout sends SIGTERM, which would end this process without the clean-up below
    # and leave a moto child holding every table: exit through it instead.
    previous = signal.signal(signal.SIGTERM, _exit_on_signal) \
        if moto_process and threading.current_thread() is threading.main_thread() else None
    host, bound = server.get_host_and_port()
    localenv.apply("local", endpoint=f"http://{host}:{bound}")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    pool = None
    try:
        from chalice.test import Client

        from chalicelib.provision import provision
        from chalicelib.storage import aws
        from chalicelib.storage.tables import reset_connections

        aws.reset()
        reset_connections()
        provision()
        _wire_migration_notifications()
        pool = _start_workers(workers, stats) if workers else None
        import app

        with Client(app.app, stage_name="local", project_dir=str(localenv.PROJECT_DIR)) as client:
            yield LocalStack(server, client, pool)
    finally:
        if pool is not None:
            pool.stop()
            os.environ.pop("SHARD_QUEUE_URL", None)
            os.environ.pop("LOCAL_SHARD_WORKERS", None)
        server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _start_workers(count: int, stats: Path | None):
    """Shards through the shard queue (``SHARD_QUEUE_URL``), drained by ``count`` worker processes."""
    from chalicelib import settings
    from chalicelib.storage import aws
    from devstack.workers import Workers

    url = aws.client("sqs").get_queue_url(QueueName=settings.shard_queue_name())["QueueUrl"]
    os.environ["SHARD_QUEUE_URL"] = url
    os.environ["LOCAL_SHARD_WORKERS"] = "1"
    return Workers(count, os.environ["AWS_ENDPOINT_URL"], url, stats or Path("bench-output", "shards.jsonl"))


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)
