"""Post inventory planning: exactly-once lines, negative-stock refusal, cumulative lines."""
from __future__ import annotations

from decimal import Decimal

from chalicelib.domain.inventory import (
    cannot_pick_message,
    format_qty,
    plan_journal_posting,
)

D = Decimal


def jline(line_no, product_id, qty, variant_id="*"):
    return {"line_no": line_no, "product_id": product_id, "variant_id": variant_id, "qty": D(str(qty))}


def test_all_lines_post_and_on_hand_moves():
    lines = [jline(1, "P1", -2), jline(2, "P2", 3, "M-RED")]

    plan = plan_journal_posting(lines, set(), {("P1", "*"): D(5)}, {})

    assert [line["line_no"] for line in plan.post] == [1, 2]
    assert plan.refused == [] and plan.skipped == []
    assert plan.on_hand == {("P1", "*"): D(3), ("P2", "M-RED"): D(3)}
    assert plan.status == "Posted"
    assert plan.message == ""


def test_lines_already_posted_are_skipped_exactly_once():
    lines = [jline(1, "P1", -2), jline(2, "P1", -1), jline(3, "P2", -4)]

    plan = plan_journal_posting(lines, {1, 3}, {("P1", "*"): D(3), ("P2", "*"): D(0)}, {"P1": False, "P2": False})

    # P1's on-hand of 3 already reflects line 1; only line 2 moves stock now.
    assert [line["line_no"] for line in plan.post] == [2]
    assert [line["line_no"] for line in plan.skipped] == [1, 3]
    assert plan.on_hand == {("P1", "*"): D(2)}
    assert plan.status == "Posted"


def test_a_rerun_after_everything_posted_does_nothing():
    lines = [jline(1, "P1", -2), jline(2, "P2", 5)]

    plan = plan_journal_posting(lines, {1, 2}, {}, {})

    assert plan.post == [] and plan.refused == []
    assert plan.status == "Posted"


def test_negative_inventory_is_refused_with_the_ax_message():
    lines = [jline(1, "P1", -5), jline(2, "P2", -1)]

    plan = plan_journal_posting(lines, set(), {("P1", "*"): D("2.000"), ("P2", "*"): D(1)}, {"P1": False})

    assert [line["line_no"] for line in plan.post] == [2]
    assert [(line["line_no"], message) for line, message in plan.refused] == [
        (1, "Item P1 cannot be picked because only 2 is/are available from the inventory."),
    ]
    assert plan.status == "Error"
    assert plan.message == "Item P1 cannot be picked because only 2 is/are available from the inventory."
    assert plan.on_hand[("P1", "*")] == D(2)


def test_the_message_names_the_variant():
    plan = plan_journal_posting([jline(1, "P1", -3, "M-RED")], set(), {("P1", "M-RED"): D("1.5")}, {"P1": False})

    assert plan.messages == [
        "Item P1 (variant M-RED) cannot be picked because only 1.5 is/are available from the inventory."
    ]


def test_lines_apply_cumulatively_in_line_order():
    # Out of order on purpose: line 1 receives 2, line 2 issues 3, line 3 issues 2.
    lines = [jline(3, "P1", -2), jline(1, "P1", 2), jline(2, "P1", -3)]

    plan = plan_journal_posting(lines, set(), {("P1", "*"): D(1)}, {"P1": False})

    assert [line["line_no"] for line in plan.post] == [1, 2]
    assert [(line["line_no"], message) for line, message in plan.refused] == [
        (3, "Item P1 cannot be picked because only 0 is/are available from the inventory."),
    ]
    assert plan.on_hand == {("P1", "*"): D(0)}


def test_a_refused_line_does_not_consume_stock_for_later_lines():
    lines = [jline(1, "P1", -10), jline(2, "P1", -2)]

    plan = plan_journal_posting(lines, set(), {("P1", "*"): D(3)}, {"P1": False})

    assert [line["line_no"] for line in plan.post] == [2]
    assert [line["line_no"] for line, _ in plan.refused] == [1]
    assert plan.on_hand == {("P1", "*"): D(1)}


def test_a_rerun_after_the_stock_is_corrected_posts_only_the_remainder():
    lines = [jline(1, "P1", -5), jline(2, "P2", -1)]
    first = plan_journal_posting(lines, set(), {("P1", "*"): D(2), ("P2", "*"): D(1)}, {"P1": False})
    posted = {line["line_no"] for line in first.post}

    rerun = plan_journal_posting(lines, posted, {("P1", "*"): D(7), ("P2", "*"): D(0)}, {"P1": False})

    assert [line["line_no"] for line in rerun.post] == [1]
    assert rerun.status == "Posted"
    assert rerun.on_hand == {("P1", "*"): D(2)}


def test_items_allowing_negative_inventory_go_below_zero():
    lines = [jline(1, "P1", -4), jline(2, "P2", -1), jline(3, "P1", -1)]

    plan = plan_journal_posting(lines, set(), {("P1", "*"): D(1)}, {"P1": True})

    # P2 is not listed: products allow negative inventory by default.
    assert [line["line_no"] for line in plan.post] == [1, 2, 3]
    assert plan.on_hand == {("P1", "*"): D(-4), ("P2", "*"): D(-1)}
    assert plan.status == "Posted"


def test_receipts_into_negative_stock_are_never_refused():
    plan = plan_journal_posting([jline(1, "P1", 2)], set(), {("P1", "*"): D(-5)}, {"P1": False})

    assert [line["line_no"] for line in plan.post] == [1]
    assert plan.on_hand == {("P1", "*"): D(-3)}


def test_missing_variant_means_no_variant():
    plan = plan_journal_posting(
        [{"line_no": 1, "product_id": "P1", "qty": D(-1)}], set(), {("P1", "*"): D(1)}, {"P1": False}
    )

    assert plan.on_hand == {("P1", "*"): D(0)}


def test_quantities_are_shown_without_trailing_zeros():
    assert format_qty(D("2.000")) == "2"
    assert format_qty(D("10")) == "10"
    assert format_qty(D("1.50")) == "1.5"
    assert format_qty(3) == "3"
    assert cannot_pick_message("P1", None, D("-2")) == (
        "Item P1 cannot be picked because only 0 is/are available from the inventory."
    )
