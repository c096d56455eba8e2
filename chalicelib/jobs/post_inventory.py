"""Post inventory (DOMAIN §8): apply the inventory journals statement posting created to on-hand stock.

Every journal line moves stock exactly once. Lines are applied in DynamoDB transactions that add
each line's quantity to on-hand and the line numbers to the journal's ``posted_line_nos``, on
condition that the journal's posted lines are still those read (the set only grows, so its size
tells): a rerun, or a run that read the journal before another posted some of its lines, cancels
that transaction instead of moving stock again, re-reads the journal and posts only the rest. A
transaction holds 100 actions, so a journal is posted in chunks of 99 lines (one on-hand item
each, plus the journal). For products that do not allow negative inventory the change carries a
condition that on-hand stays at or above zero; lines that would break it are refused with the AX
message, the journal goes to Error, and a rerun after the stock is corrected posts only the lines
still unposted.

A store's open journals are read together: their products in one batch get, the on-hand of
their guarded items (products that may not go negative) in another, kept up to date with the
lines this run applies. A line is refused only on a fresh, consistent read of its on-hand.
"""
from __future__ import annotations

from decimal import Decimal

from pynamodb.expressions.condition import size

from chalicelib.domain.inventory import JOURNAL_POSTED, PostingPlan, StockKey, plan_journal_posting, stock_key
from chalicelib.jobs.runtime import JobContext
from chalicelib.jobs.targeting import store_shards, target_store_ids
from chalicelib.storage import records
from chalicelib.storage.base import get_many, iso
from chalicelib.storage.inventory import OnHand, item_key
from chalicelib.storage.journals import InventoryJournalRecord, open_journals
from chalicelib.storage.transact import CONDITION_FAILED, MAX_ACTIONS, Update, write_transaction

LINES_PER_TRANSACTION = MAX_ACTIONS - 1
MAX_PLANS = 5  # on-hand changed by someone else between our read and our write: plan again
CHECKPOINT_EVERY = 10  # journals; each is durable on its own, so a continuation simply goes on


def run(ctx: JobContext) -> str:
    poster = _JournalPoster(ctx)
    store_ids = target_store_ids(ctx)
    for store_id in store_ids:
        journals = list(open_journals(store_id))
        poster.prepare(journals)
        for journal in journals:
            poster.post(journal)
            if poster.journals % CHECKPOINT_EVERY == 0:
                ctx.checkpoint()
    verb = "would post" if ctx.dry_run else "posted"
    refused = f"; {poster.refused} line(s) refused for lack of stock" if poster.refused else ""
    return (f"{verb} {poster.lines} journal line(s) of {poster.journals} journal(s) for "
            f"{len(store_ids)} store(s){refused}")


