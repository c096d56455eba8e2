"""Replay the demo in the deployed topology and record which function made each AWS call.

Deployed, a manual run executes in ``run_job`` (the API hands it over with an async invoke), a
shard in ``run_shard`` (from the SQS queue), a schedule in its own function and the token check
in ``token_authorizer``. The local stack runs all of that in one process; the ``Recorder`` makes
the process behave like the deployment — ``RUN_DISPATCH=lambda``, the shard queue configured,
invocations of ``run_job`` and deliveries to ``run_shard`` performed in place — and attributes
every botocore call to the function on top of its invocation stack.

``check`` compares those calls (and each run record's ``aws_requests``) with the generated
policies; ``python -m deploy audit`` prints the requests per function and per HTTP route.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import botocore.client
from chalice import app as chalice_app
from chalice import test as chalice_test

from deploy import iam
from deploy.appmodel import Function, functions
from deploy.authorize import Account, Unmapped, action_allowed, allowed, candidate_actions, required
from deploy.stage import API_FUNCTION, Stage

ACCOUNT = "123456789012"  # moto's account


@dataclass(frozen=True)
class Call:
    function: str
    service: str
    operation: str
    params: dict
    route: str | None = None
    job: str | None = None

    @property
    def name(self) -> str:
        return f"{self.service}.{self.operation}"


@dataclass
class _Frame:
    function: str
    route: str | None = None
    job: str | None = None


@dataclass
class Audit:
    calls: list[Call] = field(default_factory=list)
    executed: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # run id -> functions
    invocations: Counter = field(default_factory=Counter)  # function -> times invoked
    http_requests: Counter = field(default_factory=Counter)  # route -> requests
    runs: list[dict] = field(default_factory=list)  # the run records at the end


class Recorder:
    """Patches the process into the deployed topology while active (see the module docstring)."""

    def __init__(self, stack, audit: Audit | None = None):
        self.stack = stack
        self.audit = audit or Audit()
        self._frames: list[_Frame] = []
        self._paused = False
        self._app = stack.client._app
        self._functions = {f.name: f for f in functions(self._app)}
        self._routes = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path, set(methods))
                        for path, methods in self._app.routes.items()]

    @contextlib.contextmanager
    def _frame(self, function: str, route: str | None = None) -> Iterator[_Frame]:
        if function not in self._functions:
            raise KeyError(f"{function} is not a function of the app")
        self.audit.invocations[function] += 1
        frame = _Frame(function, route)
        self._frames.append(frame)
        try:
            yield frame
        finally:
            self._frames.pop()

    @contextlib.contextmanager
    def _harness(self) -> Iterator[None]:
        """Calls the harness makes for itself are no function's."""
        self._paused = True
        try:
            yield
        finally:
            self._paused = False

    def __enter__(self) -> Recorder:
        from chalicelib import settings
        from chalicelib.jobs import runtime
        from chalicelib.storage import aws

        sqs = aws.client("sqs")
        self._shard_queue = sqs.get_queue_url(QueueName=settings.shard_queue_name())["QueueUrl"]
        recorder = self
        api_call = botocore.client.BaseClient._make_api_call
        emit_params = botocore.client.BaseClient._emit_api_params
        invoke = chalice_test.TestLambdaClient.invoke
        request = chalice_test.TestHTTPClient.request
        authorize = chalice_app.ChaliceAuthorizer.__call__
        execute = runtime.execute

        def make_api_call(client, operation, params):
            return recorder._api_call(api_call, client, operation, params)

        def presign(client, api_params, operation_model, context):
            # A presigned URL makes no request, yet whoever follows it acts with the signer's rights.
            if context.get("is_presign_request") and recorder._frames and not recorder._paused:
                frame = recorder._frames[-1]
                recorder.audit.calls.append(Call(frame.function, client.meta.service_model.service_name,
                                                 operation_model.name, dict(api_params), frame.route, frame.job))
            return emit_params(client, api_params, operation_model, context)

        def invoke_function(client, function_name, payload=None):
            with recorder._frame(function_name):
                return invoke(client, function_name, payload)

        def http_request(client, method, path, headers=None, body=b""):
            route = recorder._route(method, path)
            recorder.audit.http_requests[route] += 1
            with recorder._frame(API_FUNCTION, route):
                return request(client, method, path, headers, body)

        def run_authorizer(authorizer, event, context):
            route = recorder._frames[-1].route if recorder._frames else None
            with recorder._frame(authorizer.name, route):
                return authorize(authorizer, event, context)

        def execute_run(run_id, budget):
            frame = recorder._frames[-1]
            recorder.audit.executed[run_id].add(frame.function)
            with recorder._harness():
                job = runtime.get_run(run_id).job
            outer, frame.job = frame.job, job
            try:
                return execute(run_id, budget)
            finally:
                frame.job = outer

        self._patches = contextlib.ExitStack()
        for target, name, value in [
            (botocore.client.BaseClient, "_make_api_call", make_api_call),
            (botocore.client.BaseClient, "_emit_api_params", presign),
            (chalice_test.TestLambdaClient, "invoke", invoke_function),
            (chalice_test.TestHTTPClient, "request", http_request),
            (chalice_app.ChaliceAuthorizer, "__call__", run_authorizer),
            (runtime, "execute", execute_run),
            (settings, "run_dispatch", lambda: "lambda"),
            (settings, "shard_queue_url", lambda: self._shard_queue),
        ]:
            self._patches.enter_context(mock.patch.object(target, name, value))
        return self

    def __exit__(self, *exc_info) -> None:
        self._patches.close()

    def _route(self, method: str, path: str) -> str:
        bare = path.split("?")[0]
        for pattern, route, methods in self._routes:
            if pattern.match(bare) and method.upper() in methods:
                return f"{method.upper()} {route}"
        return f"{method.upper()} {bare}"

    def _api_call(self, original, client, operation: str, params: dict) -> Any:
        service = client.meta.service_model.service_name
        if self._frames and not self._paused:
            frame = self._frames[-1]
            self.audit.calls.append(Call(frame.function, service, operation, dict(params), frame.route, frame.job))
        # Outside any function (a demo step dispatching by itself) the hand-overs happen all the same.
        if service == "lambda" and operation == "Invoke":
            return self._invoke(params)
        result = original(client, operation, params)
        if service == "sqs" and operation.startswith("SendMessage") and params["QueueUrl"] == self._shard_queue:
            self._deliver_shards()
        return result

    def _invoke(self, params: dict) -> dict:
        """Lambda runs the asynchronously invoked function; here it runs in place."""
        from chalicelib import settings

        name = params["FunctionName"].split(":")[-1].removeprefix(f"{settings.APP_NAME}-{settings.stage()}-")
        self.stack.client.lambda_.invoke(name, json.loads(params["Payload"]))
        return {"StatusCode": 202}

    def _deliver_shards(self) -> None:
        """The SQS event source mapping: polls with the consumer's role, invokes, deletes."""
        from chalicelib.storage import aws

        consumer = next(f.name for f in self._functions.values() if f.trigger == "sqs")
        sqs = aws.client("sqs")
        with self._frame(consumer):
            while True:
                messages = sqs.receive_message(QueueUrl=self._shard_queue, MaxNumberOfMessages=10).get("Messages")
                if not messages:
                    return
                for message in messages:
                    event = self.stack.client.events.generate_sqs_event([message["Body"]], "shards")
                    self.stack.client.lambda_.invoke(consumer, event)
                    sqs.delete_message(QueueUrl=self._shard_queue, ReceiptHandle=message["ReceiptHandle"])


