"""``make fuzz``: Schemathesis over every operation of the published contract, against the local
stack (its own moto, a small demo retailer, real tokens), with valid and invalid input.

Two passes: the operator token over every operation, then a store's token over the store routes
with that store's id. In the operator pass, path parameters that name a job or a store draw, half
the time, the ids the running stack knows, so generated requests get past "not found" into the
routes' logic.

The run fails on any finding: a 5xx, a status or content type the contract does not declare, a
response body its schema refuses, or an error body that is not the contract's error document
(``devstack.fuzz_checks``). Examples per operation and the seed are fixed, so a run is repeatable
and bounded in time. It prints, per operation, the requests sent and the statuses answered.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack.serve import start_api
from devstack.stack import local_stack

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "error_document")
PHASES = ("examples", "coverage", "fuzzing")
PROJECT_DIR = Path(__file__).resolve().parent.parent
"""Findings accepted for now, each naming the branch that fixes it and when it expires; absent: none."""
SEED_BATCH = 500  # records per PUT /data
KNOWN_ID_SHARE = 0.5  # how often a job or store path parameter is one the stack knows


@dataclass(frozen=True)
class Api:
    """The local stack's HTTP API on ``base``, with a demo retailer and two real tokens."""

    base: str
    operator: str
    store: str
    store_id: str


@contextmanager
def local_api(scale: str = "S") -> Iterator[Api]:
    """``make serve``'s stack and API on free ports, quiet, holding a demo retailer's master data
    (sent through ``PUT /data``), for as long as the block runs."""
    import app
    from chalicelib.auth import issue_token
    from devstack.datagen import generate

    with local_stack():
        operator = issue_token("operator", label="make fuzz")
        server = start_api(app.app, 0, log_requests=False)
        base = f"http://127.0.0.1:{server.server.server_address[1]}"
        try:
            retailer = generate(scale)
            for entity, items in retailer.master_data().items():
                for start in range(0, len(items), SEED_BATCH):
                    _send(base, "PUT", f"/data/{entity}", operator, {"items": items[start:start + SEED_BATCH]})
            store_id = retailer.stores[0]["id"]
            yield Api(base, operator, issue_token("store", store_id=store_id, label="make fuzz"), store_id)
        finally:
            server.shutdown()


@dataclass(frozen=True)
class Pass:
    name: str
    token: str
    known: dict[str, list[str]]  # path parameter → ids the stack knows, drawn KNOWN_ID_SHARE of the time
    fixed: dict[str, str]  # path parameter → its value in every case
    only_paths: str | None = None  # a regular expression; None: every operation


def _send(base: str, method: str, path: str, token: str | None = None, body: dict | None = None) -> dict:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    data = json.dumps(body, default=str).encode() if body is not None else None
    request = urllib.request.Request(f"{base}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {path}: {exc.code} {exc.read().decode()[:500]}") from None


def _passes(api: Api) -> list[Pass]:
    jobs = [job["name"] for job in _send(api.base, "GET", "/jobs", api.operator)["jobs"]]
    stores = [store["id"] for store in _send(api.base, "GET", "/data/stores?limit=10", api.operator)["items"]]
    return [Pass("operator", api.operator, {"job": jobs, "store_id": stores}, {}),
            Pass(f"store {api.store_id}", api.store, {}, {"store_id": api.store_id}, r"^/stores/")]


def _config(fuzz: Pass) -> str:
    """schemathesis.toml: no crash cache (it would land in the project), a dictionary of known ids
    per path parameter, and the fixed ones (JSON strings are TOML strings)."""
    lines = ["[cache]", "enabled = false", ""]
    for name, values in fuzz.known.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = {KNOWN_ID_SHARE} }}' for name in fuzz.known]
    lines += [f'"path.{name}" = {json.dumps(value)}' for name, value in fuzz.fixed.items()]
    return "\n".join(lines) + "\n"


def schemathesis_command(config: Path, spec: Path, api: Api, fuzz: Pass, examples: int, seed: int) -> list[str]:
    return [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", str(spec),
        "--url", api.base, "--header", f"Authorization: Bearer {fuzz.token}",
        *(["--include-path-regex", fuzz.only_paths] if fuzz.only_paths else []),
        "--checks", ",".join(CHECKS), "--phases", ",".join(PHASES), "--mode", "all",
        "--max-examples", str(examples), "--seed", str(seed), "--generation-database", "none",
        "--workers", "1", "--request-timeout", "30", "--continue-on-failure",
        "--no-color", "--output-truncate", "true",
    ]


def _print_tally(tally: Path) -> int:
    """Per operation: requests sent (shrinking and replays included), the statuses answered and
    the slowest answer."""
    counts: dict[str, Counter] = {}
    slowest: Counter = Counter()
    for line in tally.read_text().splitlines():
        operation, status, seconds = line.rsplit(" ", 2)
        counts.setdefault(operation, Counter())[status] += 1
        slowest[operation] = max(slowest[operation], float(seconds))
    width = max(map(len, counts), default=0)
    for operation in sorted(counts, key=lambda label: label.split(" ", 1)[::-1]):
        statuses = "  ".join(f"{status}×{n}" for status, n in sorted(counts[operation].items()))
        print(f"  {operation:<{width}}  {counts[operation].total():>5}  max {slowest[operation]:5.2f} s  {statuses}")
    total = sum(c.total() for c in counts.values())
    print(f"  {len(counts)} operations, {total} requests", flush=True)
    return total


def main(examples: int = 20, seed: int = 14, scale: str = "S") -> int:
    started = time.monotonic()
    failed, requests = [], 0
    with local_api(scale) as api, tempfile.TemporaryDirectory() as work:
        contract = _send(api.base, "GET", "/openapi.json")  # the document the API publishes
        spec = Path(work, "openapi.json")
        spec.write_text(json.dumps(contract))
        for fuzz in _passes(api):
            config, tally = Path(work, "schemathesis.toml"), Path(work, "tally")
            config.write_text(_config(fuzz))
            tally.write_text("")
            print(f"\n=== {fuzz.name} pass: {api.base}, {examples} examples per operation and phase, "
                  f"seed {seed}", flush=True)
            env = {**os.environ, "SCHEMATHESIS_HOOKS": "devstack.fuzz_checks", "FUZZ_TALLY": str(tally),
                   "PYTHONPATH": str(PROJECT_DIR)}
            code = subprocess.run(schemathesis_command(config, spec, api, fuzz, examples, seed),
                                  cwd=PROJECT_DIR, env=env, check=False).returncode
            print(f"=== {fuzz.name} pass: requests per operation and status", flush=True)
            requests += _print_tally(tally)
            if code:
                failed.append(f"{fuzz.name} (schemathesis exit code {code})")
    operations = sum(len(methods) for methods in contract["paths"].values())
    print(f"\nfuzz run: {operations} operations, {requests} requests, {time.monotonic() - started:.0f} s; "
          f"{'findings in: ' + ', '.join(failed) if failed else 'no findings'}", flush=True)
    return 1 if failed else 0
