"""What each store was last sent (DOMAIN §1, §5): the stored side of "compare, write only differences".

One table, ``distribution-state``, keyed by ``store_id`` and ``part``:

- ``assortment`` — the store's *digest item*: for each of ``BUCKETS`` buckets a 64-bit digest of
  the bucket's sorted pairs (``""`` when empty), the pair count, and ``last_session``: the
  session that delivered this state (the commit marker, see ``jobs/distribution.py``).
- ``assortment#07#<digest>`` — one *chunk*: the sorted ``product_id/variant_id`` pairs of bucket
  7, newline-joined and zlib-compressed. A product's variants all hash (CRC-32 of the product
  id) to the same bucket. Chunks are addressed by their digest and never overwritten: a change
  writes new chunks, then the digest item that points at them (the single-item commit), then
  deletes the chunks it replaced — so a crash at any point leaves the last committed state whole.
- ``delivery-modes`` — ``{mode_id: digest of the mode's data for the store}`` and ``last_session``.
- ``seq`` — the store's download-session counter (atomic ADD).

Why chunks and digests, not one item per (store, pair): at scale M a first full run assigns
about 620k (store, variant) pairs. One item per pair would cost ~25k BatchWriteItem requests
(0.04 per pair) and 620k write units, and every rerun would have to read them all back to find
what changed. Instead a store's assortment is 64 chunk items of a few hundred pairs each (about
1 KB compressed at M, ~15 KB at L's 300k pairs per store, far below the 400 KB item limit), so
the first run writes 65 items per store. A rerun computes the wanted set's bucket digests (once
per group of stores with equal assortments), reads every store's digest item with one
BatchGetItem per 100 stores and stops there for an unchanged store; for a changed store it reads
only the chunks whose digest differs — adding one product touches one chunk per store. Delivery
modes need no chunks: a mode's data is the same for every store it covers, so a digest per
(store, mode) tells whether to send it, and the package carries the data itself.

The chunk count is fixed: changing ``BUCKETS`` would re-bucket every store (one full rewrite).
A crash between writing new chunks and deleting the replaced ones can leave unreferenced chunk
items; the run that finishes the crashed run's session removes them (``stray_chunks``).
"""
from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError
from pynamodb.models import Model

from chalicelib.domain.catalog import VariantKey
from chalicelib.storage.base import JSONAttribute, get_many, iso, meta
from chalicelib.storage.faults import condition_failed

BUCKETS = 64

ASSORTMENT = "assortment"
DELIVERY_MODES = "delivery-modes"
SEQ = "seq"
PARTS = {"assortments": ASSORTMENT, "delivery-modes": DELIVERY_MODES}


class StoreState(Model):
    Meta = meta("distribution-state")
    store_id = UnicodeAttribute(hash_key=True)
    part = UnicodeAttribute(range_key=True)
    digests = JSONAttribute(null=True)
    pairs = NumberAttribute(null=True)
    chunk = BinaryAttribute(null=True, legacy_encoding=False)
    seq = NumberAttribute(null=True)
    last_session = UnicodeAttribute(null=True)
    run_id = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)


def chunk_part(bucket: int, digest: str) -> str:
    return f"{ASSORTMENT}#{bucket:02d}#{digest}"


def resend_part(group: str) -> str:
    return f"resend#{group}"


def _read_parts(store_ids: list[str], group: str) -> tuple[dict[str, StoreState], dict[str, int]]:
    """Each store's state item of ``group`` and the ``seq`` of its pending full resend, if any:
    one BatchGetItem per 50 stores."""
    part, resend = PARTS[group], resend_part(group)
    items, resends = {}, {}
    for item in get_many(StoreState, [(s, p) for s in store_ids for p in (part, resend)]):
        if item.part == part:
            items[item.store_id] = item
        else:
            resends[item.store_id] = int(item.seq)
    return items, resends


def request_full_resend(store_id: str, group: str, seq: int) -> None:
    """The store's next session of ``group`` must be full: session ``seq`` will not be applied."""
    StoreState(store_id, resend_part(group), seq=seq, updated_at=iso()).save()


def clear_full_resend(store_id: str, group: str, sent_seq: int) -> None:
    """Full session ``sent_seq`` is committed: drop the resend request it satisfies (one for an
    older session; a cancel of a newer session stays)."""
    try:
        StoreState(store_id, resend_part(group)).delete(condition=StoreState.seq < sent_seq)
    except DeleteError as exc:
        if not condition_failed(exc):
            raise


# --- assortments ---------------------------------------------------------------------------------

_bucket_cache: dict[str, int] = {}


def bucket_of(product_id: str) -> int:
    found = _bucket_cache.get(product_id)
    if found is None:
        found = _bucket_cache[product_id] = zlib.crc32(product_id.encode()) % BUCKETS
    return found


