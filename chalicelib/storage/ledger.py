"""General-ledger lines written by statement posting (DOMAIN §10) and read by account activity.

Keyed by statement so a statement's lines are written and checked together; the ``by_date``
index serves date-range reads (one query per posting date, never a scan).

Every line also carries a sequence number (DOMAIN §13 "Late ledger lines"), so account activity
knows exactly which lines a result covers. Numbers are counted per legal entity (the company
whose books a profile feeds; one hot counter per company rather than one for the retailer) in
``LedgerSequence``. A statement takes one block, ``seq`` … ``block_end``, and the counter moves
in the same transaction as its lines, conditioned on the value read: committed numbers have no
holes, so a hole seen through the eventually consistent ``by_seq`` index is a posting not yet
visible, never a lost one.
"""
from __future__ import annotations

from collections.abc import Sequence

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.storage.base import DecimalAttribute, meta
from chalicelib.storage.transact import CONDITION_FAILED, Put, Update, write_transaction

NUMBERING_ATTEMPTS = 10


class LedgerByDate(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_date"
        projection = AllProjection()

    posting_date = UnicodeAttribute(hash_key=True)
    line_key = UnicodeAttribute(range_key=True)


class LedgerBySequence(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_seq"
        projection = AllProjection()

    legal_entity = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True)


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
    legal_entity = UnicodeAttribute(null=True)  # the store's; the by_seq partition
    currency = UnicodeAttribute(null=True)  # the store's (ISO 4217)
    seq = NumberAttribute(null=True)
    block_end = NumberAttribute(null=True)  # the last number of the statement's block
    by_date = LedgerByDate()
    by_seq = LedgerBySequence()

    def to_dict(self) -> dict:
        return {"statement_id": self.statement_id, "line_no": self.line_no, "posting_date": self.posting_date,
                "main_account": self.main_account, "debit": self.debit, "credit": self.credit,
                "store_id": self.store_id, "description": self.description, "legal_entity": self.legal_entity,
                "currency": self.currency, "seq": self.seq, "block_end": self.block_end}


class LedgerSequence(Model):
    """The last sequence number given to a ledger line of a legal entity."""

    Meta = meta("ledger-sequence")
    legal_entity = UnicodeAttribute(hash_key=True)
    last_seq = NumberAttribute(default=0)


class SequenceContended(Exception):
    """Other postings kept taking the numbers first; nothing was written."""


def make_line(statement_id: str, line_no: int, **fields) -> LedgerLine:
    return LedgerLine(statement_id, line_no, line_key=f"{statement_id}#{line_no:04d}", **fields)


def write_numbered(legal_entity: str, lines: Sequence[LedgerLine], puts: Sequence[Put] = (),
                   last_seen: dict[str, int] | None = None, updates: Sequence[Update] = ()) -> list[str | None]:
    """Number ``lines`` as one block of ``legal_entity``'s sequence and commit them with ``puts``,
    ``updates`` and the counter in one transaction.

    ``last_seen`` caches the counter per legal entity between calls (a posting run reads it once
    and re-reads only when another run moved it). Returns ``[]`` when committed, else the failure
    codes of ``puts`` then ``updates`` (as ``write_transaction``); raises ``SequenceContended``
    after ``NUMBERING_ATTEMPTS`` stale reads.
    """
    last_seen = {} if last_seen is None else last_seen
    for _ in range(NUMBERING_ATTEMPTS):
        if legal_entity not in last_seen:
            last_seen[legal_entity] = _read_counter(legal_entity)
        last = last_seen[legal_entity]
        end = last + len(lines)
        for number, line in enumerate(lines, start=last + 1):
            line.legal_entity, line.seq, line.block_end = legal_entity, number, end
        counter = Update(LedgerSequence(legal_entity), [LedgerSequence.last_seq.set(end)],
                         LedgerSequence.last_seq == last if last else LedgerSequence.last_seq.does_not_exist())
        failed = write_transaction(puts=[*puts, *(Put(line) for line in lines)], updates=[*updates, counter])
        if not failed:
            last_seen[legal_entity] = end
            return []
        own = failed[:len(puts)] + failed[len(puts) + len(lines):-1]
        if CONDITION_FAILED in own:
            return own
        del last_seen[legal_entity]  # another posting took these numbers: read the counter again
    raise SequenceContended(f"the ledger sequence of {legal_entity} kept moving; {NUMBERING_ATTEMPTS} attempts")


def legal_entities() -> list[str]:
    """Every legal entity with numbered ledger lines (a scan of one small item per company)."""
    return sorted(counter.legal_entity for counter in LedgerSequence.scan())


def _read_counter(legal_entity: str) -> int:
    try:
        return LedgerSequence.get(legal_entity, consistent_read=True).last_seq
    except LedgerSequence.DoesNotExist:
        return 0


def lines_from(legal_entity: str, first_seq: int, limit: int) -> tuple[list[LedgerLine], bool]:
    """Up to ``limit`` of ``legal_entity``'s lines numbered ``first_seq`` or above, in number order
    (the eventually consistent index: a committed line may not show yet), and whether more follow
    (DynamoDB may end a page early, at 1 MB)."""
    page = LedgerLine.by_seq.query(legal_entity, LedgerLine.seq >= first_seq, limit=limit, page_size=limit)
    lines = list(page)
    return lines, page.last_evaluated_key is not None
