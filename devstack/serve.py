"""``make serve``: the local stack kept running — the HTTP API on localhost, schedules fired on
their cron, files dropped into the local migration bucket handled.

Chalice's local server answers what API Gateway answers itself (no token, a route the token may
not use, no such route) in API Gateway's own words; here they are the contract's error documents,
as the deployed gateway responses make them (``http.common.GATEWAY_ERRORS``), and a token is never
echoed. The running stack's endpoints are written to ``LOCAL_STACK_FILE`` (default
``.local-stack.json`` in the project) for ``make token``.
"""
from __future__ import annotations

import functools
import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from chalice.local import ChaliceRequestHandler, ForbiddenError, LocalGatewayException, NotAuthorizedError

from chalicelib.schedules import is_due
from devstack import localenv
from devstack.stack import local_stack

# Any key pair is accepted by moto; these are printed for the aws CLI line (never a real one).
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_DEFAULT_REGION": "us-east-1"}


def state_file() -> Path:
    return Path(os.environ.get("LOCAL_STACK_FILE") or localenv.PROJECT_DIR / ".local-stack.json")


class ContractRequestHandler(ChaliceRequestHandler):
    """Chalice's local request handler answering the gateway's own errors as the deployed API does."""

    # every method reaches the application, which answers 405 for one the route lacks (http.server's
    # own answer is 501 with an HTML page)
    do_TRACE = do_CONNECT = do_QUERY = ChaliceRequestHandler._generic_handle

    def _send_error_response(self, error: LocalGatewayException) -> None:
        from chalicelib.http.common import GATEWAY_ERRORS, error_body

        kind = error.headers.get("x-amzn-ErrorType")
        if isinstance(error, NotAuthorizedError):
            status, body = GATEWAY_ERRORS["UNAUTHORIZED"]
        elif isinstance(error, ForbiddenError) and kind == "AccessDeniedException":
            status, body = GATEWAY_ERRORS["ACCESS_DENIED"]
        elif isinstance(error, ForbiddenError):  # no such route (API Gateway: "Missing Authentication Token")
            status, body = GATEWAY_ERRORS["MISSING_AUTHENTICATION_TOKEN"]
        else:  # the authorizer answered nothing
            status, body = 500, error_body("internal_error", "internal error; see the logs")
        self._send_http_response(status, {"Content-Type": "application/json"}, json.dumps(body))


class QuietRequestHandler(ContractRequestHandler):
    def log_message(self, format: str, *args) -> None:
        """No line per request (the fuzz run sends thousands)."""


def start_api(app, port: int, log_requests: bool = True):
    """The HTTP API on 127.0.0.1:``port`` (0: a free one) in a daemon thread; returns the server
    (``shutdown()``)."""
    from chalice.cli.factory import CLIFactory
    from chalice.local import create_local_server

    config = CLIFactory(str(localenv.PROJECT_DIR)).create_config_obj(chalice_stage_name="local")
    server = create_local_server(app, config, "127.0.0.1", port)
    handler = ContractRequestHandler if log_requests else QuietRequestHandler
    server.server.RequestHandlerClass = functools.partial(handler, app_object=app, config=config)
    threading.Thread(target=server.server.serve_forever, daemon=True).start()
    return server


def banner(base: str, endpoint: str, operator: str, store: str, store_id: str, sample: Path) -> str:
    from chalicelib import settings

    credentials = " ".join(f"{name}={value}" for name, value in LOCAL_CREDENTIALS.items())
    return f"""retail-sync local stack
  API            {base}   (moto: {endpoint}, dashboard {endpoint}/moto-api/)
  console        {base}/console   (sign in with the operator token)
  operator token {operator}
  store token    {store}   (store {store_id})
  more tokens    make token ROLE=operator | make token ROLE=store STORE={store_id}

  export OPERATOR={operator} STORE={store}
  curl {base}/health
  curl -H "Authorization: Bearer $OPERATOR" {base}/jobs
  curl -X POST -H "Authorization: Bearer $OPERATOR" -H 'Content-Type: application/json' \\
       -d '{{"params": {{}}}}' {base}/jobs/purge-run-history/runs
  curl -H "Authorization: Bearer $STORE" {base}/stores/{store_id}
  {credentials} aws --endpoint-url {endpoint} s3 cp {sample} s3://{settings.migration_bucket()}/migration/data/products/

Schedules fire on their cron (UTC); Ctrl-C stops."""


