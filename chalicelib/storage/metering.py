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
_inside: contextvars.ContextVar[bool] = contextvars.ContextVar("aws_request_counted", default=False)


def install() -> None:
    """Wrap ``_make_api_call`` unless the current one is already our wrapper (it may have been
    replaced since, e.g. by a test's patch being undone)."""
    current = botocore.client.BaseClient._make_api_call
    if getattr(current, "_counts_requests", False):
        return

    def _counted(self, operation_name, api_params):
        counter = _active.get()
        if counter is None or _inside.get():  # a wrapper further out counted this call already
            return current(self, operation_name, api_params)
        counter[f"{self.meta.service_model.service_name}.{operation_name}"] += 1
        token = _inside.set(True)
        try:
            return current(self, operation_name, api_params)
        finally:
            _inside.reset(token)

    _counted._counts_requests = True
    botocore.client.BaseClient._make_api_call = _counted


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
