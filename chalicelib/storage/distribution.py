"""What each store was last sent (DOMAIN §1, §5): the stored side of "compare, write only differences".

One table, ``distribution-state``, keyed by ``store_id`` and ``part``:

- ``assortment`` — the store's *digest item*: for each of ``BUCKETS`` buckets a 64-bit digest of
  the bucket's sorted pairs (``""`` when empty) and the total pair count.
- ``assortment#07`` — one *chunk*: the sorted ``product_id/variant_id`` pairs of bucket 7,
  newline-joined and zlib-compressed. A product's variants all hash (CRC-32 of the product id)
  to the same bucket.
- ``delivery-modes`` — ``{mode_id: digest of the mode's data for the store}``.
- ``seq`` — the store's download-session counter (atomic ADD).

Why chunks and digests, not one item per (store, pair): at scale M a first full run assigns
about 620k (store, variant) pairs. One item per pair would cost ~25k BatchWriteItem requests
(0.04 per pair) and 620k write units, and every rerun would have to read them all back to find
what changed. Instead a store's assortment is 64 chunk items of a few hundred pairs each (about
1 KB compressed at M, ~15 KB at L's 300k pairs per store, far below the 400 KB item limit), so
the first run writes 65 items per store. A rerun computes the wanted set's bucket digests (once
per group of stores with equal assortments), reads every store's digest item with one
BatchGetItem per 100 stores and stops there for an unchanged store; for a changed store it reads
and rewrites only the chunks whose digest differs — adding one product touches one chunk per
store. Delivery modes need no chunks: a mode's data is the same for every store it covers, so a
digest per (store, mode) tells whether to send it, and the package carries the data itself.

The chunk count is fixed: changing ``BUCKETS`` would re-bucket every store (one full rewrite).
"""
from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.domain.catalog import VariantKey
from chalicelib.storage.base import JSONAttribute, get_many, iso, meta

BUCKETS = 64
# A store's assortment state is written in one transaction with its session (≤ 100 actions).
assert BUCKETS + 2 <= 100

ASSORTMENT = "assortment"
DELIVERY_MODES = "delivery-modes"
SEQ = "seq"


class StoreState(Model):
    Meta = meta("distribution-state")
    store_id = UnicodeAttribute(hash_key=True)
    part = UnicodeAttribute(range_key=True)
    digests = JSONAttribute(null=True)
    pairs = NumberAttribute(null=True)
    chunk = BinaryAttribute(null=True, legacy_encoding=False)
    seq = NumberAttribute(null=True)
    run_id = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)


def chunk_part(bucket: int) -> str:
    return f"{ASSORTMENT}#{bucket:02d}"


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
        return {_key(line) for line in self.lines[bucket]}


def _key(line: str) -> VariantKey:
    product_id, _, variant_id = line.partition("/")
    return product_id, variant_id


@dataclass(frozen=True)
class StoredAssortment:
    """A store's digest item; ``digests`` is empty for a store that was never sent one."""

    digests: list[str]
    pairs: int

    @property
    def exists(self) -> bool:
        return bool(self.digests)

    def changed_buckets(self, wanted: BucketedAssortment) -> list[int]:
        old = self.digests or [""] * BUCKETS
        return [b for b in range(BUCKETS) if old[b] != wanted.digests[b]]


def read_assortment_digests(store_ids: list[str]) -> dict[str, StoredAssortment]:
    """Every listed store's digest item (BatchGetItem, 100 keys a request)."""
    found = {s.store_id: StoredAssortment(s.digests or [], int(s.pairs or 0))
             for s in get_many(StoreState, [(store_id, ASSORTMENT) for store_id in store_ids])}
    return {store_id: found.get(store_id, StoredAssortment([], 0)) for store_id in store_ids}


def read_assortment_chunks(wanted: Iterable[tuple[str, int]]) -> dict[tuple[str, int], set[VariantKey]]:
    """The stored pairs of each (store, bucket); an absent chunk is an empty bucket."""
    keys = [(store_id, chunk_part(bucket)) for store_id, bucket in wanted]
    chunks: dict[tuple[str, int], set[VariantKey]] = {}
    for item in get_many(StoreState, keys):
        text = zlib.decompress(item.chunk).decode() if item.chunk else ""
        chunks[(item.store_id, int(item.part.rsplit("#", 1)[1]))] = {_key(line) for line in text.split("\n") if line}
    return chunks


def assortment_state(store_id: str, wanted: BucketedAssortment, buckets: Iterable[int],
                     run_id: str) -> tuple[list[StoreState], list[StoreState]]:
    """``(puts, deletes)`` that make the store's stored assortment ``wanted``, touching only
    ``buckets`` (the changed ones) and the digest item."""
    now = iso()
    puts: list[StoreState] = []
    deletes: list[StoreState] = []
    for bucket in buckets:
        lines = wanted.lines[bucket]
        if lines:
            puts.append(StoreState(store_id, chunk_part(bucket), chunk=zlib.compress("\n".join(lines).encode()),
                                   run_id=run_id, updated_at=now))
        else:
            deletes.append(StoreState(store_id, chunk_part(bucket)))
    puts.append(StoreState(store_id, ASSORTMENT, digests=wanted.digests, pairs=wanted.pairs, run_id=run_id,
                           updated_at=now))
    return puts, deletes


# --- delivery modes ------------------------------------------------------------------------------

def read_mode_digests(store_ids: list[str]) -> dict[str, dict[str, str] | None]:
    """Per store ``{mode_id: digest}`` as last sent; ``None`` for a store never sent any."""
    found = {s.store_id: s.digests or {}
             for s in get_many(StoreState, [(store_id, DELIVERY_MODES) for store_id in store_ids])}
    return {store_id: found.get(store_id) for store_id in store_ids}


def mode_state(store_id: str, digests: dict[str, str], run_id: str) -> StoreState:
    return StoreState(store_id, DELIVERY_MODES, digests=digests, run_id=run_id, updated_at=iso())


# --- the per-store session counter ----------------------------------------------------------------

def next_seq(store_id: str) -> int:
    """The store's next download-session number: an atomic ADD, so concurrent jobs never share one.

    Numbers only increase; a run that crashes between taking a number and saving its session
    leaves a gap, which stores must tolerate (they order by ``seq``, they do not count).
    """
    counter = StoreState(store_id, SEQ)
    counter.update(actions=[StoreState.seq.add(1)])
    return int(counter.seq)
