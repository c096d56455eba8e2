"""Master data (the ``/data`` entities) in one table: ``entity`` + ``id``, the record as JSON.

Records that refer to another (``domain/references.py``) carry a sparse ``ref`` key
(``products#<category>``, ``stores#<org node>``, ``workers#<store>``, ``org-nodes#<parent>``,
``categories#<parent>``) queried through the ``by_ref`` index: jobs look records up by their parent,
and ``DELETE /data`` finds what refers to a record.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

from pynamodb.attributes import UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.domain.references import REFERENCES, referring
from chalicelib.storage.base import JSONAttribute, dumps, get_many, iso, meta, write_all
from chalicelib.storage.faults import condition_failed

_REF_FIELD = {entity: field for entity, (field, _) in REFERENCES.items()}
PAGE_SIZE = 1000


class RecordsByRef(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_ref"
        projection = AllProjection()

    ref = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class MasterRecord(Model):
    Meta = meta("records")
    entity = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    data = JSONAttribute()
    updated_at = UnicodeAttribute()
    ref = UnicodeAttribute(null=True)
    by_ref = RecordsByRef()


def _ref(entity: str, record: dict) -> str | None:
    field = _REF_FIELD.get(entity)
    return f"{entity}#{record[field]}" if field and record.get(field) else None


def _make(entity: str, record: dict, now: str) -> MasterRecord:
    return MasterRecord(entity, record["id"], data=record, updated_at=now, ref=_ref(entity, record))


def upsert(entity: str, records: list[dict]) -> int:
    """Write the records that differ from what is stored; returns how many were written.

    Assortments are system-managed: editing one makes it ``Draft`` again (DOMAIN §5), while an
    unchanged one keeps its status. A record stored before its entity had a ``ref`` gets it.
    """
    existing = {r.id: r for r in get_many(MasterRecord, [(entity, r["id"]) for r in records])}
    now = iso()
    changed = []
    for record in records:
        stored = existing.get(record["id"])
        old = stored.data if stored is not None else None
        if entity == "assortments":
            old_body = {k: v for k, v in (old or {}).items() if k != "status"}
            if old is not None and dumps(old_body) == dumps(record):
                continue
            record = {**record, "status": "Draft"}
        elif old is not None and dumps(old) == dumps(record) and stored.ref == _ref(entity, record):
            continue
        changed.append(_make(entity, record, now))
    return write_all(MasterRecord, puts=changed)


def save(entity: str, record: dict) -> None:
    """Write one record as is (system-managed changes such as an assortment's status)."""
    _make(entity, record, iso()).save()


def replace(entity: str, old: dict, new: dict) -> bool:
    """Write ``new`` only if the stored record is still exactly ``old`` (a system-managed change,
    such as an assortment's status, must not undo an operator's edit made meanwhile)."""
    try:
        _make(entity, new, iso()).save(condition=MasterRecord.data == old)
        return True
    except Exception as exc:  # noqa: BLE001
        if condition_failed(exc):
            return False
        raise


def get(entity: str, record_id: str) -> dict | None:
    try:
        return MasterRecord.get(entity, record_id).data
    except MasterRecord.DoesNotExist:
        return None


def get_by_ids(entity: str, ids: Iterable[str]) -> dict[str, dict]:
    return {r.id: r.data for r in get_many(MasterRecord, [(entity, i) for i in ids])}


def get_records(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """Records of several entities by ``(entity, id)`` in one batch get (100 keys a request)."""
    return {(r.entity, r.id): r.data for r in get_many(MasterRecord, keys)}


def delete(entity: str, record_id: str) -> bool:
    try:
        MasterRecord(entity, record_id).delete(condition=MasterRecord.id.exists())
        return True
    except Exception as exc:  # noqa: BLE001
        if condition_failed(exc):
            return False
        raise


def scan_entity(entity: str) -> Iterator[dict]:
    """Every record of ``entity``, one at a time: a query on the partition key in DynamoDB's own
    1 MB pages (about 3,000 products a request; a page size of 1,000 items took three times the
    requests) reading only ``data``."""
    for item in MasterRecord.query(entity, attributes_to_get=["data"]):
        yield item.data


def referrers(entity: str, record_id: str, limit: int = 10) -> dict[str, list[str]]:
    """The ids (at most ``limit`` of each entity) of the records that refer to ``entity``
    ``record_id``, by entity: one ``by_ref`` query per entity that may refer to it."""
    found = {}
    for source, _ in referring(entity):
        ids = [r.id for r in MasterRecord.by_ref.query(f"{source}#{record_id}", limit=limit, page_size=limit)]
        if ids:
            found[source] = ids
    return found


def by_ref(entity: str, parent_id: str) -> Iterator[dict]:
    for item in MasterRecord.by_ref.query(f"{entity}#{parent_id}", page_size=PAGE_SIZE):
        yield item.data


def page(entity: str, limit: int, cursor: dict | None) -> tuple[list[dict], dict | None]:
    results = MasterRecord.query(entity, limit=limit, page_size=limit, last_evaluated_key=cursor)
    items = [r.data for r in results]
    return items, results.last_evaluated_key
