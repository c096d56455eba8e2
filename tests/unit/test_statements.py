"""Statement posting: totals, balanced ledger, inventory journal, deterministic ids."""
from __future__ import annotations

import random
from decimal import Decimal

import pytest

from chalicelib.domain.errors import DomainError
from chalicelib.domain.statements import (
    MissingAccount,
    UnbalancedLedger,
    build_statement,
    group_for_posting,
    journal_id_for,
    revenue_account_for,
)

D = Decimal

STORE = {"id": "HOUSTON", "name": "Houston", "warehouse_id": "WH-HOU"}
ACCOUNTS = {
    "revenue_default": "401100",
    "tax": "222000",
    "cash": "110100",
    "card": "110200",
    "gift_card": "110300",
}
# ALL (no account) → APPAREL (401200) → SHIRTS (inherits 401200); FOOD has its own; TOYS none.
CATEGORIES = {
    "ALL": {"id": "ALL", "name": "All", "parent_id": None},
    "APPAREL": {"id": "APPAREL", "name": "Apparel", "parent_id": "ALL", "revenue_account": "401200"},
    "SHIRTS": {"id": "SHIRTS", "name": "Shirts", "parent_id": "APPAREL"},
    "FOOD": {"id": "FOOD", "name": "Food", "parent_id": "ALL", "revenue_account": "401300"},
    "TOYS": {"id": "TOYS", "name": "Toys", "parent_id": "ALL"},
}
PRODUCT_CATEGORY = {"SHIRT": "SHIRTS", "JACKET": "APPAREL", "APPLE": "FOOD", "BALL": "TOYS"}
CATEGORIES_BY_PRODUCT = {pid: CATEGORIES[cid] for pid, cid in PRODUCT_CATEGORY.items()}


def line(line_no, product_id, qty, unit_price, tax, variant_id=None):
    qty, unit_price, tax = D(str(qty)), D(str(unit_price)), D(str(tax))
    result = {
        "line_no": line_no,
        "product_id": product_id,
        "qty": qty,
        "unit_price": unit_price,
        "net_amount": qty * unit_price,
        "tax_amount": tax,
    }
    if variant_id:
        result["variant_id"] = variant_id
    return result


def transaction(transaction_id, lines, payments, kind="Sale", status="Completed", business_date="2026-11-03",
                store_id="HOUSTON"):
    return {
        "transaction_id": transaction_id,
        "store_id": store_id,
        "terminal_id": "T1",
        "receipt_id": f"R-{transaction_id}",
        "business_date": business_date,
        "created_at": f"{business_date}T10:00:00Z",
        "kind": kind,
        "status": status,
        "lines": lines,
        "payments": [{"tender": tender, "amount": D(str(amount))} for tender, amount in payments],
    }


def build(transactions, seq=1):
    return build_statement(STORE, "2026-11-03", transactions, CATEGORIES_BY_PRODUCT, CATEGORIES, ACCOUNTS, seq=seq)


def balances(statement):
    debit = sum((entry.debit for entry in statement.ledger_lines), D(0))
    credit = sum((entry.credit for entry in statement.ledger_lines), D(0))
    return debit, credit


def by_account(statement):
    return {entry.main_account: (entry.debit, entry.credit) for entry in statement.ledger_lines}


@pytest.fixture
def mixed_day():
    return [
        # sale: two shirt variants (inherited 401200), a jacket (401200), apples (401300); cash + card
        transaction(
            "TX1",
            [
                line(1, "SHIRT", 2, "19.99", "7.60", variant_id="M-RED"),
                line(2, "SHIRT", 1, "19.99", "3.80", variant_id="L-BLUE"),
                line(3, "JACKET", 1, "89.00", "16.91"),
                line(4, "APPLE", 3, "0.45", "0.09"),
            ],
            [("cash", "50.00"), ("card", "128.72")],
        ),
        # sale of a ball (no category account → default), paid by gift card
        transaction("TX2", [line(1, "BALL", 1, "12.50", "2.38")], [("gift_card", "14.88")]),
        # return of one red shirt, refunded by card
        transaction("TX3", [line(1, "SHIRT", -1, "19.99", "-3.80", variant_id="M-RED")], [("card", "-23.79")],
                    kind="Return"),
        # voided and training transactions never count
        transaction("TX4", [line(1, "JACKET", 5, "89.00", "84.55")], [("cash", "529.55")], status="Voided"),
        transaction("TX5", [line(1, "APPLE", 9, "0.45", "0.77")], [("cash", "4.82")], status="Training"),
    ]


