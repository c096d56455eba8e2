"""Bench scenarios for the finance exports at a realistic scale.

Account activity reads the ledger lines statement posting wrote; when there are none (statement
posting not benchmarked before), synthetic ones are written first: one balanced statement per
store and day over the scale's days. Transfer to pay uses the generated retailer's time
registrations, uploaded and approved over the HTTP routes.

Budgets (issue 5): generate-account-activity ≤ 0.05 AWS requests per ledger line read,
transfer-to-pay ≤ 0.1 per registration read, exports streamed with peak memory ≤ 512 MB; approvals
(issue 16) ≤ 0.05 per registration approved, 50 stores at a time.
"""
from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devstack.bench import Bench

BUDGETS = {"generate-account-activity": 0.05, "transfer-to-pay": 0.1}
PEAK_MB = 512
# Revenue accounts of the generated categories (mapped by the RE-DEFAULT profile).
REVENUE = ("401000", "401100", "401150", "401200", "401350", "401400")


def account_activity(bench: Bench) -> None:
    from devstack.datagen import SCALES

    days = SCALES[bench.scale].days
    end = bench.retailer.end_date
    window = [end - timedelta(days=days - i) for i in range(days)]
    if not _has_ledger(window):
        lines = _write_synthetic_ledger(bench, window)
        print(f"  (no ledger lines: wrote {lines} synthetic ones, {len(window)} days x "
              f"{len(bench.retailer.stores)} stores)", flush=True)
    run = bench.measure("generate-account-activity", "ledger lines",
                        lambda: bench.run_job("generate-account-activity"), lambda run: run["counters"]["read"])
    _check(bench, run)
    run = bench.measure("export-account-activity", "results",
                        lambda: bench.run_job("export-account-activity"), lambda run: run["counters"]["written"])
    _check(bench, run)


def transfer_to_pay(bench: Bench) -> None:
    from devstack.datagen import time_registrations

    registrations = list(time_registrations(bench.retailer))
    bench.measure("upload time registrations (store route)", "registrations",
                  lambda: _upload(bench, registrations), lambda run: run["records"])
    bench.measure("approve time registrations (operator route)", "registrations",
                  lambda: _approve(bench), lambda run: run["records"])
    run = bench.measure("transfer-to-pay", "registrations",
                        lambda: bench.run_job("transfer-to-pay"), lambda run: run["counters"]["read"])
    _check(bench, run)
    # The backlog entries are younger than the index lag they wait for: read again, nothing sent.
    run = bench.measure("transfer-to-pay, rerun with nothing new", "registrations",
                        lambda: bench.run_job("transfer-to-pay"), lambda run: run["counters"]["read"])
    _check(bench, run)


def _has_ledger(window) -> bool:
    from chalicelib.storage.ledger import LedgerLine

    return any(next(iter(LedgerLine.by_date.query(day.isoformat(), limit=1)), None) for day in window)


def _write_synthetic_ledger(bench: Bench, window) -> int:
    """One statement per store and day: revenue per category and tax credited, tenders debited.

    Numbered as statement posting numbers them (one block per statement, per legal entity), but
    written in batches with the counters set once at the end: there is no concurrent posting here.
    """
    from chalicelib.storage.base import write_all
    from chalicelib.storage.ledger import LedgerLine, LedgerSequence, make_line

    rng = random.Random(f"{bench.retailer.seed}-ledger")
    last: dict[str, int] = defaultdict(int)
    written = 0
    for day in window:
        lines = []
        for store in bench.retailer.stores:
            statement = f"SYN-{store['id']}-{day:%Y%m%d}"
            amounts = [(account, Decimal(0), Decimal(rng.randint(10_000, 900_000)) / 100) for account in REVENUE]
            net = sum(credit for _, _, credit in amounts)
            tax = (net * Decimal("0.08")).quantize(Decimal("0.01"))
            cash = (net * Decimal(rng.randint(10, 40)) / 100).quantize(Decimal("0.01"))
            gift = (net * Decimal(rng.randint(0, 5)) / 100).quantize(Decimal("0.01"))
            amounts += [("222000", Decimal(0), tax), ("110100", cash, Decimal(0)),
                        ("220500", gift, Decimal(0)), ("110200", net + tax - cash - gift, Decimal(0))]
            entity, first = store["legal_entity"], last[store["legal_entity"]] + 1
            last[entity] += len(amounts)
            lines += [make_line(statement, n, posting_date=day.isoformat(), main_account=account, debit=debit,
                                credit=credit, store_id=store["id"], legal_entity=entity,
                                currency=store.get("currency") or "USD", seq=first + n - 1, block_end=last[entity])
                      for n, (account, debit, credit) in enumerate(amounts, start=1)]
        written += write_all(LedgerLine, puts=lines)
    write_all(LedgerSequence, puts=[LedgerSequence(entity, last_seq=seq) for entity, seq in last.items()])
    return written


