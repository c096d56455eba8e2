"""What a distribution run's parent hands its store shards: computed once by the parent, read by
each shard, so that no shard scans the catalogue or explodes an assortment again
(``jobs/process_assortments.py``, ``jobs/process_delivery_modes.py``).

A plan is a gzip text object in the data bucket, ``fanout-plans/<parent run id>/<name>.gz``. The
parent writes its plans whole before its shards exist (a resumed parent writes them again, with
what it computes then); the parent's close deletes them (``delete_plans``), and the bucket's
lifecycle rule removes what a lost close leaves (``deploy/stack.py``). A shard that finds no
plan computes its store's data itself.
"""
from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from chalicelib import settings
from chalicelib.storage import aws, exports, faults
from chalicelib.storage.base import dumps

PREFIX = "fanout-plans/"


def plan_key(run_id: str, name: str) -> str:
    return f"{PREFIX}{run_id}/{name}.gz"


def put_lines(run_id: str, name: str, lines: Iterable[str]) -> None:
    """Write a plan of text lines (no line may hold a newline), gzip-streamed through the spooled
    upload: memory holds zlib's window, not the plan."""

    def write(out: BinaryIO) -> None:
        with gzip.GzipFile(fileobj=out, mode="wb", filename="", mtime=0, compresslevel=6) as packed:
            for line in lines:
                packed.write(line.encode() + b"\n")

    exports.upload(plan_key(run_id, name), write, "application/gzip")


def read_lines(run_id: str, name: str) -> Iterator[str] | None:
    """A plan's lines as they are read, or ``None`` when the plan does not exist."""
    s3 = aws.client("s3")
    try:
        with faults.translated():
            body = s3.get_object(Bucket=settings.data_bucket(), Key=plan_key(run_id, name))["Body"]
    except faults.NotFound:
        return None

    def lines() -> Iterator[str]:
        try:
            with gzip.GzipFile(fileobj=body, mode="rb") as packed:
                for line in io.TextIOWrapper(packed, encoding="utf-8"):
                    yield line.rstrip("\n")
        finally:
            body.close()

    return lines()


def put_json(run_id: str, name: str, value: Any) -> None:
    """A plan holding one JSON value (decimals kept exact, as strings)."""
    put_lines(run_id, name, [dumps(value)])


def read_json(run_id: str, name: str) -> Any | None:
    lines = read_lines(run_id, name)
    return None if lines is None else json.loads("".join(lines))


def delete_plans(run_id: str) -> None:
    """Delete a run's plans (a listing, and a DeleteObjects when there are any)."""
    bucket = settings.data_bucket()
    listed = aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}{run_id}/")
    exports.delete_objects(bucket, [item["Key"] for item in listed.get("Contents", [])])
