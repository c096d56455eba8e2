"""What stores upload, one model per record (DOMAIN §9, §10, §12, §13): POS transactions,
time registrations, status messages about download sessions, and the inventory rows migration
stages. ``UPLOAD_MODELS`` maps each record type to its model.

Transaction sign convention (§10): a ``Sale`` has positive ``qty`` and non-negative line
amounts and payments; a ``Return`` has negative ``qty`` and non-positive line amounts and
payments (money goes back to the customer). ``unit_price`` is never negative. Payments are
net of change given. An exchange is two transactions. Either way the lines (net + tax) must
add up to the payments to less than a cent (``PAYMENT_TOLERANCE``), except for ``Voided``
transactions, which were never paid. Line amounts and payments are whole cents, so a
transaction within the tolerance is off by at most a cent of cash rounding, which posting books
to the rounding account.

Date-times are normalised to UTC milliseconds (``base.DATETIME``): the fixed width makes the
strings sort in time order, which the status-message job relies on.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import ClassVar

from chalicelib.domain.sessions import SessionStatus
from chalicelib.domain.statements import PAYMENT_TOLERANCE, Tender, TransactionKind, TransactionStatus
from chalicelib.models.base import DATE, DATETIME, EMAIL, ID, StrictModel, choice, integer, parse_datetime, text
from chalicelib.models.common import MONEY, PRICE, QTY, Record, RuleError, listing

__all__ = ["UPLOAD_MODELS"]

MAX_SHIFT = timedelta(hours=24)


class TransactionLine(Record):
    """A line of a POS transaction; amounts are signed as its kind says."""

    line_no: integer(1, 100_000)
    product_id: ID
    variant_id: ID | None = None
    qty: QTY
    unit_price: PRICE
    net_amount: MONEY
    tax_amount: MONEY


class Payment(Record):
    """A payment of a POS transaction, net of change given."""

    tender: choice(*Tender)
    amount: MONEY


# kind -> (is an amount's sign wrong?, message for qty, message for amounts); see the module doc.
_SIGNS: dict[str, tuple[Callable[[Decimal], bool], str, str]] = {
    TransactionKind.SALE: (lambda d: d < 0, "must be positive for a Sale", "must not be negative for a Sale"),
    TransactionKind.RETURN: (lambda d: d > 0, "must be negative for a Return", "must not be positive for a Return"),
}


class Transaction(Record):
    """A POS transaction (§10): its lines must add up to its payments."""

    batch_key: ClassVar[tuple[str, ...]] = ("transaction_id",)

    transaction_id: ID
    store_id: ID
    terminal_id: ID
    receipt_id: ID
    business_date: DATE
    created_at: DATETIME
    customer_id: ID | None = None
    receipt_email: EMAIL | None = None
    kind: choice(*TransactionKind)
    status: choice(*TransactionStatus)
    lines: listing(TransactionLine, min_items=1, unique="line_no")
    payments: listing(Payment, max_items=100)

    def rules(self) -> list[RuleError]:
        wrong_sign, qty_message, amount_message = _SIGNS[self.kind]
        errors: list[RuleError] = []
        for i, line in enumerate(self.lines):
            if line.qty == 0 or wrong_sign(line.qty):
                errors.append((("lines", i, "qty"), qty_message))
            for name in ("net_amount", "tax_amount"):
                if wrong_sign(getattr(line, name)):
                    errors.append((("lines", i, name), amount_message))
        for i, payment in enumerate(self.payments):
            if wrong_sign(payment.amount):
                errors.append((("payments", i, "amount"), amount_message))
        if self.status != TransactionStatus.VOIDED:  # a voided sale was never paid
            due = sum((line.net_amount + line.tax_amount for line in self.lines), Decimal(0))
            paid = sum((payment.amount for payment in self.payments), Decimal(0))
            if abs(due - paid) > PAYMENT_TOLERANCE:
                errors.append((("payments",), f"must add up to the lines total (net + tax) {due}, got {paid}"))
        return errors


class TimeRegistration(Record):
    """A worker's clock-in and clock-out, at most 24 hours apart."""

    read_only: ClassVar[dict[str, str]] = {
        "approved": "is read-only: an operator approves registrations (POST /time-registrations/approve)"}
    batch_key: ClassVar[tuple[str, ...]] = ("registration_id",)

    registration_id: ID
    worker_id: ID
    clock_in: DATETIME
    clock_out: DATETIME

    def rules(self) -> list[RuleError]:
        worked = parse_datetime(self.clock_out) - parse_datetime(self.clock_in)
        if worked <= timedelta(0):
            return [(("clock_out",), "must be after clock_in")]
        if worked > MAX_SHIFT:
            return [(("clock_out",), "must be at most 24 hours after clock_in")]
        return []


class StatusMessage(Record):
    """A store's report on a download session (§9)."""

    batch_key: ClassVar[tuple[str, ...]] = ()

    session_id: ID
    status: choice(*SessionStatus)
    at: DATETIME
    message: text(2000) | None = None
    rows_affected: integer(0, 10**12) | None = None


class InventoryRow(Record):
    """On-hand stock of a product (or variant) in a store, as migration stages it."""

    batch_key: ClassVar[tuple[str, ...]] = ("store_id", "product_id", "variant_id")

    store_id: ID
    product_id: ID
    variant_id: ID | None = None
    qty: QTY


UPLOAD_MODELS: dict[str, type[StrictModel]] = {
    "transactions": Transaction,
    "time-registrations": TimeRegistration,
    "status-messages": StatusMessage,
    "inventory": InventoryRow,
}
"""Record type → model."""
