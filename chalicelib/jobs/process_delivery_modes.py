"""Process delivery modes (DOMAIN §1): which delivery modes, products and addresses each store has.

Every mode is exploded once; its data (products, addresses) is the same for every store it
covers, so what a store was sent is kept as ``{mode_id: digest of the data}`` — one small item
per store, read 100 stores a request. A store whose modes differ from what it was sent gets a
session (data group ``delivery-modes``) with an upsert per new or changed mode (its full data)
and a delete per mode it lost; ``full_sync`` sends every targeted store all its modes. A mode
without product lines is reported as a warning (§1 rule 4).
"""
from __future__ import annotations

import hashlib

from chalicelib.domain.explosion import delivery_mode_diff, explode_delivery_mode, store_delivery_mode_rows
from chalicelib.domain.sessions import delivery_mode_rows
from chalicelib.jobs.distribution import (
    Sender,
    StoreChange,
    load_catalog,
    load_org_tree,
    recovery_note,
    sessions_sent,
    store_pages,
)
from chalicelib.jobs.runtime import JobContext
from chalicelib.jobs.targeting import targeted_stores
from chalicelib.storage import records
from chalicelib.storage.base import dumps
from chalicelib.storage.distribution import mode_state, read_mode_digests

GROUP = "delivery-modes"


def run(ctx: JobContext) -> str:
    tree, catalog = load_org_tree(), load_catalog()
    explosions = [explode_delivery_mode(mode, tree, catalog) for mode in records.scan_entity("delivery-modes")]
    scope, warnings = targeted_stores(ctx.params, tree)
    for warning in warnings + [w for e in explosions for w in e.warnings]:
        ctx.warn(warning)
    rows_by_store = store_delivery_mode_rows(explosions)
    data = {mode_id: mode_data for rows in rows_by_store.values() for mode_id, mode_data in rows.items()}
    digest = {mode_id: hashlib.blake2b(dumps(d).encode(), digest_size=16).hexdigest() for mode_id, d in data.items()}
    wanted = {store_id: {mode_id: digest[mode_id] for mode_id in rows} for store_id, rows in rows_by_store.items()}

    stores = tree.store_ids if scope is None else scope
    sender = Sender(ctx, GROUP)
    for page in store_pages(ctx, stores, lambda store_id: len(wanted.get(store_id, ()))):
        _send_page(ctx, sender, page, {s: wanted.get(s, {}) for s in page}, data)
    verb = "would send" if ctx.dry_run else "sent"
    return (f"{len(explosions)} delivery mode(s), {len(stores)} store(s): {verb} {sessions_sent(ctx)} session(s) with "
            f"{ctx.counters.get('written', 0)} row(s); {ctx.counters.get('skipped', 0)} unchanged{recovery_note(ctx)}")


def _send_page(ctx: JobContext, sender: Sender, page: list[str], wanted: dict[str, dict[str, str]],
               data: dict) -> None:
    stored = read_mode_digests(page)
    full = set(page) if ctx.params.get("full_sync") else sender.full_stores(page, stored)
    diff = delivery_mode_diff({s: stored[s].digests or {} for s in page}, wanted)
    changes = {}
    for store_id in page:
        ctx.count(read=len(wanted[store_id]))
        if store_id in full:
            upserts, deletes = {m: data[m] for m in wanted[store_id]}, []
        elif store_id in diff:
            upserts, deletes = {m: data[m] for m in diff[store_id].upserts}, diff[store_id].deletes
        else:
            ctx.count(skipped=1)
            continue
        count = len(upserts) + len(deletes)
        ctx.count(written=count)
        whole = store_id in full or stored[store_id].digests is None
        changes[store_id] = StoreChange(delivery_mode_rows(upserts, deletes), count, whole,
                                        mode_state(store_id, wanted[store_id], ctx.run_id))
    sender.send(page, changes, stored)
