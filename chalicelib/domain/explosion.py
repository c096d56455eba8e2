"""Explosion of delivery modes (DOMAIN §1) and assortments (§5) into per-store data.

A delivery mode or an assortment names organization nodes, categories, products and variants
with Include/Exclude lines; stores need flat sets: which (product, variant) pairs, which
(country, state) addresses. Everything here is a pure function of the ``/data`` records (§12)
and the indexed views of ``catalog.py``. The jobs load the records, call these, and write the
differences (``diff_sets``, ``delivery_mode_diff``) as download-session packages.

Example (process delivery modes)::

    explosions = [explode_delivery_mode(m, tree, catalog) for m in modes]
    new_rows = store_delivery_mode_rows(explosions)
    for store_id, changes in delivery_mode_diff(stored_rows, new_rows).items():
        rows = delivery_mode_rows(changes.upserts, changes.deletes)   # sessions.py
        ...

Example (process assortments)::

    wanted = store_assortments(assortments, tree, catalog, tree.store_ids, today)
    added, removed = diff_sets(stored[store_id], wanted[store_id])

Unknown references (a node, store, category, product or variant that does not exist) never
fail a run: the line is ignored and a warning naming the owner and the reference is appended to
the ``warnings`` list the caller passes in (or returned on the explosion dataclasses).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from chalicelib.domain.catalog import (
    Catalog,
    OrgTree,
    Record,
    VariantKey,
    variant_key_text,
)

ALL_STATES = "*"

AddressKey = tuple[str, str]
"""``(country, state)``; ``state`` is ``ALL_STATES`` for the whole country."""


class LineType(StrEnum):
    """``RetailDlvModeExcludeIncludeType`` / ``RetailAssortmentLineType``."""

    INCLUDE = "Include"
    EXCLUDE = "Exclude"


class ProductLineKind(StrEnum):
    """What the ``ref`` of a product line names; a variant ref is ``product_id/variant_id``."""

    CATEGORY = "category"
    PRODUCT = "product"
    VARIANT = "variant"


class AssortmentStatus(StrEnum):
    """``RetailAssortmentStatusType``; only Published assortments reach the stores (§5)."""

    DRAFT = "Draft"
    IN_PROGRESS = "InProgress"
    PUBLISHED = "Published"
    EXPIRED = "Expired"


def _warn(warnings: list[str] | None, text: str) -> None:
    if warnings is not None:
        warnings.append(text)


# --- channels and products (§1 rules 1-3) -------------------------------------------------------


def resolve_channels(
    channel_lines: Iterable[Record], org_tree: OrgTree, warnings: list[str] | None = None
) -> set[str]:
    """Stores of a delivery mode or assortment: every store under each named node (node and
    descendants) plus each store named directly (§1 rule 1).

    A line may carry ``org_node_id``, ``store_id`` or both. Unknown nodes and stores are
    skipped with a warning; a known node without stores simply adds nothing.
    """
    stores: set[str] = set()
    for line in channel_lines:
        node_id = line.get("org_node_id")
        store_id = line.get("store_id")
        if node_id is not None:
            if org_tree.has_node(node_id):
                stores |= org_tree.stores_under(node_id)
            else:
                _warn(warnings, f"unknown org node {node_id!r}")
        if store_id is not None:
            if org_tree.has_store(store_id):
                stores.add(store_id)
            else:
                _warn(warnings, f"unknown store {store_id!r}")
    return stores


def _expand_product_line(
    line: Record, catalog: Catalog, warnings: list[str] | None
) -> Collection[VariantKey]:
    """The variant keys one product line names (§1 rule 2); empty, with a warning, if unknown."""
    kind, ref = line.get("kind"), line.get("ref")
    if kind == ProductLineKind.CATEGORY:
        if catalog.has_category(ref):
            return catalog.variant_keys_in_category(ref)
        _warn(warnings, f"unknown category {ref!r}")
    elif kind == ProductLineKind.PRODUCT:
        if catalog.has_product(ref):
            return catalog.variant_keys(ref)
        _warn(warnings, f"unknown product {ref!r}")
    elif kind == ProductLineKind.VARIANT:
        product_id, _, variant_id = str(ref).partition("/")
        if variant_id and catalog.has_variant(product_id, variant_id):
            return ((product_id, variant_id),)
        _warn(warnings, f"unknown variant {ref!r}")
    else:
        _warn(warnings, f"unknown product line kind {kind!r}")
    return ()


def expand_product_lines(
    product_lines: Iterable[Record], catalog: Catalog, warnings: list[str] | None = None
) -> tuple[set[VariantKey], set[VariantKey]]:
    """``(included, excluded)`` variant keys of Include and Exclude lines (§1 rules 2-3).

    A category expands to every variant of every product in it and its sub-categories (``ALL``:
    every product); a product to all its variants, or ``(pid, "*")`` when it has none; a variant
    (``ref`` ``product_id/variant_id``) to itself. The two sets are returned separately so that
    assortments can apply exclusions across assortments; ``included - excluded`` is the
    result for one mode (exclude wins). Unknown refs and line types add a warning.
    """
    included: set[VariantKey] = set()
    excluded: set[VariantKey] = set()
    for line in product_lines:
        line_type = line.get("line_type")
        if line_type == LineType.INCLUDE:
            target = included
        elif line_type == LineType.EXCLUDE:
            target = excluded
        else:
            _warn(warnings, f"unknown line type {line_type!r} on {line.get('ref')!r}")
            continue
        target.update(_expand_product_line(line, catalog, warnings))
    return included, excluded


# --- addresses (§1 rule 5) ----------------------------------------------------------------------


def explode_address_lines(
    address_lines: Iterable[Record], warnings: list[str] | None = None
) -> tuple[frozenset[AddressKey], frozenset[AddressKey]]:
    """``(addresses, excluded_addresses)`` of a delivery mode, in normal form.

    Representation (**decision**): the set of countries' states is not known to HQ, so "USA
    minus AK and HI" cannot be listed state by state. Instead:

    - ``addresses`` holds ``(country, "*")`` for a whole included country and
      ``(country, state)`` for a single included state of a country not included whole;
    - ``excluded_addresses`` holds ``(country, state)`` carved out of a whole included country.

    So "USA minus AK and HI" is ``addresses == {("USA", "*")}``,
    ``excluded_addresses == {("USA", "AK"), ("USA", "HI")}``. Exclude wins: an exclude line
    without a state removes the whole country, with a state it removes that state however it was
    included. An exclude that removes nothing adds a warning (it is usually a typo). A blank
    state is the same as no state.
    """
    whole_in: set[str] = set()
    states_in: set[AddressKey] = set()
    whole_out: set[str] = set()
    states_out: set[AddressKey] = set()
    for line in address_lines:
        country, state = line.get("country"), line.get("state") or None
        line_type = line.get("line_type")
        if line_type == LineType.INCLUDE:
            countries, states = whole_in, states_in
        elif line_type == LineType.EXCLUDE:
            countries, states = whole_out, states_out
        else:
            _warn(warnings, f"unknown line type {line_type!r} on address {country!r}")
            continue
        if state is None:
            countries.add(country)
        else:
            states.add((country, state))
    whole = whole_in - whole_out
    addresses = {(c, ALL_STATES) for c in whole}
    addresses |= {
        (c, s) for c, s in states_in if c not in whole and c not in whole_out
    } - states_out
    excluded = {(c, s) for c, s in states_out if c in whole}
    for country in sorted(whole_out - whole_in - {c for c, _ in states_in}):
        _warn(warnings, f"address exclude {country!r} matches no include")
    for country, state in sorted(states_out):
        if country not in whole and (country, state) not in states_in:
            _warn(warnings, f"address exclude {country!r}/{state!r} matches no include")
    return frozenset(addresses), frozenset(excluded)


# --- delivery modes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryModeExplosion:
    """One delivery mode exploded: its stores, (product, variant) pairs and address scope.

    ``addresses``/``excluded_addresses`` are described in ``explode_address_lines``.
    """

    mode_id: str
    stores: frozenset[str]
    products: frozenset[VariantKey]
    addresses: frozenset[AddressKey]
    excluded_addresses: frozenset[AddressKey]
    warnings: tuple[str, ...] = ()

    def covers_address(self, country: str, state: str | None = None) -> bool:
        """True when the mode delivers to ``country`` (and ``state`` when given)."""
        if state:
            if (country, state) in self.excluded_addresses:
                return False
            return (country, ALL_STATES) in self.addresses or (country, state) in self.addresses
        return (country, ALL_STATES) in self.addresses

    def store_data(self) -> dict[str, Any]:
        """The package ``data`` of this mode for any store it covers (§12): sorted, JSON-ready.

        ``{"products": ["pid/vid", ...], "addresses": [{"country", "state"}, ...],
        "excluded_addresses": [{"country", "state"}, ...]}`` where ``state`` ``"*"`` is the
        whole country.
        """
        return {
            "products": [variant_key_text(k) for k in sorted(self.products)],
            "addresses": [{"country": c, "state": s} for c, s in sorted(self.addresses)],
            "excluded_addresses": [
                {"country": c, "state": s} for c, s in sorted(self.excluded_addresses)
            ],
        }


def explode_delivery_mode(
    mode: Record, org_tree: OrgTree, catalog: Catalog
) -> DeliveryModeExplosion:
    """Explode one delivery mode (§1 rules 1-5).

    Products = Include expansions − Exclude expansions at variant level (exclude wins; a
    product with some variants excluded keeps the others). A mode with no product lines has no
    products and a warning (§1 rule 4). **Decision:** likewise a mode with no address lines
    delivers nowhere and gets a warning, rather than silently meaning "everywhere".
    **Decision:** products are not filtered by the store's legal entity here: §1 does not ask for
    it, and the mode's data is the same for every store it covers; the assortment already limits
    what a store can sell. Every warning is prefixed with ``delivery mode <id>:``.
    """
    mode_id = mode["id"]
    warnings: list[str] = []
    stores = resolve_channels(mode.get("channel_lines") or (), org_tree, warnings)
    product_lines = mode.get("product_lines") or ()
    if not product_lines:
        warnings.append("no product lines: the mode has no products")
    included, excluded = expand_product_lines(product_lines, catalog, warnings)
    address_lines = mode.get("address_lines") or ()
    if not address_lines:
        warnings.append("no address lines: the mode delivers to no address")
    addresses, excluded_addresses = explode_address_lines(address_lines, warnings)
    return DeliveryModeExplosion(
        mode_id=mode_id,
        stores=frozenset(stores),
        products=frozenset(included - excluded),
        addresses=addresses,
        excluded_addresses=excluded_addresses,
        warnings=tuple(f"delivery mode {mode_id}: {w}" for w in warnings),
    )


def store_delivery_mode_rows(
    explosions: Iterable[DeliveryModeExplosion],
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{store_id: {mode_id: data}}`` for every store covered by at least one mode (§12).

    ``data`` is ``DeliveryModeExplosion.store_data()``, built once per mode: the same dict
    object is shared by every store of the mode, so treat it as read-only. A store no mode
    covers is absent (``delivery_mode_diff`` then deletes its stored rows).
    """
    rows: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for explosion in explosions:
        data = explosion.store_data()
        for store_id in explosion.stores:
            rows[store_id][explosion.mode_id] = data
    return dict(rows)


