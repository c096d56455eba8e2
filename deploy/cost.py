"""``make cost``: what a stage costs per month at the benchmarked scale, with the arithmetic shown.

Inputs, all derived: every job row of ``BENCHMARKS.md`` (requests by operation and seconds per
run, ``make bench``), how often the job's schedule fires in 30 days, the memory of the function
that runs it (``.chalice/config.json``), the API's requests per HTTP call measured by replaying the
demo as deployed (``deploy/audit.py``), and the public on-demand prices below. Assumptions that
are not measured are named in ``ASSUMPTIONS`` and printed with the result.
"""
from __future__ import annotations

import json
import math
import re
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from chalicelib import prices
from chalicelib.prices import FULL_TRANSACTION, PRICES_AS_OF, UNITS
from chalicelib.prices import usage as monthly  # monthly usage by billing dimension from monthly requests
from devstack.datagen import SCALES
from devstack.localenv import PROJECT_DIR

PRICES = {kind: float(price) for kind, price in prices.PRICES.items()}  # a month's estimate, to the cent
ASSUMPTIONS = {
    "api_calls_per_store_per_day": 64,  # transactions every 15 min for 12 h, status messages, downloads
    "api_handler_seconds": 0.2, "authorizer_seconds": 0.05,
    "non_job_steps_per_month": 30,  # bench steps that are not job runs (the master-data push), DAILY_STEPS: daily
    "sqs_idle_polls_per_month": 5 * 3 * 60 * 24 * 30,  # event source mapping: 5 long-pollers, 20 s waits
    "alarms": 2,
}
# Bench steps that process every generated business day at once (the scale's ``days``): a month
# holds 30/days of that work, however many scheduled runs share it.
BUSINESS_DAYS_STEPS = ("upload transactions (POST /stores/{id}/transactions)", "post-statements", "post-inventory",
                       "send-email-receipts")
# Bench steps whose work stands for one day of a month (the rest of the scheduled runs are idle).
DAILY_STEPS = ("process-status-messages",)
# Data migration: a go-live activity, counted as if a file of the benchmarked size arrived monthly.
MONTHLY_STEPS = ("stage-migration-file", "clean-up-staging")
# A run that finds nothing (new) to do: what every other scheduled run of the month costs.
IDLE_SUFFIX = ", rerun with no change"


@dataclass
class Row:
    step: str
    seconds: float
    requests: dict[str, int]


def read_benchmarks(path: Path, scale: str = "M") -> tuple[str, list[Row]]:
    """The rows of the scale's section of ``BENCHMARKS.md`` (``devstack/bench.py`` writes it). A
    fan-out's Lambda seconds are its shards' (their number times their mean) plus the parent's
    wall time (an upper bound: the parent's invocation ends once its shards are queued)."""
    from devstack.bench import report_sections

    section = report_sections(path.read_text()).get(scale)
    if section is None:
        raise SystemExit(f"{path} has no scale {scale} section: run make bench SCALE={scale}")
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 11 or not re.fullmatch(r"[\d.]+", cells[3]):
            continue
        requests = {op: int(n) for op, n in (part.rsplit(" ", 1) for part in cells[10].split(", ") if part)}
        seconds = float(cells[3])
        if cells[7]:
            seconds += int(cells[7]) * float(cells[8].split(" / ")[0])
        rows.append(Row(cells[0], seconds, requests))
    return scale, rows


def runs_per_month(schedule: str) -> int:
    from chalicelib.schedules import is_due

    start = datetime(2026, 1, 1)
    return sum(is_due(schedule, start + timedelta(minutes=m)) for m in range(30 * 24 * 60))


def _function_memory(function: str) -> int:
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    settings = config.get("lambda_functions", {}).get(function) or config["lambda_functions"]["run_job"]
    return settings.get("lambda_memory_size", 128)


def api_requests_per_call() -> Counter:
    """AWS requests of one authorised HTTP call (handler and authorizer), every route replayed by
    the demo weighted alike (bulk loads have their own bench rows)."""
    from deploy.audit import replay_demo, request_counts

    with tempfile.TemporaryDirectory() as out:
        audit, _ = replay_demo(Path(out))
    routes = {r: d for r, d in request_counts(audit)["routes"].items() if d["calls"]}
    per_call = Counter()
    for data in routes.values():
        for label, count in data["calls"].items():
            per_call[label.split(": ")[1]] += count / data["requests"] / len(routes)
    # The routes' transactions are small (a run and its idempotency key, a batch of uploads): the
    # replay knows their items, so they are priced as that share of a full transaction.
    transactions = [len(c.params.get("TransactItems", ())) for c in audit.calls
                    if c.route and c.name == "dynamodb.TransactWriteItems"]
    if transactions:
        per_call["dynamodb.TransactWriteItems"] *= sum(transactions) / len(transactions) / FULL_TRANSACTION
    return per_call


