"""Records in, cleaned records out: the one way every route and job validates a record.

The cleaned record is a plain dict in the normal forms of ``models/base.py``: every declared
field present (optional ones without a default are ``None``), defaults applied, decimals exact
``Decimal``, date-times in UTC milliseconds. It is what storage keeps and what the upload hash
is computed on (``domain/uploads.py``), so its shape is part of the contract.

Example::

    record = parse_record("products", {"id": "P1", ...}, path="items[3]")   # or ValidationError
    cleaned = parse_records("products", body["items"])                     # every error at once
"""
from __future__ import annotations

from typing import Any

from chalicelib.domain.errors import FieldError, ValidationError
from chalicelib.models.base import StrictModel, parse
from chalicelib.models.common import Record
from chalicelib.models.records import ENTITY_MODELS
from chalicelib.models.uploads import UPLOAD_MODELS

__all__ = ["check_record", "has_field", "parse_record", "parse_records"]

_MODELS: dict[str, type[StrictModel]] = {**ENTITY_MODELS, **UPLOAD_MODELS}


def _model(entity: str) -> type[StrictModel]:
    try:
        return _MODELS[entity]
    except KeyError:
        raise ValueError(f"unknown entity {entity!r}; expected one of: {', '.join(_MODELS)}") from None


def has_field(entity: str, name: str) -> bool:
    """Whether records of ``entity`` have a field ``name``."""
    return name in _model(entity).model_fields


def parse_record(entity: str, item: Any, path: str = "") -> dict:
    """One record of ``entity`` (a ``/data`` entity or an upload type), cleaned; raises
    ``ValidationError`` naming every offending field, prefixed by ``path`` (``items[3].price``).
    Raises ``ValueError`` for an unknown ``entity``."""
    return parse(_model(entity), item, path).model_dump()


def check_record(entity: str, item: Any, path: str = "") -> tuple[dict | None, list[FieldError]]:
    """``parse_record`` for callers that keep going past a refused record (per-record outcomes):
    ``(cleaned, [])`` or ``(None, its field errors)``."""
    try:
        return parse_record(entity, item, path), []
    except ValidationError as exc:
        return None, exc.errors


def parse_records(entity: str, items: Any, path: str = "items") -> list[dict]:
    """A batch, cleaned; raises ``ValidationError`` with the errors of every record. Besides each
    record's own errors, a key (``id``, ``transaction_id``, ...) that repeats within the batch is an
    error at the later occurrence."""
    model = _model(entity)  # an unknown entity is a ValueError, even for a malformed batch
    if not isinstance(items, list):
        raise ValidationError([FieldError(path, "must be a list")])
    key = model.batch_key if issubclass(model, Record) else ()
    errors: list[FieldError] = []
    cleaned: list[dict] = []
    first_at: dict[tuple, int] = {}
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]"
        try:
            record = parse_record(entity, item, item_path)
        except ValidationError as exc:
            errors.extend(exc.errors)
            continue
        cleaned.append(record)
        if not key:
            continue
        value = tuple(record[k] for k in key)
        if value in first_at:
            where = f"{item_path}.{key[0]}" if len(key) == 1 else item_path
            shown = value[0] if len(key) == 1 else dict(zip(key, value, strict=True))
            message = f"duplicate {'/'.join(key)} {shown!r} (also at {path}[{first_at[value]}])"
            errors.append(FieldError(where, message))
        else:
            first_at[value] = i
    if errors:
        raise ValidationError(errors)
    return cleaned