def platform_tour(demo) -> None:
    """What operators and stores do with the platform's own routes: list jobs, start a run by
    hand (it executes in run_job), read it back, page history and master data, a store's read."""
    operator = demo.operator
    http = demo.stack.http
    jobs = http("GET", "/jobs", operator).json_body["jobs"]
    run = http("POST", "/jobs/purge-run-history/runs", operator, {"params": {}, "dry_run": True},
               headers={"Idempotency-Key": "audit-tour"}).json_body["run"]
    http("POST", "/jobs/purge-run-history/runs", operator, {"params": {}, "dry_run": True},
         headers={"Idempotency-Key": "audit-tour"})
    http("GET", f"/runs/{run['run_id']}", operator)
    http("POST", f"/runs/{run['run_id']}/cancel", operator)
    http("GET", f"/jobs/{jobs[0]['name']}/runs?limit=5", operator)
    stores = http("GET", "/data/stores?limit=2", operator).json_body["items"]
    http("GET", f"/data/stores/{stores[0]['id']}", operator)
    http("GET", f"/stores/{stores[0]['id']}", demo.store_token(stores[0]["id"]))
    http("GET", "/health")


def replay_demo(out: Path, scale: str = "S", extra_steps=()) -> tuple[Audit, list[Function]]:
    """Run every demo step and the platform tour (and ``extra_steps``), then fire each schedule
    not fired yet, in the deployed topology."""
    from moto.moto_api._internal.models import moto_api_backend

    from chalicelib.auth import issue_token
    from chalicelib.storage.runs import RunRecord
    from devstack import demo as demo_steps
    from devstack.datagen import generate
    from devstack.stack import local_stack

    saved = dict(os.environ)
    moto_api_backend.reset()  # moto's state is per process: start from empty, as a fresh stack does
    try:
        with local_stack() as stack, Recorder(stack) as recorder:
            today = datetime.now(UTC).date()
            demo = demo_steps.Demo(stack, generate(scale, end_date=today), today,
                                   issue_token("operator", label="audit"), out)
            for step in [*(step for _, step in demo_steps.STEPS), platform_tour, *extra_steps]:
                step(demo)
            app_functions = list(recorder._functions.values())
            for function in app_functions:
                if function.trigger == "schedule" and not recorder.audit.invocations[function.name]:
                    stack.fire_schedule(function.name)
            recorder.audit.runs = [r.to_api() for r in RunRecord.scan()]
            return recorder.audit, app_functions
    finally:
        os.environ.clear()
        os.environ.update(saved)
        _forget_clients()


