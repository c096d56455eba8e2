"""Bench scenarios for the migration from RMS: a large products export staged from the migration
bucket (target: at most 0.05 AWS requests per row and 256 MB peak), and clean up staging.

Clean-up is measured on a smaller export, before the large one is staged: moto answers every
Query by walking the whole table (DynamoDB reads just the page), so with the large export's rows
in the table the clean-up's pages would measure moto, not the job.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devstack.bench import Bench

ROWS = {"S": 20_000, "M": 200_000, "L": 200_000}
CLEAN_UP_ROWS = 20_000


def _export(rows: int, categories: list[str]) -> bytes:
    return b"".join(_export_lines(rows, categories))


def _export_lines(rows: int, categories: list[str]) -> Iterator[bytes]:
    """An RMS Item export in Windows-1252, one bad row in a thousand."""
    yield b"ItemLookupCode,Description,CategoryID,Price,Inactive\r\n"
    for i in range(rows):
        price = "n/a" if i % 1000 == 999 else f"{i % 400 + 1}.99"
        line = f"BENCH-{i:07d},Crème brûlée n°{i},{categories[i % len(categories)]},{price},{i % 50 == 0:d}\r\n"
        yield line.encode("cp1252")


def _drop(bench: Bench, key: str, rows: int) -> None:
    """Upload an export into the migration bucket (not measured); its notification waits in the queue."""
    import io

    from chalicelib import settings
    from chalicelib.storage import aws

    categories = [c["id"] for c in bench.retailer.categories if c.get("parent_id") not in (None, "ALL")]
    aws.client("s3").upload_fileobj(io.BytesIO(_export(rows, categories)), settings.migration_bucket(), key)


def _stage_dropped(bench: Bench) -> dict:
    """Deliver the notification: ``on_migration_drop`` runs the staging; its run."""
    from chalicelib.jobs import runtime

    handled = bench.stack.deliver_drops()[0]["handled"][0]
    return runtime.get_run(handled["staging_job_id"]).to_api()


def clean_up_staging(bench: Bench) -> None:
    _drop(bench, "migration/data/products/bench-clean-up.csv", CLEAN_UP_ROWS)
    job_id = _stage_dropped(bench)["run_id"]
    bench.measure(f"clean-up-staging (one job, {CLEAN_UP_ROWS} rows)", "rows",
                  lambda: bench.run_job("clean-up-staging", {"staging_job_id": job_id}),
                  lambda run: run["counters"]["read"])


def stage_products_export(bench: Bench) -> None:
    rows = ROWS[bench.scale]
    _drop(bench, "migration/data/products/bench-items.csv", rows)
    bench.measure(f"stage-migration-file ({rows} products, Windows-1252)", "rows",
                  lambda: _stage_dropped(bench), lambda run: run["counters"]["read"])


SCENARIOS = [
    ("migration clean-up", clean_up_staging),
    ("migration staging", stage_products_export),
]
