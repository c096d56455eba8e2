"""``make serve``: the local stack kept running — the HTTP API on localhost, schedules fired on
their cron, files dropped into the local migration bucket handled."""
from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from devstack.cron import is_due
from devstack.stack import local_stack


def _scheduled_functions(app) -> dict[str, str]:
    from chalicelib.jobs.registry import all_jobs

    names = {job.name.replace("-", "_"): job.schedule for job in all_jobs()}
    return {name: expr for name, expr in names.items() if name in app.handler_map}


def _handler(log_requests: bool) -> type:
    from chalice.local import ChaliceRequestHandler

    class Handler(ChaliceRequestHandler):
        # http.server answers a method without a do_<METHOD> with 501 and an HTML page: let the
        # application answer every method (405 for one the route lacks), as it does PATCH.
        do_TRACE = do_CONNECT = do_QUERY = ChaliceRequestHandler._generic_handle

        def log_message(self, format: str, *args) -> None:
            if log_requests:
                super().log_message(format, *args)

    return Handler


@dataclass(frozen=True)
class Api:
    """The HTTP API served on ``base`` with a demo retailer's master data and two real tokens."""

    base: str
    operator: str
    store: str
    store_id: str


@contextmanager
def serve_api(port: int = 8000, scale: str = "S", log_requests: bool = True) -> Iterator[Api]:
    """Seed a retailer of ``scale`` into the running local stack, mint an operator and a store
    token, and serve the API on ``127.0.0.1:port`` (0: a free port) until the block ends."""
    from chalice.cli.factory import CLIFactory
    from chalice.local import create_local_server

    import app
    from chalicelib import localenv
    from chalicelib.auth import issue_token
    from chalicelib.datagen import generate
    from chalicelib.storage import records

    retailer = generate(scale)
    for entity, items in retailer.master_data().items():
        for start in range(0, len(items), 1000):
            records.upsert(entity, items[start:start + 1000])
    operator = issue_token("operator", label="make serve")
    store_id = retailer.stores[0]["id"]
    store = issue_token("store", store_id=store_id, label=f"POS {store_id}")
    config = CLIFactory(str(localenv.PROJECT_DIR)).create_config_obj(chalice_stage_name="local")
    server = create_local_server(app.app, config, "127.0.0.1", port)
    server.server.RequestHandlerClass = functools.partial(_handler(log_requests), app_object=app.app,
                                                          config=config)
    threading.Thread(target=server.server.serve_forever, daemon=True).start()
    try:
        yield Api(f"http://127.0.0.1:{server.server.server_address[1]}", operator, store, store_id)
    finally:
        server.shutdown()


def main(port: int = 8000, scale: str = "S") -> int:
    import app

    with local_stack() as stack, serve_api(port, scale) as api:
        base, operator, store, store_id = api.base, api.operator, api.store, api.store_id
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
    return 0
