"""Process assortments (DOMAIN §5): which products each store may sell, sent as download sessions.

A run explodes every visible assortment once and groups stores with equal assortments. Over
several stores it fans out (``changed_stores``): it reads the stores' digest items (50 stores a
BatchGetItem) and makes one shard per store whose digests differ (or with a resend request or an
unfinished session; every store for ``full_sync``), counting the unchanged ones; an idle run
makes none. A shard (or a run naming one store) walks its stores in pages of ``PAGE``
(checkpointed after each page), reading their digest items again; an unchanged store costs
nothing more. A changed store
has its changed buckets read, gets a session whose package holds exactly the added and removed
pairs (the whole assortment for ``full_sync`` or a store never sent one), and its new state is
written with the session (``jobs/distribution.py``; storage layout in ``storage/distribution.py``).

Statuses: publishing sets ``InProgress`` and starts a run with ``assortment_ids``; every run
counts ``InProgress`` assortments as visible (the publishing run must, and a publish whose run
could not start — the job was busy — is completed by the next scheduled run), and at the end
(a fan-out: in ``close``, once every shard has ended; a store whose shard did not end counts as
not processed) moves each ``InProgress`` assortment whose stores were all processed to ``Published``.
``Published`` assortments whose ``valid_to`` has passed become ``Expired``. A status is only
written if the record is still as read, so an operator's edit (which makes it ``Draft``) wins.
"""
from __future__ import annotations

from chalicelib.domain.explosion import assortment_groups, is_expired, resolve_channels
from chalicelib.domain.runs import RunStatus
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
from chalicelib.jobs.targeting import stores_to_send, targeted_stores
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
    tree, assortments, stores, groups = _explode(ctx, today)
    if ctx.run.parent_run_id:  # one store's shard: its parent publishes and expires
        _send(ctx, Sender(ctx, GROUP), stores, groups)
        return _summary(ctx.dry_run, len(stores), ctx.counters, sessions_sent(ctx)) + recovery_note(ctx)
    expired = _expire(ctx.dry_run, [a for a in assortments if a.get("status") == "Published" and is_expired(a, today)])
    _send(ctx, Sender(ctx, GROUP), stores, groups)
    published, ended = _promote(ctx.dry_run, [a for a in assortments if a.get("status") == "InProgress"],
                                set(stores), tree, today)
    return "; ".join([_summary(ctx.dry_run, len(stores), ctx.counters, sessions_sent(ctx)) + recovery_note(ctx),
                      *_status_notes(ctx.dry_run, published, expired, ended)])


def changed_stores(ctx: JobContext) -> list[str] | None:
    """``shards=``: the stores whose assortment differs from what they were sent (their digest
    items against the explosion's bucket digests, 50 stores a request), with a pending resend or
    an unfinished session; the unchanged ones are counted here (read, skipped)."""
    _, _, stores, groups = _explode(ctx, utcnow().date())
    bucketed: dict[int, BucketedAssortment] = {}

    def wanted(store_id: str) -> BucketedAssortment:
        index = groups.group_of[store_id]
        if index not in bucketed:
            bucketed[index] = BucketedAssortment.of(groups.items[index])
        return bucketed[index]

    busy = stores_to_send(ctx, stores, GROUP, read_assortment_digests,
                          lambda store_id, stored: bool(stored.changed_buckets(wanted(store_id))))
    if busy is not None:
        for store_id in sorted(set(stores) - set(busy)):
            ctx.count(read=wanted(store_id).pairs, skipped=1)
    return busy


def close(parent, shards: list, counters: dict, outputs: list) -> str:
    """A fan-out's last step, once: ended assortments expire, and each ``InProgress`` one whose
    every store was processed (the stores of the run whose shard did not end count as not
    processed) is published; the run's summary."""
    today = utcnow().date()
    tree = load_org_tree()
    assortments = list(records.scan_entity("assortments"))
    stores = _scope(parent.params, tree, assortments, [])
    failed = {shard.params["store_ids"][0] for shard in shards if shard.status != RunStatus.ENDED}
    expired = _expire(parent.dry_run, [a for a in assortments
                                       if a.get("status") == "Published" and is_expired(a, today)])
    published, ended = _promote(parent.dry_run, [a for a in assortments if a.get("status") == "InProgress"],
                                set(stores) - failed, tree, today)
    sent = sum((shard.checkpoint or {}).get("state", {}).get("sent", 0) for shard in shards)
    return "; ".join([_summary(parent.dry_run, len(stores), counters, sent),
                      *_status_notes(parent.dry_run, published, expired, ended)])


