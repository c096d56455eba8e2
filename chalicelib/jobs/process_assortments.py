"""Process assortments (DOMAIN §5): which products each store may sell, sent as download sessions.

A run explodes every visible assortment once and groups stores with equal assortments (the
union of the assortments covering a store, of its legal entity). Over several stores it fans
out (``changed_stores``): it reads the stores' digest items (50 stores a BatchGetItem) against
each group's bucket digests and makes one shard per store whose digests differ, with a resend
request or an unfinished session (every store for ``full_sync``), counting the unchanged ones;
an idle run makes none. Before its shards exist the parent writes each needed group's
(product, variant) keys and the stores' groups as plans in S3 (``storage/fanout_plans.py``): a
shard reads its store's group (two GetObjects) instead of scanning the catalogue and exploding
again, so a shard's time and memory are one store's.

A shard (or a run naming one store, which runs whole) walks its stores in pages sized by their
pairs (``store_pages``; checkpointed after each page), reading their digest items again; an
unchanged store costs nothing more. A changed store has its changed buckets read, gets a session
whose package holds exactly the added and removed pairs (the whole assortment for ``full_sync``
or a store never sent one), and its new state is written with the session
(``jobs/distribution.py``; storage layout in ``storage/distribution.py``). A package's rows are
generated while it is written.

Statuses: publishing sets ``InProgress`` and starts a run with ``assortment_ids``; every run
counts ``InProgress`` assortments as visible (the publishing run must, and a publish whose run
could not start — the job was busy — is completed by the next scheduled run), and at the end
(a fan-out: in ``close``, once every shard has ended; a store whose shard did not end counts as
not processed) moves each ``InProgress`` assortment whose stores were all processed to
``Published``. ``Published`` assortments whose ``valid_to`` has passed become ``Expired``. A
status is only written if the record is still as read, so an operator's edit (which makes it
``Draft``) wins.
"""
from __future__ import annotations

from chalicelib.domain.catalog import variant_key_text
from chalicelib.domain.explosion import AssortmentGroups, assortment_groups, is_expired, resolve_channels
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
from chalicelib.storage import fanout_plans, records
from chalicelib.storage.base import utcnow
from chalicelib.storage.distribution import (
    BucketedAssortment,
    assortment_state,
    pair_of_line,
    read_assortment_chunks,
    read_assortment_digests,
    stray_chunks,
)

GROUP = "assortments"
VISIBLE = frozenset({"Published", "InProgress"})
STORES_PLAN = "stores"  # {store_id: group index} of the stores the parent fans out to


def run(ctx: JobContext) -> str:
    today = utcnow().date()
    if ctx.run.parent_run_id:  # one store's shard: its parent publishes and expires
        stores = list(ctx.params["store_ids"])
        _send(ctx, Sender(ctx, GROUP), stores, _shard_groups(ctx, stores, today))
        return _summary(ctx.dry_run, len(stores), ctx.counters, sessions_sent(ctx)) + recovery_note(ctx)
    tree, assortments = load_org_tree(), list(records.scan_entity("assortments"))
    warnings: list[str] = []
    stores = _scope(ctx.params, tree, assortments, warnings)
    expired = _expire(ctx.dry_run, [a for a in assortments if a.get("status") == "Published" and is_expired(a, today)])
    groups = _explode(tree, assortments, stores, today, warnings)
    for warning in warnings:
        ctx.warn(warning)
    _send(ctx, Sender(ctx, GROUP), stores, groups)
    published, ended = _promote(ctx.dry_run, [a for a in assortments if a.get("status") == "InProgress"],
                                set(stores), tree, today)
    return "; ".join([_summary(ctx.dry_run, len(stores), ctx.counters, sessions_sent(ctx)) + recovery_note(ctx),
                      *_status_notes(ctx.dry_run, published, expired, ended)])