def test_ledger_balances_to_the_cent_across_sales_returns_tenders_and_categories(mixed_day):
    statement = build(mixed_day)

    debit, credit = balances(statement)
    assert debit == credit == D("169.81")
    assert by_account(statement) == {
        "401200": (D("0.00"), D("128.98")),  # shirts inherit APPAREL's account: 39.98 + 19.99 + 89.00 - 19.99
        "401300": (D("0.00"), D("1.35")),
        "401100": (D("0.00"), D("12.50")),  # TOYS has no account up to ALL: the default
        "222000": (D("0.00"), D("26.98")),
        "110100": (D("50.00"), D("0.00")),
        "110200": (D("104.93"), D("0.00")),  # card 128.72 less the 23.79 refund
        "110300": (D("14.88"), D("0.00")),
    }
    for entry in statement.ledger_lines:
        assert entry.debit >= 0 and entry.credit >= 0 and (entry.debit == 0) != (entry.credit == 0)
        assert entry.posting_date == "2026-11-03"
        assert entry.store_id == "HOUSTON"
        assert entry.statement_id == statement.statement_id
        assert entry.description


def test_totals_count_only_completed_sales_and_returns(mixed_day):
    statement = build(mixed_day)

    assert statement.transaction_ids == ("TX1", "TX2", "TX3")
    assert statement.totals.to_dict() == {
        "transactions": 3,
        "sales": D("142.83"),
        "tax": D("26.98"),
        "gross": D("169.81"),
        "rounding": D("0.00"),
        "tenders": {"card": D("104.93"), "cash": D("50.00"), "gift_card": D("14.88")},
    }


def test_only_voided_and_training_give_an_empty_statement(mixed_day):
    statement = build(mixed_day[3:])

    assert statement.totals.transactions == 0
    assert statement.ledger_lines == ()
    assert statement.inventory_journal.lines == ()


def test_a_day_of_net_returns_flips_every_side():
    statement = build([
        transaction("R1", [line(1, "APPLE", -10, "1.00", "-1.90")], [("cash", "-11.90")], kind="Return"),
    ])

    assert by_account(statement) == {
        "401300": (D("10.00"), D("0.00")),
        "222000": (D("1.90"), D("0.00")),
        "110100": (D("0.00"), D("11.90")),
    }


def test_zero_lines_are_omitted():
    statement = build([
        transaction("S1", [line(1, "BALL", 1, "10.00", "0.00")], [("cash", "10.00")]),
        transaction("R1", [line(1, "BALL", -1, "10.00", "0.00")], [("card", "-10.00")], kind="Return"),
        transaction("S2", [line(1, "APPLE", 1, "2.00", "0.00")], [("card", "2.00")]),
    ])

    assert by_account(statement) == {
        "401300": (D("0.00"), D("2.00")),
        "110100": (D("10.00"), D("0.00")),
        "110200": (D("0.00"), D("8.00")),
    }


def test_inventory_journal_aggregates_per_variant_with_sales_negative_and_returns_positive(mixed_day):
    mixed_day.append(
        transaction("TX6", [line(1, "BALL", -3, "12.50", "-7.14")], [("cash", "-44.64")], kind="Return")
    )
    mixed_day.append(
        # the jacket sold and returned on the same day nets to zero and drops out
        transaction("TX7", [line(1, "JACKET", -1, "89.00", "-16.91")], [("cash", "-105.91")], kind="Return")
    )
    journal = build(mixed_day).inventory_journal

    assert journal.to_dict() == {
        "journal_id": "IJ-HOUSTON-2026-11-03-1",
        "store_id": "HOUSTON",
        "warehouse_id": "WH-HOU",
        "statement_id": "HOUSTON-2026-11-03-1",
        "status": "Created",
        "lines": [
            {"line_no": 1, "product_id": "APPLE", "variant_id": "*", "qty": D("-3")},
            {"line_no": 2, "product_id": "BALL", "variant_id": "*", "qty": D("2")},
            {"line_no": 3, "product_id": "SHIRT", "variant_id": "L-BLUE", "qty": D("-1")},
            {"line_no": 4, "product_id": "SHIRT", "variant_id": "M-RED", "qty": D("-1")},
        ],
    }


def test_warehouse_defaults_to_the_store_id():
    statement = build_statement(
        {"id": "DALLAS"}, "2026-11-03",
        [transaction("S1", [line(1, "BALL", 1, "1.00", "0.00")], [("cash", "1.00")], store_id="DALLAS")],
        CATEGORIES_BY_PRODUCT, CATEGORIES, ACCOUNTS, seq=1,
    )

    assert statement.inventory_journal.warehouse_id == "DALLAS"


