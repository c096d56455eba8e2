"""Posted statements (DOMAIN §10): one per store, business date and sequence number.

Keyed by store and ``<business_date>#<seq>`` so posting reads a store's statements of a date range
in one strongly consistent query (the next sequence number, and statements a crash left
``Posting``); ``by_date`` lists every store's statements of a date for operators.
"""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.storage.base import JSONAttribute, meta


class StatementsByDate(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_date"
        projection = AllProjection()

    business_date = UnicodeAttribute(hash_key=True)
    statement_id = UnicodeAttribute(range_key=True)


class StatementRecord(Model):
    Meta = meta("statements")
    store_id = UnicodeAttribute(hash_key=True)
    statement_key = UnicodeAttribute(range_key=True)  # "<business_date>#<seq:04d>"
    statement_id = UnicodeAttribute()
    business_date = UnicodeAttribute()
    seq = NumberAttribute()
    status = UnicodeAttribute()  # Posting, then Posted
    totals = JSONAttribute()
    transaction_ids = JSONAttribute()
    journal_id = UnicodeAttribute()
    created_at = UnicodeAttribute()
    posted_at = UnicodeAttribute(null=True)
    by_date = StatementsByDate()

    def to_api(self) -> dict:
        return {"statement_id": self.statement_id, "store_id": self.store_id, "business_date": self.business_date,
                "seq": self.seq, "status": self.status, "totals": self.totals, "journal_id": self.journal_id,
                "created_at": self.created_at, "posted_at": self.posted_at}


def statement_key(business_date: str, seq: int) -> str:
    return f"{business_date}#{seq:04d}"


def in_range(store_id: str, from_date: str, through_date: str) -> list[StatementRecord]:
    """The store's statements of ``from_date`` … ``through_date`` (strongly consistent)."""
    return list(StatementRecord.query(
        store_id, StatementRecord.statement_key.between(f"{from_date}#", f"{through_date}#~"), consistent_read=True))
