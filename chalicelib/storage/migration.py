"""Migration staging (DOMAIN §7): staging jobs, their staging rows and the entities' field mappings.

- ``StagingJob``: one file dropped (or a drop that could not be staged), with its status, counts
  and the mapping it was staged with. Listed newest first per entity (``by_entity``), per source
  object (``by_source``) and all together (``by_feed``, a constant key: staging jobs are few).
- ``StagingRow``: one CSV row of a job (``job_id`` + ``row`` = its line in the file), as read,
  mapped and validated; ``errors`` only on rows that have some. Queried by job, never scanned.
- ``EntityMapping``: every mapping dropped for an entity, versioned; the current one is the
  newest ``Applied`` version (none: the default RMS mapping).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.storage.base import BatchWriter, JSONAttribute, iso, meta
from chalicelib.storage.faults import condition_failed

if TYPE_CHECKING:
    from chalicelib.domain.migration import StagedRow

FEED = "staging-jobs"
UNKNOWN_ENTITY = "unknown"
"""The entity of a drop whose key names none (``migration/data/vendors/x.csv``, ``other/x``)."""

APPLIED = "Applied"
REJECTED = "Rejected"
PAGE_SIZE = 500


class JobsByEntity(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_entity"
        projection = AllProjection()

    entity = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class JobsBySource(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_source"
        projection = AllProjection()

    source_key = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class JobsByFeed(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_feed"
        projection = AllProjection()

    feed = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class StagingJob(Model):
    """A staging job: ``Staging → Staged | StagedWithErrors | Failed``, then ``Copying →
    Completed | CompletedWithErrors``, and ``Cleaned`` once its rows are deleted."""

    Meta = meta("migration-jobs")
    job_id = UnicodeAttribute(hash_key=True)  # the staging run's id (a mapping drop: mapping-<entity>-v<n>)
    entity = UnicodeAttribute()
    kind = UnicodeAttribute()  # data | mapping | unknown
    source_key = UnicodeAttribute()
    bucket = UnicodeAttribute()
    status = UnicodeAttribute()
    rows = NumberAttribute(default=0)
    errors = NumberAttribute(default=0)
    message = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute(null=True)
    feed = UnicodeAttribute(default=FEED)
    run_id = UnicodeAttribute(null=True)
    etag = UnicodeAttribute(null=True)
    mapping_version = NumberAttribute(null=True)  # 0: the default RMS mapping
    mapping = JSONAttribute(null=True)
    encoding = UnicodeAttribute(null=True)
    delimiter = UnicodeAttribute(null=True)
    sample_errors = JSONAttribute(default=list)  # the first rows with errors, for the operator
    copy_run_id = UnicodeAttribute(null=True)
    copied = NumberAttribute(default=0)
    copy_failed = NumberAttribute(default=0)
    copied_at = UnicodeAttribute(null=True)
    # Row ranges that failed the last copy (or, until this job is copied, the last copy of an
    # earlier job of the same file): what ``rows: errors`` copies. Null: nothing copied yet.
    failed_rows = JSONAttribute(null=True)
    failed_rows_from = UnicodeAttribute(null=True)
    cleaned_at = UnicodeAttribute(null=True)
    cleaned_rows = NumberAttribute(default=0)
    by_entity = JobsByEntity()
    by_source = JobsBySource()
    by_feed = JobsByFeed()

    def to_api(self) -> dict:
        return {
            "job_id": self.job_id, "entity": self.entity, "kind": self.kind, "source_key": self.source_key,
            "bucket": self.bucket, "status": self.status, "rows": int(self.rows), "errors": int(self.errors),
            "valid_rows": int(self.rows - self.errors), "message": self.message,
            "created_at": self.created_at, "updated_at": self.updated_at, "run_id": self.run_id,
            "etag": self.etag, "mapping_version": self.mapping_version, "mapping": self.mapping,
            "encoding": self.encoding, "delimiter": self.delimiter, "sample_errors": self.sample_errors,
            "copy_run_id": self.copy_run_id, "copied": int(self.copied), "copy_failed": int(self.copy_failed),
            "copied_at": self.copied_at, "failed_rows": self.failed_rows, "failed_rows_from": self.failed_rows_from,
            "cleaned_at": self.cleaned_at, "cleaned_rows": int(self.cleaned_rows),
        }


class StagingRow(Model):
    Meta = meta("migration-rows")
    job_id = UnicodeAttribute(hash_key=True)
    row = NumberAttribute(range_key=True)  # the line of the file the row starts on
    source = JSONAttribute()
    record = JSONAttribute(null=True)
    errors = JSONAttribute(null=True)


class EntityMapping(Model):
    Meta = meta("migration-mappings")
    entity = UnicodeAttribute(hash_key=True)
    version = NumberAttribute(range_key=True)
    mapping = JSONAttribute(null=True)  # null when the file was not a JSON object
    status = UnicodeAttribute()  # Applied | Rejected
    reason = UnicodeAttribute(null=True)
    source_key = UnicodeAttribute()
    etag = UnicodeAttribute()
    created_at = UnicodeAttribute()


# --- staging jobs -------------------------------------------------------------------------

def get_job(job_id: str) -> StagingJob | None:
    try:
        return StagingJob.get(job_id, consistent_read=True)
    except StagingJob.DoesNotExist:
        return None


def jobs_page(entity: str | None, limit: int, cursor: dict | None) -> tuple[list[StagingJob], dict | None]:
    """Newest first, of one entity or of all."""
    index, key = (StagingJob.by_entity, entity) if entity else (StagingJob.by_feed, FEED)
    results = index.query(key, scan_index_forward=False, limit=limit, page_size=limit, last_evaluated_key=cursor)
    jobs = list(results)
    return jobs, results.last_evaluated_key if len(jobs) == limit else None


def jobs_of(entity: str | None = None, created_before: str | None = None) -> Iterator[StagingJob]:
    """Every job of ``entity`` (or of all entities), oldest first, created before a moment."""
    index, key = (StagingJob.by_entity, entity) if entity else (StagingJob.by_feed, FEED)
    condition = StagingJob.created_at < created_before if created_before else None
    yield from index.query(key, condition)


def last_copied_job_of(source_key: str) -> StagingJob | None:
    """The newest job of the same source object that has been copied to target."""
    for job in StagingJob.by_source.query(source_key, scan_index_forward=False):
        if job.failed_rows is not None:
            return job
    return None


# --- staging rows -------------------------------------------------------------------------

def write_rows(job_id: str, staged: Iterable[StagedRow]) -> int:
    """Put the rows (25 per request); a row written before is overwritten with the same content."""
    with BatchWriter(StagingRow) as batch:
        for row in staged:
            batch.put(StagingRow(job_id, row.row_number, source=row.source, record=row.record,
                                 errors=row.errors or None))
    return batch.written


def rows_page(job_id: str, cursor: dict | None, *, errors_only: bool = False,
              keys_only: bool = False) -> tuple[list[StagingRow], dict | None]:
    """One page of a job's rows in file order, and the cursor of the next (``None``: last page)."""
    results = StagingRow.query(
        job_id, limit=PAGE_SIZE, page_size=PAGE_SIZE, last_evaluated_key=cursor,
        filter_condition=StagingRow.errors.exists() if errors_only else None,
        attributes_to_get=["job_id", "row"] if keys_only else None,
    )
    rows = list(results)
    return rows, results.last_evaluated_key


