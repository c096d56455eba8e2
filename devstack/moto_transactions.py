"""Make moto's TransactWriteItems and Query affordable on tables of tens of thousands of items.

To roll back a cancelled transaction, moto 5.2 deep-copies every table a transaction touches,
once per action: a 100-action transaction on a table of 50,000 items copies it a hundred times,
so a benchmark that posts statements would run for hours. This keeps moto's implementation and
replaces only that backup: the items the transaction names are saved before it runs and put back
if it is cancelled.

moto 5.2 also answers a Query on a table's key by walking every item of the table (DynamoDB reads
the partition): on the transactions table at scale M that is 60,000 items per query, per page.
The second patch hands such a query only its partition's items (moto's own storage of them, in
the order it keeps them); everything else of moto's query runs unchanged. A query on an index with
one hash attribute gets the items with that value only (moto sorted the whole table for every page
of it: at scale L that was 78% of moto's time while statements were posted).

The third writes the answers of the item operations (``DATA_PLANE``) as moto's results are, with
``json.dumps``: moto 5.2 walks every attribute of every item through botocore's output shapes to
serialize them, about a quarter of its time under the bench. Errors and every other operation keep
moto's serializer.

The fourth parses an UpdateExpression once per text, copies its tree with pickle, checks its
shape once and finds each walk's function for a node by its type (``_parse_update_expressions_once``,
``_dispatch_nodes_by_type``): moto's parsing, copying and validating were most of its time while
inventory was posted at scale L (2.66 ms an update action before, ~0.65 ms after).

The local stack installs all four (demo, serve, bench); the tests' tables are small. Run as a module
it is moto's server with the patches installed (the bench's moto process).
"""
from __future__ import annotations

import base64
import copy
import functools
import json
import pickle
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

_PATCHED: list[tuple[Any, str, Any]] = []  # (owner, name, what it had) of every replacement installed
_MISSING = object()  # the owner had no attribute of its own by that name (it was inherited)


