"""Send email receipts (DOMAIN §6): one email per eligible transaction, through SES (v2), exactly once.

Eligible: a posted transaction (any completed one with ``include_unposted``) whose customer asked
for a receipt at the sale, with email status Pending. The job reads them from the email queue
index (never a scan) a page at a time (a checkpoint each), partition after partition: a store's
receipts wait in one of ``QUEUE_PARTITIONS``. With a backlog (``FAN_OUT_FULL`` partitions holding
more than a page) it fans out a shard per partition instead, sending in parallel (``queue_shards``).
Then for each receipt:

1. claims it: a conditional update Pending → Sending with this run's token and time, so two runs
   never send the same receipt. Claims are written 100 at a time (one DynamoDB transaction of
   conditional updates; a receipt whose condition fails is left out), right before those 100 are
   sent. A claim is a lease as long as the job lock's and is never renewed: one send takes well
   under a second (the SES client's timeouts and retries are bounded below the lease,
   ``storage.aws``), so a claim older than the lease belongs to an invocation that died or gave up
   (its own lock ran out with it). The next run after the lease takes it over and sends it —
   again, if the dead one died after SES accepted it (the one repeat allowed). The dead run sent
   its claims in queue order, so only the first of its claims still held was being sent: that one
   is counted in ``email_takeovers`` until the receipt is sent (the others were never tried), so a
   receipt that kills every run that tries it fails after ``email_max_attempts`` like a transient
   failure;
2. renders it (HTML, text, PDF attachment) and sends one raw MIME message;
3. records the outcome: Sent with the SES message id; Failed when SES rejects the message or after
   ``email_max_attempts`` transient failures (else back to Pending); Expired, unsent, once the sale
   is ``email_expiry_days`` old (a page's expired receipts 100 a request). The Sent record is
   retried a few times past the SDK's retries on a transient fault: losing it would send the
   receipt again.

SES throttling ends the run early; the receipt in hand and the rest stay Pending for the next run
(claims not sent yet are released, 100 a request). Per receipt sent: one SES call and one
UpdateItem, plus a hundredth of a claim, a query page and the batch reads of customers (read once
a run, the 20,000 most recently used kept: a customer's address and receipt option as they are now).
The products' names come with the receipt, as sold (``receipt_products``, written at upload);
products are read only for receipts queued without them.
Addresses never reach logs or run errors: those name transaction ids.
"""
from __future__ import annotations

import re
import time
from collections import ChainMap
from collections.abc import Callable, Sequence
from datetime import timedelta

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import clock, settings
from chalicelib.domain.receipts import ReceiptTemplateError, build_mime, receipt_address, render_receipt
from chalicelib.jobs.parameters import retail_parameters
from chalicelib.jobs.runtime import JobContext, JobFailed
from chalicelib.storage import aws, faults, records
from chalicelib.storage.base import iso, update_if, utcnow
from chalicelib.storage.transact import MAX_ACTIONS, Update, write_each
from chalicelib.storage.transactions import (
    EMAIL_EXPIRED,
    EMAIL_FAILED,
    EMAIL_PENDING,
    EMAIL_SENDING,
    EMAIL_SENT,
    POSTED,
    QUEUES,
    PosTransaction,
    queued_receipts,
)

PAGE = 500  # receipts a query page (a checkpoint each); claimed MAX_ACTIONS at a time
# A backlog, not the quarter-hour's trickle: this many partitions of the queue hold more than a
# page. Then a shard per partition with receipts waiting sends them in parallel.
FAN_OUT_FULL = 2
KEPT = 20_000  # customers, and products, remembered between pages (tens of MB at most)
RECORD_RETRY_DELAYS = (0.5, 2.0, 5.0)  # seconds before each retry of a Sent record after a transient fault
THROTTLED = frozenset({"TooManyRequestsException", "LimitExceededException", "Throttling", "ThrottlingException"})
# The account cannot send at all: no receipt is at fault, an operator must act.
ACCOUNT_BLOCKED = frozenset({"SendingPausedException", "AccountSuspendedException",
                             "MailFromDomainNotVerifiedException", "NotFoundException"})
REJECTED = frozenset({"MessageRejected", "BadRequestException"})
_ADDRESS = re.compile(r"[^\s@<>,;:'\"]+@[^\s@<>,;:'\"]+")


class _Throttled(Exception):
    pass


