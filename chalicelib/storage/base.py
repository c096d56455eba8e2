"""PynamoDB foundations shared by every model: stage-prefixed table names, JSON attributes,
and the one batch writer / batch getter (AWS limits enforced, retries with backoff)."""
from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import botocore.session
import pynamodb.connection.base
from pynamodb.attributes import Attribute, UnicodeAttribute
from pynamodb.constants import NUMBER
from pynamodb.models import Model

from chalicelib import settings
from chalicelib.domain.jsonvalues import json_default
from chalicelib.storage import metering
from chalicelib.storage.faults import BatchWriteFailed, ConditionFailed, translated

BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100
MAX_BATCH_ATTEMPTS = 8

M = TypeVar("M", bound=Model)


_sessions = threading.local()


def _thread_session() -> botocore.session.Session:
    """The botocore session every PynamoDB connection of this thread uses.

    PynamoDB opens one session per model connection (and per ``Connection()`` a transaction
    uses), and each session loads and keeps its own copy of the DynamoDB service model and
    endpoint rules: tens of milliseconds and thousands of objects per table on a cold start, and
    a full GC pass that grows with every table added. Sessions are not thread-safe, so one per
    thread, as PynamoDB itself keeps them. Its requests are counted for the run that makes them
    (``storage.metering``, registered before any client exists).

    PynamoDB (6.1) has no setting for the session its connections use: ``Connection.session``
    calls the ``get_session`` it imported, so that name is the one seam. A session per table
    instead costs about five times as much on a cold start (6 tables: 2.1 s against 0.44 s here).
    """
    session = getattr(_sessions, "session", None)
    if session is None:
        session = botocore.session.get_session()
        metering.attach(session.get_component("event_emitter"))
        _sessions.session = session
    return session


pynamodb.connection.base.get_session = _thread_session


class TableName:
    """``Meta.table_name`` resolved from settings on every access (stage prefix, read lazily)."""

    def __init__(self, base: str):
        self.base = base

    def __get__(self, obj, owner) -> str:
        return settings.table_name(self.base)


def meta(base: str) -> type:
    """A PynamoDB ``Meta`` class for table ``base``: no host, so ``AWS_ENDPOINT_URL`` applies."""
    return type("Meta", (), {"table_name": TableName(base), "billing_mode": "PAY_PER_REQUEST"})


def dumps(value: Any) -> str:
    """Compact, deterministic JSON; decimals become strings so no float ever rounds them."""
    return json.dumps(value, default=json_default, separators=(",", ":"), sort_keys=True)


class DecimalAttribute(Attribute[Decimal]):
    """A DynamoDB number read back as an exact ``Decimal`` (PynamoDB's NumberAttribute gives floats)."""

    attr_type = NUMBER

    def serialize(self, value: Decimal | int | str) -> str:
        return str(Decimal(str(value)))

    def deserialize(self, value: str) -> Decimal:
        return Decimal(value)


class JSONAttribute(UnicodeAttribute):
    """Any JSON value stored as one compact string (decimals kept exact as strings)."""

    def serialize(self, value: Any) -> str:
        return dumps(value)

    def deserialize(self, value: str) -> Any:
        return json.loads(value)


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None = None) -> str:
    """UTC ISO-8601 with milliseconds and ``Z``; sorts lexically in time order."""
    moment = moment or utcnow()
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def update_if(item: Model, actions: list, condition: Any) -> bool:
    """Apply ``actions`` to ``item`` only if ``condition`` holds; False (nothing written) when it
    did not. Other errors propagate."""
    try:
        with translated():
            item.update(actions=actions, condition=condition)
    except ConditionFailed:
        return False
    return True


def save_if(item: Model, condition: Any) -> bool:
    """Save ``item`` only if ``condition`` holds; False (nothing written) when it did not."""
    try:
        with translated():
            item.save(condition=condition)
    except ConditionFailed:
        return False
    return True


def _backoff(attempt: int) -> None:
    time.sleep(min(2.0, 0.05 * 2**attempt) * random.random())


class BatchWriter:
    """Buffered puts and deletes for one model, sent 25 at a time.

    DynamoDB may leave part of a batch unprocessed under throttling; those items are resent with
    jittered exponential backoff (PynamoDB's own batch writer resends at once). Use as a context
    manager so the last partial batch is flushed::

        with BatchWriter(Transaction) as batch:
            for item in items:
                batch.put(item)
    """

    def __init__(self, model: type[Model]):
        self.model = model
        self._pending: list[dict] = []
        self.written = 0

    def put(self, item: Model) -> None:
        self._pending.append({"PutRequest": {"Item": item.serialize()}})
        if len(self._pending) == BATCH_WRITE_LIMIT:
            self.flush()

    def delete(self, item: Model) -> None:
        self._pending.append({"DeleteRequest": {"Key": _key_of(item)}})
        if len(self._pending) == BATCH_WRITE_LIMIT:
            self.flush()

    def flush(self) -> None:
        requests, self._pending = self._pending, []
        table = self.model.Meta.table_name
        connection = self.model._get_connection().connection
        attempt = 0
        while requests:
            response = connection.client.batch_write_item(RequestItems={table: requests})
            left = response.get("UnprocessedItems", {}).get(table, [])
            self.written += len(requests) - len(left)
            requests = left
            if requests:
                attempt += 1
                if attempt >= MAX_BATCH_ATTEMPTS:
                    keys = [r.get("PutRequest", {}).get("Item") or r["DeleteRequest"]["Key"] for r in requests]
                    raise BatchWriteFailed(table, keys, MAX_BATCH_ATTEMPTS)
                _backoff(attempt)

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.flush()


def _key_of(item: Model) -> dict:
    """The item's primary key in DynamoDB's attribute-value form."""
    serialized = item.serialize(null_check=False)
    names = [item._hash_key_attribute().attr_name]
    if item._range_key_attribute() is not None:
        names.append(item._range_key_attribute().attr_name)
    return {name: serialized[name] for name in names}


def write_all(model: type[Model], puts: Iterable[Model] = (), deletes: Iterable[Model] = ()) -> int:
    """Put and delete items in 25-item batches; returns how many were written."""
    with BatchWriter(model) as batch:
        for item in puts:
            batch.put(item)
        for item in deletes:
            batch.delete(item)
    return batch.written


def get_many(model: type[M], keys: Iterable[Any], consistent_read: bool = False) -> Iterator[M]:
    """Batch-get items by key (hash, or (hash, range) tuples), 100 keys per request.

    PynamoDB chunks by 100 and resends unprocessed keys; missing items are simply absent.
    ``consistent_read`` when the caller decides on what it reads (an index it came from may lag).
    """
    keys = list(dict.fromkeys(keys))
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        yield from model.batch_get(keys[start:start + BATCH_GET_LIMIT], consistent_read=consistent_read or None)
