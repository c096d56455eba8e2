"""Upload issues (DOMAIN §13 "Uploads are per record"): the records of a store's upload that were
not applied — conflicts (an id already stored with other content) and rejections (invalid
records) — kept 30 days for operators.

Table ``upload-issues`` keyed by ``store_id`` and ``issue_id``. The id is derived from what was
sent (a conflict: the transaction id and the content's hash; a rejection: the record as sent),
so a POS resending the same refused record a hundred times leaves one issue, seen again, not a
hundred. ``by_seen`` (a local index on ``seen_at``) lists a store's issues newest first. Issues
expire through DynamoDB's TTL ``RETENTION`` after they were last seen.
"""
from __future__ import annotations

import hashlib
from datetime import timedelta

from pynamodb.attributes import TTLAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, LocalSecondaryIndex
from pynamodb.models import Model

from chalicelib.storage.base import JSONAttribute, dumps, meta, write_all

RETENTION = timedelta(days=30)
MAX_RECORD_CHARS = 100_000  # a DynamoDB item holds 400 KB; a bigger record is kept as its id only
MAX_ERRORS = 50
CONFLICT = "conflict"
REJECTED = "rejected"
OPEN = "Open"
ACCEPTED = "Accepted"


class IssuesBySeen(LocalSecondaryIndex):
    class Meta:
        index_name = "by_seen"
        projection = AllProjection()

    store_id = UnicodeAttribute(hash_key=True)
    seen_at = UnicodeAttribute(range_key=True)


class UploadIssue(Model):
    """One refused record: ``kind`` conflict or rejected; ``record`` as sent (cleaned for a
    conflict, which was valid); ``errors`` the field reasons of a rejection; ``content_hash``
    (conflicts) the canonical hash of the version an operator may accept."""

    Meta = meta("upload-issues")
    store_id = UnicodeAttribute(hash_key=True)
    issue_id = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    transaction_id = UnicodeAttribute(null=True)
    seen_at = UnicodeAttribute()
    status = UnicodeAttribute(default=OPEN)
    record = JSONAttribute(null=True)
    errors = JSONAttribute(null=True)
    message = UnicodeAttribute(null=True)
    content_hash = UnicodeAttribute(null=True)
    accepted_at = UnicodeAttribute(null=True)
    accepted_by = UnicodeAttribute(null=True)
    expires = TTLAttribute(null=True)
    by_seen = IssuesBySeen()

    def to_api(self) -> dict:
        return {"issue_id": self.issue_id, "store_id": self.store_id, "kind": self.kind,
                "transaction_id": self.transaction_id, "status": self.status, "seen_at": self.seen_at,
                "message": self.message, "errors": self.errors or [], "record": self.record,
                "accepted_at": self.accepted_at, "accepted_by": self.accepted_by}


def issue_id_for(kind: str, *parts: object) -> str:
    digest = hashlib.blake2b(dumps(list(parts)).encode(), digest_size=10).hexdigest()
    return f"{'UC' if kind == CONFLICT else 'UR'}-{digest}"


def new_issue(store_id: str, kind: str, seen_at: str, *, transaction_id: str | None, record: object,
              message: str, errors: list[dict] | None = None, content_hash: str | None = None) -> UploadIssue:
    parts = (store_id, transaction_id, content_hash) if kind == CONFLICT else (store_id, record)
    if kind != CONFLICT and len(dumps(record)) > MAX_RECORD_CHARS:
        record = {"transaction_id": transaction_id, "omitted": f"more than {MAX_RECORD_CHARS} characters"}
    if len(message) > MAX_RECORD_CHARS // 10:
        message = message[:MAX_RECORD_CHARS // 10] + " …"
    issue = UploadIssue(store_id, issue_id_for(kind, *parts), kind=kind, transaction_id=transaction_id,
                        seen_at=seen_at, status=OPEN, record=record, errors=(errors or [])[:MAX_ERRORS],
                        message=message, content_hash=content_hash)
    issue.expires = RETENTION
    return issue


def save_issues(issues: list[UploadIssue]) -> None:
    """Batch puts (25 a request); an issue seen again is rewritten with its new ``seen_at``."""
    write_all(UploadIssue, puts=issues)


def get_issue(store_id: str, issue_id: str) -> UploadIssue | None:
    try:
        return UploadIssue.get(store_id, issue_id, consistent_read=True)
    except UploadIssue.DoesNotExist:
        return None


def store_issues(store_id: str, kind: str | None, limit: int,
                 cursor: dict | None) -> tuple[list[UploadIssue], dict | None]:
    """A store's issues, last seen first (optionally one ``kind``)."""
    results = UploadIssue.by_seen.query(store_id, scan_index_forward=False, limit=limit,
                                        filter_condition=(UploadIssue.kind == kind) if kind else None,
                                        last_evaluated_key=cursor)
    items = list(results)
    return items, results.last_evaluated_key if len(items) == limit else None
