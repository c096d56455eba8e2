"""Statement posting: a store's completed POS transactions of one business date become a statement.

A statement carries its totals, the ledger lines that feed account activity (§3) and the
inventory journal that Post inventory applies (§8). Everything here is a pure function of the
transactions handed in, so a rerun after a crash recomputes the same statement id, the same
ledger lines and the same journal, and the job can write them idempotently.

Sign convention (as validated by ``models/uploads.py``): Sale lines have positive quantities and amounts,
Return lines negative ones, refund payments are negative. Totals are signed sums, so a return and
an exchange inside one transaction need no special case.

Rounding: a transaction's payments may differ from its lines (net + tax) by at most one cent
(the upload model accepts that; POS systems may also send line amounts finer than cents). Revenue per
account and tax are rounded half-up to cents once, on the statement's sums; what the tenders
received beyond that is posted as a "Rounding difference" line on the default revenue account, so
the ledger always balances.

Example::

    groups = group_for_posting(transactions, through_date="2026-11-03")
    for (store_id, business_date), batch in groups.items():
        statement = build_statement(stores[store_id], business_date, batch,
                                    categories_by_product, categories, accounts, seq=1)
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from chalicelib.domain.errors import DomainError
from chalicelib.domain.inventory import JOURNAL_CREATED, NO_VARIANT


class TransactionKind(StrEnum):
    """A POS transaction's kind (§10); an exchange is one of each."""

    SALE = "Sale"
    RETURN = "Return"


class TransactionStatus(StrEnum):
    """What happened to a POS transaction at the till; only completed ones are posted."""

    COMPLETED = "Completed"
    VOIDED = "Voided"
    TRAINING = "Training"


class Tender(StrEnum):
    """How a payment was made; each has its account in the retail parameters (``accounts``)."""

    CASH = "cash"
    CARD = "card"
    GIFT_CARD = "gift_card"


COMPLETED = TransactionStatus.COMPLETED.value
PAYMENT_TOLERANCE = Decimal("0.01")
"""A transaction's payments may differ from its lines (net + tax) by at most this (the upload
model refuses more; the statement books the difference as rounding)."""
POSTABLE_KINDS = frozenset(kind.value for kind in TransactionKind)

STATEMENT_CALCULATED = "Calculated"
STATEMENT_POSTING = "Posting"
"""Recorded with its transaction ids, ledger lines and journal; its transactions are being marked."""
STATEMENT_POSTED = "Posted"

CENT = Decimal("0.01")
ZERO = Decimal(0)


class UnbalancedLedger(DomainError):
    """The statement would not balance; nothing of it may be posted.

    ``transaction_ids`` names the transactions whose payments differ from their net sales plus
    tax by more than a cent (validated uploads never do); ``debit`` and ``credit`` are the ledger
    sums when the lines themselves do not balance.
    """

    def __init__(
        self,
        statement_id: str,
        debit: Decimal | None = None,
        credit: Decimal | None = None,
        transaction_ids: list[str] | None = None,
    ):
        transaction_ids = transaction_ids or []
        if transaction_ids:
            reason = f"payments differ from sales + tax in {', '.join(transaction_ids)}"
        else:
            reason = f"debit {debit} != credit {credit}"
        super().__init__(f"Statement {statement_id} is unbalanced: {reason}")
        self.statement_id = statement_id
        self.debit = debit
        self.credit = credit
        self.transaction_ids = transaction_ids


class MissingAccount(DomainError):
    """A main account the statement needs (tax or a tender) is not set in the retail parameters."""

    def __init__(self, account_key: str):
        super().__init__(f"No main account configured for '{account_key}' in parameters.accounts")
        self.account_key = account_key


@dataclass(frozen=True)
class LedgerLine:
    """One general-ledger line; exactly one of ``debit``/``credit`` is non-zero and neither is negative."""

    posting_date: str
    main_account: str
    debit: Decimal
    credit: Decimal
    store_id: str
    statement_id: str
    description: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "posting_date": self.posting_date,
            "main_account": self.main_account,
            "debit": self.debit,
            "credit": self.credit,
            "store_id": self.store_id,
            "statement_id": self.statement_id,
            "description": self.description,
        }


@dataclass(frozen=True)
class JournalLine:
    """Net stock movement of one product variant: negative for sales, positive for returns."""

    line_no: int
    product_id: str
    variant_id: str
    qty: Decimal

    def to_dict(self) -> dict[str, Any]:
        return {
            "line_no": self.line_no,
            "product_id": self.product_id,
            "variant_id": self.variant_id,
            "qty": self.qty,
        }


@dataclass(frozen=True)
class InventoryJournal:
    """The inventory journal a statement creates for Post inventory (§8)."""

    journal_id: str
    store_id: str
    warehouse_id: str
    statement_id: str
    status: str
    lines: tuple[JournalLine, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "journal_id": self.journal_id,
            "store_id": self.store_id,
            "warehouse_id": self.warehouse_id,
            "statement_id": self.statement_id,
            "status": self.status,
            "lines": [line.to_dict() for line in self.lines],
        }


