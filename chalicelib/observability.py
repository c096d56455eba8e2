"""Structured logs and EMF metrics (Powertools for AWS Lambda)."""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache

from chalicelib import settings
from chalicelib.settings import APP_NAME

METRICS_NAMESPACE = "RetailSync"


@lru_cache(maxsize=1)
def logger():
    from aws_lambda_powertools import Logger  # on first use: not at every function's import of app

    return Logger(service=APP_NAME)


def lambda_context_middleware(event, get_response):
    """Chalice middleware ("all"): the Lambda context in every log line (Powertools'
    ``inject_lambda_context``). Powertools loads with the first event, not when ``app`` is
    imported; the token authorizer, which Chalice runs without middleware, never loads it."""
    return _inject_lambda_context()(event, get_response)


@lru_cache(maxsize=1)
def _inject_lambda_context():
    from chalice import ConvertToMiddleware

    return ConvertToMiddleware(logger().inject_lambda_context)


def emit_run_metrics(job: str, status: str, seconds: float, counters: dict) -> None:
    """One EMF document per finished run: duration, records and failures by stage, job and status
    (the per-job CloudWatch alarms of ``deploy/stack.py`` watch them)."""
    from aws_lambda_powertools.metrics import MetricUnit
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    # A provider of its own per run: the shared Metrics singleton would carry dimensions over.
    emf = AmazonCloudWatchEMFProvider(namespace=METRICS_NAMESPACE, service=APP_NAME)
    emf.add_dimension(name="stage", value=settings.stage())  # stages may share an account (and this namespace)
    emf.add_dimension(name="job", value=job)
    emf.add_dimension(name="status", value=status)
    emf.add_metric(name="RunDuration", unit=MetricUnit.Seconds, value=seconds)
    emf.add_metric(name="RecordsRead", unit=MetricUnit.Count, value=counters.get("read", 0))
    emf.add_metric(name="RecordsWritten", unit=MetricUnit.Count, value=counters.get("written", 0))
    emf.add_metric(name="RecordsFailed", unit=MetricUnit.Count, value=counters.get("failed", 0))
    emf.flush_metrics()


@contextmanager
def log_keys(**keys):
    """Add ``keys`` to every log line inside the block, restoring the outer ones afterwards."""
    log = logger()
    previous = {k: log.get_current_keys().get(k) for k in keys}
    log.append_keys(**keys)
    try:
        yield log
    finally:
        log.remove_keys([k for k, v in previous.items() if v is None])
        log.append_keys(**{k: v for k, v in previous.items() if v is not None})
