"""Process delivery modes (DOMAIN §1): which delivery modes, products and addresses each store has.

Every mode is exploded once; its data (products, addresses) is the same for every store it
covers, so what a store was sent is kept as ``{mode_id: digest of the data}`` — one small item
per store, read 50 stores a request. Over several stores a run fans out (``changed_stores``)
to one shard per store whose digests differ, has a resend request or an unfinished session
(every store for ``full_sync``); an idle run makes none. The parent writes what its shards need
as a plan in S3 (``storage/fanout_plans.py``): each such store's ``{mode_id: digest}`` and the
data of those modes, so a shard reads one object instead of the catalogue. A store whose modes
differ from what it was sent gets a session (data group ``delivery-modes``) with an upsert per
new or changed mode (its full data) and a delete per mode it lost; ``full_sync`` sends every
targeted store all its modes. A mode without product lines is reported as a warning (§1 rule 4).
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
from chalicelib.jobs.targeting import stores_to_send, targeted_stores
from chalicelib.storage import fanout_plans, records
from chalicelib.storage.base import dumps
from chalicelib.storage.distribution import mode_state, read_mode_digests

GROUP = "delivery-modes"
PLAN = "modes"  # {"modes": count, "wanted": {store_id: {mode_id: digest}}, "data": {mode_id: data}}


def run(ctx: JobContext) -> str:
    if ctx.run.parent_run_id:  # one store's shard
        stores = list(ctx.params["store_ids"])
        modes, wanted, data = _shard_plan(ctx, stores)
    else:
        modes, stores, wanted, data = _explode(ctx)
    sender = Sender(ctx, GROUP)
    for page in store_pages(ctx, stores, lambda store_id: len(wanted.get(store_id, ()))):
        _send_page(ctx, sender, page, {s: wanted.get(s, {}) for s in page}, data)
    return _summary(ctx.dry_run, modes, len(stores), ctx.counters, sessions_sent(ctx)) + recovery_note(ctx)


def changed_stores(ctx: JobContext) -> list[str] | None:
    """``shards=``: the stores whose modes differ from what they were sent (one small digest item
    per store, 50 stores a request), with a pending resend or an unfinished session; the
    unchanged ones are counted here (read, skipped). What the stores to send need is written as
    the run's plan."""
    modes, stores, wanted, data = _explode(ctx)
    busy = stores_to_send(ctx, stores, GROUP, read_mode_digests,
                          lambda store_id, stored: (stored.digests or {}) != wanted.get(store_id, {}))
    if busy is None:
        return None
    for store_id in sorted(set(stores) - set(busy)):
        ctx.count(read=len(wanted.get(store_id, {})), skipped=1)
    if busy:
        needed = {s: wanted.get(s, {}) for s in busy}
        fanout_plans.put_json(ctx.run_id, PLAN, {"modes": modes, "wanted": needed, "data": {
            mode_id: data[mode_id] for digests in needed.values() for mode_id in digests}})
    return busy


def close(parent, shards: list, counters: dict, outputs: list) -> str:
    """A fan-out's summary once every shard has ended; its plan is deleted."""
    if shards:  # a run that fanned out to no store wrote no plan
        fanout_plans.delete_plans(parent.run_id)
    modes = sum(1 for _ in records.scan_entity("delivery-modes"))
    # the run's stores: one per shard, and those the parent found unchanged
    stores = len(shards) + counters.get("skipped", 0) - sum(shard.counters.get("skipped", 0) for shard in shards)
    sent = sum((shard.checkpoint or {}).get("state", {}).get("sent", 0) for shard in shards)
    return _summary(parent.dry_run, modes, stores, counters, sent)


def _shard_plan(ctx: JobContext, stores: list[str]) -> tuple[int, dict, dict]:
    """A shard's modes count, its store's ``{mode_id: digest}`` and those modes' data, from its
    parent's plan; without it (lost or removed), exploded here."""
    plan = fanout_plans.read_json(ctx.run.parent_run_id, PLAN)
    if plan is not None and all(s in plan["wanted"] for s in stores):
        return plan["modes"], plan["wanted"], plan["data"]
    modes, _, wanted, data = _explode(ctx)
    return modes, wanted, data


def _explode(ctx: JobContext) -> tuple[int, list[str], dict, dict]:
    """Every mode exploded once: the number of modes, the run's stores, each store's
    ``{mode_id: digest}`` and each mode's data; warnings are the parent's (a shard's store is one
    it named)."""
    tree, catalog = load_org_tree(), load_catalog()
    explosions = [explode_delivery_mode(mode, tree, catalog) for mode in records.scan_entity("delivery-modes")]
    scope, warnings = targeted_stores(ctx.params, tree)
    if not ctx.run.parent_run_id:
        for warning in warnings + [w for e in explosions for w in e.warnings]:
            ctx.warn(warning)
    rows_by_store = store_delivery_mode_rows(explosions)
    data = {mode_id: mode_data for rows in rows_by_store.values() for mode_id, mode_data in rows.items()}
    digest = {mode_id: hashlib.blake2b(dumps(d).encode(), digest_size=16).hexdigest() for mode_id, d in data.items()}
    wanted = {store_id: {mode_id: digest[mode_id] for mode_id in rows} for store_id, rows in rows_by_store.items()}
    if ctx.run.parent_run_id:  # a shard: exactly its store
        scope = set(ctx.params["store_ids"])
    return len(explosions), sorted(tree.store_ids if scope is None else scope), wanted, data


def _summary(dry_run: bool, modes: int, stores: int, counters: dict, sent: int) -> str:
    verb = "would send" if dry_run else "sent"
    return (f"{modes} delivery mode(s), {stores} store(s): {verb} {sent} session(s) with "
            f"{counters.get('written', 0)} row(s); {counters.get('skipped', 0)} unchanged")


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
