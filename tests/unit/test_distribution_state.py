"""The stored form of a store's assortment: buckets, digests and what a change touches (no AWS)."""
import zlib

from chalicelib.storage.distribution import (
    BUCKETS,
    BucketedAssortment,
    StoredAssortment,
    assortment_state,
    bucket_of,
)

ITEMS = {(f"P{n:04d}", v) for n in range(300) for v in ("S", "M")} | {("SOLO", "*")}


def stored(wanted: BucketedAssortment, last_session: str | None = "AS-1") -> StoredAssortment:
    return StoredAssortment(list(wanted.digests), wanted.pairs, last_session)


def test_a_products_variants_share_a_bucket_and_buckets_are_stable():
    wanted = BucketedAssortment.of(ITEMS)
    assert wanted.pairs == len(ITEMS)
    assert {b for b in range(BUCKETS) if "P0007/S" in wanted.lines[b]} == {bucket_of("P0007")}
    assert wanted.keys(bucket_of("P0007")) >= {("P0007", "S"), ("P0007", "M")}
    assert BucketedAssortment.of(sorted(ITEMS, reverse=True)) == wanted  # order of input does not matter
    assert bucket_of("P0007") == zlib.crc32(b"P0007") % BUCKETS  # not Python's per-process hash


def test_adding_one_product_changes_exactly_one_bucket():
    before = BucketedAssortment.of(ITEMS)
    after = BucketedAssortment.of(ITEMS | {("NEW", "S"), ("NEW", "M")})
    assert stored(before).changed_buckets(after) == [bucket_of("NEW")]
    assert stored(before).changed_buckets(before) == []
    assert StoredAssortment([]).changed_buckets(before) == [b for b in range(BUCKETS) if before.lines[b]]


def test_a_change_writes_new_chunks_then_the_marker_and_deletes_the_replaced_chunks():
    before = BucketedAssortment.of(ITEMS)
    after = BucketedAssortment.of(ITEMS - {("P0001", "S"), ("P0001", "M")} | {("NEW", "S")})
    old = stored(before)
    buckets = old.changed_buckets(after)
    change = assortment_state("S1", old, after, buckets, "run-2")
    assert {w.part for w in change.writes} == {f"assortment#{b:02d}#{after.digests[b]}" for b in buckets
                                               if after.lines[b]}
    assert {g.part for g in change.garbage} == {f"assortment#{b:02d}#{before.digests[b]}" for b in buckets}
    assert change.marker.part == "assortment" and change.marker.digests == after.digests
    text = zlib.decompress(change.writes[0].chunk).decode()
    assert text.split("\n") == sorted(text.split("\n"))
