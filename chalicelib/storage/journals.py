"""Inventory journals created by statement posting and applied by post inventory (DOMAIN §8).

A journal keeps its lines (quantities per product and variant) as JSON. ``open_store`` is set while
the journal is Created or Error, so ``by_open_store`` lists a store's journals still to post, in
the order they were created.
Exactly-once posting rests on ``JournalLinePosting``: one marker per posted line, written with
``attribute_not_exists`` in the same DynamoDB transaction as the on-hand change, so a line can
move stock only once whatever reruns happen. ``posted_line_nos`` mirrors the markers on the
journal (same transaction), so planning a rerun needs no extra read.
"""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, NumberSetAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.storage.base import DecimalAttribute, JSONAttribute, meta


class JournalsOpenByStore(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_open_store"
        projection = AllProjection()

    open_store = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class InventoryJournalRecord(Model):
    Meta = meta("inventory-journals")
    journal_id = UnicodeAttribute(hash_key=True)
    store_id = UnicodeAttribute()
    warehouse_id = UnicodeAttribute()
    statement_id = UnicodeAttribute()
    business_date = UnicodeAttribute()
    status = UnicodeAttribute()  # Created | Posted | Error
    lines = JSONAttribute()  # [{line_no, product_id, variant_id, qty}]
    posted_line_nos = NumberSetAttribute(null=True)
    message = UnicodeAttribute(null=True)
    open_store = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute(null=True)
    by_open_store = JournalsOpenByStore()

    def to_api(self) -> dict:
        return {"journal_id": self.journal_id, "store_id": self.store_id, "warehouse_id": self.warehouse_id,
                "statement_id": self.statement_id, "business_date": self.business_date, "status": self.status,
                "lines": self.lines, "posted_lines": len(self.posted_line_nos or ()), "message": self.message}


class JournalLinePosting(Model):
    """The proof that one journal line moved stock (written once, never updated)."""

    Meta = meta("journal-line-postings")
    journal_id = UnicodeAttribute(hash_key=True)
    line_no = NumberAttribute(range_key=True)
    item_key = UnicodeAttribute()
    qty = DecimalAttribute()
    posted_at = UnicodeAttribute()
    run_id = UnicodeAttribute(null=True)


def open_journals(store_id: str):
    """The store's Created and Error journals, in the order their statements were posted."""
    return InventoryJournalRecord.by_open_store.query(store_id)
