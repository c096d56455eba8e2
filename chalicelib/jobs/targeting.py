"""Per-store targeting (DOMAIN §0): which stores a run with ``STORE_TARGETING`` params works on.

``store_ids`` and ``org_node_ids`` add up; a node means the node and every store below it,
resolved at run time so new stores are picked up. Neither given: every store.

Per-store jobs fan out with ``shards=store_shards``: one child run per targeted store, each with
``params.store_ids = [store]``; the distribution jobs only to the stores with something to send
(``stores_to_send``); post-statements one per legal entity (``params.shard``, its stores).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.domain.catalog import OrgTree
from chalicelib.jobs.runtime import JobContext
from chalicelib.storage import records
from chalicelib.storage.base import BATCH_GET_LIMIT
from chalicelib.storage.download_sessions import started_sessions

# A store's state item of a data group and its resend request: 50 stores a BatchGetItem.
STATE_PAGE = BATCH_GET_LIMIT // 2


def target_store_ids(ctx: JobContext) -> list[str]:
    """The stores this run works on, sorted; unknown ids are reported as warnings."""
    if ctx.run.parent_run_id:  # a shard: exactly its stores
        return list(ctx.params["store_ids"])
    return list(_scanned_targets(ctx))


def target_stores(ctx: JobContext) -> dict[str, dict]:
    """``target_store_ids`` with the stores' records (id order): a shard's read 100 a request, a
    whole run's from the scan its targeting makes anyway."""
    if ctx.run.parent_run_id:
        found = records.get_by_ids("stores", ctx.params["store_ids"])
        return {store_id: found.get(store_id) or {"id": store_id} for store_id in ctx.params["store_ids"]}
    return _scanned_targets(ctx)


def _scanned_targets(ctx: JobContext) -> dict[str, dict]:
    stores = list(records.scan_entity("stores"))
    tree = OrgTree(records.scan_entity("org-nodes") if ctx.params.get("org_node_ids") else [], stores)
    chosen, warnings = targeted_stores(ctx.params, tree)
    for warning in warnings:
        ctx.warn(warning)
    by_id = {store["id"]: store for store in stores}
    return {store_id: by_id[store_id] for store_id in sorted(tree.store_ids if chosen is None else chosen)}


def targeted_stores(params: dict, org_tree: Any) -> tuple[set[str] | None, list[str]]:
    """The stores a run's ``store_ids``/``org_node_ids`` name (their union; a node means every
    store below it, resolved now so new stores are picked up), or ``None`` when the run targets
    every store. Unknown ids are returned as warnings, not errors."""
    store_ids, node_ids = params.get("store_ids") or [], params.get("org_node_ids") or []
    if not store_ids and not node_ids:
        return None, []
    chosen: set[str] = set()
    warnings = []
    for store_id in store_ids:
        if org_tree.has_store(store_id):
            chosen.add(store_id)
        else:
            warnings.append(f"unknown store {store_id}")
    for node_id in node_ids:
        if org_tree.has_node(node_id):
            chosen |= org_tree.stores_under(node_id)
        else:
            warnings.append(f"unknown org node {node_id}")
    return chosen, warnings


def store_shards(ctx: JobContext, with_work: Callable[[], set[str]] | None = None) -> list[str] | None:
    """Fan out per store, unless the run targets a single store (it then runs whole); with
    ``with_work``, only to the targeted stores it names (the stores that have something to do)."""
    targeted = target_store_ids(ctx)
    if len(targeted) <= 1:
        return None
    if with_work is None:
        return targeted
    busy = with_work()
    return [store_id for store_id in targeted if store_id in busy]


def stores_to_send(ctx: JobContext, stores: list[str], group: str, read_state: Callable[[list[str]], dict],
                   changed: Callable[[str, Any], bool]) -> list[str] | None:
    """The parent of a distribution run (process-assortments, process-delivery-modes): the stores
    of ``stores`` to fan out to, one shard each, or ``None`` when the run targets a single store
    (it then runs whole). Every store for ``full_sync``; otherwise the stores whose committed state
    (``read_state``: 50 stores a request, no package built) differs from what they must have
    (``changed(store_id, stored)``), those with a pending full resend, and those a dead run left a
    ``Started`` session of the group (one index query). Nothing changed: no store."""
    if len(stores) <= 1:
        return None
    if ctx.params.get("full_sync"):
        return sorted(stores)
    unfinished = started_sessions(group)
    pending, busy = sorted(stores), []
    for start in range(0, len(pending), STATE_PAGE):
        page = pending[start:start + STATE_PAGE]
        stored = read_state(page)
        busy += [s for s in page if s in unfinished or stored[s].resend is not None or changed(s, stored[s])]
    return busy