class _CopyWithoutTables:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend: tables are not copied."""

    def __init__(self, table_type: type):
        self._table_type = table_type

    def deepcopy(self, value: Any, memo: dict | None = None) -> Any:
        return value if isinstance(value, self._table_type) else copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def install() -> None:
    """Install the four patches (once; ``uninstall`` takes them out)."""
    import moto.dynamodb.models as backend_module
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    if _PATCHED:
        return
    backend = backend_module.DynamoDBBackend
    original = backend.transact_write_items

    def transact_write_items(self, transact_items: list[dict[str, Any]]) -> None:
        saved = []
        for transact_item in transact_items:
            op_type, op = next(iter(transact_item.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op["Item"] if op_type == "Put" else op["Key"]
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            current = table.get_item(hash_key, range_key)
            saved.append((table, hash_key, range_key, copy.deepcopy(current)))
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(saved):
                if item is None:
                    table.delete_item(hash_key, range_key)
                else:
                    table.put_item(item.to_json()["Attributes"], overwrite=True)
            raise

    _replace(backend, "transact_write_items", transact_write_items)
    _replace(backend_module, "copy", _CopyWithoutTables(Table))
    _query_partitions_only(Table)
    answer_items_as_json()
    _parse_update_expressions_once()


def uninstall() -> None:
    """Put moto back as it was before ``install``."""
    while _PATCHED:
        owner, name, original = _PATCHED.pop()
        if original is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, original)


@contextmanager
def installed() -> Iterator[None]:
    """The patches for the duration of a block (a test of the local stack's moto)."""
    install()
    try:
        yield
    finally:
        uninstall()


def _replace(owner: Any, name: str, value: Any) -> None:
    _PATCHED.append((owner, name, vars(owner).get(name, _MISSING)))
    setattr(owner, name, value)


def _query_partitions_only(table_type: type) -> None:
    """``Table.query`` sees only the items of the partition it asks for: ``all_items``, which
    moto's query walks, answers with them for the duration of that query in that thread. On the
    table's key, the partition's items; on an index with one hash attribute, the items whose
    attribute equals it (found by comparing raw values, then sorted as moto sorts all items: moto
    sorts the whole table, comparing ``DynamoType``s, for every page)."""
    query, all_items = table_type.query, table_type.all_items
    scope = threading.local()

    def partition_items(self) -> list:
        partition = getattr(scope, "partition", None)
        if partition is None or partition[0] is not self:
            return all_items(self)
        if partition[1] is not None:  # an index: (attribute, type, value)
            name, kind, value = partition[1]
            found = [item for hash_set in self.items.values()
                     for item in (hash_set.values() if self.range_key_attr else (hash_set,))
                     if (attr := item.attrs.get(name)) is not None and attr.type == kind and attr.value == value]
            return sorted(found, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)
        stored = self.items.get(partition[2])
        if stored is None:
            return []
        return list(stored.values()) if self.range_key_attr else [stored]

    def query_partition(self, hash_key, *args: Any, **kwargs: Any):
        if hash_key is None:
            return query(self, hash_key, *args, **kwargs)
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name:
            index = {i.name: i for i in self.all_indexes()}.get(index_name)
            hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"] if index else []
            if len(hashes) != 1:
                return query(self, hash_key, *args, **kwargs)
            scope.partition = (self, (hashes[0], hash_key.type, hash_key.value), None)
        else:
            scope.partition = (self, None, hash_key)
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            scope.partition = None

    _replace(table_type, "all_items", partition_items)
    _replace(table_type, "query", query_partition)


def _parse_update_expressions_once() -> None:
    """moto parses an item's UpdateExpression twice (to check the names used, then to apply it)
    for every item it updates, and its validator deep-copies the tree before working on the copy.
    The parse is kept per expression text (a transaction of 100 updates of one shape had 200
    parses of one text; nothing changes the tree it returns: the validator works on its copy), and
    the validator's copies are made with pickle, a fraction of ``deepcopy``'s time on these trees."""
    from moto.dynamodb.parsing import expressions, validators

    parser = expressions.UpdateExpressionParser
    _replace(parser, "make", staticmethod(functools.lru_cache(maxsize=4096)(parser.make)))
    _replace(validators, "deepcopy", _pickled_copy)
    _check_expression_shapes_once(validators.UpdateExpressionValidator)
    _dispatch_nodes_by_type()


def _dispatch_nodes_by_type() -> None:
    """Each of the validator's walks asks, at every node of the tree, for its processor's map of
    node classes (built afresh each time) and tests the node against them with ``isinstance`` on
    abstract classes; the walks' processors are made afresh for every item. The map's classes and
    functions are constants of the processor's class: its function per node type is kept per
    class (moto's tree has no virtual subclasses)."""
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node

    functions: dict[tuple[type, type], Any] = {}  # (processor class, node class) -> function or None
    is_node: dict[type, bool] = {}

    def function(processor: Any, node_type: type) -> Any:
        key = (type(processor), node_type)
        if key not in functions:
            functions[key] = next((method.__func__ for kind, method in processor._processing_map().items()
                                   if issubclass(node_type, kind)), None)
        return functions[key]

    def traverse_node_recursively(self, node, child_id=-1):
        node_type = type(node)
        if node_type not in is_node:
            is_node[node_type] = issubclass(node_type, Node)
        if is_node[node_type]:
            parent_node = node.parent
            if node.children is not None:
                for i, child_node in enumerate(node.children):
                    self.pre_processing_of_child(node, i)
                    self.traverse_node_recursively(child_node, i)
            process = function(self, node_type)
            if process is not None:
                node = process(self, node)
                node.parent = parent_node
                if parent_node:
                    parent_node.children[child_id] = node
        return node

    _replace(DepthFirstTraverser, "traverse_node_recursively", traverse_node_recursively)


# Checks of an expression's shape alone (its text, the names it maps, the table's key): the same for
# every item an expression of that text updates; the other processors use the item and the values.
SHAPE_CHECKS = ("ActionCountValidator", "OverlappingPathsValidator", "UpdateHashRangeKeyValidator")


def _check_expression_shapes_once(validator_type: type) -> None:
    """moto's validator walks the whole tree once per processor for every item updated; the walks
    that check only the expression's shape are skipped once that shape has passed them (the tree
    is the kept parse of its text, so the tree names the text)."""
    passed: set[tuple] = set()
    init, validate = validator_type.__init__, validator_type.validate

    def shape(expression: Any, names: dict | None, table: Any) -> tuple:
        # The tree itself, not its id: kept here, it cannot be freed and its id reused.
        return expression, tuple(sorted((names or {}).items())), tuple(table.table_key_attrs)

    def checked_init(self, expression, expression_attribute_names, expression_attribute_values, item, table):
        init(self, expression, expression_attribute_names, expression_attribute_values, item, table)
        self.shape = shape(expression, expression_attribute_names, table)
        if self.shape in passed:
            self.processors = [p for p in self.processors if type(p).__name__ not in SHAPE_CHECKS]

    def checked_validate(self):
        validated = validate(self)
        passed.add(self.shape)
        return validated

    _replace(validator_type, "__init__", checked_init)
    _replace(validator_type, "validate", checked_validate)


def _pickled_copy(value: Any, memo: dict | None = None) -> Any:
    try:
        return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
    except (pickle.PicklingError, TypeError, AttributeError):
        return copy.deepcopy(value, memo)


DATA_PLANE = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
                        "BatchWriteItem", "TransactGetItems", "TransactWriteItems"})


def answer_items_as_json() -> None:
    """The third patch alone (the crash harness's moto: its answers, not its semantics, change)."""
    from moto.dynamodb.responses import DynamoHandler

    serialized = DynamoHandler.serialized

    def as_json(self, action_result) -> tuple:
        if isinstance(action_result.result, Exception) or self._get_action() not in DATA_PLANE:
            return serialized(self, action_result)
        body = json.dumps(_without_nulls(action_result.result), default=_encode, separators=(",", ":"))
        return 200, {"Content-Type": "application/x-amz-json-1.0", **self.response_headers}, body

    _replace(DynamoHandler, "serialized", as_json)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


if __name__ == "__main__":  # python -m devstack.moto_transactions -H <host> -p <port>
    import logging

    from moto.server import main

    install()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    main()
