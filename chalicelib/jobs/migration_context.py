"""What the migration jobs share: the HQ context rows are validated against, and whether a
staging job is busy (being staged or copied by a run that is alive)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib import clock
from chalicelib.domain.migration import MigrationContext, referenced_entities
from chalicelib.jobs.parameters import retail_parameters
from chalicelib.storage import records
from chalicelib.storage.migration import StagingJob
from chalicelib.storage.runs import RunRecord, lock_owner

if TYPE_CHECKING:
    from chalicelib.domain.migration import MigrationContext

STAGING = "Staging"
COPYING = "Copying"
BUSY_STATUSES = (STAGING, COPYING)


def migration_context(entity: str, *, decimal_comma: bool = False) -> MigrationContext:
    """The live records a row of ``entity`` is checked against and takes its defaults from.

    Defaults that need a single answer get one only when HQ has exactly one: the legal entity
    of migrated stores, their organization node (the root) and a worker's store.
    """
    stores = list(records.scan_entity("stores"))
    legal_entities = sorted({s["legal_entity"] for s in stores if s.get("legal_entity")})
    nodes = list(records.scan_entity("org-nodes")) if entity == "stores" else []
    roots = [n["id"] for n in nodes if not n.get("parent_id")]
    loaded = {"stores": stores, "org-nodes": nodes}
    known = {name: {r["id"] for r in loaded.get(name) or records.scan_entity(name)}
             for name in referenced_entities(entity)}
    return MigrationContext(
        legal_entities=tuple(legal_entities),
        company_language=retail_parameters()["company_language"],
        default_legal_entity=legal_entities[0] if len(legal_entities) == 1 else None,
        default_org_node_id=roots[0] if len(roots) == 1 else None,
        default_store_id=stores[0]["id"] if len(stores) == 1 else None,
        store_warehouses={s["id"]: s.get("warehouse_id") or s["id"] for s in stores},
        decimal_comma=decimal_comma,
        known_ids=known,
    )


def run_is_alive(run_id: str | None) -> bool:
    """The run has not ended and holds its job lock: a run whose Lambda died loses its lease
    and stops counting as running, so it cannot block the migration forever."""
    if not run_id:
        return False
    try:
        run = RunRecord.get(run_id, consistent_read=True)
    except RunRecord.DoesNotExist:
        return False
    if run.is_final:
        return False
    owner, lease_until = lock_owner(run.job, run.lock_scope)
    return owner == run_id and lease_until >= clock.now()


def is_busy(job: StagingJob) -> bool:
    """Being staged or copied right now."""
    if job.status == STAGING:
        return run_is_alive(job.run_id)
    if job.status == COPYING:
        return run_is_alive(job.copy_run_id)
    return False