def test_ids_are_deterministic_and_the_same_on_a_rerun(mixed_day):
    first, rerun = build(mixed_day), build(list(reversed(mixed_day)))
    later = build(mixed_day, seq=2)

    assert first.statement_id == "HOUSTON-2026-11-03-1"
    assert first == rerun
    assert first.inventory_journal.journal_id == journal_id_for(first.statement_id)
    assert later.statement_id == "HOUSTON-2026-11-03-2"
    assert later.inventory_journal.journal_id != first.inventory_journal.journal_id


def test_statement_record():
    statement = build([transaction("S1", [line(1, "BALL", 1, "1.00", "0.00")], [("cash", "1.00")])])

    record = statement.to_dict()
    assert record["statement_id"] == "HOUSTON-2026-11-03-1"
    assert record["status"] == "Calculated"
    assert record["transaction_ids"] == ["S1"]
    assert record["journal_id"] == "IJ-HOUSTON-2026-11-03-1"


def test_sub_cent_line_amounts_leave_a_rounding_difference_line():
    # Tax is computed to four decimals on the POS; every payment is rounded to the cent.
    day = [
        transaction(f"S{n}", [line(1, "BALL", 1, "9.99", "0.8242")], [("card", "10.81")]) for n in range(1, 31)
    ] + [
        transaction("R1", [line(1, "APPLE", -1, "0.45", "-0.0315")], [("cash", "-0.48")], kind="Return"),
    ]

    statement = build(day)

    debit, credit = balances(statement)
    assert debit == credit == D("324.87")
    # tax 30 x 0.8242 - 0.0315 = 24.6945 → 24.69; the tenders took 0.12 less than sales + tax.
    assert [
        (entry.description.split(",")[0], entry.main_account, entry.debit, entry.credit)
        for entry in statement.ledger_lines
    ] == [
        ("Net sales", "401100", D("0.00"), D("299.70")),
        ("Net sales", "401300", D("0.45"), D("0.00")),
        ("Sales tax", "222000", D("0.00"), D("24.69")),
        ("Rounding difference", "401100", D("0.12"), D("0.00")),
        ("Tender card", "110200", D("324.30"), D("0.00")),
        ("Tender cash", "110100", D("0.00"), D("0.48")),
    ]
    totals = statement.totals
    assert (totals.sales, totals.tax, totals.gross, totals.rounding) == (
        D("299.25"), D("24.69"), D("323.94"), D("-0.12")
    )
    assert sum(totals.tenders.values()) == totals.gross + totals.rounding


def test_a_payment_one_cent_off_posts_the_cent_as_rounding():
    # the upload model accepts payments up to one cent from net + tax; the statement books that cent.
    statement = build([transaction("S1", [line(1, "BALL", 1, "10.00", "0.80")], [("cash", "10.81")])])

    debit, credit = balances(statement)
    assert debit == credit == D("10.81")
    assert statement.totals.rounding == D("0.01")
    assert ("Rounding difference", "401100", D("0.00"), D("0.01")) in [
        (entry.description.split(",")[0], entry.main_account, entry.debit, entry.credit)
        for entry in statement.ledger_lines
    ]


def test_payments_that_do_not_cover_the_sale_raise_unbalanced_ledger():
    with pytest.raises(UnbalancedLedger) as raised:
        build([
            transaction("OK", [line(1, "BALL", 1, "5.00", "0.00")], [("cash", "5.00")]),
            transaction("SHORT", [line(1, "BALL", 1, "5.00", "0.95")], [("cash", "5.00")]),
        ])

    assert isinstance(raised.value, DomainError)
    assert raised.value.transaction_ids == ["SHORT"]
    assert "SHORT" in str(raised.value)


def test_a_tender_without_an_account_is_a_named_error():
    accounts = {key: value for key, value in ACCOUNTS.items() if key != "gift_card"}
    with pytest.raises(MissingAccount, match="gift_card"):
        build_statement(
            STORE, "2026-11-03",
            [transaction("S1", [line(1, "BALL", 1, "5.00", "0.00")], [("gift_card", "5.00")])],
            CATEGORIES_BY_PRODUCT, CATEGORIES, accounts, seq=1,
        )


