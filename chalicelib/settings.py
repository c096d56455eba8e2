"""Settings, read lazily from the environment on every call.

The Chalice test client swaps ``os.environ`` per invocation, so nothing here is cached at import.
Names of tables, buckets and queues carry the stage so two stages can share an account.
"""
from __future__ import annotations

import os

APP_NAME = "retail-sync"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def stage() -> str:
    return _env("STAGE", "dev")


def table_name(base: str) -> str:
    """Physical DynamoDB table name: ``retail-sync-<stage>-<base>``."""
    return f"{APP_NAME}-{stage()}-{base}"


def data_bucket() -> str:
    return _env("DATA_BUCKET", f"{APP_NAME}-{stage()}-data")


def migration_bucket() -> str:
    return _env("MIGRATION_BUCKET", f"{APP_NAME}-{stage()}-migration")


def mail_from() -> str:
    return _env("MAIL_FROM", "receipts@example.com")


def alerts_topic_arn() -> str | None:
    """The SNS topic the hourly alert digest publishes to (Terraform creates it per stage, the
    local stage names one that ``provision()`` creates)."""
    return _env("ALERTS_TOPIC_ARN")


def alerts_topic_name() -> str:
    return f"{APP_NAME}-{stage()}-alerts"


def run_dispatch() -> str:
    """``inline`` runs in the calling process; ``lambda`` hands runs to the ``run_job`` function."""
    value = _env("RUN_DISPATCH", "inline")
    if value not in ("inline", "lambda"):
        raise ValueError(f"RUN_DISPATCH must be 'inline' or 'lambda', not {value!r}")
    return value


def run_job_function() -> str:
    return _env("RUN_JOB_FUNCTION", f"{APP_NAME}-{stage()}-run_job")


def shard_queue_url() -> str | None:
    """SQS queue that fans per-store shards out to ``run_shard``; unset = shards run inline."""
    return _env("SHARD_QUEUE_URL")


def local_shard_workers() -> bool:
    """The local stack with worker processes draining the shard queue (``devstack/workers.py``):
    runs execute inline, but a fan-out's shards go through the queue as deployed."""
    return _env("LOCAL_SHARD_WORKERS") == "1"


def shard_queue_name() -> str:
    return f"{APP_NAME}-{stage()}-shards"


def job_time_budget_ms() -> int | None:
    """A fixed time budget per invocation; overrides the Lambda context (tests, local stack)."""
    value = _env("JOB_TIME_BUDGET_MS")
    return int(value) if value else None


def job_safety_margin_ms() -> int:
    """Time kept in reserve before the Lambda limit: a run saves its checkpoint and continues."""
    return int(_env("JOB_SAFETY_MARGIN_MS", "60000"))


def job_max_hops() -> int:
    """How many continuations one run may chain (Lambda's recursion guard stops at ~16)."""
    return int(_env("JOB_MAX_HOPS", "15"))


def lock_lease_seconds() -> int:
    """How long a run's lock outlives its last heartbeat: the time a run that died blocks its
    job (or its store) before the next trigger takes over. Heartbeats come every third of it."""
    return int(_env("JOB_LOCK_LEASE_SECONDS", "120"))


def job_max_retries() -> int:
    """Attempts of one run that may end unfinished (a transient AWS fault, a dead invocation)
    before the run ends ``Error``."""
    return int(_env("JOB_MAX_RETRIES", "5"))


def max_body_bytes() -> int:
    """The largest request body: 4 MiB holds 1,000 products with 15 variants at the longest names
    (about 2.8 MB); as API Gateway passes it to Lambda (escaped in the event) it stays under Lambda's
    6 MB synchronous payload, and far under API Gateway's 10 MB."""
    return int(_env("MAX_BODY_BYTES", str(4 * 1024 * 1024)))