@dataclass(frozen=True)
class StatementTotals:
    """Signed totals of a statement in cents, as posted to the ledger.

    ``sales`` is the sum of the revenue lines, ``gross`` = ``sales`` + ``tax``, and the tenders
    add up to ``gross`` + ``rounding``.
    """

    transactions: int
    sales: Decimal
    tax: Decimal
    gross: Decimal
    rounding: Decimal
    tenders: dict[str, Decimal] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "transactions": self.transactions,
            "sales": self.sales,
            "tax": self.tax,
            "gross": self.gross,
            "rounding": self.rounding,
            "tenders": dict(self.tenders),
        }


@dataclass(frozen=True)
class Statement:
    """A calculated statement; the job sets ``status`` to Posted once every effect is written."""

    statement_id: str
    store_id: str
    business_date: str
    status: str
    totals: StatementTotals
    transaction_ids: tuple[str, ...]
    ledger_lines: tuple[LedgerLine, ...]
    inventory_journal: InventoryJournal

    def to_dict(self) -> dict[str, Any]:
        """The statement record of §10 (ledger lines and journal are stored separately)."""
        return {
            "statement_id": self.statement_id,
            "store_id": self.store_id,
            "business_date": self.business_date,
            "status": self.status,
            "totals": self.totals.to_dict(),
            "transaction_ids": list(self.transaction_ids),
            "journal_id": self.inventory_journal.journal_id,
        }


def statement_id_for(store_id: str, business_date: str | date, seq: int) -> str:
    """Deterministic statement id: the ``seq``-th statement of a store and business date."""
    return f"{store_id}-{_iso(business_date)}-{seq}"


def journal_id_for(statement_id: str) -> str:
    """Deterministic id of the inventory journal a statement creates."""
    return f"IJ-{statement_id}"


def is_postable(transaction: Mapping[str, Any]) -> bool:
    """True for a completed sale or return; voided and training transactions are never posted."""
    return transaction.get("status") == COMPLETED and transaction.get("kind") in POSTABLE_KINDS


def group_for_posting(
    transactions: Iterable[Mapping[str, Any]], through_date: str | date
) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    """Group postable transactions by ``(store_id, business_date)`` for dates up to ``through_date``.

    Only completed sales and returns are kept (see :func:`is_postable`), so every group yields a
    non-empty statement. Keys come in sorted order and each group is sorted by transaction id.
    """
    through = _iso(through_date)
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for transaction in transactions:
        business_date = _iso(transaction["business_date"])
        if business_date <= through and is_postable(transaction):
            groups[(transaction["store_id"], business_date)].append(transaction)
    return {
        key: sorted(groups[key], key=lambda t: t["transaction_id"]) for key in sorted(groups)
    }


def revenue_account_for(
    product_id: str,
    categories_by_product: Mapping[str, Mapping[str, Any]],
    categories: Mapping[str, Mapping[str, Any]],
    default_account: str | None,
) -> str:
    """The revenue account of a product: its category's, else the nearest ancestor's, else the default.

    Raises :class:`MissingAccount` when neither a category nor the default names one.
    """
    category = categories_by_product.get(product_id)
    seen: set[str] = set()
    while category is not None and category.get("id") not in seen:
        if category.get("revenue_account"):
            return category["revenue_account"]
        seen.add(category.get("id"))
        parent_id = category.get("parent_id")
        category = categories.get(parent_id) if parent_id else None
    if not default_account:
        raise MissingAccount("revenue_default")
    return default_account


