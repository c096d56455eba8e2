"""``make bench SCALE=M``: every job on the local stack at a realistic scale.

For each measured step: records processed, wall seconds, AWS requests by operation, requests per
record and peak memory — written to ``BENCHMARKS.md``. Job families add their scenarios to
``SCENARIOS``: ``scenario(bench) -> None`` calling ``bench.measure``.

A job runs in a process of its own (``bench.run_job``: ``python -m devstack.bench_job``), as in
Lambda, and its peak is that process's peak RSS (``localenv.peak_rss_mb``). With ``WORKERS=N``
(default 1) a fan-out's shards run in N worker processes from the shard queue (``devstack/workers.py``),
started afresh for each step; a fanning-out step then also reports its number of shards, the
mean and slowest shard's seconds and the largest peak RSS of a worker process that ran one. A step
made of HTTP requests (uploads, approvals) runs in the bench process and has no peak of its own.
``--only`` runs the named scenarios (the master data is always loaded first).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devstack import bench_distribution, bench_finance, bench_migration, bench_store
from devstack.stack import LocalStack, local_stack

RESULTS = Path("BENCHMARKS.md")


@dataclass
class Row:
    step: str
    records: int
    unit: str
    seconds: float
    requests: dict[str, int]
    peak_mb: float | None  # the job's process's peak RSS; None for a step run in the bench process
    status: str
    shards: list[dict] = field(default_factory=list)  # per shard run: seconds, maxrss_mb (worker processes)

    @property
    def per_record(self) -> float:
        return sum(self.requests.values()) / self.records if self.records else 0.0


@dataclass
class Bench:
    stack: LocalStack
    retailer: Any
    scale: str
    operator: str
    workers: int = 0
    rows: list[Row] = field(default_factory=list)

    def measure(self, step: str, unit: str, action: Callable[[], dict], records: Callable[[dict], int]) -> dict:
        """Run ``action`` (returns a run as the API shows it, with ``peak_mb`` when it ran in a
        process of its own); record its time, requests per record and peaks."""
        if self.stack.workers is not None:
            self.stack.workers.restart()  # each step's shards in fresh workers: their peak is the step's
        started = time.monotonic()
        run = action()
        seconds = time.monotonic() - started
        row = Row(step, records(run), unit, seconds, run.get("aws_requests", {}), run.get("peak_mb"), run["status"],
                  self._shards(run))
        self.rows.append(row)
        peak = f"peak RSS {row.peak_mb:.0f} MB" if row.peak_mb is not None else "in the bench process"
        peak += "".join(f"; {verdict}" for verdict in floor_verdicts([row]))
        print(f"  {step}: {row.status}, {row.records} {unit} in {seconds:.1f}s, "
              f"{sum(row.requests.values())} requests ({row.per_record:.3f}/record), {peak}"
              f"{shard_note(row)}", flush=True)
        return run

    def _shards(self, run: dict) -> list[dict]:
        """The figures the workers recorded for the run's shards (none when shards run inline)."""
        if self.stack.workers is None or "run_id" not in run:
            return []
        from chalicelib.jobs.runtime import get_run
        from chalicelib.storage.runs import children

        return self.stack.workers.shard_stats({c.run_id for c in children(get_run(run["run_id"]))})

    def run_job(self, job: str, params: dict | None = None) -> dict:
        """One manual run of ``job`` to its end in a process of its own (a fan-out's shards in
        the worker processes); the run as the API shows it, with ``peak_mb``: the process's peak RSS."""
        from devstack import localenv

        child = subprocess.run([sys.executable, "-m", "devstack.bench_job", job, json.dumps(params or {})],
                               cwd=localenv.PROJECT_DIR, env=os.environ.copy(), capture_output=True, text=True)
        if child.returncode != 0:
            raise SystemExit(f"{job} failed in its process:\n{child.stderr[-3000:]}")
        return json.loads(child.stdout.strip().splitlines()[-1])


def shard_note(row: Row) -> str:
    if not row.shards:
        return ""
    seconds = [s["seconds"] for s in row.shards]
    return (f"; {len(seconds)} shard(s): {sum(seconds) / len(seconds):.1f}s mean, {max(seconds):.1f}s slowest, "
            f"worker peak RSS {max(s['maxrss_mb'] for s in row.shards):.0f} MB")


def load_master_data(bench: Bench) -> None:
    from chalicelib.storage import records

    def load() -> dict:
        from collections import Counter

        from chalicelib.storage.metering import metered

        total = 0
        with metered(Counter()) as requests:
            for entity, items in bench.retailer.master_data().items():
                for start in range(0, len(items), 1000):
                    records.upsert(entity, items[start:start + 1000])
                total += len(items)
        return {"status": "Ended", "aws_requests": dict(requests), "records": total}

    bench.measure("load master data (PUT /data path)", "records", load, lambda run: run["records"])


