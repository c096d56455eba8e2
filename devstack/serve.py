"""``make serve``: the local stack kept running — the HTTP API on localhost, schedules fired on
their cron, files dropped into the local migration bucket handled."""
from __future__ import annotations

import functools
import json
import threading
import time
from datetime import UTC, datetime

from chalice.local import ChaliceRequestHandler, ForbiddenError, LocalGatewayException, NotAuthorizedError

from chalicelib import localenv
from devstack.cron import is_due
from devstack.stack import local_stack


def _scheduled_functions(app) -> dict[str, str]:
    from chalicelib.jobs.registry import all_jobs

    names = {job.name.replace("-", "_"): job.schedule for job in all_jobs()}
    return {name: expr for name, expr in names.items() if name in app.handler_map}


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


def main(port: int = 8000, scale: str = "S") -> int:
    import app
    from chalicelib.auth import issue_token
    from chalicelib.datagen import generate
    from chalicelib.storage import records

    with local_stack() as stack:
        retailer = generate(scale)
        for entity, items in retailer.master_data().items():
            for start in range(0, len(items), 1000):
                records.upsert(entity, items[start:start + 1000])
        operator = issue_token("operator", label="make serve")
        store_id = retailer.stores[0]["id"]
        store = issue_token("store", store_id=store_id, label=f"POS {store_id}")
        server = start_api(app.app, port)
        base = f"http://127.0.0.1:{port}"
        print(f"""retail-sync local stack
  API            {base}   (moto: {stack.endpoint}, dashboard {stack.endpoint}/moto-api/)
  operator token {operator}
  store token    {store}   (store {store_id})

  curl {base}/health
  curl -H 'Authorization: Bearer {operator}' {base}/jobs
  curl -X POST -H 'Authorization: Bearer {operator}' -d '{{"params": {{}}}}' {base}/jobs/purge-run-history/runs
  curl -H 'Authorization: Bearer {store}' {base}/stores/{store_id}
  aws --endpoint-url {stack.endpoint} s3 cp products.csv s3://retail-sync-local-migration/migration/data/products/

Schedules fire on their cron (UTC); Ctrl-C stops.""", flush=True)
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
                time.sleep(2)
        except KeyboardInterrupt:
            print("stopping", flush=True)
        finally:
            server.shutdown()
    return 0
