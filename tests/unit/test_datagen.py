"""The demo/benchmark retailer generator: determinism, scale, realism and record shapes."""
from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest

from chalicelib.models.base import parse_datetime
from chalicelib.models.parsing import parse_record, parse_records
from devstack import datagen
from devstack.datagen import SCALES, generate, time_registrations, transactions

END = date(2026, 3, 4)  # any date works; fixed here only so failures reproduce
ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def small():
    return generate("S", seed=42, end_date=END)


@pytest.fixture(scope="module")
def small_transactions(small):
    return list(transactions(small))


@pytest.fixture(scope="module")
def small_registrations(small):
    return list(time_registrations(small))


def _digest(retailer) -> str:
    payload = {
        "master": retailer.master_data(),
        "published": retailer.published_assortment_ids,
        "transactions": list(transactions(retailer)),
        "registrations": list(time_registrations(retailer)),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- determinism, scale

def test_same_seed_same_output_and_other_seed_differs():
    first = _digest(generate("S", seed=7, end_date=END))
    assert _digest(generate("S", seed=7, end_date=END)) == first
    assert _digest(generate("S", seed=8, end_date=END)) != first


def test_no_global_random_state_is_used():
    import random

    random.seed(1)
    expected = random.random()
    random.seed(1)
    generate("S", end_date=END)
    list(transactions(generate("S", end_date=END)))
    assert random.random() == expected


def test_one_store_can_be_regenerated_alone(small, small_transactions):
    alone = list(transactions(small, store_ids=["S002"]))
    assert alone == [t for t in small_transactions if t["store_id"] == "S002"]


def test_a_day_does_not_depend_on_the_window(small, small_transactions, small_registrations):
    last_day = (END - timedelta(days=1)).isoformat()
    one_day = list(transactions(small, days=1))
    assert one_day == [t for t in small_transactions if t["business_date"] == last_day]
    one_day_registrations = list(time_registrations(small, days=1))
    assert one_day_registrations == [
        r for r in small_registrations if r["clock_in"].startswith(last_day)]


def test_small_scale_counts_exactly(small):
    data = small.master_data()
    assert len(data["stores"]) == 6
    assert len(data["products"]) == 200
    assert len(data["workers"]) == 20
    assert len(data["customers"]) == 6 * 30
    assert len(data["parameters"]) == 1
    assert list(data) == ["org-nodes", "stores", "categories", "products", "customers", "workers",
                          "pay-types", "delivery-modes", "assortments",
                          "account-export-profiles", "parameters"]


def test_small_generates_fast():
    started = time.perf_counter()
    retailer = generate("S", end_date=END)
    list(transactions(retailer))
    list(time_registrations(retailer))
    assert time.perf_counter() - started < 10.0


def test_medium_scale_counts_and_speed():
    started = time.perf_counter()
    medium = generate("M", end_date=END)
    assert time.perf_counter() - started < 20.0  # generous: CI machines are shared; the bench reports real timings
    assert len(medium.stores) == 50
    assert len(medium.products) == 5_000
    assert len(medium.workers) == 200
    assert len(medium.customers) <= 5_000
    assert len({s["name"] for s in medium.stores}) == 50
    assert SCALES["M"].days == 30 and SCALES["M"].per_store_per_day == 40
    assert SCALES["L"].stores == 300 and SCALES["L"].products == 100_000


def test_transactions_are_streamed(small):
    stream = transactions(small)
    assert iter(stream) is stream
    assert next(stream)["store_id"] == "S001"
    assert iter(time_registrations(small)) is not None


def test_unknown_scale_is_refused():
    with pytest.raises(ValueError, match="unknown scale"):
        generate("XL", end_date=END)


# --------------------------------------------------------------------------- master data

def test_everything_is_json_and_ids_are_valid(small, small_transactions, small_registrations):
    json.dumps(small.master_data())
    json.dumps(small_transactions)
    json.dumps(small_registrations)
    ids = [r["id"] for items in small.master_data().values() for r in items]
    ids += [v["id"] for p in small.products for v in p["variants"]]
    ids += [w["export_id"] for w in small.workers] + [s["warehouse_id"] for s in small.stores]
    for t in small_transactions:
        ids += [t["transaction_id"], t["terminal_id"], t["receipt_id"]]
    ids += [r["registration_id"] for r in small_registrations]
    assert all(ID.fullmatch(i) for i in ids), [i for i in ids if not ID.fullmatch(i)]
    for items in small.master_data().values():
        assert len({r["id"] for r in items}) == len(items)
    assert len({t["transaction_id"] for t in small_transactions}) == len(small_transactions)
    assert len({r["registration_id"] for r in small_registrations}) == len(small_registrations)


def test_org_tree_and_stores(small):
    nodes = {n["id"]: n for n in small.org_nodes}
    roots = [n for n in small.org_nodes if n["parent_id"] is None]
    assert len(roots) == 1

    def depth(node_id):
        return 0 if nodes[node_id]["parent_id"] is None else 1 + depth(nodes[node_id]["parent_id"])

    assert {depth(s["org_node_id"]) for s in small.stores} == {2}  # company → region → district
    assert {s["legal_entity"] for s in small.stores} == {"USRT", "CART"}
    assert all(s["warehouse_id"] for s in small.stores)
    assert 0 < sum("email" in s for s in small.stores) < len(small.stores)


def test_category_tree(small):
    by_id = {c["id"]: c for c in small.categories}
    assert by_id["ALL"]["parent_id"] is None
    assert all(c["parent_id"] in by_id for c in small.categories if c["id"] != "ALL")
    assert {"Apparel", "Footwear", "Accessories", "Home"} <= {c["name"] for c in small.categories}
    assert any("revenue_account" in c for c in small.categories)
    parents = {c["parent_id"] for c in small.categories}
    assert all(p["category_id"] not in parents for p in small.products)  # products sit on leaves


def test_products_cover_every_case(small):
    products = small.products
    assert all(re.fullmatch(r"P\d{6}", p["id"]) for p in products)
    assert all(re.fullmatch(r"\d+\.\d{2}", p["price"]) and Decimal(p["price"]) > 0 for p in products)
    with_variants = [p for p in products if p["variants"]]
    assert 0.3 < len(with_variants) / len(products) < 0.5
    variants = [v for p in with_variants for v in p["variants"]]
    assert any(re.fullmatch(r"[A-Z0-9.]+-[A-Z]{3}", v["id"]) and v["size"] and v["color"]
               for v in variants if "size" in v)
    assert all(set(v) <= {"id", "size", "color"} and len(v) >= 2 for v in variants)
    assert all(len({v["id"] for v in p["variants"]}) == len(p["variants"]) for p in products)
    assert 1 <= sum(p["stopped"] for p in products) <= 0.05 * len(products)
    assert 0.15 < sum(not p["allow_negative_inventory"] for p in products) / len(products) < 0.25
    released = Counter(tuple(p["released_to"]) for p in products)
    assert released[("USRT", "CART")] > 0.8 * len(products)
    assert released[("USRT",)] > 0 and released[("CART",)] > 0


def test_customers_workers_and_pay_types(small):
    languages = Counter(c["language"] for c in small.customers)
    assert languages.most_common(1)[0][0] == "en-us" and {"de-de", "fr-fr"} <= set(languages)
    assert {c["receipt_option"] for c in small.customers} == {"POS", "Email", "Both"}
    for c in small.customers:
        if c["receipt_option"] != "POS":
            assert c["email"].endswith("@example.com")
    assert any(c["receipt_option"] == "POS" and "email" in c for c in small.customers)

    store_ids = {s["id"] for s in small.stores}
    assert {w["store_id"] for w in small.workers} == store_ids
    assert {w["pay_period_type"] for w in small.workers} == {"weekly", "biweekly", "monthly"}
    assert small.workers[0]["export_id"] == "E1001"
    assert all(re.fullmatch(r"\d+\.\d{2}", w["base_rate"]) for w in small.workers)
    pay = {p["id"]: p["include_in_export"] for p in small.pay_types}
    assert pay == {"REG": True, "OT": True, "VAC": False}


def test_delivery_modes(small):
    modes = {m["id"]: m for m in small.delivery_modes}
    std = modes["STD"]
    assert std["channel_lines"] == [{"org_node_id": "HQ"}]
    assert std["product_lines"] == [{"kind": "category", "ref": "ALL", "line_type": "Include"}]
    assert {(a["country"], a.get("state"), a["line_type"]) for a in std["address_lines"]} == {
        ("USA", None, "Include"), ("USA", "AK", "Exclude"), ("USA", "HI", "Exclude")}
    express = modes["EXPRESS"]["product_lines"]
    assert {(line["kind"], line["line_type"]) for line in express} == {
        ("category", "Include"), ("product", "Exclude"), ("variant", "Exclude")}
    pickup = modes["PICKUP"]
    assert pickup["product_lines"] == [] and all("store_id" in c for c in pickup["channel_lines"])


def test_assortments(small):
    by_id = {a["id"]: a for a in small.assortments}
    assert all("status" not in a for a in small.assortments)
    assert set(small.published_assortment_ids) < set(by_id)  # one stays Draft
    published = [by_id[i] for i in small.published_assortment_ids]
    assert any(a["valid_to"] is None for a in published)
    assert any(a["valid_to"] is not None and a["valid_to"] < END.isoformat() for a in published)
    assert any(line["kind"] == "category" and line["line_type"] == "Exclude"
               for a in published for line in a["product_lines"])
    all_stores = {s["id"] for s in small.stores}
    covered = set()
    nodes = {n["id"]: n["parent_id"] for n in small.org_nodes}
    for s in small.stores:
        path, node = set(), s["org_node_id"]
        while node:
            path.add(node)
            node = nodes[node]
        if any(c.get("org_node_id") in path or c.get("store_id") == s["id"]
               for a in published if a["valid_to"] is None or a["valid_to"] >= END.isoformat()
               for c in a["channel_lines"]):
            covered.add(s["id"])
    assert covered == all_stores


def test_account_export_profiles_and_parameters(small):
    profiles = small.account_export_profiles
    assert {p["file_format"] for p in profiles} == {"xml", "csv"}
    assert all(p["start_date"] == (END - timedelta(days=7)).isoformat() for p in profiles)
    assert any("&" in line["exported_account_name"] for p in profiles for line in p["lines"])
    params = small.parameters
    assert params["id"] == "default" and params["company_language"] == "en-us"
    assert set(params["accounts"]) == {"revenue_default", "tax", "cash", "card", "gift_card"}
    mapped = {line["main_account"] for p in profiles for line in p["lines"]}
    assert set(params["accounts"].values()) <= mapped


def test_dates_follow_end_date():
    later = generate("S", end_date=END + timedelta(days=10))
    earlier = generate("S", end_date=END)
    assert later.account_export_profiles[0]["start_date"] == (
        END + timedelta(days=3)).isoformat()
    assert later.assortments[0]["valid_from"] == (
        date.fromisoformat(earlier.assortments[0]["valid_from"]) + timedelta(days=10)).isoformat()


# --------------------------------------------------------------------------- transactions

def test_business_dates_end_the_day_before_end_date(small, small_transactions):
    dates = {t["business_date"] for t in small_transactions}
    assert max(dates) == (END - timedelta(days=1)).isoformat()
    assert min(dates) == (END - timedelta(days=7)).isoformat()
    assert len(dates) == 7
    stores = {s["id"]: s for s in small.stores}
    for t in small_transactions:
        assert t["created_at"].endswith("Z")
        local = parse_datetime(t["created_at"]).astimezone(ZoneInfo(stores[t["store_id"]]["time_zone"]))
        assert local.date().isoformat() == t["business_date"] and 9 <= local.hour < 21
    shorter = list(transactions(small, days=2, per_store_per_day=3, end_date=END))
    assert {t["business_date"] for t in shorter} == {"2026-03-02", "2026-03-03"}


def test_about_the_requested_volume(small_transactions):
    per_store_day = Counter((t["store_id"], t["business_date"]) for t in small_transactions)
    assert len(per_store_day) == 6 * 7
    assert 10 <= len(small_transactions) / len(per_store_day) <= 20


def test_every_transaction_balances_and_follows_the_sign_convention(small, small_transactions):
    tax_rate = Decimal("0.08")
    for t in small_transactions:
        sign = 1 if t["kind"] == "Sale" else -1
        assert 1 <= len(t["lines"]) <= 5
        due = Decimal(0)
        for line in t["lines"]:
            qty, price = Decimal(line["qty"]), Decimal(line["unit_price"])
            net, tax = Decimal(line["net_amount"]), Decimal(line["tax_amount"])
            assert qty * sign > 0 and price > 0
            assert net == qty * price
            assert tax == (net * tax_rate).quantize(CENT, rounding=ROUND_HALF_UP)
            assert net * sign > 0 and tax * sign >= 0
            due += net + tax
        paid = sum((Decimal(p["amount"]) for p in t["payments"]), Decimal(0))
        assert due == paid, t["transaction_id"]
        assert all(Decimal(p["amount"]) * sign > 0 for p in t["payments"])
        for value in [p["amount"] for p in t["payments"]] + [
                x[k] for x in t["lines"] for k in ("unit_price", "net_amount", "tax_amount")]:
            assert isinstance(value, str) and re.fullmatch(r"-?\d+\.\d{2}", value)


def test_transaction_mix(small_transactions):
    n = len(small_transactions)
    kinds = Counter(t["kind"] for t in small_transactions)
    statuses = Counter(t["status"] for t in small_transactions)
    assert kinds["Return"] > 0 and kinds["Sale"] > 0.9 * n
    assert statuses["Voided"] > 0 and statuses["Training"] > 0
    assert statuses["Completed"] > 0.9 * n
    assert any(len(t["payments"]) > 1 for t in small_transactions)
    assert {p["tender"] for t in small_transactions for p in t["payments"]} == {
        "cash", "card", "gift_card"}
    with_customer = sum("customer_id" in t for t in small_transactions) / n
    assert 0.2 < with_customer < 0.4
    assert any("receipt_email" in t for t in small_transactions)


@pytest.mark.parametrize("shift", range(0, 28, 3))
def test_every_small_week_has_returns_voids_and_training(shift):
    retailer = generate("S", seed=shift, end_date=END + timedelta(days=shift))
    week = list(transactions(retailer))
    for store in retailer.stores:
        mine = [t for t in week if t["store_id"] == store["id"]]
        assert any(t["status"] == "Training" for t in mine), store["id"]
        assert sum(t["status"] == "Voided" for t in mine) >= 2
        assert sum(t["kind"] == "Return" for t in mine) >= 5


def test_lines_sell_what_the_store_may_sell(small, small_transactions):
    products = {p["id"]: p for p in small.products}
    legal_entity = {s["id"]: s["legal_entity"] for s in small.stores}
    customers = {c["id"] for c in small.customers}
    for t in small_transactions:
        assert t["customer_id"] in customers if "customer_id" in t else True
        assert t["terminal_id"].startswith(t["store_id"])
        for line in t["lines"]:
            product = products[line["product_id"]]
            assert not product["stopped"]
            assert legal_entity[t["store_id"]] in product["released_to"]
            assert Decimal(line["unit_price"]) == Decimal(product["price"])
            variant_ids = {v["id"] for v in product["variants"]}
            assert line.get("variant_id") in variant_ids if variant_ids else "variant_id" not in line
    assert any("variant_id" in line for t in small_transactions for line in t["lines"])


# --------------------------------------------------------------------------- time registrations

def test_time_registrations(small, small_registrations):
    workers = {w["id"] for w in small.workers}
    zone = {w["id"]: ZoneInfo(s["time_zone"]) for w in small.workers for s in small.stores
            if s["id"] == w["store_id"]}
    hours_per_day: Counter = Counter()
    for r in small_registrations:
        assert set(r) == {"registration_id", "worker_id", "clock_in", "clock_out"}
        assert r["worker_id"] in workers
        assert r["clock_in"].endswith("Z") and r["clock_out"].endswith("Z")
        # A shift starts and ends on one day of its store's time zone.
        clock_in = datetime.fromisoformat(r["clock_in"]).astimezone(zone[r["worker_id"]])
        clock_out = datetime.fromisoformat(r["clock_out"]).astimezone(zone[r["worker_id"]])
        assert clock_in.tzinfo is not None and clock_in.date() == clock_out.date()
        assert END - timedelta(days=7) <= clock_in.date() < END
        hours_per_day[r["worker_id"], clock_in.date()] += (
            (clock_out - clock_in).total_seconds() / 3600)
    shifts = list(hours_per_day.values())
    assert all(4 <= h <= 11 for h in shifts)
    assert any(h > 8 for h in shifts) and any(h <= 8 for h in shifts)
    assert 4 <= len(shifts) / len(workers) <= 6  # about five shifts a week


# --------------------------------------------------------------------------- the record models

def test_generated_records_pass_the_record_models(small, small_transactions, small_registrations):
    for entity, items in small.master_data().items():
        for i, item in enumerate(items):
            parse_record(entity, item, path=f"{entity}[{i}]")
        parse_records(entity, items)
    # ~200 transactions, plus every return, void and training one
    sample = small_transactions[:200] + [
        t for t in small_transactions[200:] if t["kind"] != "Sale" or t["status"] != "Completed"]
    assert len(sample) >= 200
    for t in sample:
        parse_record("transactions", t, path=t["transaction_id"])
    for r in small_registrations:
        parse_record("time-registrations", r)


def test_scale_record_is_documented():
    assert datagen.__doc__ and "end_date" in datagen.generate.__doc__


# --------------------------------------------------------------------------- the explosion module

def test_sales_stay_inside_each_store_assortment_of_the_day(small, small_transactions):
    catalog_module = pytest.importorskip("chalicelib.domain.catalog")
    explosion = pytest.importorskip("chalicelib.domain.explosion")
    tree = catalog_module.OrgTree(small.org_nodes, small.stores)
    catalog = catalog_module.Catalog(small.categories, small.products)
    published = set(small.published_assortment_ids)
    assortments = [dict(a, status="Published" if a["id"] in published else "Draft")
                   for a in small.assortments]
    warnings: list[str] = []
    by_day = {}
    for t in small_transactions:
        day = date.fromisoformat(t["business_date"])
        if day not in by_day:
            by_day[day] = explosion.store_assortments(
                assortments, tree, catalog, None, day, warnings=warnings)
        for line in t["lines"]:
            key = (line["product_id"], line.get("variant_id", "*"))
            assert key in by_day[day][t["store_id"]], (t["transaction_id"], key)
    assert warnings == []


def test_only_the_pickup_mode_warns(small):
    catalog_module = pytest.importorskip("chalicelib.domain.catalog")
    explosion = pytest.importorskip("chalicelib.domain.explosion")
    tree = catalog_module.OrgTree(small.org_nodes, small.stores)
    catalog = catalog_module.Catalog(small.categories, small.products)
    warned = {}
    for mode in small.delivery_modes:
        exploded = explosion.explode_delivery_mode(mode, tree, catalog)
        warned[mode["id"]] = len(exploded.warnings)
        assert exploded.stores
    assert warned == {"STD": 0, "EXPRESS": 0, "PICKUP": 1}
