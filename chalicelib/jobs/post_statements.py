"""Post statements (DOMAIN §10): each store's completed, unposted transactions of each business date
become a statement with balanced ledger lines and one inventory journal; the transactions become
Posted (their requested receipts stay Pending for send-email-receipts).

A statement is posted exactly once, whatever reruns or crashes happen. One DynamoDB transaction
writes the statement (with its transaction ids, under a deterministic id ``<store>-<date>-<seq>``
that must not exist yet), its ledger lines (numbered as one block of the legal entity's ledger
sequence, whose counter moves in the same transaction: ``ledger.write_numbered``), its journal and,
when they all fit its 100 actions (a statement of a store's day mostly does), the marks of its
transactions as Posted, each on condition that it is still unposted: the statement is then
``Posted`` at once, in one request. A larger statement is posted in two steps:

1. that transaction writes the statement ``Posting`` without the marks — statement, ledger lines
   and journal appear together or not at all;
2. transactions of up to 100 actions mark its transactions Posted; the last one also sets the
   statement ``Posted``.

The transactions of several dates are read together (one consistent batch get of up to 100).
A crash between the two steps leaves a ``Posting`` statement whose transactions are still (partly)
unposted. The next run finds it through them, re-reads them consistently and marks only those
not yet marked, so no ledger line, journal or transaction is written twice. Transactions that
arrive after a date was posted go into the next statement of that date (``seq`` + 1), and the run's
message names them ("1 late statement for 2026-11-20").

A run over stores of several legal entities fans out one shard per legal entity (``legal_entity_shards``):
a legal entity's ledger numbers come from one counter, so its stores post one after another
without contending for it, and the run keeps each product's category id for all of them.

Without ``through_date`` a store posts through its own yesterday: the day before today in its
``time_zone`` (DOMAIN §13 "Days are local"), so a Toronto store's evening sales are never posted
while its day is still open.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from chalicelib.domain.days import local_yesterday
from chalicelib.domain.errors import DomainError
from chalicelib.domain.inventory import JOURNAL_POSTED
from chalicelib.domain.statements import STATEMENT_POSTED as POSTED
from chalicelib.domain.statements import STATEMENT_POSTING as POSTING
from chalicelib.domain.statements import Statement, build_statement
from chalicelib.jobs.parameters import retail_parameters
from chalicelib.jobs.runtime import JobContext
from chalicelib.jobs.targeting import target_stores
from chalicelib.storage import records
from chalicelib.storage.base import iso, utcnow
from chalicelib.storage.journals import InventoryJournalRecord
from chalicelib.storage.ledger import SequenceContended, make_line, write_numbered
from chalicelib.storage.statements import StatementRecord, in_range, statement_key
from chalicelib.storage.transact import MAX_ACTIONS, Put, Update, write_transaction
from chalicelib.storage.transactions import PosTransaction, is_unposted, mark_posted, read_consistent, unposted_keys

DEFAULT_CURRENCY = "USD"  # DOMAIN §12: a store without currency
UNKNOWN_LEGAL_ENTITY = "-"  # a store record gone missing; its lines still get numbers
READ_AHEAD = 100  # transactions read in one batch get, over as many dates as they fill
CHECKPOINT_EVERY = 10  # statements; each is durable on its own, so a continuation simply goes on


class CannotPost(DomainError):
    """A statement that cannot be posted now; reported, its transactions stay unposted for the next run."""


def run(ctx: JobContext) -> str:
    poster = _Poster(ctx, ctx.params.get("through_date"), retail_parameters()["accounts"])
    poster.stores = target_stores(ctx)
    store_ids = list(poster.stores)
    for store_id in store_ids:
        poster.post_store(store_id)
    verb = "would post" if ctx.dry_run else "posted"
    through = poster.through or "yesterday in each store's time zone"
    finished = f"; finished {poster.finished} interrupted statement(s)" if poster.finished else ""
    return (f"{verb} {poster.posted} statement(s) of {poster.transactions} transaction(s) for "
            f"{len(store_ids)} store(s) through {through}{finished}{_late_note(poster.late)}")


def legal_entity_shards(ctx: JobContext) -> dict[str, list[str]] | None:
    """The run's shards: one per legal entity with its targeted stores, or ``None`` (run whole)
    when they are all of one. A legal entity's ledger lines are numbered from one gapless counter,
    so its stores post one after another in any case: as shards of their own they contend for it
    (a refused transaction, a counter read and a retry whenever two post at once), and each shard
    read its products afresh and paid its own run record and lock."""
    targeted = target_stores(ctx)
    if len(targeted) <= 1:
        return None
    groups: dict[str, list[str]] = defaultdict(list)
    for store_id, store in targeted.items():
        groups[store.get("legal_entity") or UNKNOWN_LEGAL_ENTITY].append(store_id)
    return dict(groups) if len(groups) > 1 else None


def _late_note(late: Counter) -> str:
    """E.g. "; 1 late statement for 2026-11-20": statements of dates that had one already."""
    if not late:
        return ""
    count = sum(late.values())
    return f"; {count} late statement{'s' if count > 1 else ''} for {', '.join(sorted(late))}"


class _Poster:
    """Posts store after store; keeps what every statement needs (categories, products) once per run."""

    def __init__(self, ctx: JobContext, through: str | None, accounts: dict):
        self.ctx = ctx
        self.through = through  # None: each store's own yesterday (DOMAIN §13 "Days are local")
        self.now = utcnow()
        self.accounts = accounts
        self.categories = {c["id"]: c for c in records.scan_entity("categories")}
        self.stores: dict[str, dict] = {}
        self.category_of: dict[str, str | None] = {}  # product -> category id (None: no product): small
        self.posted = self.transactions = self.finished = 0
        self.late: Counter = Counter()  # business date -> statements made for a date that had one
        self.ledger_sequence: dict[str, int] = {}  # last number seen per legal entity (write_numbered)

    def post_store(self, store_id: str) -> None:
        # No zone's yesterday is after UTC today: the index query stops there, each store's own
        # yesterday is applied once its record is read (only stores with candidates are read).
        candidates: dict[str, list[str]] = defaultdict(list)
        for business_date, transaction_id in unposted_keys(store_id, self.through or self.now.date().isoformat()):
            candidates[business_date].append(transaction_id)
        if not candidates:
            return
        store = self.stores.get(store_id) or {"id": store_id}
        through = self.through or local_yesterday(store.get("time_zone"), self.now).isoformat()
        dates = sorted(d for d in candidates if d <= through)
        if not dates:
            return
        statements = in_range(store_id, dates[0], dates[-1])
        last_seq: dict[str, int] = defaultdict(int)
        claimed: set[str] = set()  # transactions of statements a crash left Posting
        for statement in statements:
            last_seq[statement.business_date] = max(last_seq[statement.business_date], statement.seq)
            if statement.status == POSTING:
                claimed.update(statement.transaction_ids)
                self._finish(statement)
        pending = [(d, ids) for d in dates if (ids := [t for t in candidates[d] if t not in claimed])]
        while pending:
            batch, count = [], 0
            while pending and (not batch or count + len(pending[0][1]) <= READ_AHEAD):
                batch.append(pending.pop(0))
                count += len(batch[-1][1])
            found = read_consistent(store_id, [t for _, ids in batch for t in ids])
            self._read_products(found.values())  # for all the batch's dates: full batch gets
            for business_date, ids in batch:
                self._post_date(store, business_date, [found[t] for t in sorted(ids) if t in found],
                                last_seq[business_date] + 1)

    def _post_date(self, store: dict, business_date: str, found: list[PosTransaction], seq: int) -> None:
        unposted = [t for t in found if is_unposted(t)]
        if not unposted:
            return
        key = f"{store['id']} {business_date}"
        try:
            statement = build_statement(store, business_date, [t.data for t in unposted],
                                        self._categories_by_product(unposted), self.categories, self.accounts, seq=seq)
            if not self.ctx.dry_run:
                record, marked = _write_statement(statement, seq, iso(), store, self.ledger_sequence, unposted)
                if not marked:
                    _mark_transactions(record, unposted, iso())
        except DomainError as exc:
            self.ctx.error(key, str(exc))
            return
        self.posted += 1
        self.transactions += len(unposted)
        if seq > 1:
            self.late[business_date] += 1
        self.ctx.count(read=len(unposted), written=0 if self.ctx.dry_run else 1)
        if self.posted % CHECKPOINT_EVERY == 0:
            self.ctx.checkpoint()

    def _finish(self, statement: StatementRecord) -> None:
        """Complete a statement a crash left Posting: its ledger lines and journal were written with
        it; mark the transactions that are not marked yet, then the statement."""
        found = read_consistent(statement.store_id, statement.transaction_ids)
        unposted = [found[t] for t in sorted(found) if is_unposted(found[t])]
        if self.ctx.dry_run:
            return
        try:
            _mark_transactions(statement, unposted, iso())
        except CannotPost as exc:
            self.ctx.error(statement.statement_id, str(exc))
            return
        self.finished += 1
        self.ctx.count(read=len(unposted), written=1)

    def _read_products(self, transactions: Iterable[PosTransaction]) -> None:
        """The categories of the products of ``transactions`` not read yet this run (kept for its later
        statements: only the category id, so a run over many stores stays small)."""
        missing = {line["product_id"] for t in transactions for line in t.data["lines"]} - self.category_of.keys()
        if missing:
            found = records.get_by_ids("products", missing)
            self.category_of.update({pid: (found[pid] or {}).get("category_id") if pid in found else None
                                     for pid in missing})

    def _categories_by_product(self, transactions: list[PosTransaction]) -> dict[str, dict]:
        self._read_products(transactions)  # read with their batch already, unless finishing one
        wanted = {line["product_id"] for t in transactions for line in t.data["lines"]}
        return {pid: self.categories.get(self.category_of[pid]) for pid in wanted if pid in self.category_of}


def _write_statement(statement: Statement, seq: int, now: str, store: dict, ledger_sequence: dict[str, int],
                     transactions: list[PosTransaction]) -> tuple[StatementRecord, bool]:
    """Statement, ledger lines (numbered from the legal entity's sequence, with the counter),
    journal and, when they fit, the transactions' marks in one DynamoDB transaction. Returns the
    statement and whether its transactions were marked (it is then Posted, else Posting)."""
    marked = len(statement.ledger_lines) + 3 + len(transactions) <= MAX_ACTIONS
    record = StatementRecord(
        statement.store_id, statement_key(statement.business_date, seq),
        statement_id=statement.statement_id, business_date=statement.business_date,
        seq=seq, status=POSTED if marked else POSTING, totals=statement.totals.to_dict(),
        transaction_ids=list(statement.transaction_ids), journal_id=statement.inventory_journal.journal_id,
        created_at=now, posted_at=now if marked else None)
    ledger = [make_line(statement.statement_id, number, posting_date=line.posting_date,
                        main_account=line.main_account, debit=line.debit, credit=line.credit,
                        store_id=line.store_id, description=line.description,
                        currency=store.get("currency") or DEFAULT_CURRENCY)
              for number, line in enumerate(statement.ledger_lines, start=1)]
    journal = statement.inventory_journal
    journal_record = InventoryJournalRecord(
        journal.journal_id, store_id=journal.store_id, warehouse_id=journal.warehouse_id,
        statement_id=journal.statement_id, business_date=statement.business_date,
        status=journal.status if journal.lines else JOURNAL_POSTED,
        lines=[line.to_dict() for line in journal.lines],
        open_store=journal.store_id if journal.lines else None, created_at=now)
    if len(ledger) + 3 > MAX_ACTIONS:
        raise CannotPost(f"statement {statement.statement_id} needs {len(ledger)} ledger lines; "
                                f"at most {MAX_ACTIONS - 3} post atomically with it")
    try:
        failed = write_numbered(store.get("legal_entity") or UNKNOWN_LEGAL_ENTITY, ledger,
                                [Put(record, StatementRecord.statement_key.does_not_exist()), Put(journal_record)],
                                ledger_sequence, [mark_posted(t, statement.statement_id, now) for t in transactions]
                                if marked else [])
    except SequenceContended as exc:
        raise CannotPost(f"statement {statement.statement_id}: {exc}; posting it next run") from None
    if failed and failed[0]:
        raise CannotPost(f"statement {statement.statement_id} already exists; posting it again next run")
    if failed:
        raise CannotPost(f"statement {statement.statement_id}: a transaction was posted by someone else; "
                         "left for the next run")
    return record, marked


def _mark_transactions(statement: StatementRecord, transactions: list[PosTransaction], now: str) -> None:
    """Mark the transactions Posted (each only if still unposted), the statement Posted with the last chunk."""
    updates = [mark_posted(t, statement.statement_id, now) for t in transactions]
    size = MAX_ACTIONS - 1
    chunks = [updates[start:start + size] for start in range(0, len(updates), size)] or [[]]
    for number, chunk in enumerate(chunks, start=1):
        if number == len(chunks):
            chunk = [*chunk, Update(statement, [StatementRecord.status.set(POSTED),
                                                StatementRecord.posted_at.set(now)],
                                    StatementRecord.status == POSTING)]
        if write_transaction(updates=chunk):
            raise CannotPost(f"statement {statement.statement_id}: a transaction was posted or the "
                                    "statement finished by someone else; left for the next run")