# --- differences --------------------------------------------------------------------------------


def diff_sets(old: set, new: set) -> tuple[set, set]:
    """``(added, removed)``: what ``new`` has that ``old`` lacks, and the reverse."""
    return new - old, old - new


@dataclass(frozen=True)
class RowChanges:
    """The rows one store must receive: ``upserts`` ``{key: data}``, ``deletes`` sorted keys."""

    upserts: dict[str, Any]
    deletes: list[str]


def delivery_mode_diff(
    old_rows: Mapping[str, Mapping[str, Any]], new_rows: Mapping[str, Mapping[str, Any]]
) -> dict[str, RowChanges]:
    """Per store, the delivery-mode rows to upsert (new or changed ``data``) and to delete.

    Only stores with at least one change appear, so an unchanged rerun yields ``{}`` and no
    download session (§1 incremental). A store (or mode) present in ``old_rows`` only gets
    deletes: this is how removing a mode or a channel line removes its rows (§1 rule 6).
    """
    changes: dict[str, RowChanges] = {}
    for store_id in sorted(old_rows.keys() | new_rows.keys()):
        old, new = old_rows.get(store_id, {}), new_rows.get(store_id, {})
        upserts = {k: new[k] for k in sorted(new) if old.get(k) != new[k]}
        deletes = sorted(old.keys() - new.keys())
        if upserts or deletes:
            changes[store_id] = RowChanges(upserts=upserts, deletes=deletes)
    return changes