def queue_shards(ctx: JobContext) -> dict[str, list[str]] | None:
    """A shard per partition of the email queue with receipts waiting when ``FAN_OUT_FULL``
    partitions hold more than a page (each partition's first page read); else ``None``: the run
    sends them itself, starting with the pages read here, since a shard's own bookkeeping (about
    ten requests) would cost more than it saves."""
    include_unposted = bool(ctx.params.get("include_unposted"))
    first = {queue: queued_receipts(queue, include_unposted, None, PAGE) for queue in QUEUES}
    if sum(more is not None for _, more in first.values()) < FAN_OUT_FULL:
        ctx.found["queue"] = first
        return None
    return {queue: [] for queue, (items, _) in first.items() if items}


def close(parent, shards: list, counters: dict, outputs: list) -> str:
    """A fan-out's summary over its shards (each shard's message has its retries and expiries)."""
    verb = "would send" if parent.dry_run else "sent"
    return f"{verb} {counters.get('written', 0)} receipt(s); {counters.get('failed', 0)} failed"


def run(ctx: JobContext) -> str:
    include_unposted = bool(ctx.params.get("include_unposted"))
    sender = _ReceiptSender(ctx, retail_parameters(), include_unposted)
    throttled = False
    queues = [ctx.params["shard"]] if ctx.params.get("shard") else QUEUES
    for page in ctx.pages("queues", _queue_pages(queues, include_unposted, ctx.found.pop("queue", {}))):
        try:
            sender.send_page(page)
        except _Throttled:
            throttled = True
            break
    if sender.missing_glyphs:
        ctx.warn(f"receipt PDFs show \ufffd for {len(sender.missing_glyphs)} character(s) their font lacks "
                 f"(the email text has them): {''.join(sorted(sender.missing_glyphs)[:20])}")
    verb = "would send" if ctx.dry_run else "sent"
    totals = sender.totals
    summary = (f"{verb} {totals['sent']} receipt(s); {totals['failed']} failed, {totals['retry']} to retry, "
               f"{totals['expired']} expired")
    if throttled:
        summary += "; SES throttled: stopped early, the rest stay Pending for the next run"
    return summary


def _queue_pages(queues: Sequence[str], include_unposted: bool, first: dict[str, tuple]) -> Callable:
    """``fetch(cursor)`` for ``ctx.pages``: the partitions' pages in turn, the cursor being
    ``[partition position, its query's key]``; ``first`` has partitions' first pages read already
    (those known to be empty are passed over: no empty page, no checkpoint for them)."""
    def following(position: int) -> int:
        position += 1
        while position < len(queues) and first.get(queues[position]) == ([], None):
            position += 1
        return position

    def fetch(cursor: list | None) -> tuple[list[PosTransaction], list | None]:
        position, key = cursor or (following(-1), None)
        while position < len(queues):
            queue = queues[position]
            read = first.pop(queue) if key is None and queue in first else None
            items, key = read or queued_receipts(queue, include_unposted, key, PAGE)
            if key is not None:
                return items, [position, key]
            position = following(position)
            if items or position == len(queues):
                return items, [position, None] if position < len(queues) else None
        return [], None
    return fetch


