"""Bounded memory (issue 16): a store-package job's peak memory grows with one store's data, not
with the number of stores.

Each measurement is a first full run in a fresh process (this file run as a script, moto in that
process) for a retailer of ``PRODUCTS`` products with ``VARIANTS`` variants each, all sold by every
store (one assortment on the head office): the packages dominate. The peak resident size
(``ru_maxrss``) for 100 stores must stay within 1.2 x the one for 10 stores plus 20 MB.

Measured: before the packages were streamed, 264 MB for 10 stores and 384 MB for 100 (a page of
25 stores' rows and gzip bodies in memory); after, 198 MB and 220 MB. process-delivery-modes
holds no per-store copies of its modes' data (rows refer to it), so it is not measured here.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PRODUCTS, VARIANTS = 5000, 3
ROOT = Path(__file__).resolve().parents[2]


def peak_rss_mb(job: str, stores: int) -> dict:
    """Run ``job`` once in a fresh process for ``stores`` stores; its outcome and peak RSS in MB."""
    done = subprocess.run([sys.executable, "-m", "tests.integration.test_memory_bound", job, str(stores)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_peak_memory_of_a_first_full_assortment_run_does_not_grow_with_the_number_of_stores():
    job = "process-assortments"
    small, large = peak_rss_mb(job, 10), peak_rss_mb(job, 100)
    for outcome, stores in ((small, 10), (large, 100)):
        assert outcome["status"] == "Ended", outcome
        assert outcome["sessions"] == stores, outcome
    print(f"{job}: peak RSS {small['rss_mb']:.0f} MB for 10 stores, {large['rss_mb']:.0f} MB for 100 stores")
    assert large["rss_mb"] <= 1.2 * small["rss_mb"] + 20, (small, large)


def _retailer(stores: int) -> dict[str, list[dict]]:
    products = [{"id": f"P{p:05d}", "name": f"Product {p}", "category_id": "ALL", "price": "9.99",
                 "released_to": ["USRT"], "variants": [{"id": f"V{v}", "size": f"S{v}"} for v in range(VARIANTS)]}
                for p in range(PRODUCTS)]
    return {
        "org-nodes": [{"id": "HQ", "name": "Head office", "parent_id": None}],
        "stores": [{"id": f"S{s:03d}", "name": f"Store {s}", "legal_entity": "USRT", "org_node_id": "HQ"}
                   for s in range(stores)],
        "categories": [{"id": "ALL", "name": "All", "parent_id": None}],
        "products": products,
    }


def _measure(job: str, stores: int) -> None:
    """The child process: provision moto, load the retailer, run the job once, print the outcome."""
    import resource

    from moto import mock_aws

    import tests.conftest  # noqa: F401  (the test environment: region, credentials, the local stage)
    from tests.conftest import run_directly

    with mock_aws():
        from chalicelib.models.parsing import parse_records
        from chalicelib.provision import provision
        from chalicelib.storage import records
        from chalicelib.storage.tables import reset_connections

        reset_connections()
        provision()
        for entity, items in _retailer(stores).items():
            records.upsert(entity, parse_records(entity, items))
        records.save("assortments", {"id": "ALL", "name": "Everything", "valid_from": "2020-01-01",
                                     "valid_to": None, "status": "Published",
                                     "channel_lines": [{"org_node_id": "HQ"}],
                                     "product_lines": [{"kind": "category", "ref": "ALL", "line_type": "Include"}]})
        run = run_directly(job)
        sessions = sum(1 for _ in records_of_sessions())
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"status": run["status"], "message": run.get("message"), "sessions": sessions,
                      "rss_mb": rss_mb}))


def records_of_sessions():
    from chalicelib.storage.download_sessions import DownloadSession

    return DownloadSession.scan()


if __name__ == "__main__":
    _measure(sys.argv[1], int(sys.argv[2]))
