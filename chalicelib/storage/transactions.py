"""POS transactions uploaded by stores (DOMAIN §10), with their posting and email-receipt state.

Keyed by store and ``transaction_id`` (the upload's idempotency key). Two sparse indexes let the
jobs find their work without scanning:

- ``by_unposted`` (keys only): ``unposted_store`` + ``business_date``, set while a completed
  transaction waits for its statement. Post-statements queries one store's dates up to
  ``through_date``, then reads the transactions with a strongly consistent batch get, because an
  index lags its table and a transaction must never be posted twice.
- ``by_email_queue``: ``email_queue`` (the store's partition of the queue, ``queue_of``) is set
  while a requested receipt is Pending or Sending, and
  ``email_order`` sorts it: ``P#<created_at>`` once posted, ``U#<created_at>`` before. Send email
  receipts queries the posted ones (all of them with ``include_unposted``, unposted ones last);
  the claim's condition, not the index, decides.
"""
from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator, Sequence

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.domain.statements import COMPLETED
from chalicelib.domain.uploads import canonical_hash
from chalicelib.storage.base import JSONAttribute, get_many, meta
from chalicelib.storage.transact import (
    CONDITION_FAILED,
    MAX_ACTIONS,
    Put,
    Update,
    write_transaction,
    write_transaction_reasons,
)

POSTED = "Posted"

EMAIL_PENDING = "Pending"
EMAIL_SENDING = "Sending"
EMAIL_SENT = "Sent"
EMAIL_FAILED = "Failed"
EMAIL_EXPIRED = "Expired"
QUEUED = "Pending"  # the email queue's first partition: the index holds only receipts still to send
QUEUE_PARTITIONS = 4  # a store's receipts wait in one of these; send-email-receipts sends them in parallel
# The partitions' ``email_queue`` values; the first is the one the queue had before it was split, so
# receipts queued before then are sent by that partition's run.
QUEUES = (QUEUED, *(f"{QUEUED}#{n}" for n in range(1, QUEUE_PARTITIONS)))
POSTED_ORDER, UNPOSTED_ORDER = "P#", "U#"


