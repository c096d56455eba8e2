"""Files written to the data bucket in bounded memory: exports (account activity, payroll) and
the download sessions' packages (``download_sessions.put_package``).

A file is written into a spooled temporary file (memory up to 8 MB, then disk) and handed to
boto3's managed transfer, which sends one PutObject below 8 MB and a multipart upload above, so
memory stays bounded whatever the file's size. Transfers run in the calling thread: the
runtime's request metering follows the run's context, which worker threads would not see.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from tempfile import SpooledTemporaryFile
from typing import BinaryIO, TextIO

from boto3.s3.transfer import TransferConfig

from chalicelib import settings
from chalicelib.storage import aws, faults

PART_BYTES = 8 * 2**20
# Where jobs write the files an operator downloads (a run's outputs); the API may read only these.
EXPORT_PREFIXES = ("account-activity/", "payroll/")
LINK_SECONDS = 15 * 60


def upload(key: str, write: Callable[[BinaryIO], object], content_type: str, bucket: str | None = None) -> int:
    """Write an object through ``write(binary_file)`` and upload it to ``key`` of ``bucket`` (the
    data bucket by default); returns its size."""
    config = TransferConfig(multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES, use_threads=False)
    with SpooledTemporaryFile(max_size=PART_BYTES) as spool:
        write(spool)
        size = spool.tell()
        spool.seek(0)
        aws.client("s3").upload_fileobj(spool, bucket or settings.data_bucket(), key,
                                        ExtraArgs={"ContentType": content_type}, Config=config)
    return size


S3_DELETE_LIMIT = 1000  # keys a DeleteObjects request takes


def delete_objects(bucket: str, keys: list[str]) -> None:
    """Delete objects of ``bucket``, 1,000 keys a request (S3 DeleteObjects; none for no key)."""
    s3 = aws.client("s3")
    for start in range(0, len(keys), S3_DELETE_LIMIT):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start:start + S3_DELETE_LIMIT]],
                                                 "Quiet": True})


def as_text(write: Callable[[TextIO], object]) -> Callable[[BinaryIO], None]:
    """Adapt a text writer (csv) to ``upload``: UTF-8, newlines left to the writer (CRLF in CSV)."""

    def write_binary(out: BinaryIO) -> None:
        text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        write(text)
        text.flush()
        text.detach()  # leave the spool open for the upload

    return write_binary


def exists(key: str) -> bool:
    """Whether ``key`` is in the data bucket (a HeadObject)."""
    s3 = aws.client("s3")
    try:
        with faults.translated():
            s3.head_object(Bucket=settings.data_bucket(), Key=key)
    except faults.NotFound:
        return False
    return True


def output_link(output: dict) -> dict | None:
    """A presigned GET (``LINK_SECONDS``) of a run's output that is an export file in the data bucket,
    signed locally (no request); None for any other output."""
    from datetime import timedelta

    from chalicelib.storage.base import iso, utcnow

    key = output.get("key") or ""
    if output.get("kind") != "s3" or output.get("bucket") != settings.data_bucket() \
            or not key.startswith(EXPORT_PREFIXES):
        return None
    url = aws.client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": output["bucket"], "Key": key}, ExpiresIn=LINK_SECONDS)
    return {"url": url, "expires_at": iso(utcnow() + timedelta(seconds=LINK_SECONDS)), "key": key,
            "kind": key.split("/", 1)[0]}