def purge_history(bench: Bench) -> None:
    bench.measure("purge-run-history", "runs", lambda: bench.run_job("purge-run-history"),
                  lambda run: run["counters"]["read"])


SCENARIOS: list[tuple[str, Callable[[Bench], None]]] = [
    ("master data", load_master_data),
    *bench_distribution.SCENARIOS,
    ("store operations", bench_store.store_operations),
    *bench_finance.SCENARIOS,
    ("run history", purge_history),
    *bench_migration.SCENARIOS,
]


INTRO = [
    "# Benchmarks",
    "",
    "`make bench SCALE=<S|M|L> WORKERS=<n>` on the local stack (moto server in a process of its own, loopback HTTP,",
    "2 cores); each run rewrites its scale's section. Requests are counted per run by the runtime's metering (every",
    "boto3 and PynamoDB call). Each job ran in a process of its own; peak MB is that process's peak RSS (`VmHWM`),",
    "blank for steps made of HTTP requests in the bench process. A fan-out's shards ran in the worker processes from",
    "the shard queue: shards, the mean and slowest shard's seconds, and the largest peak RSS of a worker that ran one.",
    "moto is slower than DynamoDB; compare requests, not seconds.",
]
HEADER = ["| step | status | records | seconds | AWS requests | requests/record | peak MB | shards | "
          "shard s mean / max | shard peak RSS MB | requests by operation |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]


# Requests per record each of these steps may make at most (issue 16: a ratio to the physical floor).
FLOORS = {"send-email-receipts": 2.05, "approve time registrations (operator route)": 0.05,
          "post-statements": 0.035, "post-inventory": 0.035}


def floor_verdicts(rows: list[Row]) -> list[str]:
    return [f"{row.step} {row.per_record:.4f} requests/record (floor {FLOORS[row.step]}): "
            + ("met" if row.per_record <= FLOORS[row.step] else "NOT MET") for row in rows if row.step in FLOORS]


def write_report(bench: Bench, started: float, out: Path = RESULTS) -> None:
    """Replace this scale's section of ``out`` (``## Scale M``), keeping the other scales'."""
    lines = [f"## Scale {bench.scale}", "",
             f"`make bench SCALE={bench.scale} WORKERS={bench.workers}`, {datetime.now(UTC):%Y-%m-%d}: "
             f"total {time.monotonic() - started:.0f} s.", "", *HEADER]
    for row in bench.rows:
        ops = ", ".join(f"{k} {v}" for k, v in sorted(row.requests.items()))
        seconds = [s["seconds"] for s in row.shards]
        shards = (f"{len(seconds)} | {sum(seconds) / len(seconds):.1f} / {max(seconds):.1f} | "
                  f"{max(s['maxrss_mb'] for s in row.shards):.0f}") if seconds else " |  | "
        lines.append(f"| {row.step} | {row.status} | {row.records} {row.unit} | {row.seconds:.1f} | "
                     f"{sum(row.requests.values())} | {row.per_record:.3f} | "
                     f"{'' if row.peak_mb is None else f'{row.peak_mb:.0f}'} | {shards} | {ops} |")
    verdicts = floor_verdicts(bench.rows)
    lines += ["", "Request floors: " + "; ".join(verdicts) + "."] if verdicts else []
    sections = report_sections(out.read_text() if out.exists() else "")
    sections[bench.scale] = "\n".join(lines)
    out.write_text("\n".join(INTRO) + "\n\n" + "\n\n".join(sections[s] for s in sorted(sections, key="SML".index))
                   + "\n")
    print(f"\nwrote the scale {bench.scale} section of {out}")


def report_sections(text: str) -> dict[str, str]:
    """The ``## Scale X`` sections of a report, by scale."""
    found = re.split(r"^(?=## Scale [SML]$)", text, flags=re.M)
    return {part[len("## Scale "):][0]: part.rstrip() for part in found if part.startswith("## Scale ")}


def main(scale: str = "M", workers: int = 1, only: list[str] | None = None, out: Path = RESULTS) -> int:
    from chalicelib.auth import issue_token
    from devstack.datagen import generate

    started = time.monotonic()
    print(f"retail-sync bench, scale {scale}, {workers} worker process(es)", flush=True)
    scenarios = [(t, s) for t, s in SCENARIOS if not only or t == "master data" or t in only]
    # moto in a process of its own: peak memory and time are the application's, not moto's storage.
    # Each bench its own shard figures: two benches (M and L, say) may run at once.
    stats = Path("bench-output", f"shards-{out.stem}-{os.getpid()}.jsonl")
    with local_stack(moto_process=True, workers=workers, stats=stats) as stack:
        bench = Bench(stack, generate(scale, end_date=datetime.now(UTC).date()), scale,
                      issue_token("operator", label="bench"), workers)
        for title, scenario in scenarios:
            print(f"[{title}]", flush=True)
            scenario(bench)
    write_report(bench, started, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
