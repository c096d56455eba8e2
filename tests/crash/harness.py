"""The crash-point harness: every AWS call of a job's fault-free run, killed before it, killed after
AWS accepted it and throttled past the SDK's retries; then what AWS would do next, and the state
compared with the fault-free run's.

Faults are injected below boto3 and PynamoDB, never in the code under test: two handlers in
botocore's ``BUILTIN_HANDLERS`` (the way moto hooks in) are registered on every botocore session
created afterwards, so on every boto3 client (``storage.aws``) and every PynamoDB connection alike.
``before-call`` fires once per API call, before the SDK's own retries, and ``after-call`` once after
AWS answered:

- ``kill-before``: ``Killed`` (a ``BaseException``: no ``except Exception`` of the runtime or a
  job sees it) before call k is sent; every later call of that invocation raises it too, as if
  the process were gone.
- ``kill-after``: call k reaches AWS (moto) and is accepted; then the process dies the same way.
- ``throttle``: call k answers the error the SDK raises once its retries are spent
  (``ProvisionedThroughputExceededException``, ``SlowDown``, ``Throttling``...).

Lambda is simulated, as deployed (``RUN_DISPATCH=lambda``): ``lambda.Invoke`` is answered 202 by
the harness and queued; the queue delivers it to ``run_job`` later. An asynchronous invocation
that fails is retried twice with the same event, 1 and 2 minutes later (Lambda's defaults); an
HTTP request that fails is sent again once by its caller with the same ``Idempotency-Key``. Then
the lease passes (``chalicelib.clock.advance``) and the next trigger comes: a scheduled job's next
tick (a new EventBridge event id), an event job's notification delivered again. That repeats
while the job has an unfinished run, at most ``MAX_ROUNDS`` times.

The state compared (``capture``/``normalise``): every table's items but run bookkeeping (runs,
locks and idempotency keys), every S3 object with its content (gzip unpacked), the emails SES
accepted; generated ids, timestamps, TTL epochs, optimistic-lock versions and ``seq`` gaps
normalised. Items are compared as multisets, so a missing, extra or changed item shows.
"""
from __future__ import annotations

import copy
import gzip
import json
import re
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import botocore.handlers
from botocore.awsrequest import AWSResponse

MAX_ROUNDS = 5
LAMBDA_RETRY_DELAYS = (60, 120)  # seconds before Lambda's first and second async retry
MODES = ("kill-before", "kill-after", "throttle")
THROTTLE = {  # service -> (HTTP status, the code the SDK raises when its retries are spent)
    "dynamodb": (400, "ProvisionedThroughputExceededException"),
    "s3": (503, "SlowDown"),
    "ses": (400, "Throttling"),
    "sesv2": (429, "TooManyRequestsException"),
    "lambda": (429, "TooManyRequestsException"),
}
EMAIL_OPERATIONS = {"ses.SendEmail", "ses.SendRawEmail", "sesv2.SendEmail"}


class Killed(BaseException):
    """The Lambda process died: Lambda timed out or was killed. Not an ``Exception``."""


# --- the botocore hooks ---------------------------------------------------------------------

@dataclass
class Faults:
    """What the hooks do now. Unarmed, they only count nothing and answer ``lambda.Invoke``."""

    armed: bool = False
    mode: str | None = None
    k: int | None = None
    index: int = 0
    dead: bool = False
    fired: str | None = None  # the operation the fault hit
    kill_after: bool = False
    calls: list = field(default_factory=list)
    on_invoke: Callable[[dict], None] | None = None


FAULTS = Faults()


def _operation(model) -> str:
    return f"{model.service_model.service_name}.{model.name}"


def _response(status: int, parsed: dict) -> tuple:
    return AWSResponse("https://crash-harness.invalid/", status, {}, None), parsed