class TransactionsUnposted(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_unposted"
        projection = KeysOnlyProjection()

    unposted_store = UnicodeAttribute(hash_key=True)
    business_date = UnicodeAttribute(range_key=True)


class TransactionsEmailQueue(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_email_queue"
        projection = AllProjection()

    email_queue = UnicodeAttribute(hash_key=True)
    email_order = UnicodeAttribute(range_key=True)


class PosTransaction(Model):
    Meta = meta("transactions")
    store_id = UnicodeAttribute(hash_key=True)
    transaction_id = UnicodeAttribute(range_key=True)
    business_date = UnicodeAttribute()
    created_at = UnicodeAttribute()
    status = UnicodeAttribute()  # as uploaded (Completed | Voided | Training), then Posted
    data = JSONAttribute()  # the validated upload, decimals as strings
    content_hash = UnicodeAttribute(null=True)  # canonical_hash(data); absent on rows older than it
    uploaded_at = UnicodeAttribute()
    statement_id = UnicodeAttribute(null=True)
    posted_at = UnicodeAttribute(null=True)
    unposted_store = UnicodeAttribute(null=True)
    receipt_requested = BooleanAttribute(default=False)
    email_status = UnicodeAttribute(null=True)
    email_queue = UnicodeAttribute(null=True)
    email_order = UnicodeAttribute(null=True)
    email_attempts = NumberAttribute(default=0)
    email_claim = UnicodeAttribute(null=True)
    email_claimed_at = UnicodeAttribute(null=True)
    email_takeovers = NumberAttribute(null=True)  # claims taken over from dead runs, until it is sent
    email_message_id = UnicodeAttribute(null=True)
    email_sent_at = UnicodeAttribute(null=True)
    email_error = UnicodeAttribute(null=True)
    # A queued receipt's products as they were sold (``sold_products``): their names on the receipt
    # need no read when it is sent. Absent on rows older than it: their products are read then.
    receipt_products = JSONAttribute(null=True)
    by_unposted = TransactionsUnposted()
    by_email_queue = TransactionsEmailQueue()

    def to_api(self) -> dict:
        return {**self.data, "status": self.status, "statement_id": self.statement_id,
                "posted_at": self.posted_at, "uploaded_at": self.uploaded_at,
                "email_status": self.email_status, "email_attempts": self.email_attempts,
                "email_sent_at": self.email_sent_at, "email_message_id": self.email_message_id,
                "email_error": self.email_error}


def from_upload(record: dict, receipt_requested: bool, now: str,
                receipt_products: dict | None = None) -> PosTransaction:
    """A validated upload as stored: completed sales and returns wait for posting; a requested
    receipt of a completed one waits in the email queue (voided and training never do either),
    with its products as sold (``receipts.sold_products``) when they are given."""
    completed = record["status"] == COMPLETED
    queued = completed and receipt_requested
    return PosTransaction(
        record["store_id"], record["transaction_id"], business_date=record["business_date"],
        created_at=record["created_at"], status=record["status"], data=record, uploaded_at=now,
        content_hash=canonical_hash(record),
        unposted_store=record["store_id"] if completed else None, receipt_requested=receipt_requested,
        email_status=EMAIL_PENDING if queued else None, email_queue=queue_of(record["store_id"]) if queued else None,
        email_order=UNPOSTED_ORDER + record["created_at"] if queued else None,
        receipt_products=receipt_products if queued else None,
    )


def insert_new(items: list[PosTransaction]) -> dict[str, PosTransaction]:
    """Write the transactions that do not exist yet; returns the stored ones of the ids that
    already did (each as DynamoDB found it when the condition failed).

    Conditional puts in transactions of 100: a resend (even one racing the first upload) finds
    its transactions and changes nothing, and the cancelled chunk is retried without them. The
    failed condition returns the stored item, so telling a duplicate from a conflict costs no read.
    """
    existing: dict[str, PosTransaction] = {}
    for start in range(0, len(items), MAX_ACTIONS):
        chunk = items[start:start + MAX_ACTIONS]
        while chunk:
            reasons = write_transaction_reasons(
                puts=[Put(item, PosTransaction.transaction_id.does_not_exist(), return_old=True) for item in chunk])
            if not reasons:
                break
            left = []
            for item, reason in zip(chunk, reasons, strict=True):
                if reason is None or reason.code != CONDITION_FAILED:
                    left.append(item)
                elif reason.raw_item:
                    existing[item.transaction_id] = PosTransaction.from_raw_data(reason.raw_item)
                else:  # DynamoDB did not return it: read it (consistently, it was just found)
                    existing[item.transaction_id] = PosTransaction.get(item.store_id, item.transaction_id,
                                                                       consistent_read=True)
            chunk = left
    return existing


def stored_hash(item: PosTransaction) -> str:
    """The canonical hash of the stored version (computed for rows stored before it was kept)."""
    return item.content_hash or canonical_hash(item.data)


def replace_version(old: PosTransaction, new: PosTransaction, also: Sequence[Put] = ()) -> bool:
    """Replace an unposted transaction by another version of it, together with ``also``; only if
    it is still the version read and unposted. Returns False when that no longer holds."""
    condition = (PosTransaction.uploaded_at == old.uploaded_at) & PosTransaction.statement_id.does_not_exist()
    if old.status == POSTED:
        return False
    return not write_transaction(puts=[Put(new, condition), *also])


def get_one(store_id: str, transaction_id: str, consistent: bool = False) -> PosTransaction | None:
    try:
        return PosTransaction.get(store_id, transaction_id, consistent_read=consistent)
    except PosTransaction.DoesNotExist:
        return None


def unposted_keys(store_id: str, through_date: str) -> Iterator[tuple[str, str]]:
    """``(business_date, transaction_id)`` of the store's unposted completed transactions through
    ``through_date``, in date order (from the index: candidates, to be read consistently)."""
    for key in PosTransaction.by_unposted.query(store_id, PosTransaction.business_date <= through_date):
        yield key.business_date, key.transaction_id


def read_consistent(store_id: str, transaction_ids: Iterable[str]) -> dict[str, PosTransaction]:
    found = get_many(PosTransaction, [(store_id, tid) for tid in transaction_ids], consistent_read=True)
    return {item.transaction_id: item for item in found}


def is_unposted(item: PosTransaction) -> bool:
    return item.status == COMPLETED and item.statement_id is None


def mark_posted(item: PosTransaction, statement_id: str, now: str) -> Update:
    """The update that puts a transaction into its statement, once: it must still be unposted."""
    actions = [PosTransaction.status.set(POSTED), PosTransaction.statement_id.set(statement_id),
               PosTransaction.posted_at.set(now), PosTransaction.unposted_store.remove()]
    if item.receipt_requested:
        # Only the sort key moves: a receipt already sent with include_unposted left the queue
        # (no email_queue), and setting email_order alone does not bring it back.
        actions.append(PosTransaction.email_order.set(POSTED_ORDER + item.created_at))
    condition = (PosTransaction.status == COMPLETED) & PosTransaction.statement_id.does_not_exist()
    return Update(item, actions, condition)


def queue_of(store_id: str) -> str:
    """The email queue partition of a store's receipts (a stable hash of the store id)."""
    return QUEUES[zlib.crc32(store_id.encode()) % QUEUE_PARTITIONS]


def queued_receipts(queue: str, include_unposted: bool, cursor: dict | None,
                    limit: int) -> tuple[list[PosTransaction], dict | None]:
    """One page of an email queue partition, oldest first: posted transactions only unless ``include_unposted``."""
    order = None if include_unposted else PosTransaction.email_order.startswith(POSTED_ORDER)
    page = PosTransaction.by_email_queue.query(queue, order, limit=limit, page_size=limit, last_evaluated_key=cursor)
    items = list(page)
    return items, page.last_evaluated_key if len(items) == limit else None