class _JournalPoster:
    def __init__(self, ctx: JobContext):
        self.ctx = ctx
        self.allow_negative: dict[str, bool] = {}
        self.stock: dict[tuple[str, StockKey], Decimal] = {}  # (warehouse, item) -> on-hand, guarded items
        self.journals = self.lines = self.refused = 0

    def prepare(self, journals: list[InventoryJournalRecord]) -> None:
        """Read what a store's open journals need: their products, then their guarded items' on-hand."""
        lines = [(journal.warehouse_id, line) for journal in journals for line in _unposted(journal)]
        self._load_products({line["product_id"] for _, line in lines})
        self._read_stock({(warehouse, stock_key(line)) for warehouse, line in lines if self._guarded(line)})

    def post(self, journal: InventoryJournalRecord) -> None:
        unposted = _unposted(journal)
        applied = 0
        for attempt in range(MAX_PLANS):
            plan = self._plan(journal, _unposted(journal), fresh=attempt > 0)
            if self.ctx.dry_run:
                applied = len(plan.post)
                break
            done, stock_changed = self._apply(journal, plan)
            applied += done
            if not stock_changed:
                break
        else:
            self.ctx.error(journal.journal_id, "on-hand kept changing while posting; left for the next run")
            return
        self.journals += 1
        self.lines += applied
        self.refused += len(plan.refused)
        self.ctx.count(read=len(unposted), written=applied, skipped=len(journal.lines) - len(unposted))
        for line, message in plan.refused:
            self.ctx.error(f"{journal.journal_id} line {line['line_no']}", message)

    def _plan(self, journal: InventoryJournalRecord, lines: list[dict], fresh: bool) -> PostingPlan:
        """Plan on the on-hand known (read when missing or ``fresh``); a refusal is decided on a fresh read."""
        guarded = {(journal.warehouse_id, stock_key(line)) for line in lines if self._guarded(line)}
        self._read_stock(guarded if fresh else guarded - self.stock.keys())
        plan = self._plan_on_stock(journal, lines)
        if plan.refused and not fresh:
            self._read_stock(guarded)
            plan = self._plan_on_stock(journal, lines)
        return plan

    def _plan_on_stock(self, journal: InventoryJournalRecord, lines: list[dict]) -> PostingPlan:
        on_hand = {key: qty for (warehouse, key), qty in self.stock.items() if warehouse == journal.warehouse_id}
        return plan_journal_posting(lines, set(), on_hand, self.allow_negative)

    def _read_stock(self, keys: set[tuple[str, StockKey]]) -> None:
        """Current on-hand of ``keys`` (strongly consistent); an item without a record has none."""
        found = get_many(OnHand, [(warehouse, item_key(*key)) for warehouse, key in keys], consistent_read=True)
        self.stock.update(dict.fromkeys(keys, Decimal(0)))
        self.stock.update({(item.warehouse_id, (item.product_id, item.variant_id)): item.qty for item in found})

    def _guarded(self, line: dict) -> bool:
        """A line that takes stock of a product that must not go negative."""
        return Decimal(line["qty"]) < 0 and not self.allow_negative.get(line["product_id"], True)

    def _apply(self, journal: InventoryJournalRecord, plan: PostingPlan) -> tuple[int, bool]:
        """Apply ``plan.post`` chunk by chunk, closing the journal with the last one; returns
        (lines applied, whether on-hand changed underneath so that the journal must be planned again)."""
        pending, applied = list(plan.post), 0
        if not pending:
            journal.update(actions=[InventoryJournalRecord.updated_at.set(iso()), *_closing(plan)])
        while pending:
            chunk = _chunk(pending)
            closing = _closing(plan) if len(chunk) == len(pending) else []
            codes = write_transaction(updates=self._actions(journal, chunk, closing))
            if not codes:
                applied += len(chunk)
                self._applied(journal, chunk)
                pending = pending[len(chunk):]
            elif codes[-1] == CONDITION_FAILED:
                # Another run posted lines of this journal since it was read: post only the rest.
                journal.refresh(consistent_read=True)
                posted = {int(n) for n in journal.posted_line_nos or ()}
                pending = [line for line in pending if int(line["line_no"]) not in posted]
                if not pending and journal.open_store:
                    journal.update(actions=[InventoryJournalRecord.updated_at.set(iso()), *_closing(plan)])
            else:
                return applied, True
        return applied, False

    def _applied(self, journal: InventoryJournalRecord, chunk: list[dict]) -> None:
        """What this run knows after a chunk committed: the journal's posted lines, the guarded on-hand."""
        journal.posted_line_nos = {*(journal.posted_line_nos or ()), *(int(line["line_no"]) for line in chunk)}
        for line in chunk:
            key = (journal.warehouse_id, stock_key(line))
            if key in self.stock:
                self.stock[key] += Decimal(line["qty"])

    def _actions(self, journal: InventoryJournalRecord, chunk: list[dict], closing: list) -> list[Update]:
        now = iso()
        updates = []
        for line in chunk:
            product_id, variant_id = stock_key(line)
            qty = Decimal(line["qty"])
            updates.append(Update(
                OnHand(journal.warehouse_id, item_key(product_id, variant_id)),
                [OnHand.product_id.set(product_id), OnHand.variant_id.set(variant_id),
                 OnHand.qty.add(qty), OnHand.updated_at.set(now)],
                (OnHand.qty >= -qty) if self._guarded(line) else None))
        posted = journal.posted_line_nos or set()
        unchanged = (size(InventoryJournalRecord.posted_line_nos) == len(posted) if posted
                     else InventoryJournalRecord.posted_line_nos.does_not_exist())
        line_nos = {int(line["line_no"]) for line in chunk}
        updates.append(Update(journal, [InventoryJournalRecord.posted_line_nos.add(line_nos),
                                        InventoryJournalRecord.updated_at.set(now), *closing], unchanged))
        return updates

    def _load_products(self, product_ids: set[str]) -> None:
        missing = product_ids - self.allow_negative.keys()
        if missing:
            found = records.get_by_ids("products", missing)
            for product_id in missing:
                # A product deleted since the sale takes the product default (negative allowed).
                self.allow_negative[product_id] = (found.get(product_id) or {}).get("allow_negative_inventory", True)


def stores_with_open_journals(ctx: JobContext) -> list[str] | None:
    """Fan out only to the targeted stores that have journals to post (the job runs every 30
    minutes and most runs find nothing). The open-journals index is sparse, so reading which stores
    it holds costs a page or two, not a run per store."""
    return store_shards(ctx, lambda: {journal.open_store for journal in
                                      InventoryJournalRecord.by_open_store.scan(attributes_to_get=["open_store"])})


def _closing(plan: PostingPlan) -> list:
    """The journal's status once ``plan`` is applied: Posted (and off the open list) or Error with the messages."""
    actions = [InventoryJournalRecord.status.set(plan.status)]
    if plan.status == JOURNAL_POSTED:
        return [*actions, InventoryJournalRecord.message.remove(), InventoryJournalRecord.open_store.remove()]
    return [*actions, InventoryJournalRecord.message.set(plan.message)]


def _unposted(journal: InventoryJournalRecord) -> list[dict]:
    posted = {int(n) for n in journal.posted_line_nos or ()}
    return [line for line in journal.lines if int(line["line_no"]) not in posted]


def _chunk(lines: list[dict]) -> list[dict]:
    """The next lines that fit one transaction, each on-hand item once (one action per item)."""
    chunk, items = [], set()
    for line in lines[:LINES_PER_TRANSACTION]:
        key = stock_key(line)
        if key in items:
            break
        chunk.append(line)
        items.add(key)
    return chunk