NEWEST_ALERTS = 5


def alert_line(alert: dict) -> str:
    """One open alert on one line: when, kind, its job or store, the start of its message."""
    about = alert["job"] or (f"store {alert['store_id']}" if alert["store_id"] else "")
    message = alert["message"] if len(alert["message"]) <= 100 else alert["message"][:99] + "…"
    return f"  alert {alert['created_at'][:16].replace('T', ' ')} {alert['kind']} {about}: {message}"


class AlertWatch:
    """The open alerts for the console of ``make serve``: a summary for the banner, then each new
    one as it is recorded (``new()``, called every loop of the runner)."""

    def __init__(self):
        self.since = "1970-01-01T00:00:00.000Z"  # a key condition may not compare with an empty string

    def summary(self) -> str:
        from chalicelib.domain.alerts import OPEN
        from chalicelib.storage import alerts

        newest = [a.to_api() for a in alerts.by_status(OPEN, NEWEST_ALERTS, None)]
        self.since = max([a["created_at"] for a in newest] + [self.since])
        count = alerts.count(OPEN)
        lines = [f"Open alerts: {count}" + (f" (newest {len(newest)}; GET /alerts lists them)" if count else "")]
        return "\n".join(lines + [alert_line(a) for a in newest])

    def new(self) -> list[str]:
        from chalicelib.domain.alerts import OPEN
        from chalicelib.storage import alerts

        found = [a.to_api() for a in alerts.created_after(OPEN, self.since)]
        if found:
            self.since = found[-1]["created_at"]
        return [alert_line(a) for a in found]


def tokens(argv: list[str]) -> int:
    """``python -m chalicelib tokens <argv>`` pointed at the running local stack."""
    import sys

    from chalicelib.__main__ import main as cli

    state = state_file()
    if not state.exists():
        print(f"no local stack is running ({state} is missing): start it with `make serve`", file=sys.stderr)
        return 2
    localenv.apply("local", endpoint=json.loads(state.read_text())["endpoint"])
    return cli(["tokens", *argv])


def main(port: int = 8000, scale: str = "S", workers: int = 1) -> int:
    import app
    from chalicelib.auth import issue_token
    from chalicelib.storage import records
    from devstack.datagen import generate
    from devstack.demo_migration import rms_products_export

    with local_stack(workers=workers, stats=Path("bench-output", "serve-shards.jsonl")) as stack:
        retailer = generate(scale)
        for entity, items in retailer.master_data().items():
            for start in range(0, len(items), 1000):
                records.upsert(entity, items[start:start + 1000])
        operator = issue_token("operator", label="make serve")
        store_id = retailer.stores[0]["id"]
        store = issue_token("store", store_id=store_id, label=f"POS {store_id}")
        sample = Path("demo-output", "rms-items.csv").resolve()
        sample.parent.mkdir(exist_ok=True)
        sample.write_bytes(rms_products_export(retailer))
        server = start_api(app.app, port)
        base = f"http://127.0.0.1:{port}"
        state = state_file()
        state.write_text(json.dumps({"api": base, "endpoint": stack.endpoint}))
        print(banner(base, stack.endpoint, operator, store, store_id, sample), flush=True)
        watch = AlertWatch()
        print(watch.summary(), flush=True)
        schedules = _scheduled_functions(app.app)
        last_minute = None
        try:
            while True:
                now = datetime.now(UTC).replace(second=0, microsecond=0)
                if now != last_minute:
                    last_minute = now
                    for function, expression in schedules.items():
                        if is_due(expression, now):
                            run = stack.fire_schedule(function, now)
                            print(f"{now:%H:%M} {function}: {run['status']} — {run['message']}", flush=True)
                for result in stack.deliver_drops():
                    print(f"migration drop handled: {result}", flush=True)
                for line in watch.new():
                    print(line, flush=True)
                time.sleep(2)
        except KeyboardInterrupt:
            print("stopping", flush=True)
        finally:
            state.unlink(missing_ok=True)
            server.shutdown()
    return 0


def _scheduled_functions(app) -> dict[str, str]:
    from chalicelib.jobs.registry import all_jobs

    names = {job.name.replace("-", "_"): job.schedule for job in all_jobs()}
    return {name: expr for name, expr in names.items() if name in app.handler_map}
