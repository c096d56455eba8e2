"""Delivery-mode and assortment explosion (DOMAIN §1, §5): pure, no AWS."""

from __future__ import annotations

import gc
import json
import time
import weakref
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from chalicelib.domain.catalog import ALL_CATEGORY, NO_VARIANT, Catalog, OrgTree
from chalicelib.domain.explosion import (
    AssortmentStatus,
    assortment_is_valid,
    delivery_mode_diff,
    diff_sets,
    expand_product_lines,
    explode_address_lines,
    explode_delivery_mode,
    is_expired,
    resolve_channels,
    store_assortments,
    store_delivery_mode_rows,
)

ORG_NODES = [
    {"id": "CORP", "name": "Contoso", "parent_id": None},
    {"id": "WEST", "name": "West", "parent_id": "CORP"},
    {"id": "SEATTLE", "name": "Seattle", "parent_id": "WEST"},
    {"id": "EAST", "name": "East", "parent_id": "CORP"},
    {"id": "EMPTY", "name": "No stores yet", "parent_id": "CORP"},
]
STORES = [
    {"id": "S1", "name": "Seattle 1", "legal_entity": "USRT", "org_node_id": "SEATTLE"},
    {"id": "S2", "name": "Portland", "legal_entity": "USRT", "org_node_id": "WEST"},
    {"id": "S3", "name": "Boston", "legal_entity": "USRT", "org_node_id": "EAST"},
    {"id": "S4", "name": "Toronto", "legal_entity": "CART", "org_node_id": "EAST"},
]
CATEGORIES = [
    {"id": "ALL", "name": "All products", "parent_id": None},
    {"id": "APPAREL", "name": "Apparel", "parent_id": "ALL"},
    {"id": "SHIRTS", "name": "Shirts", "parent_id": "APPAREL"},
    {"id": "TSHIRTS", "name": "T-shirts", "parent_id": "SHIRTS"},
    {"id": "FOOD", "name": "Food", "parent_id": "ALL"},
]


def product(pid, category, variants=(), released=("USRT",), stopped=False):
    return {
        "id": pid,
        "name": pid.title(),
        "category_id": category,
        "price": "9.99",
        "released_to": list(released),
        "stopped": stopped,
        "variants": [{"id": v} for v in variants],
    }


PRODUCTS = [
    product("TEE", "TSHIRTS", ["RED-M", "RED-L", "BLUE-M"], released=["USRT", "CART"]),
    product("POLO", "SHIRTS", ["S", "M"]),
    product("JACKET", "APPAREL", released=["USRT", "CART"]),
    product("APPLE", "FOOD"),
    product("OLDCOLA", "FOOD", stopped=True),
    product("MAPLE", "FOOD", released=["CART"]),
    product("ORPHAN", "NO-SUCH-CATEGORY"),
]
TEE = {("TEE", "RED-M"), ("TEE", "RED-L"), ("TEE", "BLUE-M")}
POLO = {("POLO", "S"), ("POLO", "M")}
EVERY_KEY = (
    TEE | POLO | {(pid, NO_VARIANT) for pid in ("JACKET", "APPLE", "OLDCOLA", "MAPLE", "ORPHAN")}
)


@pytest.fixture
def tree() -> OrgTree:
    return OrgTree(ORG_NODES, STORES)


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(CATEGORIES, PRODUCTS)


def line(kind, ref, line_type="Include"):
    return {"kind": kind, "ref": ref, "line_type": line_type}


def address(country, state=None, line_type="Include"):
    return {"country": country, "state": state, "line_type": line_type}


# --- catalog ------------------------------------------------------------------------------------


def test_stores_under_a_node_include_its_descendants(tree):
    assert tree.stores_under("CORP") == {"S1", "S2", "S3", "S4"}
    assert tree.stores_under("WEST") == {"S1", "S2"}
    assert tree.stores_under("SEATTLE") == {"S1"}
    assert tree.stores_under("EMPTY") == set()
    assert tree.stores_under("NOWHERE") == set()
    assert tree.legal_entity("S4") == "CART"


def test_category_with_descendants(catalog):
    assert catalog.category_descendants("APPAREL") == {"APPAREL", "SHIRTS", "TSHIRTS"}
    assert catalog.products_in_category("APPAREL") == {"TEE", "POLO", "JACKET"}
    assert catalog.products_in_category("SHIRTS") == {"TEE", "POLO"}
    assert catalog.products_in_category("NOPE") == set()


def test_root_all_is_every_product_even_without_a_known_category(catalog):
    assert catalog.products_in_category(ALL_CATEGORY) == {p["id"] for p in PRODUCTS}
    assert catalog.variant_keys_in_category(ALL_CATEGORY) == EVERY_KEY


