"""Download sessions, their packages in S3 and the status messages stores post (DOMAIN §9).

Tables and indexes, each serving a query a job or route makes (never a scan on a job path):

- ``download-sessions`` keyed by ``session_id``.
  ``by_store`` (``store_id``, ``seq``): a store's sessions in order — the store route and the
  operator list by store. ``by_status`` (``status``, ``changed_at``): sessions in one status by
  time of their last change — stale Available/Requested sessions, final sessions past the
  retention period and the ``Started`` sessions a dead run left (``started_sessions``) are one
  query each. A ``version`` attribute makes every write
  conditional on the version read, so a job and an operator never overwrite each other.
- ``status-messages`` keyed by ``session_id`` and ``message_key`` (received time + a random
  tail), kept as received. Unprocessed messages carry ``pending``, the hash key of the sparse
  ``pending`` index ordered by ``at``: the job reads exactly the unprocessed ones, 1 MB a
  request, and marking one processed drops it from the index. Processed messages expire through
  DynamoDB's TTL ``download_session_retention_days`` after processing.
- Packages are S3 objects ``packages/<store_id>/<seq>-<session_id>.jsonl.gz`` in ``DATA_BUCKET``,
  streamed as they are generated (``put_package``).
"""
from __future__ import annotations

import hashlib
import heapq
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import BinaryIO

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib import settings
from chalicelib.domain.sessions import SessionState, SessionStatus, gzip_package
from chalicelib.storage import aws, exports
from chalicelib.storage.base import JSONAttribute, get_many, meta

DATA_GROUPS = {"assortments": "AS", "delivery-modes": "DM"}
PACKAGE_URL_SECONDS = 300
MESSAGE_ERRORS = 20  # refused status messages kept on a session, newest last


class SessionsByStore(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_store"
        projection = AllProjection()

    store_id = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True)


