"""Post inventory: decide which lines of an inventory journal may be applied to on-hand stock.

The plan is pure; the job applies ``plan.post`` and records their line numbers as posted in the
same write, so that each journal line moves stock exactly once whatever reruns happen.

Example::

    plan = plan_journal_posting(journal["lines"], posted_line_nos={1, 2}, on_hand=on_hand,
                                allow_negative={"P1": False})
    journal_status = plan.status          # "Posted" or "Error"
    journal_message = plan.message        # the AX "cannot be picked" messages, one a line
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

JOURNAL_CREATED = "Created"
JOURNAL_POSTED = "Posted"
JOURNAL_ERROR = "Error"

NO_VARIANT = "*"
"""The ``variant_id`` of a product that has no variants."""

ZERO = Decimal(0)

StockKey = tuple[str, str]
"""``(product_id, variant_id)``; ``variant_id`` is ``'*'`` for a product without variants."""


@dataclass(frozen=True)
class PostingPlan:
    """What posting a journal now does.

    ``post``: lines to apply, in line order. ``refused``: ``(line, message)`` for lines that would
    take a product that does not allow negative inventory below zero. ``skipped``: lines already
    posted by an earlier run. ``on_hand``: on-hand per ``(product, variant)`` after ``post``,
    for the keys the journal touches.
    """

    post: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    on_hand: dict[StockKey, Decimal] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``Posted`` when every line is (or was already) posted, ``Error`` otherwise."""
        return JOURNAL_ERROR if self.refused else JOURNAL_POSTED

    @property
    def messages(self) -> list[str]:
        return [message for _, message in self.refused]

    @property
    def message(self) -> str:
        """The journal's error message (one line per refused line); empty when Posted."""
        return "\n".join(self.messages)


def stock_key(line: Mapping[str, Any]) -> StockKey:
    """The on-hand key of a journal line; a missing variant is ``'*'``."""
    return (line["product_id"], line.get("variant_id") or NO_VARIANT)


def item_label(product_id: str, variant_id: str | None = None) -> str:
    """How a message names an item: ``P1``, or ``P1 (variant M-RED)`` for a variant."""
    if variant_id and variant_id != NO_VARIANT:
        return f"{product_id} (variant {variant_id})"
    return product_id


def format_qty(qty: Decimal | int | str) -> str:
    """A quantity without trailing zeros and without exponent: ``2.000`` → ``2``, ``1.50`` → ``1.5``."""
    value = Decimal(qty)
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


def cannot_pick_message(product_id: str, variant_id: str | None, available: Decimal | int) -> str:
    """The AX message (``CannotPickWithEnoughInventory``) for a refused line.

    ``available`` is the on-hand seen by the line, shown as 0 when already negative.
    """
    shown = max(Decimal(available), ZERO)
    return (
        f"Item {item_label(product_id, variant_id)} cannot be picked because only "
        f"{format_qty(shown)} is/are available from the inventory."
    )


def plan_journal_posting(
    journal_lines: Iterable[Mapping[str, Any]],
    posted_line_nos: set[int],
    on_hand: Mapping[StockKey, Decimal],
    allow_negative: Mapping[str, bool],
) -> PostingPlan:
    """Plan the posting of a journal's lines against current on-hand stock.

    Lines in ``posted_line_nos`` are skipped (they moved stock in an earlier run). The others are
    taken in ``line_no`` order and applied cumulatively, so two lines of one item see each other.
    A line that lowers on-hand below zero for a product whose ``allow_negative`` is False is
    refused and does not move stock; products missing from ``allow_negative`` allow it (the
    product default). Items missing from ``on_hand`` have zero.
    """
    running: dict[StockKey, Decimal] = {}
    post: list[dict[str, Any]] = []
    refused: list[tuple[dict[str, Any], str]] = []
    skipped: list[dict[str, Any]] = []
    for line in sorted(journal_lines, key=lambda item: int(item["line_no"])):
        line = dict(line)
        if int(line["line_no"]) in posted_line_nos:
            skipped.append(line)
            continue
        key = stock_key(line)
        current = running.get(key, Decimal(on_hand.get(key, ZERO)))
        after = current + Decimal(line["qty"])
        if after < ZERO and after < current and not allow_negative.get(key[0], True):
            refused.append((line, cannot_pick_message(key[0], key[1], current)))
            running[key] = current
            continue
        running[key] = after
        post.append(line)
    return PostingPlan(post=post, refused=refused, skipped=skipped, on_hand=running)