def test_product_without_variants_has_the_star_variant(catalog):
    assert catalog.variant_keys("JACKET") == [("JACKET", "*")]
    assert catalog.variant_keys("TEE") == [("TEE", "RED-M"), ("TEE", "RED-L"), ("TEE", "BLUE-M")]
    assert catalog.variant_keys("NOPE") == []


class _ProductRecord(dict):
    """A product record that can be watched with a weak reference."""


def test_catalog_keeps_its_indexes_not_the_product_records():
    watched = []

    def products():
        for product in PRODUCTS:
            record = _ProductRecord(product)
            watched.append(weakref.ref(record))
            yield record

    catalog = Catalog(CATEGORIES, products())
    gc.collect()
    assert len(watched) == len(PRODUCTS) and all(ref() is None for ref in watched)  # freed as indexed
    assert catalog.has_product("TEE") and not catalog.has_product("NOPE")
    assert catalog.products_in_category(ALL_CATEGORY) == {p["id"] for p in PRODUCTS}
    assert catalog.variant_keys_in_category(ALL_CATEGORY) == EVERY_KEY


def test_catalog_holds_one_string_per_distinct_variant_id():
    decoded = [json.loads(json.dumps(product(pid, "SHIRTS", ["S", "RED-M"]))) for pid in ("A", "B")]
    assert decoded[0]["variants"][1]["id"] is not decoded[1]["variants"][1]["id"]  # as records arrive
    catalog = Catalog(CATEGORIES, decoded)
    assert catalog.variant_keys("A")[1][1] is catalog.variant_keys("B")[1][1] == "RED-M"


def test_a_cycle_in_bad_data_does_not_hang():
    tree = OrgTree(
        [{"id": "A", "parent_id": "B"}, {"id": "B", "parent_id": "A"}],
        [{"id": "S", "legal_entity": "X", "org_node_id": "B"}],
    )
    assert tree.stores_under("A") == {"S"}


# --- channels and product lines -----------------------------------------------------------------


def test_channels_are_nodes_with_descendants_plus_named_stores(tree):
    warnings: list[str] = []
    stores = resolve_channels(
        [{"org_node_id": "WEST"}, {"store_id": "S4"}, {"org_node_id": "GONE"}, {"store_id": "S9"}],
        tree,
        warnings,
    )
    assert stores == {"S1", "S2", "S4"}
    assert warnings == ["unknown org node 'GONE'", "unknown store 'S9'"]


def test_product_lines_expand_at_variant_level_and_report_unknown_refs(catalog):
    warnings: list[str] = []
    included, excluded = expand_product_lines(
        [
            line("category", "SHIRTS"),
            line("product", "JACKET"),
            line("variant", "TEE/RED-M", "Exclude"),
            line("product", "GHOST"),
            line("variant", "TEE/PINK-XL", "Exclude"),
            line("category", "TOYS"),
            line("variant", "JACKET", "Exclude"),
        ],
        catalog,
        warnings,
    )
    assert included == TEE | POLO | {("JACKET", "*")}
    assert excluded == {("TEE", "RED-M")}
    assert warnings == [
        "unknown product 'GHOST'",
        "unknown variant 'TEE/PINK-XL'",
        "unknown category 'TOYS'",
        "unknown variant 'JACKET'",
    ]


def test_a_product_without_variants_can_be_named_as_variant_star(catalog):
    included, _ = expand_product_lines([line("variant", "JACKET/*")], catalog)
    assert included == {("JACKET", "*")}


# --- delivery modes -----------------------------------------------------------------------------


def test_delivery_mode_exclude_wins_and_a_partial_product_keeps_its_other_variants(tree, catalog):
    mode = {
        "id": "GROUND",
        "name": "Ground",
        "channel_lines": [{"org_node_id": "WEST"}, {"store_id": "S3"}],
        "product_lines": [
            line("category", "ALL"),
            line("product", "JACKET", "Exclude"),
            line("variant", "TEE/RED-M", "Exclude"),
        ],
        "address_lines": [address("USA")],
    }
    explosion = explode_delivery_mode(mode, tree, catalog)
    assert explosion.stores == {"S1", "S2", "S3"}
    assert explosion.products == EVERY_KEY - {("JACKET", "*"), ("TEE", "RED-M")}
    assert {k for k in explosion.products if k[0] == "TEE"} == {("TEE", "RED-L"), ("TEE", "BLUE-M")}
    assert explosion.warnings == ()


