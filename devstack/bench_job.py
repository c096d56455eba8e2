"""``python -m devstack.bench_job JOB [PARAMS_JSON]``: one manual run of a job against the running
local stack (its environment: ``AWS_ENDPOINT_URL``, the stage's variables, ``SHARD_QUEUE_URL``),
in this process as Lambda would run it; a fan-out's shards go to the worker processes and this
waits for the parent's close. Prints the run as the API shows it, with ``peak_mb``: this process's
peak RSS (``VmHWM``, ``localenv.peak_rss_mb``), as its last line."""
from __future__ import annotations

import json
import sys

from devstack import localenv


def main(job: str, params: str = "{}") -> None:
    from chalicelib.jobs import runtime
    from devstack.workers import wait_until_final

    run = runtime.start(job, json.loads(params), trigger="manual", requested_by="bench").run
    final = run.to_api() if run.is_final else wait_until_final(run.run_id)
    peak_mb = localenv.peak_rss_mb()
    print(json.dumps({**final, "peak_mb": round(peak_mb, 1)}, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:3])