def delete_rows(rows: Iterable[StagingRow]) -> int:
    with BatchWriter(StagingRow) as batch:
        for row in rows:
            batch.delete(row)
    return batch.written


# --- mappings -----------------------------------------------------------------------------

def current_mapping(entity: str) -> tuple[int, dict]:
    """``(version, mapping)`` of the newest applied mapping; ``(0, default)`` when none was dropped."""
    from chalicelib.domain.migration import DEFAULT_MAPPINGS  # the job table imports this module, not the domain's

    for stored in EntityMapping.query(entity, scan_index_forward=False,
                                      filter_condition=EntityMapping.status == APPLIED):
        return int(stored.version), stored.mapping
    return 0, dict(DEFAULT_MAPPINGS[entity])


def record_mapping(entity: str, mapping: object, status: str, reason: str | None,
                   source_key: str, etag: str) -> tuple[int, bool]:
    """Store a dropped mapping as the entity's next version; ``(version, created)``.

    A second notification of the same drop (same key and etag as the newest version) finds that
    version instead of adding one; two drops racing for a version number retry with the next.
    """
    while True:
        newest = next(iter(EntityMapping.query(entity, scan_index_forward=False, limit=1)), None)
        if newest is not None and (newest.source_key, newest.etag) == (source_key, etag):
            return int(newest.version), False
        version = int(newest.version) + 1 if newest else 1
        item = EntityMapping(entity, version, mapping=mapping, status=status, reason=reason,
                             source_key=source_key, etag=etag, created_at=iso())
        try:
            item.save(condition=EntityMapping.version.does_not_exist())
            return version, True
        except PutError as exc:
            if not condition_failed(exc):
                raise