def test_usa_minus_alaska_and_hawaii(tree, catalog):
    mode = {
        "id": "GROUND",
        "name": "Ground",
        "channel_lines": [{"org_node_id": "CORP"}],
        "product_lines": [line("category", "ALL")],
        "address_lines": [
            address("USA"),
            address("USA", "AK", "Exclude"),
            address("USA", "HI", "Exclude"),
        ],
    }
    explosion = explode_delivery_mode(mode, tree, catalog)
    assert explosion.addresses == {("USA", "*")}
    assert explosion.excluded_addresses == {("USA", "AK"), ("USA", "HI")}
    assert explosion.covers_address("USA", "WA")
    assert explosion.covers_address("USA")
    assert not explosion.covers_address("USA", "AK")
    assert not explosion.covers_address("USA", "HI")
    assert not explosion.covers_address("CAN", "ON")
    data = explosion.store_data()
    assert data["addresses"] == [{"country": "USA", "state": "*"}]
    assert data["excluded_addresses"] == [
        {"country": "USA", "state": "AK"},
        {"country": "USA", "state": "HI"},
    ]


def test_address_lines_exclude_wins_over_state_and_country_includes():
    warnings: list[str] = []
    addresses, excluded = explode_address_lines(
        [
            address("CAN", "ON"),
            address("CAN", "QC"),
            address("CAN", "QC", "Exclude"),
            address("MEX"),
            address("MEX", line_type="Exclude"),
            address("USA", ""),
            address("USA", "TX"),
            address("FRA", "IDF", "Exclude"),
        ],
        warnings,
    )
    assert addresses == {("CAN", "ON"), ("USA", "*")}
    assert excluded == set()
    assert warnings == ["address exclude 'FRA'/'IDF' matches no include"]


def test_a_mode_without_product_lines_has_no_products_and_a_warning(tree, catalog):
    mode = {
        "id": "PICKUP",
        "name": "Pick up",
        "channel_lines": [{"store_id": "S1"}],
        "product_lines": [],
        "address_lines": [address("USA")],
    }
    explosion = explode_delivery_mode(mode, tree, catalog)
    assert explosion.products == set()
    assert explosion.stores == {"S1"}
    assert explosion.warnings == (
        "delivery mode PICKUP: no product lines: the mode has no products",
    )


def test_a_mode_without_address_lines_delivers_nowhere_with_a_warning(tree, catalog):
    mode = {"id": "AIR", "channel_lines": [], "product_lines": [line("category", "ALL")]}
    explosion = explode_delivery_mode(mode, tree, catalog)
    assert explosion.addresses == set()
    assert explosion.stores == set()
    assert (
        "delivery mode AIR: no address lines: the mode delivers to no address" in explosion.warnings
    )


def ground(channel_lines, product_lines=None):
    return {
        "id": "GROUND",
        "name": "Ground",
        "channel_lines": channel_lines,
        "product_lines": product_lines or [line("category", "FOOD")],
        "address_lines": [address("USA")],
    }


def test_store_rows_are_sorted_json_and_deterministic(tree, catalog):
    air = {
        "id": "AIR",
        "channel_lines": [{"store_id": "S1"}],
        "product_lines": [line("category", "SHIRTS"), line("variant", "POLO/S", "Exclude")],
        "address_lines": [address("USA", "WA"), address("CAN")],
    }
    explosions = [
        explode_delivery_mode(m, tree, catalog) for m in (ground([{"org_node_id": "WEST"}]), air)
    ]
    rows = store_delivery_mode_rows(explosions)
    assert set(rows) == {"S1", "S2"}
    assert set(rows["S1"]) == {"AIR", "GROUND"}
    assert rows["S1"]["AIR"] == {
        "products": ["POLO/M", "TEE/BLUE-M", "TEE/RED-L", "TEE/RED-M"],
        "addresses": [{"country": "CAN", "state": "*"}, {"country": "USA", "state": "WA"}],
        "excluded_addresses": [],
    }
    again = store_delivery_mode_rows(
        [explode_delivery_mode(m, tree, catalog) for m in (air, ground([{"org_node_id": "WEST"}]))]
    )
    assert json.dumps(again, sort_keys=True) == json.dumps(rows, sort_keys=True)


def test_removing_a_channel_line_deletes_that_stores_rows(tree, catalog):
    old = store_delivery_mode_rows(
        [
            explode_delivery_mode(
                ground([{"org_node_id": "WEST"}, {"store_id": "S3"}]), tree, catalog
            )
        ]
    )
    new = store_delivery_mode_rows(
        [explode_delivery_mode(ground([{"org_node_id": "WEST"}]), tree, catalog)]
    )
    changes = delivery_mode_diff(old, new)
    assert set(changes) == {"S3"}
    assert changes["S3"].deletes == ["GROUND"]
    assert changes["S3"].upserts == {}


