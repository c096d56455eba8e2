"""Counts the AWS requests a run makes, by ``service.Operation``, across boto3 and PynamoDB.

Every botocore client — boto3's and PynamoDB's own sessions alike — goes through
``BaseClient._make_api_call``; one wrapper there attributes each call to the run that is active in
the current context. Calls made outside a run are not counted.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections import Counter
from collections.abc import Iterator

import botocore.client

_active: contextvars.ContextVar[Counter | None] = contextvars.ContextVar("aws_requests", default=None)
_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    original = botocore.client.BaseClient._make_api_call

    def _counted(self, operation_name, api_params):
        counter = _active.get()
        if counter is not None:
            counter[f"{self.meta.service_model.service_name}.{operation_name}"] += 1
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = _counted
    _installed = True


@contextlib.contextmanager
def metered(counter: Counter | None = None) -> Iterator[Counter]:
    """Count the requests made inside the block into ``counter`` (a new one by default)."""
    install()
    counter = Counter() if counter is None else counter
    token = _active.set(counter)
    try:
        yield counter
    finally:
        _active.reset(token)