def frequency(step: str, scale: str) -> tuple[str, float, float, str]:
    """How often a month holds a bench step's work: (label, times, Lambda invocations, function)."""
    from chalicelib.jobs.registry import get_job

    job = get_job(step.removesuffix(IDLE_SUFFIX))
    function = job.name.replace("-", "_") if job else "api_handler"
    runs = runs_per_month(job.schedule) if job else ASSUMPTIONS["non_job_steps_per_month"]
    if step in BUSINESS_DAYS_STEPS:
        days = SCALES[scale].days
        return f"{step} ({days} business days of data)", 30 / days, runs if job else 30 / days, function
    if step.startswith(MONTHLY_STEPS):
        return f"{step} (assumed monthly)", 1, 1, function
    if step in DAILY_STEPS or not job:
        return f"{step} (assumed daily)", ASSUMPTIONS["non_job_steps_per_month"], runs, function
    return step, runs, runs, function


def estimate(benchmarks: Path, scale: str = "M") -> str:
    scale, rows = read_benchmarks(benchmarks, scale)
    lines = [f"Scale {scale} ({SCALES[scale].stores} stores), prices: {PRICES_AS_OF}.", "",
             "| source | runs or calls / month | arithmetic | USD / month |", "|---|---:|---|---:|"]
    total = 0.0
    usage_total: Counter = Counter()

    def add(source: str, times: float, requests: dict, gb_seconds: float, invocations: float) -> None:
        nonlocal total
        usage = monthly(Counter({op: n * times for op, n in requests.items()}))
        usage["lambda_gb_second"] += gb_seconds
        usage["lambda_request"] += invocations
        usage_total.update(usage)
        cost = sum(PRICES[k] * v for k, v in usage.items())
        total += cost
        parts = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(usage.items()) if v)
        lines.append(f"| {source} | {times:,.0f} | {parts} | {cost:.2f} |")

    for row in rows:
        source, times, invocations, function = frequency(row.step, scale)
        add(source, times, row.requests, row.seconds * _function_memory(function) / 1024 * times, invocations)
    api_calls = SCALES[scale].stores * ASSUMPTIONS["api_calls_per_store_per_day"] * 30
    per_call = api_requests_per_call()
    gb_seconds = api_calls * (ASSUMPTIONS["api_handler_seconds"] * _function_memory("api_handler")
                              + ASSUMPTIONS["authorizer_seconds"] * _function_memory("token_authorizer")) / 1024
    add("HTTP API (API Gateway + authorizer + handler)", api_calls, per_call, gb_seconds, 2 * api_calls)
    gateway = api_calls * PRICES["apigateway_request"]
    lines.append(f"| API Gateway REST requests | {api_calls:,.0f} | {api_calls:,.0f} x $3.50/M | {gateway:.2f} |")
    idle = ASSUMPTIONS["sqs_idle_polls_per_month"]
    lines.append(f"| SQS shard queue idle polling | {idle:,.0f} | {idle:,.0f} x $0.40/M | "
                 f"{idle * PRICES['sqs_request']:.2f} |")
    alarms = ASSUMPTIONS["alarms"] * PRICES["cloudwatch_alarm"]
    lines.append(f"| CloudWatch alarms (failure queues) | {ASSUMPTIONS['alarms']} | 2 x $0.10 | {alarms:.2f} |")
    total += gateway + idle * PRICES["sqs_request"] + alarms
    lines += ["", f"**Total ≈ ${total:,.2f} per month** (request and compute charges; storage and data transfer "
                  f"excluded, free tiers ignored).", "",
              "Monthly usage: " + ", ".join(f"{k} {math.ceil(v):,}" for k, v in sorted(usage_total.items())),
              "", "Assumptions: " + ", ".join(f"{k} = {v}" for k, v in ASSUMPTIONS.items())
              + "; capacity units per request: " + ", ".join(f"{op.split('.')[1]} {u} {k.upper()}"
                                                              for op, (k, u) in UNITS.items())]
    return "\n".join(lines)


def main(benchmarks: str = "BENCHMARKS.md", scale: str = "M") -> int:
    print(estimate(PROJECT_DIR / benchmarks, scale))
    return 0