def build_statement(
    store: Mapping[str, Any],
    business_date: str | date,
    transactions: Iterable[Mapping[str, Any]],
    categories_by_product: Mapping[str, Mapping[str, Any]],
    categories: Mapping[str, Mapping[str, Any]],
    accounts: Mapping[str, str],
    *,
    seq: int,
) -> Statement:
    """Calculate the statement of one store and business date.

    ``seq`` numbers the statements of that store and date (1 for the first; transactions that
    arrive after it was posted go into statement 2, …); pass the same ``seq`` on a rerun and the
    same ids come back. Transactions that are not postable are ignored; a transaction of another
    store or date is a caller error (``ValueError``).

    ``accounts`` is ``parameters.accounts``: ``revenue_default``, ``tax`` and one per tender
    (``cash``, ``card``, ``gift_card``). Raises :class:`MissingAccount` when one that is needed is
    absent, and :class:`UnbalancedLedger` when a transaction's payments differ from its lines by
    more than a cent (or, defensively, when the finished ledger lines do not balance).
    """
    store_id = store["id"]
    posting_date = _iso(business_date)
    statement_id = statement_id_for(store_id, posting_date, seq)

    revenue: dict[str, Decimal] = defaultdict(Decimal)
    tenders: dict[str, Decimal] = defaultdict(Decimal)
    stock: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    tax = ZERO
    transaction_ids: list[str] = []
    mismatched: list[str] = []

    for transaction in transactions:
        if not is_postable(transaction):
            continue
        if transaction["store_id"] != store_id or _iso(transaction["business_date"]) != posting_date:
            raise ValueError(
                f"transaction {transaction['transaction_id']} is not of store {store_id} on {posting_date}"
            )
        transaction_ids.append(transaction["transaction_id"])
        due = ZERO
        for line in transaction.get("lines", ()):
            net = Decimal(line["net_amount"])
            line_tax = Decimal(line["tax_amount"])
            account = revenue_account_for(
                line["product_id"], categories_by_product, categories, accounts.get("revenue_default")
            )
            revenue[account] += net
            tax += line_tax
            due += net + line_tax
            variant_id = line.get("variant_id") or NO_VARIANT
            stock[(line["product_id"], variant_id)] -= Decimal(line["qty"])
        paid = ZERO
        for payment in transaction.get("payments", ()):
            amount = Decimal(payment["amount"])
            tenders[payment["tender"]] += amount
            paid += amount
        if abs(paid - due) > PAYMENT_TOLERANCE:
            mismatched.append(transaction["transaction_id"])
    if mismatched:
        raise UnbalancedLedger(statement_id, transaction_ids=sorted(mismatched))

    revenue_by_account = {account: _money(amount) for account, amount in sorted(revenue.items())}
    tenders_by_type = {tender: _money(amount) for tender, amount in sorted(tenders.items())}
    sales = sum(revenue_by_account.values(), _money(ZERO))
    tax = _money(tax)
    rounding = sum(tenders_by_type.values(), _money(ZERO)) - sales - tax
    ledger_lines = _ledger_lines(
        revenue_by_account,
        tax,
        rounding,
        tenders_by_type,
        accounts,
        posting_date=posting_date,
        store_id=store_id,
        statement_id=statement_id,
    )
    _assert_balanced(statement_id, ledger_lines)

    totals = StatementTotals(
        transactions=len(transaction_ids),
        sales=sales,
        tax=tax,
        gross=sales + tax,
        rounding=rounding,
        tenders=tenders_by_type,
    )
    journal = InventoryJournal(
        journal_id=journal_id_for(statement_id),
        store_id=store_id,
        warehouse_id=store.get("warehouse_id") or store_id,
        statement_id=statement_id,
        status=JOURNAL_CREATED,
        lines=_journal_lines(stock),
    )
    return Statement(
        statement_id=statement_id,
        store_id=store_id,
        business_date=posting_date,
        status=STATEMENT_CALCULATED,
        totals=totals,
        transaction_ids=tuple(sorted(transaction_ids)),
        ledger_lines=ledger_lines,
        inventory_journal=journal,
    )


def _ledger_lines(
    revenue: Mapping[str, Decimal],
    tax: Decimal,
    rounding: Decimal,
    tenders: Mapping[str, Decimal],
    accounts: Mapping[str, str],
    *,
    posting_date: str,
    store_id: str,
    statement_id: str,
) -> tuple[LedgerLine, ...]:
    """Credit revenue per account, tax and rounding, debit each tender (all in cents).

    A negative amount (a day of net returns) goes to the other side; zero amounts get no line.
    """
    entries: list[tuple[str, str, Decimal]] = []  # (description, account, signed credit)
    entries += [("Net sales", account, amount) for account, amount in revenue.items()]
    if tax:
        entries.append(("Sales tax", _account(accounts, "tax"), tax))
    if rounding:
        entries.append(("Rounding difference", _account(accounts, "revenue_default"), rounding))
    entries += [
        (f"Tender {tender}", _account(accounts, tender), -amount) for tender, amount in tenders.items() if amount
    ]

    zero = _money(ZERO)
    return tuple(
        LedgerLine(
            posting_date=posting_date,
            main_account=account,
            debit=-amount if amount < 0 else zero,
            credit=amount if amount > 0 else zero,
            store_id=store_id,
            statement_id=statement_id,
            description=f"{description}, statement {statement_id}",
        )
        for description, account, amount in entries
        if amount
    )


def _assert_balanced(statement_id: str, lines: Iterable[LedgerLine]) -> None:
    lines = list(lines)
    debit = sum((line.debit for line in lines), ZERO)
    credit = sum((line.credit for line in lines), ZERO)
    if debit != credit:
        raise UnbalancedLedger(statement_id, debit=debit, credit=credit)


def _journal_lines(stock: Mapping[tuple[str, str], Decimal]) -> tuple[JournalLine, ...]:
    moved = [(key, qty) for key, qty in sorted(stock.items()) if qty]
    return tuple(
        JournalLine(line_no=number, product_id=product_id, variant_id=variant_id, qty=qty)
        for number, ((product_id, variant_id), qty) in enumerate(moved, start=1)
    )


def _account(accounts: Mapping[str, str], key: str) -> str:
    account = accounts.get(key)
    if not account:
        raise MissingAccount(key)
    return account


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _iso(value: str | date) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)