def test_changing_product_lines_upserts_every_store_of_the_mode(tree, catalog):
    old = store_delivery_mode_rows(
        [explode_delivery_mode(ground([{"org_node_id": "WEST"}]), tree, catalog)]
    )
    changed = ground(
        [{"org_node_id": "WEST"}], [line("category", "FOOD"), line("product", "APPLE", "Exclude")]
    )
    new = store_delivery_mode_rows([explode_delivery_mode(changed, tree, catalog)])
    changes = delivery_mode_diff(old, new)
    assert set(changes) == {"S1", "S2"}
    assert "APPLE/*" not in changes["S1"].upserts["GROUND"]["products"]
    assert changes["S1"].deletes == []


def test_an_unchanged_rerun_changes_nothing_and_a_deleted_mode_is_deleted(tree, catalog):
    rows = store_delivery_mode_rows(
        [explode_delivery_mode(ground([{"org_node_id": "CORP"}]), tree, catalog)]
    )
    assert delivery_mode_diff(rows, json.loads(json.dumps(rows))) == {}
    gone = delivery_mode_diff(rows, {})
    assert set(gone) == {"S1", "S2", "S3", "S4"}
    assert all(c.deletes == ["GROUND"] and c.upserts == {} for c in gone.values())


def test_diff_sets():
    assert diff_sets({1, 2, 3}, {2, 3, 4}) == ({4}, {1})


# --- assortment validity ------------------------------------------------------------------------

MARCH = {
    "id": "SPRING",
    "status": "Published",
    "valid_from": "2024-03-01",
    "valid_to": "2024-03-31",
}


@pytest.mark.parametrize(
    ("today", "valid"),
    [
        (date(2024, 2, 29), False),
        (date(2024, 3, 1), True),
        (date(2024, 3, 31), True),
        (date(2024, 4, 1), False),
        (datetime(2024, 3, 1, 0, 0, tzinfo=UTC), True),
        (datetime(2024, 3, 31, 23, 59, 59, tzinfo=UTC), True),
        (datetime(2024, 4, 1, 0, 0, tzinfo=UTC), False),
        # 01:00 in UTC+2 is still 31 March in UTC: the store's local time does not apply.
        (datetime(2024, 4, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))), True),
    ],
)
def test_validity_boundaries(today, valid):
    assert assortment_is_valid(MARCH, today) is valid


def test_open_ended_and_date_objects():
    open_ended = {"valid_from": date(2024, 3, 1), "valid_to": None}
    assert assortment_is_valid(open_ended, date(2999, 12, 31))
    assert not assortment_is_valid(open_ended, date(2024, 2, 29))
    assert not is_expired(open_ended, date(2999, 12, 31))


def test_is_expired_only_after_the_last_day():
    assert not is_expired(MARCH, date(2024, 3, 31))
    assert is_expired(MARCH, date(2024, 4, 1))


# --- store assortments --------------------------------------------------------------------------

TODAY = date(2024, 3, 15)


def assortment(
    aid, channel_lines, product_lines, status="Published", valid_from="2024-01-01", valid_to=None
):
    return {
        "id": aid,
        "name": aid,
        "status": status,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "channel_lines": channel_lines,
        "product_lines": product_lines,
    }


BASE = assortment("BASE", [{"org_node_id": "CORP"}], [line("category", "ALL")])
USRT_SELLABLE = EVERY_KEY - {("OLDCOLA", "*"), ("MAPLE", "*")}


def test_unreleased_and_stopped_products_drop_out(tree, catalog):
    result = store_assortments([BASE], tree, catalog, None, TODAY)
    assert result["S1"] == USRT_SELLABLE
    assert result["S4"] == TEE | {("JACKET", "*"), ("MAPLE", "*")}
    assert all(("OLDCOLA", "*") not in items for items in result.values())


def test_exclude_wins_across_assortments_of_the_store(tree, catalog):
    seattle = assortment("SEA", [{"org_node_id": "SEATTLE"}], [line("product", "APPLE", "Exclude")])
    result = store_assortments([BASE, seattle], tree, catalog, ["S1", "S2"], TODAY)
    assert ("APPLE", "*") not in result["S1"]
    assert ("APPLE", "*") in result["S2"]