# --- assortments (§5) ---------------------------------------------------------------------------


def _as_date(value: date | str | None) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return _utc_date(value)
    if isinstance(value, date):
        return value
    return date.fromisoformat(value)


def _utc_date(today: date) -> date:
    """A business date: a ``datetime`` is taken in UTC (naive means UTC), a ``date`` as is."""
    if isinstance(today, datetime):
        if today.tzinfo is not None:
            today = today.astimezone(UTC)
        return today.date()
    return today


def assortment_is_valid(assortment: Record, today: date) -> bool:
    """True when ``today`` (UTC) lies in ``[valid_from 00:00, valid_to 23:59:59]``.

    Both ends are inclusive days; a null ``valid_from`` or ``valid_to`` is open on that side.
    Status is not considered here (see ``store_assortments``).
    """
    day = _utc_date(today)
    valid_from = _as_date(assortment.get("valid_from"))
    valid_to = _as_date(assortment.get("valid_to"))
    return (valid_from is None or valid_from <= day) and (valid_to is None or day <= valid_to)


def is_expired(assortment: Record, today: date) -> bool:
    """True when ``valid_to`` has passed: the job then moves Published → Expired (§5)."""
    valid_to = _as_date(assortment.get("valid_to"))
    return valid_to is not None and _utc_date(today) > valid_to