def test_a_transaction_of_another_store_is_refused():
    with pytest.raises(ValueError):
        build([transaction("S1", [line(1, "BALL", 1, "5.00", "0.00")], [("cash", "5.00")], store_id="DALLAS")])


def test_revenue_account_inherits_from_the_nearest_ancestor():
    assert revenue_account_for("SHIRT", CATEGORIES_BY_PRODUCT, CATEGORIES, "401100") == "401200"
    assert revenue_account_for("APPLE", CATEGORIES_BY_PRODUCT, CATEGORIES, "401100") == "401300"
    assert revenue_account_for("BALL", CATEGORIES_BY_PRODUCT, CATEGORIES, "401100") == "401100"
    assert revenue_account_for("UNKNOWN", CATEGORIES_BY_PRODUCT, CATEGORIES, "401100") == "401100"
    with pytest.raises(MissingAccount):
        revenue_account_for("BALL", CATEGORIES_BY_PRODUCT, CATEGORIES, None)


def test_group_for_posting_keeps_postable_transactions_through_the_date():
    transactions = [
        transaction("A2", [], [], business_date="2026-11-02"),
        transaction("A1", [], [], business_date="2026-11-02"),
        transaction("B1", [], [], business_date="2026-11-02", store_id="DALLAS"),
        transaction("A3", [], [], business_date="2026-11-03"),
        transaction("A4", [], [], business_date="2026-11-04"),
        transaction("V1", [], [], business_date="2026-11-01", status="Voided"),
        transaction("P1", [], [], business_date="2026-11-01", status="Posted"),
    ]

    groups = group_for_posting(transactions, "2026-11-03")

    assert list(groups) == [("DALLAS", "2026-11-02"), ("HOUSTON", "2026-11-02"), ("HOUSTON", "2026-11-03")]
    assert [t["transaction_id"] for t in groups[("HOUSTON", "2026-11-02")]] == ["A1", "A2"]


def random_transaction(rng, number):
    kind = rng.choice(["Sale", "Sale", "Sale", "Return"])
    sign = -1 if kind == "Return" else 1
    lines = []
    for line_no in range(1, rng.randint(1, 5) + 1):
        product = rng.choice([*PRODUCT_CATEGORY, "NEW"])
        qty = sign * rng.randint(1, 4)
        price = D(rng.randint(1, 50000)) / 100
        # POS tax carries four decimals; payments are whole cents (at most 0.01 apart)
        tax = (qty * price * D(rng.choice(["0", "0.07", "0.19", "0.0825"]))).quantize(D("0.0001"))
        variant = rng.choice([None, "S", "M"])
        lines.append(line(line_no, product, qty, price, tax, variant_id=variant))
    gross = sum((entry["net_amount"] + entry["tax_amount"] for entry in lines), D(0)).quantize(D("0.01"))
    tenders = rng.sample(["cash", "card", "gift_card"], rng.randint(1, 3))
    payments = []
    remaining = gross
    for tender in tenders[:-1]:
        part = (remaining * D(rng.random())).quantize(D("0.01"))
        payments.append((tender, part))
        remaining -= part
    payments.append((tenders[-1], remaining))
    status = rng.choice(["Completed"] * 8 + ["Voided", "Training"])
    return transaction(f"TX{number:04d}", lines, payments, kind=kind, status=status)


def test_random_days_always_balance():
    rng = random.Random(20261103)
    transactions = [random_transaction(rng, number) for number in range(200)]
    completed = [t for t in transactions if t["status"] == "Completed"]

    for size in (1, 7, 50, 200):
        statement = build(transactions[:size])
        debit, credit = balances(statement)
        assert debit == credit
        assert all(entry.debit >= 0 and entry.credit >= 0 for entry in statement.ledger_lines)
        totals = statement.totals
        assert totals.gross == totals.sales + totals.tax
        assert sum(totals.tenders.values(), D(0)) == totals.gross + totals.rounding
        assert abs(totals.rounding) <= D("0.01") * size

    statement = build(transactions)
    assert statement.totals.transactions == len(completed)
    expected_stock = {}
    for t in completed:
        for entry in t["lines"]:
            key = (entry["product_id"], entry.get("variant_id") or "*")
            expected_stock[key] = expected_stock.get(key, D(0)) - entry["qty"]
    assert {(j.product_id, j.variant_id): j.qty for j in statement.inventory_journal.lines} == {
        key: qty for key, qty in expected_stock.items() if qty
    }
    assert [j.line_no for j in statement.inventory_journal.lines] == list(
        range(1, len(statement.inventory_journal.lines) + 1)
    )