def _before_call(model=None, params=None, **_: Any):
    operation = _operation(model)
    if FAULTS.armed:
        if FAULTS.dead:
            raise Killed(f"process already dead ({operation})")
        index = FAULTS.index
        FAULTS.index += 1
        FAULTS.calls.append(operation)
        if index == FAULTS.k and FAULTS.fired is None:
            FAULTS.fired = operation
            if FAULTS.mode == "kill-before":
                FAULTS.dead = True
                raise Killed(f"killed before call {index} ({operation})")
            if FAULTS.mode == "throttle":
                status, code = THROTTLE.get(model.service_model.service_name, (400, "ThrottlingException"))
                return _response(status, {"Error": {"Code": code, "Message": "Rate exceeded (crash harness)"},
                                          "ResponseMetadata": {"HTTPStatusCode": status, "MaxAttemptsReached": True,
                                                               "RetryAttempts": 4}})
            if FAULTS.mode == "kill-after":
                FAULTS.kill_after = True
    if operation == "lambda.Invoke" and FAULTS.on_invoke is not None:
        FAULTS.on_invoke(json.loads(params["body"]) if params.get("body") else {})
        return _response(202, {"StatusCode": 202, "ResponseMetadata": {"HTTPStatusCode": 202}})
    return None


def _after_call(model=None, **_: Any):
    if FAULTS.armed and FAULTS.kill_after:
        FAULTS.kill_after = False
        FAULTS.dead = True
        raise Killed(f"killed after call {FAULTS.k} was accepted ({_operation(model)})")


HOOKS = (("before-call", _before_call), ("after-call", _after_call))


def install() -> None:
    """Register the hooks for every botocore session created from now on (``storage.aws`` makes a
    boto3 session per client) and on the one botocore session this thread's PynamoDB connections
    share (``storage.base._thread_session``, created at most once per thread). Idempotent."""
    from chalicelib.storage.base import _thread_session

    for entry in HOOKS:
        if entry not in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.append(entry)
    session = _thread_session()
    for event, handler in HOOKS:
        session.register(event, handler, unique_id=f"crash-harness-{event}")


def fresh_clients() -> None:
    """Drop cached boto3 clients and PynamoDB connections so the next ones carry the hooks."""
    from chalicelib.storage import aws
    from chalicelib.storage.tables import reset_connections

    aws.reset()
    reset_connections(force=True)


# --- what AWS does: invocations, retries, the next trigger ------------------------------------

@dataclass
class Invocation:
    """One delivery: a Lambda function with its event, or an HTTP request (``function`` "http")."""

    function: str
    payload: Any = None
    http: tuple | None = None  # (method, path, body, headers)

    @property
    def retries(self) -> int:
        return 1 if self.http else len(LAMBDA_RETRY_DELAYS)


class World:
    """The chalice test client as Lambda and API Gateway would drive it."""

    def __init__(self, client):
        self.client = client
        self.queue: deque = deque()
        self.failures: list[str] = []

    def _invoked(self, payload: dict) -> None:
        self.queue.append((Invocation("run_job", payload), 0))

    def invoke(self, invocation: Invocation) -> bool:
        """Deliver once in a fresh process; True when the invocation failed."""
        FAULTS.dead = False
        FAULTS.kill_after = False
        try:
            if invocation.http:
                method, path, body, headers = invocation.http
                response = self.client.http.request(method, path, headers=headers, body=body)
                return response.status_code >= 500
            self.client.lambda_.invoke(invocation.function, invocation.payload)
            return False
        except Killed:
            return True
        except Exception as exc:  # noqa: BLE001 - a handler that raises makes AWS deliver again
            self.failures.append(f"{invocation.function}: {type(exc).__name__}: {exc}")
            return True
        finally:
            FAULTS.dead = False

    def deliver(self, invocation: Invocation) -> None:
        """The invocation and every ``run_job`` it queued, with Lambda's retries of failures."""

        self.queue.append((invocation, 0))
        self.deliver_queued()

    def deliver_queued(self) -> None:
        from chalicelib import clock

        while self.queue:
            current, attempt = self.queue.popleft()
            if self.invoke(current) and attempt < current.retries:
                if not current.http:
                    clock.advance(LAMBDA_RETRY_DELAYS[attempt])
                self.queue.append((current, attempt + 1))


def unfinished_runs(job: str) -> list:
    from chalicelib.domain.runs import FINAL_STATUSES
    from chalicelib.storage.runs import RunRecord

    return [r for r in RunRecord.by_job.query(job) if r.status not in FINAL_STATUSES]