def _forget_clients() -> None:
    from chalicelib.storage import aws
    from chalicelib.storage.tables import reset_connections

    aws.reset()
    reset_connections()


def check(audit: Audit, app_functions: list[Function], stage: str = "local") -> list[str]:
    """Every call each function made, and every operation each run record counted, against that
    function's generated policy; returns the denials (empty when all is allowed)."""
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    policies = iam.policies(app_functions, iam.StageArns(Stage(stage), region, ACCOUNT))
    where = Account(region, ACCOUNT)
    problems = set()
    for call in audit.calls:
        context = f"{call.function}" + (f" ({call.route})" if call.route else "") + (
            f" running {call.job}" if call.job else "")
        try:
            permissions = required(call.service, call.operation, call.params, where)
        except Unmapped as unmapped:
            problems.add(f"{context}: {call.name} has no IAM rule in deploy/authorize.py ({unmapped})")
            continue
        for permission in permissions:
            if not allowed(policies[call.function], permission):
                problems.add(f"{context}: {call.name} needs {permission}, which its policy does not allow; "
                             f"{_hint(call, permission, stage)}")
    for run in audit.runs:
        for function in audit.executed.get(run["run_id"], ()):
            for operation in run["aws_requests"]:
                if not action_allowed(policies[function], candidate_actions(operation)):
                    problems.add(f"{function} running {run['job']} (run {run['run_id']}): {operation} "
                                 f"counted in the run record, no action for it in the policy")
    return sorted(problems)


def _hint(call: Call, permission, stage: str) -> str:
    """Where the missing grant is declared, and what to declare."""
    from deploy.stage import model_by_base

    names = {Stage(stage).table(base): model.__name__ for base, model in model_by_base().items()}
    table = permission.resource.split(":table/")[-1].split("/")[0] if ":table/" in permission.resource else None
    what = (f"tables={{{names.get(table, table)}: 'read' or 'write'}}" if table
            else "objects={'<bucket>/<prefix>': ...}" if permission.action.startswith("s3:")
            else "email=True" if permission.action.startswith("ses:") else permission.action)
    if call.job:
        return f"declare {what} in Job(resources=Resources(...)) of {call.job}"
    if call.route:
        return f"declare {what} in deploy/iam.py ROUTES for the module serving {call.route}"
    return f"declare {what} in deploy/iam.py FUNCTIONS (or EVENT_JOBS) for {call.function}"


def request_counts(audit: Audit) -> dict[str, Any]:
    """AWS requests by function, and per HTTP request by route (API handler plus authorizer)."""
    by_function: dict[str, Counter] = defaultdict(Counter)
    by_route: dict[str, Counter] = defaultdict(Counter)
    for call in audit.calls:
        by_function[call.function][call.name] += 1
        if call.route:
            by_route[call.route][f"{call.function}: {call.name}"] += 1
    return {"functions": {f: dict(c) for f, c in sorted(by_function.items())},
            "invocations": dict(audit.invocations),
            "routes": {r: {"requests": audit.http_requests[r], "calls": dict(by_route[r])}
                       for r in sorted(audit.http_requests)}}


def main(scale: str = "S") -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        audit, app_functions = replay_demo(Path(out), scale)
    counts = request_counts(audit)
    print("AWS requests by function (invocations):")
    for function, ops in counts["functions"].items():
        listed = ", ".join(f"{op} {n}" for op, n in sorted(ops.items()))
        print(f"  {function} ({counts['invocations'].get(function, 0)}): {listed}")
    print("AWS requests per HTTP route (requests: calls by function):")
    for route, data in counts["routes"].items():
        n = data["requests"]
        listed = ", ".join(f"{op} {c / n:.2f}" for op, c in sorted(data["calls"].items()))
        print(f"  {route} ({n}): {listed}")
    problems = check(audit, app_functions)
    print(f"IAM: {len(audit.calls)} calls checked, {len(problems)} denied")
    for problem in problems:
        print(f"  DENIED {problem}")
    return 1 if problems else 0
