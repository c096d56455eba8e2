"""DynamoDB transactions (TransactWriteItems) for effects that must commit together or not at all.

Jobs use them where a write must be conditional *and* batched (a transaction upload, the
transactions a statement marks Posted, receipts claimed 100 at a time) or where two writes must
never be seen apart (on-hand changes and the journal's record of the lines that made them). A transaction holds at most
``MAX_ACTIONS`` actions, one per item.

Example::

    failed = write_transaction(puts=[Put(statement, StatementRecord.statement_key.does_not_exist())],
                               updates=[Update(transaction, [PosTransaction.status.set("Posted")])])
    if failed:            # the codes of the actions whose condition failed; nothing was written
        ...
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import CancellationReason, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.storage.base import MAX_BATCH_ATTEMPTS, _backoff
from chalicelib.storage.faults import TransactionFailed

MAX_ACTIONS = 100
CONDITION_FAILED = "ConditionalCheckFailed"
_CONFLICT = "TransactionConflict"


@dataclass(frozen=True)
class Put:
    item: Model
    condition: Condition | None = None
    return_old: bool = False  # a failed condition reports the item it found (``write_transaction_reasons``)


@dataclass(frozen=True)
class Update:
    item: Model
    actions: list[Any] = field(default_factory=list)
    condition: Condition | None = None


def write_transaction(puts: Sequence[Put] = (), updates: Sequence[Update] = ()) -> list[str | None]:
    """Commit ``puts`` and ``updates`` in one TransactWriteItems call.

    Returns ``[]`` when committed. When conditions failed nothing is written and the result has
    one entry per action, puts first and then updates (in the order given): ``"ConditionalCheckFailed"``
    for each action whose condition failed, ``None`` for the others. A conflict with a concurrent
    write is retried with backoff; other errors propagate.
    """
    return [reason.code if reason else None for reason in write_transaction_reasons(puts, updates)]


def write_each(updates: Sequence[Update]) -> list[bool]:
    """Commit ``updates`` in transactions of ``MAX_ACTIONS``, each on its own condition: an update
    whose condition fails is left out and the rest of its transaction committed again. Returns,
    per update, whether it was written. One request per 100 updates when every condition holds."""
    written = [False] * len(updates)
    for start in range(0, len(updates), MAX_ACTIONS):
        chunk = list(range(start, min(start + MAX_ACTIONS, len(updates))))
        while chunk:
            codes = write_transaction(updates=[updates[i] for i in chunk])
            if not codes:
                for i in chunk:
                    written[i] = True
                break
            chunk = [i for i, code in zip(chunk, codes, strict=True) if code != CONDITION_FAILED]
    return written


def write_transaction_reasons(puts: Sequence[Put] = (),
                              updates: Sequence[Update] = ()) -> list[CancellationReason | None]:
    """``write_transaction`` with DynamoDB's cancellation reasons: a put made with ``return_old``
    whose condition failed carries the item it found (``raw_item``) at no extra request."""
    if len(puts) + len(updates) > MAX_ACTIONS:
        raise ValueError(f"{len(puts) + len(updates)} actions; a transaction holds at most {MAX_ACTIONS}")
    attempt = 0
    while True:
        try:
            with TransactWrite(connection=Connection()) as transaction:
                for put in puts:
                    transaction.save(put.item, condition=put.condition,
                                     return_values="ALL_OLD" if put.return_old else None)
                for update in updates:
                    transaction.update(update.item, update.actions, condition=update.condition)
            return []
        except TransactWriteError as exc:
            reasons = list(exc.cancellation_reasons or [])
            codes = [reason.code if reason else None for reason in reasons]
            if CONDITION_FAILED in codes:
                return reasons
            if _CONFLICT not in codes:
                raise
            attempt += 1
            if attempt >= MAX_BATCH_ATTEMPTS:
                raise TransactionFailed(f"transaction conflicted {attempt} times with concurrent writes") from exc
            _backoff(attempt)
