"""Demo steps for the migration from RMS: an RMS products export dropped in the migration bucket,
its staging job, copy to target, then a changed mapping dropped and the clean-up it starts."""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devstack.demo import Demo

DATA_KEY = "migration/data/products/rms-items.csv"
MAPPING_KEY = "migration/mappings/products.json"
RMS_HEADER = "ItemLookupCode,Description,ExtendedDescription,CategoryID,Price,Inactive"


def rms_products_export(retailer) -> bytes:
    """An RMS Item export as RMS writes it on Windows: Windows-1252, CRLF, accented names, and
    four bad rows (a price with a comma, no description, an unknown category, a bad flag)."""
    categories = [c["id"] for c in retailer.categories if c.get("parent_id") not in (None, "ALL")]
    names = ["Crème fraîche jar", "Café crème mug", "Piñata kit", "Jalapeño sauce", "Smörgåsbord tray",
             "Naïve art print", "Façade poster", "Über-soft towel", "Crêpe pan", "Brûlée torch"]
    lines = [RMS_HEADER]
    for i, name in enumerate(names * 3):
        lines.append(f"RMS-{i + 1:04d},{name},{name} (RMS item {i + 1}),{categories[i % len(categories)]},"
                     f"{9 + i}.99,{1 if i % 9 == 8 else 0}")
    lines += [
        'RMS-0901,Espresso cups,Espresso cups set,' + categories[0] + ',"12,50",0',
        "RMS-0902,,Nameless item," + categories[0] + ",5.00,0",
        "RMS-0903,Mystery box,Mystery box,NO-SUCH-CATEGORY,7.00,0",
        "RMS-0904,Gift card,Gift card," + categories[0] + ",25.00,maybe",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def drop_rms_export(demo: Demo) -> None:
    """Drop the export into the migration bucket; the S3 notification starts its staging import."""
    from chalicelib import settings
    from chalicelib.storage import aws

    data = rms_products_export(demo.retailer)
    (demo.out / "migration").mkdir(exist_ok=True)
    (demo.out / "migration" / "rms-items.csv").write_bytes(data)
    aws.client("s3").put_object(Bucket=settings.migration_bucket(), Key=DATA_KEY, Body=data)
    started = time.monotonic()
    handled = _deliver(demo)
    run = _run(demo, handled["staging_job_id"])
    demo.record(run["job"], run, time.monotonic() - started)
    job = _staging_job(demo, handled["staging_job_id"])
    demo.say(f"staging job {job['job_id']}: {job['status']}, {job['rows']} rows ({job['encoding']}), "
             f"{job['valid_rows']} valid, {job['errors']} with errors")
    for sample in job["sample_errors"]:
        demo.say("  row {row}: {errors}".format(
            row=sample["row"], errors="; ".join(f"{e['column']}: {e['message']}" for e in sample["errors"])))
    (demo.out / "migration" / "staging-job.json").write_text(json.dumps(job, indent=2, ensure_ascii=False))


def copy_to_target(demo: Demo) -> None:
    started = time.monotonic()
    response = demo.stack.http("POST", f"/migration/jobs/{_export_job(demo)['job_id']}/copy-to-target",
                               demo.operator, {"rows": "all"})
    if response.status_code not in (200, 202):
        raise SystemExit(f"copy to target: HTTP {response.status_code} {response.body!r}")
    demo.record(response.json_body["run"]["job"], response.json_body["run"], time.monotonic() - started)
    job = response.json_body["job"]
    product = demo.stack.http("GET", "/data/products/RMS-0001", demo.operator).json_body
    demo.say(f"staging job {job['job_id']}: {job['status']}, {job['copied']} copied, {job['copy_failed']} failed; "
             f"RMS-0001 is now live: {product['name']} at {product['price']}")


def drop_changed_mapping(demo: Demo) -> None:
    """A changed mapping (the long description becomes the name) cleans the products' staging."""
    from chalicelib import settings
    from chalicelib.domain.migration import DEFAULT_MAPPINGS
    from chalicelib.storage import aws

    mapping = {**DEFAULT_MAPPINGS["products"], "name": "ExtendedDescription"}
    body = json.dumps(mapping, indent=2)
    (demo.out / "migration" / "products-mapping.json").write_text(body)
    aws.client("s3").put_object(Bucket=settings.migration_bucket(), Key=MAPPING_KEY, Body=body.encode())
    started = time.monotonic()
    handled = _deliver(demo)
    run = _run(demo, handled["clean_up_run_id"])
    demo.record(run["job"], run, time.monotonic() - started)
    if run["status"] != "Ended":
        raise SystemExit(f"clean-up-staging ended {run['status']}: {run['message']}")
    job = _export_job(demo)
    live = demo.stack.http("GET", "/data/products/RMS-0001", demo.operator)
    if live.status_code != 200:
        raise SystemExit(f"clean up staging touched live data: GET /data/products/RMS-0001 {live.status_code}")
    demo.say(f"mapping v{handled['mapping_version']} applied; staging job {job['job_id']} is {job['status']} "
             f"({job['cleaned_rows']} staging rows deleted); live product RMS-0001 untouched")


def _deliver(demo: Demo) -> dict:
    """The S3 notification the drop produced, handled by ``on_migration_drop``."""
    results = demo.stack.deliver_drops()
    if len(results) != 1:
        raise SystemExit(f"expected one migration drop notification, got {results!r}")
    return results[0]["handled"][0]


def _run(demo: Demo, run_id: str) -> dict:
    return demo.stack.http("GET", f"/runs/{run_id}", demo.operator).json_body


def _staging_job(demo: Demo, job_id: str) -> dict:
    return demo.stack.http("GET", f"/migration/jobs/{job_id}", demo.operator).json_body


def _export_job(demo: Demo) -> dict:
    """The newest staging job of the dropped export."""
    jobs = demo.stack.http("GET", "/migration/jobs?entity=products", demo.operator).json_body["jobs"]
    return next(job for job in jobs if job["source_key"] == DATA_KEY)


STEPS = [
    ("Migration: drop an RMS products export", drop_rms_export),
    ("Migration: copy to target", copy_to_target),
    ("Migration: drop a changed products mapping", drop_changed_mapping),
]