@dataclass(frozen=True)
class AssortmentExplosion:
    """One assortment exploded once: its stores and its Include/Exclude variant keys."""

    assortment_id: str
    stores: frozenset[str]
    included: frozenset[VariantKey]
    excluded: frozenset[VariantKey]
    warnings: tuple[str, ...] = ()


def explode_assortment(
    assortment: Record, org_tree: OrgTree, catalog: Catalog
) -> AssortmentExplosion:
    """Stores and include/exclude sets of one assortment, before any filtering (§5, §1 rule 2)."""
    assortment_id = assortment["id"]
    warnings: list[str] = []
    stores = resolve_channels(assortment.get("channel_lines") or (), org_tree, warnings)
    product_lines = assortment.get("product_lines") or ()
    included, excluded = expand_product_lines(product_lines, catalog, warnings)
    return AssortmentExplosion(
        assortment_id=assortment_id,
        stores=frozenset(stores),
        included=frozenset(included),
        excluded=frozenset(excluded),
        warnings=tuple(f"assortment {assortment_id}: {w}" for w in warnings),
    )


@dataclass(frozen=True)
class AssortmentGroups:
    """Stores' assortments, shared: stores covered by the same assortments and of the same legal
    entity sell exactly the same items, so each distinct set is held once.

    ``group_of[store_id]`` indexes ``items``; ``for_store`` gives a store's (read-only) set.
    """

    group_of: dict[str, int]
    items: list[frozenset[VariantKey]]

    def for_store(self, store_id: str) -> frozenset[VariantKey]:
        return self.items[self.group_of[store_id]]


