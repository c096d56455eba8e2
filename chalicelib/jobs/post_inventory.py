"""Post inventory (DOMAIN §8): apply the inventory journals statement posting created to on-hand stock.

Every journal line moves stock exactly once. A line is applied in a DynamoDB transaction that
adds its quantity to on-hand and writes its posted marker with ``attribute_not_exists``; a rerun
(or a line already posted before a crash) cancels that transaction instead of moving stock again.
A transaction holds 100 actions, so a journal is posted in chunks of 49 lines (two actions each,
plus the journal's own record of the posted lines). For products that do not allow negative
inventory the change carries a condition that on-hand stays at or above zero; lines that would
break it are refused with the AX message, the journal goes to Error, and a rerun after the stock
is corrected posts only the lines still unposted.
"""
from __future__ import annotations

from decimal import Decimal

from chalicelib.domain.inventory import JOURNAL_POSTED, PostingPlan, StockKey, plan_journal_posting, stock_key
from chalicelib.jobs.runtime import JobContext
from chalicelib.jobs.targeting import store_shards, target_store_ids
from chalicelib.storage import records
from chalicelib.storage.base import get_many, iso
from chalicelib.storage.inventory import OnHand, item_key
from chalicelib.storage.journals import InventoryJournalRecord, JournalLinePosting, open_journals
from chalicelib.storage.transact import CONDITION_FAILED, MAX_ACTIONS, Put, Update, write_transaction

LINES_PER_TRANSACTION = (MAX_ACTIONS - 1) // 2
MAX_PLANS = 5  # on-hand changed by someone else between our read and our write: plan again
CHECKPOINT_EVERY = 10  # journals; each is durable on its own, so a continuation simply goes on


def run(ctx: JobContext) -> str:
    poster = _JournalPoster(ctx)
    store_ids = target_store_ids(ctx)
    for store_id in store_ids:
        for journal in open_journals(store_id):
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
        self.journals = self.lines = self.refused = 0

    def post(self, journal: InventoryJournalRecord) -> None:
        unposted = _unposted(journal)
        self._load_products({line["product_id"] for line in unposted})
        applied = 0
        for _ in range(MAX_PLANS):
            plan = self._plan(journal, _unposted(journal))
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

    def _plan(self, journal: InventoryJournalRecord, lines: list[dict]) -> PostingPlan:
        guarded = {stock_key(line) for line in lines if self._guarded(line)}
        on_hand = _on_hand(journal.warehouse_id, guarded)
        return plan_journal_posting(lines, set(), on_hand, self.allow_negative)

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
            codes = write_transaction(*self._actions(journal, chunk, closing))
            markers = codes[:len(chunk)] if codes else [None] * len(chunk)
            stock = codes[len(chunk):2 * len(chunk)]
            # A marker that exists means an earlier run posted the line (the header was stale).
            posted = {int(line["line_no"]) for line, code in zip(chunk, markers, strict=True) if not codes or code}
            journal.posted_line_nos = {*(journal.posted_line_nos or ()), *posted}
            if not codes:
                applied += len(chunk)
            elif CONDITION_FAILED in stock:
                return applied, True
            pending = [line for line in pending if int(line["line_no"]) not in posted]
        return applied, False

    def _actions(self, journal: InventoryJournalRecord, chunk: list[dict],
                 closing: list) -> tuple[list[Put], list[Update]]:
        now = iso()
        puts, updates = [], []
        for line in chunk:
            product_id, variant_id = stock_key(line)
            qty = Decimal(line["qty"])
            puts.append(Put(JournalLinePosting(journal.journal_id, int(line["line_no"]),
                                               item_key=item_key(product_id, variant_id), qty=qty,
                                               posted_at=now, run_id=self.ctx.run_id),
                            JournalLinePosting.line_no.does_not_exist()))
            updates.append(Update(
                OnHand(journal.warehouse_id, item_key(product_id, variant_id)),
                [OnHand.product_id.set(product_id), OnHand.variant_id.set(variant_id),
                 OnHand.qty.add(qty), OnHand.updated_at.set(now)],
                (OnHand.qty >= -qty) if self._guarded(line) else None))
        line_nos = {int(line["line_no"]) for line in chunk}
        updates.append(Update(journal, [InventoryJournalRecord.posted_line_nos.add(line_nos),
                                        InventoryJournalRecord.updated_at.set(now), *closing]))
        return puts, updates

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


def _on_hand(warehouse_id: str, keys: set[StockKey]) -> dict[StockKey, Decimal]:
    """Current on-hand of ``keys`` (strongly consistent: the plan decides on it)."""
    found = get_many(OnHand, [(warehouse_id, item_key(*key)) for key in keys], consistent_read=True)
    return {(item.product_id, item.variant_id): item.qty for item in found}