# --- the state ------------------------------------------------------------------------------

def _ses_backend():
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]


def _dynamodb_backend():
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]


def _buckets() -> list[str]:
    from chalicelib import settings

    return [settings.data_bucket(), settings.migration_bucket()]


def _objects() -> dict[tuple[str, str], bytes]:
    from chalicelib.storage import aws

    s3, found = aws.client("s3"), {}
    for bucket in _buckets():
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                found[(bucket, item["Key"])] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found


@dataclass
class Snapshot:
    """moto's tables, the S3 objects, SES's sent count and the lease clock: restored per crash point."""

    tables: dict
    objects: dict
    emails: int

    @classmethod
    def take(cls) -> Snapshot:
        return cls(copy.deepcopy(_dynamodb_backend().tables), _objects(), len(_ses_backend().sent_messages))

    def restore(self) -> None:
        from chalicelib import clock
        from chalicelib.storage import aws

        _dynamodb_backend().tables = copy.deepcopy(self.tables)
        s3 = aws.client("s3")
        for (bucket, key) in _objects():
            if (bucket, key) not in self.objects:
                s3.delete_object(Bucket=bucket, Key=key)
        for (bucket, key), body in self.objects.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        del _ses_backend().sent_messages[self.emails:]
        clock.reset()


def _unpack(body: bytes) -> Any:
    for unpack in (gzip.decompress, zlib.decompress):
        try:
            body = unpack(body)
            break
        except (OSError, zlib.error, EOFError):
            continue
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return f"<binary {len(body)} bytes>"
    return text


_RUN_ID = re.compile(r"\d{8}T\d{6}-[0-9a-f]{12}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
_HEX = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?:-\d+)?\b"
                  r"|(?<![0-9a-zA-Z])[0-9a-f]{12,}(?![0-9a-zA-Z])")
_SES_MESSAGE_ID = re.compile(r"\b[a-z0-9]{16}-[a-z0-9]{8}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{12}"
                             r"-[a-z0-9]{6}\b")
_MESSAGE_KEY_TAIL = re.compile(r"#[0-9a-f]{8}\b")
_PDF_DATE = re.compile(r"D:\d{14}[^)]*")
_PACKAGE = re.compile(r"(packages/([^/]+)/)(\d+)-")
_PACKAGE_SEQ = re.compile(r'"seq":\s*\d+')
VOLATILE = {"version"}  # optimistic-lock counters: a retried write may bump them more often


def _text(value: str) -> str:
    value = _RUN_ID.sub("<run>", value)
    value = _SES_MESSAGE_ID.sub("<ses-message>", value)
    value = _TIMESTAMP.sub("<ts>", value)
    value = _HEX.sub("<hex>", value)
    value = _MESSAGE_KEY_TAIL.sub("#<tail>", value)
    return _PDF_DATE.sub("D:<ts>", value)


