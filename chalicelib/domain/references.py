"""Which ``/data`` records refer to which: a product to its category, a store to its org node, a
worker to its store, an org node or a category to its parent (the two trees).

``PUT /data`` refuses a reference to a record that is neither stored nor in the same request, and
a tree whose parent chain comes back to where it started; ``DELETE`` refuses a record others refer
to. Pure: the stored records come through a ``lookup(entity, ids) -> {id: record}`` (a batch get).
"""
from __future__ import annotations

from collections.abc import Callable

from chalicelib.domain.errors import FieldError

# entity → (its field naming another record, that record's entity)
REFERENCES: dict[str, tuple[str, str]] = {
    "products": ("category_id", "categories"),
    "stores": ("org_node_id", "org-nodes"),
    "workers": ("store_id", "stores"),
    "org-nodes": ("parent_id", "org-nodes"),
    "categories": ("parent_id", "categories"),
}
NOUNS = {"categories": "category", "org-nodes": "org node", "stores": "store"}

Lookup = Callable[[str, set[str]], dict[str, dict]]


def referring(entity: str) -> list[tuple[str, str]]:
    """``(entity, field)`` of the records that may refer to a record of ``entity``."""
    return [(source, field) for source, (field, target) in REFERENCES.items() if target == entity]


def reference_errors(entity: str, items: list[dict], lookup: Lookup) -> list[FieldError]:
    """What is wrong with the references of ``items`` (validated records of ``entity``, a request's)."""
    if entity not in REFERENCES:
        return []
    field, target = REFERENCES[entity]
    if target == entity:
        return _tree_errors(entity, field, items, lookup)
    found = lookup(target, {item[field] for item in items if item.get(field)})
    return [FieldError(f"items[{i}].{field}", f"unknown {NOUNS[target]} {item[field]}")
            for i, item in enumerate(items) if item.get(field) and item[field] not in found]


def _tree_errors(entity: str, field: str, items: list[dict], lookup: Lookup) -> list[FieldError]:
    """Unknown parents and cycles, over the tree as the request would leave it: the request's
    records over the stored ones, whose ancestors are read a level (one batch get) at a time."""
    parents = {item["id"]: item.get(field) for item in items}
    missing: set[str] = set()
    wanted = {parent for parent in parents.values() if parent and parent not in parents}
    while wanted:
        stored = lookup(entity, wanted)
        missing |= wanted - stored.keys()
        parents.update({record_id: record.get(field) for record_id, record in stored.items()})
        wanted = {p for p in (r.get(field) for r in stored.values()) if p and p not in parents and p not in missing}
    errors = []
    for i, item in enumerate(items):
        path, chain, node = f"items[{i}].{field}", [item["id"]], item.get(field)
        if node in missing:
            errors.append(FieldError(path, f"unknown {NOUNS[entity]} {node}"))
        while node and node not in missing:
            if node in chain:
                errors.append(FieldError(path, f"makes a cycle: {' → '.join([*chain, node])}"))
                break
            chain.append(node)
            node = parents.get(node)
    return errors
