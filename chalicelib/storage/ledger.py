"""General-ledger lines written by statement posting (DOMAIN §10) and read by account activity.

Keyed by statement so a statement's lines are written and checked together; the ``by_date``
index serves date-range reads (one query per posting date, never a scan).
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.storage.base import DecimalAttribute, meta


class LedgerByDate(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_date"
        projection = AllProjection()

    posting_date = UnicodeAttribute(hash_key=True)
    line_key = UnicodeAttribute(range_key=True)


class LedgerLine(Model):
    Meta = meta("ledger")
    statement_id = UnicodeAttribute(hash_key=True)
    line_no = NumberAttribute(range_key=True)
    line_key = UnicodeAttribute()  # "<statement_id>#<line_no:04d>", the index's sort key
    posting_date = UnicodeAttribute()
    main_account = UnicodeAttribute()
    debit = DecimalAttribute()
    credit = DecimalAttribute()
    store_id = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    by_date = LedgerByDate()

    def to_dict(self) -> dict:
        return {"statement_id": self.statement_id, "line_no": self.line_no, "posting_date": self.posting_date,
                "main_account": self.main_account, "debit": self.debit, "credit": self.credit,
                "store_id": self.store_id, "description": self.description}


def make_line(statement_id: str, line_no: int, **fields) -> LedgerLine:
    return LedgerLine(statement_id, line_no, line_key=f"{statement_id}#{line_no:04d}", **fields)


def lines_between(from_date: date, to_date: date, page_size: int = 1000) -> Iterator[LedgerLine]:
    """Every ledger line posted from ``from_date`` through ``to_date`` (inclusive)."""
    day = from_date
    while day <= to_date:
        yield from LedgerLine.by_date.query(day.isoformat(), page_size=page_size)
        day += timedelta(days=1)
