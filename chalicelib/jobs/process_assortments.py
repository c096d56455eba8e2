"""Process assortments (DOMAIN §5): which products each store may sell, sent as download sessions.

A run explodes every visible assortment once, groups stores with equal assortments, and walks
the stores in pages sized by their pairs (``store_pages``: sorted, checkpointed after each page).
Per page it reads the
stores' digest items (one BatchGetItem); an unchanged store costs nothing more. A changed store
has its changed buckets read, gets a session whose package holds exactly the added and removed
pairs (the whole assortment for ``full_sync`` or a store never sent one), and its new state is
written with the session (``jobs/distribution.py``; storage layout in ``storage/distribution.py``).
A package's rows are generated while it is written, one store at a time; a page holds only keys
(the shared assortment sets and each changed store's added and removed pairs).

Statuses: publishing sets ``InProgress`` and starts a run with ``assortment_ids``; every run
counts ``InProgress`` assortments as visible (the publishing run must, and a publish whose run
could not start — the job was busy — is completed by the next scheduled run), and at the end
moves each ``InProgress`` assortment whose stores were all processed to ``Published``.
``Published`` assortments whose ``valid_to`` has passed become ``Expired``. A status is only
written if the record is still as read, so an operator's edit (which makes it ``Draft``) wins.
"""
from __future__ import annotations

from chalicelib.domain.explosion import assortment_groups, is_expired, resolve_channels
from chalicelib.domain.sessions import assortment_rows
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
from chalicelib.storage.base import utcnow
from chalicelib.storage.distribution import (
    BucketedAssortment,
    assortment_state,
    read_assortment_chunks,
    read_assortment_digests,
    stray_chunks,
)

GROUP = "assortments"
VISIBLE = frozenset({"Published", "InProgress"})


def run(ctx: JobContext) -> str:
    today = utcnow().date()
    tree, catalog = load_org_tree(), load_catalog()
    assortments = list(records.scan_entity("assortments"))
    expired = _expire(ctx, [a for a in assortments if a.get("status") == "Published" and is_expired(a, today)])

    scope, warnings = targeted_stores(ctx.params, tree)
    wanted_ids = set(ctx.params.get("assortment_ids") or ())
    if wanted_ids:
        named = [a for a in assortments if a["id"] in wanted_ids]
        warnings += [f"unknown assortment {i}" for i in sorted(wanted_ids - {a["id"] for a in named})]
        covered = set().union(*(resolve_channels(a.get("channel_lines") or (), tree) for a in named))
        scope = covered if scope is None else scope & covered
    stores = sorted(tree.store_ids if scope is None else scope)
    groups = assortment_groups(assortments, tree, catalog, stores, today, visible_statuses=VISIBLE,
                               warnings=warnings)
    for warning in warnings:
        ctx.warn(warning)

    _send(ctx, Sender(ctx, GROUP), stores, groups)
    published, ended = _promote(ctx, [a for a in assortments if a.get("status") == "InProgress"], set(stores), tree,
                                today)
    verb = "would send" if ctx.dry_run else "sent"
    counters = ctx.counters
    parts = [f"{len(stores)} store(s), {counters.get('read', 0)} (store, variant) pair(s): {verb} "
             f"{sessions_sent(ctx)} session(s) with {counters.get('written', 0)} row(s); "
             f"{counters.get('skipped', 0)} unchanged{recovery_note(ctx)}"]
    would = "would be " if ctx.dry_run else ""
    if published:
        parts.append(f"{would}published {', '.join(published)}")
    if expired or ended:
        parts.append(f"{would}expired {', '.join(expired + [f'{i} (ended before it was published)' for i in ended])}")
    return "; ".join(parts)


def _send(ctx: JobContext, sender: Sender, stores: list[str], groups) -> None:
    bucketed: dict[int, BucketedAssortment] = {}
    for page in store_pages(ctx, stores, lambda store_id: len(groups.for_store(store_id))):
        for store_id in page:
            index = groups.group_of[store_id]
            if index not in bucketed:
                bucketed[index] = BucketedAssortment.of(groups.items[index])
        _send_page(ctx, sender, page, {s: bucketed[groups.group_of[s]] for s in page},
                   {s: groups.for_store(s) for s in page})


def _send_page(ctx: JobContext, sender: Sender, page: list[str], wanted: dict, items: dict) -> None:
    stored = read_assortment_digests(page)
    full = set(page) if ctx.params.get("full_sync") else sender.full_stores(page, stored)
    changed = {s: stored[s].changed_buckets(wanted[s]) for s in page}
    old = read_assortment_chunks(key for s in page if s not in full for key in stored[s].chunk_keys(s, changed[s]))
    changes = {}
    for store_id in page:
        ctx.count(read=wanted[store_id].pairs)
        buckets = changed[store_id]
        if not buckets and store_id not in full:
            ctx.count(skipped=1)
            continue
        whole = store_id in full or not stored[store_id].exists
        added: set = set()
        removed: set = set()
        if not whole:
            for bucket in buckets:
                before, after = old.get((store_id, bucket), set()), wanted[store_id].keys(bucket)
                added |= after - before
                removed |= before - after
        count = len(items[store_id]) if whole else len(added) + len(removed)
        ctx.count(written=count)
        state = assortment_state(store_id, stored[store_id], wanted[store_id], buckets, ctx.run_id)
        changes[store_id] = StoreChange(assortment_rows(added, removed, whole, all_items=items[store_id]), count,
                                        whole, state)
    sender.send(page, changes, stored, strays=stray_chunks)


def _expire(ctx: JobContext, due: list[dict]) -> list[str]:
    done = []
    for assortment in due:
        if ctx.dry_run or records.replace("assortments", assortment, {**assortment, "status": "Expired"}):
            done.append(assortment["id"])
    return done


def _promote(ctx: JobContext, in_progress: list[dict], processed: set[str], tree, today) -> tuple[list, list]:
    """``InProgress → Published`` (or straight to ``Expired`` if it already ended) for each
    assortment whose every store this run processed; returns the ids (published, expired)."""
    published, expired = [], []
    for assortment in in_progress:
        if not resolve_channels(assortment.get("channel_lines") or (), tree) <= processed:
            continue
        status = "Expired" if is_expired(assortment, today) else "Published"
        if ctx.dry_run or records.replace("assortments", assortment, {**assortment, "status": status}):
            (published if status == "Published" else expired).append(assortment["id"])
    return published, expired