def _value(name: str, value: Any) -> Any:
    if name in VOLATILE:
        return "<version>"
    if isinstance(value, str):
        return _text(value)
    if hasattr(value, "value") and isinstance(value.value, bytes):  # boto3's Binary
        value = value.value
    if isinstance(value, bytes | bytearray):
        return _value(name, _unpack(bytes(value)))
    if isinstance(value, dict):
        return {k: _value(k, v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_value(name, v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_value(name, v) for v in value), key=repr)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        if 1.5e9 <= float(value) <= 2.5e9:  # an epoch (TTL): taken from the wall clock
            return "<epoch>"
    return value


def _items(job: str) -> dict[str, list[dict]]:
    """Every table's items but run bookkeeping (locks, idempotency keys, ``job``'s own runs and the
    alerts they raised) and the API tokens (an HTTP request killed before it records the token's
    last use), as plain Python values; other jobs' runs stay (purge-run-history deletes them)."""
    from boto3.dynamodb.types import TypeDeserializer

    from chalicelib.storage.alerts import Alert
    from chalicelib.storage.runs import Coordination, RunRecord
    from chalicelib.storage.tables import ALL_MODELS
    from chalicelib.storage.tokens import ApiToken

    deserialize = TypeDeserializer().deserialize
    tables = _dynamodb_backend().tables
    found = {}
    for model in ALL_MODELS:
        if model in (Coordination, ApiToken):  # locks, idempotency keys; a token's last use
            continue
        rows = [{k: deserialize(v) for k, v in item.to_json()["Attributes"].items()}
                for item in tables[model.Meta.table_name].all_items()]
        # ``job``'s own runs and the alerts they raised: a run a crash abandoned ends Error (its alert)
        found[model.__name__] = [r for r in rows if model not in (RunRecord, Alert) or r.get("job") != job]
    return found


def _seq_ranks(items: dict[str, list[dict]]) -> dict[tuple[str, int], int]:
    """Each store's download-session numbers mapped to their rank: a gap a dead run left is no change."""
    per_store: dict[str, set] = {}
    for item in items.get("DownloadSession", []):
        if item.get("seq") is not None:
            per_store.setdefault(item["store_id"], set()).add(int(item["seq"]))
    return {(store, seq): rank for store, seqs in per_store.items()
            for rank, seq in enumerate(sorted(seqs), start=1)}


def _package_keys(text: str, ranks: dict) -> str:
    """``packages/<store>/<seq>-``: the seq replaced by its rank among the store's sessions."""
    return _PACKAGE.sub(lambda m: f"{m.group(1)}{ranks.get((m.group(2), int(m.group(3))), 'gap')}-", text)


def _emails() -> list:
    found = []
    for message in _ses_backend().sent_messages:
        raw = getattr(message, "raw_data", None)
        if raw is not None:
            import email

            parsed = email.message_from_string(raw)
            parts = []
            for part in parsed.walk():
                if part.is_multipart():
                    continue
                payload = part.get_payload(decode=True) or b""
                parts.append({"type": part.get_content_type(), "name": part.get_filename(),
                              "body": _text(payload.decode("latin-1"))})
            found.append({"to": sorted(message.destinations.get("ToAddresses", []) if isinstance(
                message.destinations, dict) else message.destinations or []),
                "subject": _text(str(parsed.get("Subject", ""))), "parts": parts})
        else:
            found.append({"to": sorted((message.destinations or {}).get("ToAddresses", [])),
                          "subject": _text(message.subject or ""), "body": _text(message.body or "")})
    return sorted(json.dumps(e, sort_keys=True, default=str) for e in found)


def capture(job: str) -> dict:
    """The normalised state a user would see: items per table, objects, emails (multisets)."""
    items = _items(job)
    ranks = _seq_ranks(items)
    state: dict[str, Any] = {}
    for table, rows in items.items():
        normalised = []
        for row in rows:
            if table == "DownloadSession" and row.get("seq") is not None:
                row = {**row, "seq": ranks[(row["store_id"], int(row["seq"]))]}
            if table == "StoreState" and row.get("seq") is not None:
                row = {**row, "seq": "<counter>"}  # the store's next number; gaps are allowed
            normalised.append(_package_keys(json.dumps(_value("", row), sort_keys=True, default=str), ranks))
        state[f"table:{table}"] = sorted(normalised)
    objects = []
    for (bucket, key), body in _objects().items():
        text = _unpack(body)
        match = _PACKAGE.match(key)
        if match:
            rank = ranks.get((match.group(2), int(match.group(3))), "gap")
            key = _package_keys(key, ranks)
            text = _PACKAGE_SEQ.sub(f'"seq":"{rank}"', text, count=1)  # the package's header names its seq
        objects.append(json.dumps({"bucket": bucket, "key": _text(key), "body": _text(text)}, sort_keys=True))
    state["s3"] = sorted(objects)
    state["emails"] = _emails()
    return state


def diff(expected: dict, actual: dict, allow_one_more_email: bool = False) -> list[str]:
    """What differs, one line per kind of state (missing and extra items, counted)."""
    lines = []
    for kind in sorted(set(expected) | set(actual)):
        want, got = Counter(expected.get(kind, [])), Counter(actual.get(kind, []))
        missing, extra = want - got, got - want
        if kind == "emails" and allow_one_more_email and not missing and sum(extra.values()) == 1 \
                and next(iter(extra)) in want:
            continue  # the kill fell between SES accepting the receipt and its record: sent once more
        if missing or extra:
            lines.append(f"{kind}: {sum(missing.values())} missing, {sum(extra.values())} extra "
                         f"({_example(missing, extra)})")
    return lines


def _simulated_seconds() -> float:
    from chalicelib import clock

    return round(clock.now() - time.time())


def _example(missing: Counter, extra: Counter) -> str:
    """One difference, short: the fields that differ when an item changed, else the item."""
    if missing and extra:
        try:
            want, got = json.loads(next(iter(missing))), json.loads(next(iter(extra)))
        except ValueError:
            want = got = None
        if isinstance(want, dict) and isinstance(got, dict):
            changed = {k: (want.get(k), got.get(k)) for k in sorted(set(want) | set(got)) if want.get(k) != got.get(k)}
            return "changed " + "; ".join(f"{k}: {str(a)[:120]} -> {str(b)[:120]}" for k, (a, b) in changed.items())
    return ("missing " if missing else "extra ") + next(iter(missing or extra))[:240]


# --- the crash points -------------------------------------------------------------------------

@dataclass
class Outcome:
    job: str
    calls: list[str]
    tried: int = 0
    passed: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    settled_after: float = 0.0  # simulated seconds (retries, leases) the slowest crash point needed


class Crashes:
    """Runs one scenario's fault-free chain, then every crash point, against one moto."""

    def __init__(self, world: World, scenario):
        self.world = world
        self.scenario = scenario

    def _recover(self, scheduled: bool) -> None:
        from chalicelib import clock, settings

        for round_number in range(MAX_ROUNDS):
            if not scheduled and not unfinished_runs(self.scenario.job):
                return
            clock.advance(settings.lock_lease_seconds() + 1)
            self.world.deliver(self.scenario.next_trigger(self.world, round_number))
            if not unfinished_runs(self.scenario.job):
                return

    def _play(self, mode: str | None = None, k: int | None = None) -> list[str]:
        first = self.scenario.trigger(self.world)  # built before the faults: it is the event, not the run
        FAULTS.__init__(armed=True, mode=mode, k=k, on_invoke=self.world._invoked)
        try:
            self.world.deliver(first)
        finally:
            calls, fired = FAULTS.calls, FAULTS.fired
            FAULTS.__init__(on_invoke=self.world._invoked)
        self._recover(self.scenario.scheduled)
        self.fired = fired
        return calls

    def run(self, modes=MODES, only: Callable[[str, int], bool] | None = None) -> Outcome:
        started = time.monotonic()
        FAULTS.__init__(on_invoke=self.world._invoked)
        self.scenario.setup(self.world)
        snapshot = Snapshot.take()
        before = capture(self.scenario.job)
        calls = self._play()
        expected = capture(self.scenario.job)
        assert any(before[kind] != expected[kind] for kind in expected if kind.startswith("table:")), \
            f"{self.scenario.job}: the fault-free run wrote no item"
        outcome = Outcome(self.scenario.job, calls)
        for mode in modes:
            for k in range(len(calls)):
                if only and not only(mode, k):
                    continue
                snapshot.restore()
                self.world.queue.clear()
                self._play(mode, k)
                outcome.tried += 1
                outcome.settled_after = max(outcome.settled_after, _simulated_seconds())
                # Between SES accepting a receipt and the record of it: killed right after the send,
                # or right before the next call (no call lies between them; the same moment).
                after_send = (mode == "kill-after" and self.fired in EMAIL_OPERATIONS) or (
                    mode == "kill-before" and k > 0 and calls[k - 1] in EMAIL_OPERATIONS)
                problems = diff(expected, capture(self.scenario.job), allow_one_more_email=after_send)
                left = unfinished_runs(self.scenario.job)
                if left:
                    problems.append(f"{len(left)} unfinished run(s): " + ", ".join(
                        f"{r.status} {r.message or ''}".strip() for r in left[:3]))
                if problems:
                    outcome.failures.append(f"{mode} k={k} ({self.fired or calls[k]}): " + "; ".join(problems))
                else:
                    outcome.passed += 1
        outcome.seconds = time.monotonic() - started
        return outcome