def test_partially_excluded_product_keeps_surviving_variants(tree, catalog):
    no_red_m = assortment("NORED", [{"store_id": "S1"}], [line("variant", "TEE/RED-M", "Exclude")])
    result = store_assortments([BASE, no_red_m], tree, catalog, ["S1"], TODAY)
    assert {k for k in result["S1"] if k[0] == "TEE"} == {("TEE", "RED-L"), ("TEE", "BLUE-M")}
    assert result["S1"] == USRT_SELLABLE - {("TEE", "RED-M")}


def test_only_published_assortments_valid_today_count(tree, catalog):
    draft = assortment(
        "DRAFT", [{"org_node_id": "CORP"}], [line("product", "TEE", "Exclude")], status="Draft"
    )
    past = assortment(
        "PAST",
        [{"org_node_id": "CORP"}],
        [line("product", "POLO", "Exclude")],
        valid_to="2024-02-29",
    )
    future = assortment(
        "FUTURE",
        [{"org_node_id": "CORP"}],
        [line("product", "JACKET", "Exclude")],
        valid_from="2024-03-16",
    )
    result = store_assortments([BASE, draft, past, future], tree, catalog, ["S1"], TODAY)
    assert result["S1"] == USRT_SELLABLE


def test_the_assortment_being_published_counts_when_asked(tree, catalog):
    publishing = assortment(
        "NEW", [{"store_id": "S1"}], [line("category", "FOOD")], status="InProgress"
    )
    assert store_assortments([publishing], tree, catalog, ["S1"], TODAY)["S1"] == set()
    visible = {AssortmentStatus.PUBLISHED, AssortmentStatus.IN_PROGRESS}
    result = store_assortments([publishing], tree, catalog, ["S1"], TODAY, visible_statuses=visible)
    assert result["S1"] == {("APPLE", "*")}


def test_uncovered_and_unknown_stores_get_an_empty_assortment(tree, catalog):
    west = assortment(
        "WEST", [{"org_node_id": "WEST"}, {"org_node_id": "GONE"}], [line("category", "FOOD")]
    )
    warnings: list[str] = []
    result = store_assortments([west], tree, catalog, ["S1", "S3", "S9"], TODAY, warnings=warnings)
    assert result == {"S1": {("APPLE", "*")}, "S3": set(), "S9": set()}
    assert warnings == [
        "assortment WEST: unknown org node 'GONE'",
        "unknown store 'S9': nothing assorted",
    ]


def test_each_store_gets_its_own_set(tree, catalog):
    result = store_assortments([BASE], tree, catalog, ["S1", "S2"], TODAY)
    result["S1"].clear()
    assert result["S2"] == USRT_SELLABLE


# --- scale --------------------------------------------------------------------------------------


def test_200_stores_by_20k_variant_keys_explode_quickly():
    nodes = [{"id": "CORP", "parent_id": None}] + [
        {"id": f"D{d}", "parent_id": "CORP"} for d in range(10)
    ]
    stores = [
        {"id": f"S{s:03}", "legal_entity": "USRT" if s % 4 else "CART", "org_node_id": f"D{s % 10}"}
        for s in range(200)
    ]
    categories = [{"id": "ALL", "parent_id": None}] + [
        {"id": f"C{c}", "parent_id": "ALL" if c < 10 else f"C{c % 10}"} for c in range(50)
    ]
    products = [
        product(
            f"P{p:05}",
            f"C{p % 50}",
            ["S", "M", "L", "XL"],
            released=["USRT", "CART"],
            stopped=p % 97 == 0,
        )
        for p in range(5000)
    ]
    start = time.perf_counter()
    tree, catalog = OrgTree(nodes, stores), Catalog(categories, products)
    assortments = [
        assortment("BASE", [{"org_node_id": "CORP"}], [line("category", "ALL")]),
        assortment("D1", [{"org_node_id": "D1"}], [line("category", "C3", "Exclude")]),
        assortment("S007", [{"store_id": "S007"}], [line("variant", "P00001/M", "Exclude")]),
    ]
    assorted = store_assortments(assortments, tree, catalog, None, TODAY)
    modes = [
        {
            "id": f"M{m}",
            "channel_lines": [{"org_node_id": "CORP"}],
            "product_lines": [line("category", "ALL"), line("category", f"C{m}", "Exclude")],
            "address_lines": [address("USA")],
        }
        for m in range(5)
    ]
    rows = store_delivery_mode_rows(explode_delivery_mode(m, tree, catalog) for m in modes)
    elapsed = time.perf_counter() - start

    assert len(catalog.variant_keys_in_category("ALL")) == 20_000
    assert len(assorted) == 200 and len(rows) == 200
    assert ("P00001", "M") not in assorted["S007"] and ("P00001", "M") in assorted["S008"]
    assert elapsed < 20.0, f"explosion took {elapsed:.2f}s"