def assortment_groups(
    assortments: Iterable[Record],
    org_tree: OrgTree,
    catalog: Catalog,
    stores: Iterable[str] | None,
    today: date,
    *,
    visible_statuses: Collection[str] = (AssortmentStatus.PUBLISHED,),
    warnings: list[str] | None = None,
) -> AssortmentGroups:
    """The (product, variant) pairs each store may sell today (§5), grouped.

    For each store in ``stores`` (``None``: every store of ``org_tree``): the union of the
    Include sets of every assortment that is visible (status in ``visible_statuses``), valid
    ``today`` and covers the store, minus the union of their Exclude sets — **an exclusion in any
    valid assortment of the store removes the item from that store** — then only products
    released to the store's legal entity and not stopped. Exclusion works at variant level, so a
    partially excluded product keeps its surviving variants. Every requested store is in the
    result, with an empty set when nothing is assorted to it, so that a diff removes what it had.

    ``visible_statuses`` defaults to Published; the run started by publishing passes
    ``{"Published", "InProgress"}`` so the assortment being published counts.

    Cost: each assortment is exploded once, and stores are grouped by (covering assortments,
    legal entity), so the set arithmetic runs once per distinct group, not once per store, and
    memory holds one set per group (a large retailer has few distinct groups).
    """
    explosions: list[AssortmentExplosion] = []
    for assortment in assortments:
        if assortment.get("status") in visible_statuses and assortment_is_valid(assortment, today):
            explosion = explode_assortment(assortment, org_tree, catalog)
            explosions.append(explosion)
            for warning in explosion.warnings:
                _warn(warnings, warning)
    covering: dict[str, list[int]] = defaultdict(list)
    for index, explosion in enumerate(explosions):
        for store_id in explosion.stores:
            covering[store_id].append(index)

    index_of: dict[tuple[tuple[int, ...], str | None], int] = {}
    items: list[frozenset[VariantKey]] = []
    group_of: dict[str, int] = {}
    for store_id in org_tree.store_ids if stores is None else stores:
        legal_entity = org_tree.legal_entity(store_id)
        if not org_tree.has_store(store_id):
            _warn(warnings, f"unknown store {store_id!r}: nothing assorted")
        group = (tuple(covering.get(store_id, ())), legal_entity)
        if group not in index_of:
            index_of[group] = len(items)
            items.append(
                _combine([explosions[i] for i in group[0]], catalog.sellable_products(legal_entity))
            )
        group_of[store_id] = index_of[group]
    return AssortmentGroups(group_of=group_of, items=items)


def store_assortments(
    assortments: Iterable[Record],
    org_tree: OrgTree,
    catalog: Catalog,
    stores: Iterable[str] | None,
    today: date,
    *,
    visible_statuses: Collection[str] = (AssortmentStatus.PUBLISHED,),
    warnings: list[str] | None = None,
) -> dict[str, set[VariantKey]]:
    """``assortment_groups`` as ``{store_id: set}``, each store with its own (mutable) set.

    Convenient for a few stores; for many, ``assortment_groups`` holds one set per group.
    """
    groups = assortment_groups(
        assortments,
        org_tree,
        catalog,
        stores,
        today,
        visible_statuses=visible_statuses,
        warnings=warnings,
    )
    return {store_id: set(groups.items[index]) for store_id, index in groups.group_of.items()}


def _combine(
    explosions: list[AssortmentExplosion], sellable: frozenset[str]
) -> frozenset[VariantKey]:
    if not explosions:
        return frozenset()
    included: set[VariantKey] = set().union(*(e.included for e in explosions))
    included.difference_update(*(e.excluded for e in explosions))
    return frozenset(key for key in included if key[0] in sellable)