class _ReceiptSender:
    def __init__(self, ctx: JobContext, parameters: dict, include_unposted: bool):
        self.ctx = ctx
        self.parameters = parameters
        self.include_unposted = include_unposted
        self.stores: dict[str, dict] = {}
        # Read once a run, the least recently used first (``_load``): customers buy again, products sell again.
        self.products: dict[str, dict | None] = {}
        self.customers: dict[str, dict | None] = {}
        # The run's outcomes so far, saved with each page's checkpoint: a continuation goes on counting.
        self.totals: dict[str, int] = ctx.state.setdefault("totals", {"sent": 0, "failed": 0, "retry": 0, "expired": 0})
        self.missing_glyphs: set[str] = set()
        self.dead_claims: set[str] = set()  # claims of dead invocations whose first receipt was taken over

    def send_page(self, page: list[PosTransaction]) -> None:
        now = utcnow()
        expired_before = iso(now - timedelta(days=self.parameters["email_expiry_days"]))
        # A claim is a lease of the job lock's length, never renewed: older, its invocation is gone.
        stale_before = iso(clock.utcnow() - timedelta(seconds=settings.lock_lease_seconds()))
        self.ctx.count(read=len(page))
        due, expiring = [], []
        for receipt in page:
            busy = receipt.email_status == EMAIL_SENDING and (receipt.email_claimed_at or "") >= stale_before
            if busy or receipt.email_status not in (EMAIL_PENDING, EMAIL_SENDING):
                self.ctx.count(skipped=1)  # another run holds it, or the index has not caught up yet
            elif receipt.created_at < expired_before:
                expiring.append(receipt)
            else:
                due.append(receipt)
        self._expire(expiring, stale_before)
        if not due:
            return
        customers = self.customers
        self._load("customers", customers, {r.data["customer_id"] for r in due if r.data.get("customer_id")}, KEPT)
        self._load("stores", self.stores, {r.store_id for r in due})
        self._load("products", self.products, {line["product_id"] for r in due for line in r.data["lines"]
                                               if line["product_id"] not in (r.receipt_products or {})}, KEPT)
        for start in range(0, len(due), MAX_ACTIONS):
            chunk = due[start:start + MAX_ACTIONS]
            if self.ctx.dry_run:
                self.totals["sent"] += sum(receipt_address(r.data, customers.get(r.data.get("customer_id"))) is not None
                                 for r in chunk)
                continue
            claimed = self._claim(chunk, stale_before)
            for position, receipt in enumerate(claimed):
                try:
                    self._send(receipt, customers.get(receipt.data.get("customer_id")))
                except (_Throttled, JobFailed):
                    self._release(claimed[position + 1:])
                    raise

    def _send(self, receipt: PosTransaction, customer: dict | None) -> None:
        """Send a receipt this run has claimed and record the outcome."""
        address = receipt_address(receipt.data, customer)
        if receipt.email_attempts + (receipt.email_takeovers or 0) >= self.parameters["email_max_attempts"]:
            return self._fail(receipt, "gave up: the last attempt did not finish and no attempts are left")
        if address is None:
            return self._fail(receipt, "no receipt address: the customer's email or receipt option changed")
        store = self.stores.get(receipt.store_id) or {"id": receipt.store_id}
        try:
            products = ChainMap(receipt.receipt_products, self.products) if receipt.receipt_products else self.products
            rendered = render_receipt(receipt.data, store, customer, products, self.parameters)
        except ReceiptTemplateError as exc:
            return self._retry_later(receipt, str(exc))
        self.missing_glyphs.update(rendered.missing_glyphs)
        message = build_mime(settings.mail_from(), address, rendered)
        try:
            response = aws.client("sesv2").send_email(
                FromEmailAddress=settings.mail_from(), Destination={"ToAddresses": [address]},
                Content={"Raw": {"Data": message}})
        except ClientError as exc:
            return self._refused(receipt, exc)
        except BotoCoreError as exc:
            return self._retry_later(receipt, f"SES unreachable ({type(exc).__name__})")
        self._record_sent(receipt, response["MessageId"])
        self.totals["sent"] += 1
        self.ctx.count(written=1)
        self.ctx.output("email", transaction_id=receipt.transaction_id, message_id=response["MessageId"])

    def _record_sent(self, receipt: PosTransaction, message_id: str) -> None:
        """Sent, with the message id; the dead runs' takeovers no longer matter. SES has accepted
        the message: a transient fault here is retried a little longer than the SDK does, since
        a record lost leaves the claim to go stale and the receipt to be sent once more."""
        actions = [PosTransaction.email_message_id.set(message_id), PosTransaction.email_sent_at.set(iso()),
                   PosTransaction.email_error.remove(), PosTransaction.email_takeovers.remove()]
        for delay in (*RECORD_RETRY_DELAYS, None):
            try:
                return self._finish(receipt, EMAIL_SENT, *actions)
            except Exception as exc:
                if delay is None or not faults.is_transient(exc):
                    raise
                time.sleep(delay)

    def _refused(self, receipt: PosTransaction, exc: ClientError) -> None:
        code = exc.response.get("Error", {}).get("Code", "")
        reason = f"SES {code}: {_without_addresses(exc.response.get('Error', {}).get('Message', ''))}"
        if code in THROTTLED:
            self._finish(receipt, EMAIL_PENDING)
            raise _Throttled()
        if code in ACCOUNT_BLOCKED:
            self._finish(receipt, EMAIL_PENDING)
            raise JobFailed(f"{reason}; no receipt can be sent until it is fixed (the rest stay Pending)")
        if code in REJECTED:
            return self._fail(receipt, reason)
        return self._retry_later(receipt, reason)

    def _claim(self, receipts: list[PosTransaction], stale_before: str) -> list[PosTransaction]:
        """Claim ``receipts`` (100 a request); returns those claimed, in order."""
        claimable = (PosTransaction.email_status == EMAIL_PENDING) | (
            (PosTransaction.email_status == EMAIL_SENDING) & (PosTransaction.email_claimed_at < stale_before))
        condition = PosTransaction.email_queue.exists() & claimable
        if not self.include_unposted:
            condition &= PosTransaction.status == POSTED
        now = iso(clock.utcnow())
        updates, counted = [], []
        for receipt in receipts:
            actions = [PosTransaction.email_status.set(EMAIL_SENDING),
                       PosTransaction.email_claim.set(self.ctx.run_id), PosTransaction.email_claimed_at.set(now)]
            # Taking over from an invocation that died: the first of its claims (in queue order)
            # is the one it was sending; it never tried the others.
            taken_over = receipt.email_status == EMAIL_SENDING and receipt.email_claim not in self.dead_claims
            if taken_over:
                self.dead_claims.add(receipt.email_claim)
                actions.append(PosTransaction.email_takeovers.add(1))
            updates.append(Update(receipt, actions, condition))
            counted.append(taken_over)
        claimed = []
        for receipt, taken_over, written in zip(receipts, counted, write_each(updates), strict=True):
            if not written:
                self.ctx.count(skipped=1)
                continue
            if taken_over:
                receipt.email_takeovers = (receipt.email_takeovers or 0) + 1
            claimed.append(receipt)
        return claimed

    def _release(self, receipts: list[PosTransaction]) -> None:
        """Give claims not sent back to the queue (Pending), 100 a request, while they are still ours."""
        write_each([Update(r, self._outcome(EMAIL_PENDING), PosTransaction.email_claim == self.ctx.run_id)
                    for r in receipts])

    def _retry_later(self, receipt: PosTransaction, reason: str) -> None:
        attempts = receipt.email_attempts + 1
        if attempts >= self.parameters["email_max_attempts"]:
            return self._fail(receipt, f"{reason} (attempt {attempts}, no attempts left)", attempts)
        self._finish(receipt, EMAIL_PENDING, PosTransaction.email_attempts.set(attempts),
                     PosTransaction.email_error.set(reason))
        self.totals["retry"] += 1
        self.ctx.error(receipt.transaction_id, f"{reason}; will retry (attempt {attempts})")

    def _fail(self, receipt: PosTransaction, reason: str, attempts: int | None = None) -> None:
        counted = [PosTransaction.email_attempts.set(attempts)] if attempts is not None else []
        self._finish(receipt, EMAIL_FAILED, PosTransaction.email_error.set(reason), *counted)
        self.totals["failed"] += 1
        self.ctx.error(receipt.transaction_id, reason)

    def _finish(self, receipt: PosTransaction, status: str, *actions) -> None:
        """Record an outcome and release the claim, only while this run's claim holds."""
        update_if(receipt, self._outcome(status, *actions), PosTransaction.email_claim == self.ctx.run_id)

    @staticmethod
    def _outcome(status: str, *actions) -> list:
        """The actions recording ``status`` and releasing the claim; a receipt no longer Pending leaves the queue."""
        actions = [PosTransaction.email_status.set(status), PosTransaction.email_claim.remove(),
                   PosTransaction.email_claimed_at.remove(), *actions]
        if status != EMAIL_PENDING:
            actions.append(PosTransaction.email_queue.remove())
        return actions

    def _expire(self, receipts: list[PosTransaction], stale_before: str) -> None:
        """Mark ``receipts`` Expired (100 a request), each only while no live run holds it."""
        if self.ctx.dry_run or not receipts:
            self.totals["expired"] += len(receipts)
            return
        unclaimed = (PosTransaction.email_status == EMAIL_PENDING) | (
            (PosTransaction.email_status == EMAIL_SENDING) & (PosTransaction.email_claimed_at < stale_before))
        written = sum(write_each([Update(r, [PosTransaction.email_status.set(EMAIL_EXPIRED),
                                             PosTransaction.email_queue.remove()], unclaimed) for r in receipts]))
        self.totals["expired"] += written
        self.ctx.count(skipped=written)  # "written" counts emails sent

    @staticmethod
    def _load(entity: str, cache: dict[str, dict | None], ids: set[str], keep: int | None = None) -> None:
        """Read the records of ``ids`` not in ``cache`` (100 a request; a missing one is kept as
        None) and make ``ids`` the most recent; with ``keep``, the least recently used beyond it go,
        so that a run over many pages stays bounded (a page's own are the most recent: they stay)."""
        missing = ids - cache.keys()
        found = records.get_by_ids(entity, missing) if missing else {}
        for record_id in ids:
            cache[record_id] = found.get(record_id) if record_id in missing else cache.pop(record_id)
        while keep is not None and len(cache) > keep:
            del cache[next(iter(cache))]


def _without_addresses(text: str) -> str:
    return _ADDRESS.sub("<address>", text)[:300]