def _explode(ctx: JobContext, today) -> tuple:
    """The run's stores and their assortments (every visible one exploded once, stores with equal
    assortments grouped); warnings are the parent's (a shard's store is one it named)."""
    tree, catalog = load_org_tree(), load_catalog()
    assortments = list(records.scan_entity("assortments"))
    warnings: list[str] = []
    stores = list(ctx.params["store_ids"]) if ctx.run.parent_run_id else _scope(ctx.params, tree, assortments, warnings)
    groups = assortment_groups(assortments, tree, catalog, stores, today, visible_statuses=VISIBLE,
                               warnings=warnings)
    if not ctx.run.parent_run_id:
        for warning in warnings:
            ctx.warn(warning)
    return tree, assortments, stores, groups


def _scope(params: dict, tree, assortments: list[dict], warnings: list[str]) -> list[str]:
    """The stores a run works on, sorted: its targeted stores, narrowed to those the named
    ``assortment_ids`` cover."""
    scope, found = targeted_stores(params, tree)
    warnings += found
    wanted_ids = set(params.get("assortment_ids") or ())
    if wanted_ids:
        named = [a for a in assortments if a["id"] in wanted_ids]
        warnings += [f"unknown assortment {i}" for i in sorted(wanted_ids - {a["id"] for a in named})]
        covered = set().union(*(resolve_channels(a.get("channel_lines") or (), tree) for a in named))
        scope = covered if scope is None else scope & covered
    return sorted(tree.store_ids if scope is None else scope)


def _summary(dry_run: bool, stores: int, counters: dict, sent: int) -> str:
    verb = "would send" if dry_run else "sent"
    return (f"{stores} store(s), {counters.get('read', 0)} (store, variant) pair(s): {verb} {sent} session(s) "
            f"with {counters.get('written', 0)} row(s); {counters.get('skipped', 0)} unchanged")


def _status_notes(dry_run: bool, published: list[str], expired: list[str], ended: list[str]) -> list[str]:
    would = "would be " if dry_run else ""
    parts = []
    if published:
        parts.append(f"{would}published {', '.join(published)}")
    if expired or ended:
        parts.append(f"{would}expired {', '.join(expired + [f'{i} (ended before it was published)' for i in ended])}")
    return parts


def _send(ctx: JobContext, sender: Sender, stores: list[str], groups) -> None:
    bucketed: dict[int, BucketedAssortment] = {}
    for page in store_pages(ctx, stores):
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
        rows = assortment_rows(added, removed, whole, all_items=items[store_id])
        ctx.count(written=len(rows))
        state = assortment_state(store_id, stored[store_id], wanted[store_id], buckets, ctx.run_id)
        changes[store_id] = StoreChange(rows, whole, state)
    sender.send(page, changes, stored, strays=stray_chunks)


def _expire(dry_run: bool, due: list[dict]) -> list[str]:
    done = []
    for assortment in due:
        if dry_run or records.replace("assortments", assortment, {**assortment, "status": "Expired"}):
            done.append(assortment["id"])
    return done


def _promote(dry_run: bool, in_progress: list[dict], processed: set[str], tree, today) -> tuple[list, list]:
    """``InProgress → Published`` (or straight to ``Expired`` if it already ended) for each
    assortment whose every store this run processed; returns the ids (published, expired)."""
    published, expired = [], []
    for assortment in in_progress:
        if not resolve_channels(assortment.get("channel_lines") or (), tree) <= processed:
            continue
        status = "Expired" if is_expired(assortment, today) else "Published"
        if dry_run or records.replace("assortments", assortment, {**assortment, "status": status}):
            (published if status == "Published" else expired).append(assortment["id"])
    return published, expired
