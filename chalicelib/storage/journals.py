"""Inventory journals created by statement posting and applied by post inventory (DOMAIN §8).

A journal keeps its lines (quantities per product and variant) as JSON. ``open_store`` is set while
the journal is Created or Error, so ``by_open_store`` lists a store's journals still to post, in
the order they were created.
Exactly-once posting rests on ``posted_line_nos``: the lines that moved stock, added in the same
DynamoDB transaction as their on-hand changes, on condition that the set is still the one read
(it only grows: its size tells), so a line can move stock only once whatever reruns happen.
"""
from __future__ import annotations

from pynamodb.attributes import NumberSetAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.storage.base import JSONAttribute, meta


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


def open_journals(store_id: str):
    """The store's Created and Error journals, in the order their statements were posted."""
    return InventoryJournalRecord.by_open_store.query(store_id)