def changed_stores(ctx: JobContext) -> list[str] | None:
    """``shards=``: the stores whose assortment differs from what they were sent, with a pending
    resend or an unfinished session (``stores_to_send``); the unchanged ones are counted here
    (read, skipped). ``None`` (run whole) when the run has one store: then nothing is exploded
    here. The groups of the stores to send and each store's group are written as plans."""
    today = utcnow().date()
    tree, assortments = load_org_tree(), list(records.scan_entity("assortments"))
    warnings: list[str] = []
    stores = _scope(ctx.params, tree, assortments, warnings)
    if len(stores) <= 1:
        return None
    groups = _explode(tree, assortments, stores, today, warnings)
    for warning in warnings:
        ctx.warn(warning)
    bucketed: dict[int, BucketedAssortment] = {}

    def wanted(store_id: str) -> BucketedAssortment:
        index = groups.group_of[store_id]
        if index not in bucketed:
            bucketed[index] = BucketedAssortment.of(groups.items[index])
        return bucketed[index]

    busy = stores_to_send(ctx, stores, GROUP, read_assortment_digests,
                          lambda store_id, stored: bool(stored.changed_buckets(wanted(store_id))))
    for store_id in sorted(set(stores) - set(busy)):
        ctx.count(read=len(groups.for_store(store_id)), skipped=1)
    needed = sorted({groups.group_of[s] for s in busy})
    for index in needed:
        fanout_plans.put_lines(ctx.run_id, f"group-{index}", map(variant_key_text, sorted(groups.items[index])))
    if busy:
        fanout_plans.put_json(ctx.run_id, STORES_PLAN, {s: groups.group_of[s] for s in busy})
    return busy


def close(parent, shards: list, counters: dict, outputs: list) -> str:
    """A fan-out's last step, once: its plans are deleted, ended assortments expire, and each
    ``InProgress`` one whose every store was processed (the stores of the run whose shard did
    not end count as not processed) is published; the run's summary."""
    today = utcnow().date()
    if shards:  # a run that fanned out to no store wrote no plan
        fanout_plans.delete_plans(parent.run_id)
    tree, assortments = load_org_tree(), list(records.scan_entity("assortments"))
    stores = _scope(parent.params, tree, assortments, [])
    failed = {shard.params["store_ids"][0] for shard in shards if shard.status != RunStatus.ENDED}
    expired = _expire(parent.dry_run, [a for a in assortments
                                       if a.get("status") == "Published" and is_expired(a, today)])
    published, ended = _promote(parent.dry_run, [a for a in assortments if a.get("status") == "InProgress"],
                                set(stores) - failed, tree, today)
    sent = sum((shard.checkpoint or {}).get("state", {}).get("sent", 0) for shard in shards)
    return "; ".join([_summary(parent.dry_run, len(stores), counters, sent),
                      *_status_notes(parent.dry_run, published, expired, ended)])


def _explode(tree, assortments: list[dict], stores: list[str], today, warnings: list[str]) -> AssortmentGroups:
    """Every visible assortment exploded once (the catalogue read here), stores with equal
    assortments grouped."""
    return assortment_groups(assortments, tree, load_catalog(), stores, today, visible_statuses=VISIBLE,
                             warnings=warnings)


def _shard_groups(ctx: JobContext, stores: list[str], today) -> AssortmentGroups:
    """A shard's store and its group of keys, from its parent's plans; without them (a plan lost
    or removed), exploded here."""
    parent = ctx.run.parent_run_id
    plan = fanout_plans.read_json(parent, STORES_PLAN) or {}
    if all(s in plan for s in stores):
        indexes = sorted({plan[s] for s in stores})
        items = []
        for index in indexes:
            lines = fanout_plans.read_lines(parent, f"group-{index}")
            if lines is None:
                break
            items.append(frozenset(map(pair_of_line, lines)))
        else:
            return AssortmentGroups({s: indexes.index(plan[s]) for s in stores}, items)
    return _explode(load_org_tree(), list(records.scan_entity("assortments")), stores, today, [])


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


def _send(ctx: JobContext, sender: Sender, stores: list[str], groups: AssortmentGroups) -> None:
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