def _digest(lines: list[str]) -> str:
    if not lines:
        return ""
    return hashlib.blake2b("\n".join(lines).encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class BucketedAssortment:
    """An assortment split into buckets: sorted ``pid/vid`` lines per bucket and their digests."""

    lines: list[list[str]]
    digests: list[str]

    @classmethod
    def of(cls, items: Iterable[VariantKey]) -> BucketedAssortment:
        lines: list[list[str]] = [[] for _ in range(BUCKETS)]
        for product_id, variant_id in items:
            lines[bucket_of(product_id)].append(f"{product_id}/{variant_id}")
        for bucket in lines:
            bucket.sort()
        return cls(lines, [_digest(bucket) for bucket in lines])

    @property
    def pairs(self) -> int:
        return sum(len(bucket) for bucket in self.lines)

    def keys(self, bucket: int) -> set[VariantKey]:
        return {pair_of_line(line) for line in self.lines[bucket]}


def pair_of_line(line: str) -> VariantKey:
    """A ``pid/vid`` line (a chunk's, a fan-out plan's) back to its key."""
    product_id, _, variant_id = line.partition("/")
    return product_id, variant_id


@dataclass(frozen=True)
class StoredAssortment:
    """A store's digest item; ``digests`` is empty for a store that was never sent one."""

    digests: list[str]
    pairs: int = 0
    last_session: str | None = None
    resend: int | None = None

    @property
    def exists(self) -> bool:
        return bool(self.digests)

    def changed_buckets(self, wanted: BucketedAssortment) -> list[int]:
        old = self.digests or [""] * BUCKETS
        return [b for b in range(BUCKETS) if old[b] != wanted.digests[b]]

    def chunk_keys(self, store_id: str, buckets: Iterable[int]) -> list[tuple[str, str]]:
        """Keys of the stored chunks of ``buckets`` (an empty bucket has none)."""
        return [(store_id, chunk_part(b, self.digests[b])) for b in buckets if self.exists and self.digests[b]]


def read_assortment_digests(store_ids: list[str]) -> dict[str, StoredAssortment]:
    """Every listed store's digest item and resend request (BatchGetItem, 50 stores a request)."""
    found, resends = _read_parts(store_ids, "assortments")
    result = {}
    for store_id in store_ids:
        item = found.get(store_id)
        result[store_id] = StoredAssortment(item.digests or [], int(item.pairs or 0), item.last_session,
                                            resends.get(store_id)) if item \
            else StoredAssortment([], resend=resends.get(store_id))
    return result


def read_assortment_chunks(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, int], set[VariantKey]]:
    """The stored pairs of each chunk, by (store, bucket)."""
    chunks: dict[tuple[str, int], set[VariantKey]] = {}
    for item in get_many(StoreState, list(keys)):
        text = zlib.decompress(item.chunk).decode()
        bucket = int(item.part.split("#")[1])
        chunks[(item.store_id, bucket)] = {pair_of_line(line) for line in text.split("\n") if line}
    return chunks


@dataclass
class StateChange:
    """New state for one store: ``writes`` first, then ``marker`` (the commit: it names the
    session that delivered the state), then ``garbage`` (what the commit replaced) is deleted."""

    writes: list[StoreState]
    marker: StoreState
    garbage: list[StoreState]


def assortment_state(store_id: str, stored: StoredAssortment, wanted: BucketedAssortment, buckets: list[int],
                     run_id: str) -> StateChange:
    """The writes that make the store's stored assortment ``wanted``, touching only ``buckets``."""
    now = iso()
    writes = [StoreState(store_id, chunk_part(b, wanted.digests[b]), chunk=zlib.compress("\n".join(
              wanted.lines[b]).encode()), run_id=run_id, updated_at=now) for b in buckets if wanted.lines[b]]
    marker = StoreState(store_id, ASSORTMENT, digests=wanted.digests, pairs=wanted.pairs, run_id=run_id,
                        updated_at=now)
    garbage = [StoreState(*key) for key in stored.chunk_keys(store_id, buckets)]
    return StateChange(writes, marker, garbage)


def stray_chunks(store_id: str, digests: list[str]) -> list[StoreState]:
    """The store's chunk items that ``digests`` (its committed digest item) does not reference:
    what a run that died between writing chunks and deleting the replaced ones left (a key query
    on the store's partition; only run for a store whose session a dead run left ``Started``)."""
    kept = {chunk_part(b, d) for b, d in enumerate(digests or []) if d}
    return [StoreState(store_id, item.part) for item in StoreState.query(
        store_id, StoreState.part.startswith(f"{ASSORTMENT}#"), attributes_to_get=["store_id", "part"])
        if item.part not in kept]


# --- delivery modes ------------------------------------------------------------------------------

@dataclass(frozen=True)
class StoredModes:
    """``digests`` ``{mode_id: digest}`` as last sent (``None``: never sent any)."""

    digests: dict[str, str] | None
    last_session: str | None = None
    resend: int | None = None


def read_mode_digests(store_ids: list[str]) -> dict[str, StoredModes]:
    found, resends = _read_parts(store_ids, "delivery-modes")
    result = {}
    for store_id in store_ids:
        item = found.get(store_id)
        result[store_id] = StoredModes(item.digests or {}, item.last_session, resends.get(store_id)) if item \
            else StoredModes(None, resend=resends.get(store_id))
    return result


def mode_state(store_id: str, digests: dict[str, str], run_id: str) -> StateChange:
    return StateChange([], StoreState(store_id, DELIVERY_MODES, digests=digests, run_id=run_id, updated_at=iso()), [])


# --- the per-store session counter ----------------------------------------------------------------

def next_seq(store_id: str) -> int:
    """The store's next download-session number: an atomic ADD, so concurrent jobs never share one.

    Numbers only increase; a run that crashes between taking a number and saving its session
    leaves a gap, which stores must tolerate (they order by ``seq``, they do not count).
    """
    counter = StoreState(store_id, SEQ)
    counter.update(actions=[StoreState.seq.add(1)])
    return int(counter.seq)


def last_seq(store_id: str) -> int:
    """The store's last session number taken (0 if none)."""
    try:
        return int(StoreState.get(store_id, SEQ, consistent_read=True).seq or 0)
    except StoreState.DoesNotExist:
        return 0