class SessionsByStatus(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_status"
        projection = AllProjection()

    status = UnicodeAttribute(hash_key=True)
    changed_at = UnicodeAttribute(range_key=True)


class DownloadSession(Model):
    """One store's package of one data group from one job run (§9 fields, ARCHITECTURE ``Session``).

    ``changed_at`` is the last change (``last_changed_at``, else ``created_at``), the sort key
    of ``by_status``; ``last_changed_at`` is the ``at`` of the last applied status message.
    ``replaces`` names the session an operator's rerun replaces (it gets ``replaced_by`` when
    this one becomes ``Available``).
    """

    Meta = meta("download-sessions")
    session_id = UnicodeAttribute(hash_key=True)
    store_id = UnicodeAttribute()
    data_group = UnicodeAttribute()
    seq = NumberAttribute()
    job_run_id = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    rows = NumberAttribute(default=0)
    full = BooleanAttribute(default=False)
    checksum = UnicodeAttribute(null=True)
    package = JSONAttribute(null=True)
    created_at = UnicodeAttribute()
    requested_at = UnicodeAttribute(null=True)
    downloaded_at = UnicodeAttribute(null=True)
    applied_at = UnicodeAttribute(null=True)
    last_changed_at = UnicodeAttribute(null=True)
    changed_at = UnicodeAttribute()
    try_count = NumberAttribute(default=0)
    rows_affected = NumberAttribute(null=True)
    message = UnicodeAttribute(null=True)
    replaced_by = UnicodeAttribute(null=True)
    replaces = UnicodeAttribute(null=True)
    stale = BooleanAttribute(default=False)
    message_errors = JSONAttribute(null=True)  # the last MESSAGE_ERRORS refused messages [{at, status, error}]
    version = VersionAttribute()
    by_store = SessionsByStore()
    by_status = SessionsByStatus()

    def to_api(self) -> dict:
        return {
            "session_id": self.session_id, "store_id": self.store_id, "data_group": self.data_group,
            "seq": int(self.seq), "job_run_id": self.job_run_id, "status": self.status, "rows": int(self.rows),
            "checksum": self.checksum, "package": self.package, "created_at": self.created_at,
            "requested_at": self.requested_at, "downloaded_at": self.downloaded_at,
            "applied_at": self.applied_at, "try_count": int(self.try_count), "message": self.message,
            "replaced_by": self.replaced_by, "stale": bool(self.stale),
            "message_errors": self.message_errors or [],
        }

    def state(self) -> SessionState:
        return SessionState.from_record({
            "session_id": self.session_id, "status": self.status, "created_at": self.created_at,
            "try_count": self.try_count, "requested_at": self.requested_at,
            "downloaded_at": self.downloaded_at, "applied_at": self.applied_at, "message": self.message,
            "rows_affected": self.rows_affected, "last_changed_at": self.last_changed_at,
        })


class PendingMessages(GlobalSecondaryIndex):
    class Meta:
        index_name = "pending"
        projection = AllProjection()

    pending = UnicodeAttribute(hash_key=True)
    at = UnicodeAttribute(range_key=True)


PENDING = "pending"


class StatusMessageRecord(Model):
    """A status message as the store posted it, plus what the job made of it."""

    Meta = meta("status-messages")
    session_id = UnicodeAttribute(hash_key=True)
    message_key = UnicodeAttribute(range_key=True)
    store_id = UnicodeAttribute()
    status = UnicodeAttribute()
    at = UnicodeAttribute()
    message = UnicodeAttribute(null=True)
    rows_affected = NumberAttribute(null=True)
    received_at = UnicodeAttribute()
    pending = UnicodeAttribute(null=True)
    processed_at = UnicodeAttribute(null=True)
    outcome = UnicodeAttribute(null=True)
    error = UnicodeAttribute(null=True)
    expires = TTLAttribute(null=True)
    by_pending = PendingMessages()

    @property
    def ref(self) -> str:
        """How the run's errors name a message: session, status and time."""
        return f"{self.session_id} {self.status} at {self.at}"

    def as_record(self) -> dict:
        return {"session_id": self.session_id, "status": self.status, "at": self.at, "message": self.message,
                "rows_affected": None if self.rows_affected is None else int(self.rows_affected)}


# --- sessions --------------------------------------------------------------------------------------

def session_id_for(*parts: str, group: str) -> str:
    """A deterministic session id from ``parts`` (a store and its ``seq``: one id per number)."""
    digest = hashlib.blake2b("|".join([*parts, group]).encode(), digest_size=12).hexdigest()
    return f"{DATA_GROUPS[group]}-{digest}"


def get_session(session_id: str) -> DownloadSession | None:
    try:
        return DownloadSession.get(session_id, consistent_read=True)
    except DownloadSession.DoesNotExist:
        return None


def get_sessions(session_ids: Iterable[str]) -> dict[str, DownloadSession]:
    return {s.session_id: s for s in get_many(DownloadSession, list(session_ids))}


def store_sessions(store_id: str, status: str | None, limit: int, cursor: dict | None,
                   newest_first: bool) -> tuple[list[DownloadSession], dict | None]:
    results = DownloadSession.by_store.query(
        store_id, scan_index_forward=not newest_first, limit=limit,
        filter_condition=(DownloadSession.status == status) if status else None,
        last_evaluated_key=cursor)
    items = list(results)
    return items, results.last_evaluated_key if len(items) == limit else None


def sessions_in_status(status: str, limit: int, cursor: dict | None) -> tuple[list[DownloadSession], dict | None]:
    results = DownloadSession.by_status.query(status, scan_index_forward=False, limit=limit,
                                              last_evaluated_key=cursor)
    items = list(results)
    return items, results.last_evaluated_key if len(items) == limit else None


def all_sessions(limit: int, cursor: dict | None) -> tuple[list[DownloadSession], dict | None]:
    """The unfiltered operator list, last change first (as one status's list): the ``by_status``
    pages of every status merged, one query per status with sessions left (an operator's page,
    never a job's path). The cursor holds where each status's list stands (null: at its start)."""
    positions = cursor if cursor is not None else dict.fromkeys(SessionStatus)
    pages = {}
    for status, start in positions.items():
        results = DownloadSession.by_status.query(status, scan_index_forward=False, limit=limit,
                                                  last_evaluated_key=start)
        pages[status] = (list(results), results.last_evaluated_key)
    items = list(islice(heapq.merge(*(page for page, _ in pages.values()), key=lambda s: s.changed_at,
                                    reverse=True), limit))
    taken = Counter(session.status for session in items)
    following = {}
    for status, (page, more) in pages.items():
        if taken[status] < len(page) or more:
            following[status] = _status_key(page[taken[status] - 1]) if taken[status] else positions[status]
    return items, following or None


def _status_key(session: DownloadSession) -> dict:
    """Where a ``by_status`` query resumes after ``session``."""
    return {"session_id": {"S": session.session_id}, "status": {"S": session.status},
            "changed_at": {"S": session.changed_at}}


def started_sessions(group: str) -> dict[str, list[DownloadSession]]:
    """Sessions of ``group`` still ``Started``, by store, in ``seq`` order: what runs that died
    left unfinished (one query on ``by_status``; none at all in the steady state). The index may
    lag a write by a second; the next run after a crash comes minutes later."""
    listed = [s.session_id for s in DownloadSession.by_status.query(
        SessionStatus.STARTED.value, filter_condition=DownloadSession.data_group == group)]
    found: dict[str, list[DownloadSession]] = {}
    for session in get_many(DownloadSession, listed, consistent_read=True):  # as they are now, not as indexed
        if session.status == SessionStatus.STARTED.value:
            found.setdefault(session.store_id, []).append(session)
    for sessions in found.values():
        sessions.sort(key=lambda s: int(s.seq))
    return found


def sessions_changed_before(status: str, before: str) -> Iterator[DownloadSession]:
    """Sessions in ``status`` whose last change is older than ``before`` (an ISO time)."""
    yield from DownloadSession.by_status.query(status, DownloadSession.changed_at < before)


# --- packages --------------------------------------------------------------------------------------

def package_key(store_id: str, seq: int, session_id: str) -> str:
    return f"packages/{store_id}/{seq:08d}-{session_id}.jsonl.gz"


def package_location(key: str) -> dict:
    return {"bucket": settings.data_bucket(), "key": key}


def put_package(package: dict, lines: Iterable[bytes]) -> str:
    """Stream the gzip of a package's ``lines`` to S3; returns its checksum (``gzip_package``).

    The gzip goes through ``exports.upload``: a spooled file (memory up to 8 MB, then disk), sent
    as one PutObject below 8 MB and as a multipart upload above, so memory stays bounded whatever
    the package's size. A failed upload is aborted by boto3; one a killed process leaves behind
    is aborted by the data bucket's lifecycle rule (``deploy/stack.py``, after 7 days) and never
    becomes an object: the session stays ``Started`` and the next run rebuilds it.
    """
    checksum = ""

    def write(out: BinaryIO) -> None:
        nonlocal checksum
        checksum = gzip_package(lines, out)

    exports.upload(package["key"], write, "application/gzip", bucket=package["bucket"])
    return checksum


def package_checksum(package: dict) -> str:
    """The sha256 hex of a package object, read in chunks (a session committed before its
    checksum was recorded)."""
    body = aws.client("s3").get_object(Bucket=package["bucket"], Key=package["key"])["Body"]
    sha256 = hashlib.sha256()
    for chunk in body.iter_chunks(exports.PART_BYTES):
        sha256.update(chunk)
    return sha256.hexdigest()


def get_package(package: dict) -> bytes:
    return aws.client("s3").get_object(Bucket=package["bucket"], Key=package["key"])["Body"].read()


def package_head(package: dict, limit: int) -> tuple[dict, list[dict]]:
    """A package's header and its first ``limit`` rows, read from the S3 object as a stream (the
    rows after them are neither downloaded further nor decompressed)."""
    import gzip
    import json

    body = aws.client("s3").get_object(Bucket=package["bucket"], Key=package["key"])["Body"]
    try:
        with gzip.GzipFile(fileobj=body, mode="rb") as lines:
            header = json.loads(lines.readline())
            rows = []
            while len(rows) < limit and (line := lines.readline()):
                rows.append(json.loads(line))
    finally:
        body.close()
    return header, rows


def delete_packages(packages: list[dict]) -> None:
    """Delete package objects, 1000 keys a request (S3 DeleteObjects)."""
    by_bucket: dict[str, list[str]] = {}
    for package in packages:
        by_bucket.setdefault(package["bucket"], []).append(package["key"])
    for bucket, keys in by_bucket.items():
        exports.delete_objects(bucket, keys)


def package_url(package: dict) -> str:
    """A short-lived presigned GET for a store to download its package (signed locally, no request)."""
    return aws.client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": package["bucket"], "Key": package["key"]},
        ExpiresIn=PACKAGE_URL_SECONDS)


# --- status messages -------------------------------------------------------------------------------

def new_message(store_id: str, record: dict, received_at: str) -> StatusMessageRecord:
    """A message as received (``record`` validated with the ``status-messages`` schema)."""
    return StatusMessageRecord(
        record["session_id"], f"{received_at}#{uuid.uuid4().hex[:8]}", store_id=store_id,
        status=record["status"], at=record["at"], message=record.get("message"),
        rows_affected=record.get("rows_affected"), received_at=received_at, pending=PENDING)


def pending_messages(limit: int, cursor: dict | None) -> tuple[list[StatusMessageRecord], dict | None]:
    """One page of unprocessed messages in ``at`` order, and the cursor of the next page."""
    results = StatusMessageRecord.by_pending.query(PENDING, limit=limit, page_size=limit,
                                                   last_evaluated_key=cursor)
    items = list(results)
    return items, results.last_evaluated_key if len(items) == limit else None


def session_messages(session_id: str) -> list[StatusMessageRecord]:
    return list(StatusMessageRecord.query(session_id))