def _upload(bench: Bench, registrations: list[dict]) -> dict:
    from chalicelib.auth import issue_token
    from chalicelib.storage.metering import metered

    store_of = {w["id"]: w["store_id"] for w in bench.retailer.workers}
    by_store: dict[str, list[dict]] = defaultdict(list)
    for registration in registrations:
        by_store[store_of[registration["worker_id"]]].append(registration)
    tokens = {store_id: issue_token("store", store_id=store_id, label="bench") for store_id in by_store}
    with metered(Counter()) as requests:
        for store_id, mine in by_store.items():
            for start in range(0, len(mine), 1000):
                response = bench.stack.http("POST", f"/stores/{store_id}/time-registrations", tokens[store_id],
                                            {"registrations": mine[start:start + 1000]})
                if response.status_code != 200:
                    raise SystemExit(f"upload {store_id}: {response.status_code} {response.body!r}")
    return {"status": "Ended", "aws_requests": dict(requests), "records": len(registrations)}


def _approve(bench: Bench) -> dict:
    """The operator approves 50 stores at a time (``store_ids``, a district or region), over the
    scale's days in windows of at most 14 (the form's limit); the local days reach a day either
    side of the UTC ones."""
    from chalicelib.models.api import MAX_APPROVAL_STORES, MAX_STORES_DAYS
    from chalicelib.storage.metering import metered
    from devstack.datagen import SCALES

    end = bench.retailer.end_date
    first = end - timedelta(days=SCALES[bench.scale].days + 1)
    store_ids = [store["id"] for store in bench.retailer.stores]
    approved = 0
    with metered(Counter()) as requests:
        for group in range(0, len(store_ids), MAX_APPROVAL_STORES):
            stores = store_ids[group:group + MAX_APPROVAL_STORES]
            start = first
            while start <= end:
                last = min(end, start + timedelta(days=MAX_STORES_DAYS - 1))
                response = bench.stack.http("POST", "/time-registrations/approve", bench.operator,
                                            {"store_ids": stores, "from": start.isoformat(), "to": last.isoformat()})
                if response.status_code != 200 or response.json_body["not_approved"]:
                    raise SystemExit(f"approve {stores[0]}…: {response.status_code} {response.body!r}")
                approved += response.json_body["approved"]
                start = last + timedelta(days=1)
    return {"status": "Ended", "aws_requests": dict(requests), "records": approved}


def _check(bench: Bench, run: dict) -> None:
    row = bench.rows[-1]
    budget = BUDGETS.get(run["job"])
    verdicts = []
    if budget is not None:
        verdicts.append(f"{row.per_record:.3f} requests/record (budget {budget})"
                        + ("" if row.per_record <= budget else " OVER BUDGET"))
    if row.peak_mb is not None:
        over = "" if row.peak_mb <= PEAK_MB else " OVER"
        verdicts.append(f"peak RSS {row.peak_mb:.0f} MB (budget {PEAK_MB}){over}")
    print(f"    {run['job']}: {run['status']}; " + "; ".join(verdicts) + f" — {run['message']}"[:400], flush=True)


SCENARIOS = [
    ("account activity", account_activity),
    ("transfer to pay", transfer_to_pay),
]
