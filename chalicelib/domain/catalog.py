"""In-memory views of the org tree and the product catalog, indexed for explosion at scale.

Delivery modes (DOMAIN §1) and assortments (§5) name organization nodes and categories; the
explosion turns them into stores and (product, variant) pairs. Both views are built once per run
from the plain ``/data`` records (§12) in O(n) — a children index and a products-by-category
index — so expanding a node or a category costs only the size of its subtree, whatever the size
of the retailer (hundreds of stores, 100k+ products).

Example::

    tree = OrgTree(org_node_records, store_records)
    catalog = Catalog(category_records, product_records)
    tree.stores_under("WEST")                 # {"S001", "S002", ...}
    catalog.variant_keys("P100")              # [("P100", "RED-M"), ("P100", "RED-L")]
    catalog.variant_keys("P200")              # [("P200", "*")]  (no variants)

Both views treat their input as read-only and never re-read it after construction.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

ALL_CATEGORY = "ALL"
NO_VARIANT = "*"

VariantKey = tuple[str, str]
"""``(product_id, variant_id)``; ``variant_id`` is ``NO_VARIANT`` for a product without variants."""

Record = Mapping[str, Any]


def variant_key_text(key: VariantKey) -> str:
    """The package ``key`` of a (product, variant) pair: ``product_id/variant_id`` (DOMAIN §12)."""
    return f"{key[0]}/{key[1]}"


def _shared(variant_id: Any) -> Any:
    """One string object per distinct variant id: ``RED-M`` recurs across thousands of products,
    and each decoded record brings its own copy."""
    return sys.intern(variant_id) if type(variant_id) is str else variant_id


def _subtree(root: str, children: Mapping[str, list[str]]) -> list[str]:
    """``root`` and every id below it; tolerant of cycles in bad data (each id visited once)."""
    seen = {root}
    order = [root]
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                order.append(child)
                stack.append(child)
    return order


class OrgTree:
    """Organization nodes (company → region → district …) and the stores hanging under them.

    ``stores_under(node)`` means the node and all its descendants (DOMAIN §0 per-store
    targeting, §1 rule 1). Results are cached per node, so resolving the same node for many
    delivery modes or assortments costs one walk.
    """

    def __init__(self, org_nodes: Iterable[Record], stores: Iterable[Record]) -> None:
        self._nodes: set[str] = set()
        self._child_nodes: dict[str, list[str]] = defaultdict(list)
        for node in org_nodes:
            self._nodes.add(node["id"])
            parent = node.get("parent_id")
            if parent is not None:
                self._child_nodes[parent].append(node["id"])
        self._stores: dict[str, Record] = {}
        self._stores_at: dict[str, list[str]] = defaultdict(list)
        for store in stores:
            self._stores[store["id"]] = store
            self._stores_at[store["org_node_id"]].append(store["id"])
        self._under: dict[str, frozenset[str]] = {}

    @property
    def store_ids(self) -> frozenset[str]:
        """Every store of the retailer."""
        return frozenset(self._stores)

    def has_node(self, node_id: str) -> bool:
        return node_id in self._nodes

    def has_store(self, store_id: str) -> bool:
        return store_id in self._stores

    def legal_entity(self, store_id: str) -> str | None:
        """The company the store belongs to, ``None`` for an unknown store."""
        store = self._stores.get(store_id)
        return None if store is None else store.get("legal_entity")

    def stores_under(self, node_id: str) -> set[str]:
        """Stores under ``node_id`` or any of its descendants; empty for an unknown node."""
        cached = self._under.get(node_id)
        if cached is None:
            cached = frozenset(
                store_id
                for node in _subtree(node_id, self._child_nodes)
                for store_id in self._stores_at.get(node, ())
            )
            self._under[node_id] = cached
        return set(cached)


class Catalog:
    """The category tree and the products with their variants.

    ``ALL`` is the root of the category tree and always means every product, even a product
    whose ``category_id`` names no known category (DOMAIN §1 rule 3).

    Only the indexes are kept, never a product record: products given as a generator (a query's
    pages) are freed as they are indexed, so 100k products cost their keys, not their records.
    """

    def __init__(self, categories: Iterable[Record], products: Iterable[Record]) -> None:
        self._categories: set[str] = set()
        self._child_categories: dict[str, list[str]] = defaultdict(list)
        for category in categories:
            self._categories.add(category["id"])
            parent = category.get("parent_id")
            if parent is not None and category["id"] != ALL_CATEGORY:
                self._child_categories[parent].append(category["id"])
        self._variant_keys: dict[str, tuple[VariantKey, ...]] = {}  # every product, by id
        self._by_category: dict[str, list[str]] = defaultdict(list)
        self._released: dict[str, list[str]] = defaultdict(list)
        self._stopped: set[str] = set()
        for product in products:
            pid = product["id"]
            variants = product.get("variants") or ()
            self._variant_keys[pid] = (
                tuple((pid, _shared(v["id"])) for v in variants) if variants else ((pid, NO_VARIANT),)
            )
            self._by_category[product.get("category_id")].append(pid)
            for legal_entity in product.get("released_to") or ():
                self._released[legal_entity].append(pid)
            if product.get("stopped"):
                self._stopped.add(pid)
        self._category_keys: dict[str, frozenset[VariantKey]] = {}
        self._sellable: dict[str, frozenset[str]] = {}

    def has_category(self, category_id: str) -> bool:
        return category_id == ALL_CATEGORY or category_id in self._categories

    def has_product(self, product_id: str) -> bool:
        return product_id in self._variant_keys

    def has_variant(self, product_id: str, variant_id: str) -> bool:
        """True when ``(product_id, variant_id)`` is one of the product's variant keys.

        For a product without variants the only key is ``(product_id, "*")``.
        """
        return (product_id, variant_id) in self._variant_keys.get(product_id, ())

    def category_descendants(self, category_id: str) -> set[str]:
        """The category itself and every category below it (for ``ALL``: the whole tree)."""
        if category_id == ALL_CATEGORY:
            return self._categories | {ALL_CATEGORY}
        if category_id not in self._categories:
            return set()
        return set(_subtree(category_id, self._child_categories))

    def products_in_category(self, category_id: str) -> set[str]:
        """Products in the category or any sub-category; ``ALL`` = every product."""
        if category_id == ALL_CATEGORY:
            return set(self._variant_keys)
        return {
            pid
            for category in self.category_descendants(category_id)
            for pid in self._by_category.get(category, ())
        }

    def variant_keys(self, product_id: str) -> list[VariantKey]:
        """The product's (product, variant) pairs.

        ``[(pid, "*")]`` for a product without variants, ``[]`` for an unknown product.
        """
        return list(self._variant_keys.get(product_id, ()))

    def variant_keys_in_category(self, category_id: str) -> frozenset[VariantKey]:
        """Every variant key of every product in the category.

        Cached: the same categories recur across delivery modes and assortments.
        """
        cached = self._category_keys.get(category_id)
        if cached is None:
            cached = frozenset(
                key
                for pid in self.products_in_category(category_id)
                for key in self._variant_keys[pid]
            )
            self._category_keys[category_id] = cached
        return cached

    def sellable_products(self, legal_entity: str | None) -> frozenset[str]:
        """Products released to ``legal_entity`` and not stopped (DOMAIN §5 filter)."""
        if legal_entity is None:
            return frozenset()
        cached = self._sellable.get(legal_entity)
        if cached is None:
            cached = frozenset(self._released.get(legal_entity, ())) - self._stopped
            self._sellable[legal_entity] = cached
        return cached
