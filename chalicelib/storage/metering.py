"""Counts the AWS requests a run makes, by ``service.Operation``, across boto3 and PynamoDB.

botocore emits ``before-parameter-build`` once per API call, before the request is built, sent
or retried, and before any ``before-call`` handler may answer or refuse it (a stub, a fault
injected by the tests or the crash harness): so every call counts once, whatever becomes of it.
``attach`` registers the counting handler on the event emitters the system creates: each boto3
client of ``storage.aws`` and the botocore session PynamoDB's connections share
(``storage.base``). A call counts for the run active in the current context (``metered``);
calls made outside a run are not counted.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections import Counter
from collections.abc import Iterator
from typing import Any

_active: contextvars.ContextVar[Counter | None] = contextvars.ContextVar("aws_requests", default=None)


def _count(model=None, **_: Any) -> None:
    counter = _active.get()
    if counter is not None:
        counter[f"{model.service_model.service_name}.{model.name}"] += 1


def attach(events) -> None:
    """Count the calls made through an event emitter: a client's (``client.meta.events``) or a
    botocore session's (``session.get_component("event_emitter")``, before it creates clients).
    Idempotent."""
    events.register_first("before-parameter-build", _count, unique_id="retail-sync-metering")


@contextlib.contextmanager
def metered(counter: Counter | None = None) -> Iterator[Counter]:
    """Count the requests made inside the block into ``counter`` (a new one by default)."""
    counter = Counter() if counter is None else counter
    token = _active.set(counter)
    try:
        yield counter
    finally:
        _active.reset(token)
