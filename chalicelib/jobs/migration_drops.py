"""What a file dropped under ``migration/`` in the migration bucket starts (``on_migration_drop``).

- ``migration/mappings/<entity>.json``: the mapping is validated and stored as the entity's next
  version; a good one becomes current and starts Clean up staging for the entity (its staged
  rows have the old shape), a bad one is kept as ``Rejected`` and shows as a ``Failed`` staging
  job with the reason, and changes nothing.
- ``migration/data/<entity>/<name>.csv`` — and any other key, which becomes a ``Failed`` staging
  job saying why — starts a ``stage-migration-file`` run.

S3 delivers notifications at least once: a drop is identified by its key and the object's ETag
(plus, for data, the entity's mapping version, so the same file dropped again after a mapping
change is staged again), and a second delivery finds the run or mapping version of the first.
Keys arrive URL-encoded; S3's ``s3:TestEvent`` and events other than object creation are ignored.
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib.domain.migration import FAILED, DropKey, parse_drop_key, validate_mapping
from chalicelib.jobs import clean_up_staging, runtime, stage_migration_file
from chalicelib.observability import logger
from chalicelib.storage import aws, faults
from chalicelib.storage import migration as staging
from chalicelib.storage.base import iso, save_if

MAX_MAPPING_BYTES = 64 * 1024
TEST_EVENT = "s3:TestEvent"


def handle_drop_event(event: dict, lambda_context: Any = None) -> dict:
    """Handle every record of an S3 notification (Chalice's ``S3Event`` shows only the first).

    A record that fails for a transient reason (AWS unavailable) is raised after the others are
    handled, so Lambda retries the event; handling a record twice is harmless.
    """
    if event.get("Event") == TEST_EVENT:
        return {"handled": [], "ignored": TEST_EVENT}
    handled, problems = [], []
    for record in event.get("Records") or []:
        try:
            handled.append(_handle_record(record, lambda_context))
        except Exception as exc:  # noqa: BLE001 - the rest of the event still gets handled
            logger().exception("migration drop not handled", extra={"event_name": record.get("eventName")})
            problems.append(exc)
    if problems:
        raise problems[0]
    return {"handled": handled}


def _handle_record(record: dict, lambda_context: Any) -> dict:
    s3 = record.get("s3") or {}
    bucket, key = (s3.get("bucket") or {}).get("name"), (s3.get("object") or {}).get("key")
    if not str(record.get("eventName", "")).startswith("ObjectCreated") or not bucket or not key:
        return {"ignored": record.get("eventName"), "key": key}
    drop = parse_drop_key(key)
    if drop.kind == "mapping":
        return _apply_mapping(bucket, drop, (s3.get("object") or {}).get("eTag", ""), lambda_context)
    return _stage(bucket, drop, _object_etag(bucket, drop.key, (s3.get("object") or {}).get("eTag", "")),
                  lambda_context)


def _object_etag(bucket: str, key: str, notified: str) -> str:
    """The object's ETag (the notification's when the object is gone, which the run then reports)."""
    s3 = aws.client("s3")
    try:
        with faults.translated():
            return s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    except faults.NotFound:
        return notified


def _stage(bucket: str, drop: DropKey, etag: str, lambda_context: Any) -> dict:
    version = staging.current_mapping(drop.entity)[0] if drop.kind == "data" else 0
    run = runtime.run_on_event(
        stage_migration_file.NAME, {"key": drop.key, "bucket": bucket, "etag": etag or None},
        idempotency_key=f"s3#{bucket}/{drop.key}#{etag}#mapping-{version}", lambda_context=lambda_context,
        requested_by="s3",
    )
    return {"key": drop.key, "staging_job_id": run.run_id, "run_status": run.status, "message": run.message}


def _apply_mapping(bucket: str, drop: DropKey, notified_etag: str, lambda_context: Any) -> dict:
    mapping, etag, reason = _read_mapping(bucket, drop.key, notified_etag)
    if reason is None:
        problems = validate_mapping(drop.entity, mapping)
        if problems:
            reason = "; ".join(f"{p.path or '(mapping)'}: {p.message}" for p in problems)
    version, _ = staging.record_mapping(drop.entity, mapping if isinstance(mapping, dict) else None,
                                        staging.REJECTED if reason else staging.APPLIED, reason, drop.key, etag)
    if reason:
        job = _record_rejected_mapping(bucket, drop, etag, version, reason)
        return {"key": drop.key, "mapping_version": version, "status": staging.REJECTED,
                "staging_job_id": job.job_id, "message": job.message}

    run = runtime.run_on_event(clean_up_staging.NAME, {"entity": drop.entity, "scope": "all"},
                               idempotency_key=f"s3#{bucket}/{drop.key}#{etag}", lambda_context=lambda_context,
                               requested_by="s3")
    return {"key": drop.key, "mapping_version": version, "status": staging.APPLIED,
            "clean_up_run_id": run.run_id, "run_status": run.status, "message": run.message}


def _read_mapping(bucket: str, key: str, notified_etag: str) -> tuple[Any, str, str | None]:
    """``(mapping, etag, reason it cannot be used)`` of the mapping object."""
    s3 = aws.client("s3")
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        return None, notified_etag, f"object {key} is not in bucket {bucket}"
    etag = response["ETag"].strip('"')
    body = response["Body"]
    try:
        if response["ContentLength"] > MAX_MAPPING_BYTES:
            return None, etag, f"mapping file is larger than {MAX_MAPPING_BYTES} bytes"
        data = body.read()
    finally:
        body.close()
    try:
        return json.loads(data.decode("utf-8-sig")), etag, None
    except UnicodeDecodeError:
        return None, etag, "mapping file is not UTF-8 text"
    except ValueError as exc:
        return None, etag, f"mapping file is not valid JSON: {exc}"


def _record_rejected_mapping(bucket: str, drop: DropKey, etag: str, version: int, reason: str) -> staging.StagingJob:
    """A bad mapping shows in the entity's staging jobs as ``Failed`` with why (once per version)."""
    now = iso()
    job = staging.StagingJob(f"mapping-{drop.entity}-v{version}", entity=drop.entity, kind="mapping",
                             source_key=drop.key, bucket=bucket, status=FAILED, etag=etag, mapping_version=version,
                             message=f"{drop.key}: mapping rejected, not applied: {reason}",
                             created_at=now, updated_at=now)
    save_if(job, staging.StagingJob.job_id.does_not_exist())  # recorded once per version
    return job
