"""What the record models (``records.py``, ``uploads.py``) share beyond ``base.py``: the record
base class, lists with the contract's size and uniqueness rules, and rule errors at a field.

A ``Record`` reads ``null`` the way the contract always has: an optional field sent as ``null``
takes its default, a required one is refused with "must not be null", and a required field that
may be ``null`` (a root's ``parent_id``) says so when it is missing. Fields the system manages
(``read_only``) are refused with the reason. Cross-field rules live in ``rules()``: they run once
every field is valid, and each error names its field (``lines[0].qty``), so a caller keeps every
error against the right field.

Example::

    class Assortment(Record):
        valid_from: DATE
        valid_to: DATE | None = None

        def rules(self) -> list[RuleError]:
            if self.valid_to is not None and self.valid_to < self.valid_from:
                return [(("valid_to",), "must not be before valid_from")]
            return []
"""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, NoReturn, get_args

import pydantic
import pydantic_core
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, ValidationInfo, model_validator
from pydantic.fields import FieldInfo

from chalicelib.models.base import StrictModel, decimal, integer, text

__all__ = ["DAYS", "MONEY", "NAME", "PRICE", "QTY", "Record", "RuleError", "listing", "refuse"]

NAME = text(200)
MONEY = decimal(2)
PRICE = decimal(2, minimum=0)
QTY = decimal(4)
DAYS = integer(1, 3650)

RuleError = tuple[tuple[str | int, ...], str]
"""``(location inside the value, message)``: ``(("lines", 0, "qty"), "must be positive for a Sale")``."""


def refuse(title: str, errors: list[RuleError]) -> NoReturn:
    """Fail the value being validated with ``errors``; pydantic puts the value's own location in
    front of each (``items[3]`` + ``lines[0].qty``)."""
    raise pydantic_core.ValidationError.from_exception_data(title, [_value_error(loc, message)
                                                                    for loc, message in errors])


def _value_error(loc: tuple, message: str) -> dict:
    return {"type": "value_error", "loc": loc, "input": None, "ctx": {"error": ValueError(message)}}


def _nullable(field: FieldInfo) -> bool:
    return type(None) in get_args(field.annotation)


class Record(StrictModel):
    """A record type of the contract (see the module docstring)."""

    model_config = ConfigDict(defer_build=True)  # built on first use: a route pays only for the records it takes

    read_only: ClassVar[dict[str, str]] = {}
    """Field → why it cannot be sent."""
    batch_key: ClassVar[tuple[str, ...]] = ("id",)
    """What must not repeat within one batch; ``()``: nothing."""
    _optional: ClassVar[frozenset[str]] = frozenset()
    _not_null: ClassVar[frozenset[str]] = frozenset()
    _nullable: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        fields = cls.model_fields
        cls._optional = frozenset(name for name, field in fields.items() if not field.is_required())
        cls._nullable = frozenset(name for name, field in fields.items() if field.is_required() and _nullable(field))
        cls._not_null = frozenset(fields) - cls._optional - cls._nullable

    def rules(self) -> list[RuleError]:
        """The errors of the cross-field rules of a record whose fields are all valid."""
        return []

    @model_validator(mode="wrap")
    @classmethod
    def _nulls_and_read_only(cls, data: Any, handler: pydantic.ValidatorFunctionWrapHandler) -> Any:
        nulls: set[str] = set()
        if isinstance(data, dict) and None in data.values():
            nulls = {name for name, value in data.items() if value is None and name in cls._not_null}
            data = {name: value for name, value in data.items()
                    if not (value is None and (name in nulls or name in cls._optional))}
        try:
            return handler(data)
        except pydantic.ValidationError as exc:
            errors = exc.errors(include_url=False)
            reworded = [cls._reworded(error, nulls) for error in errors]
            if reworded == errors:
                raise
            raise pydantic_core.ValidationError.from_exception_data(exc.title, reworded) from None

    @classmethod
    def _reworded(cls, error: dict, nulls: set[str]) -> dict:
        loc, kind = error["loc"], error["type"]
        if len(loc) == 1 and kind == "missing":
            if loc[0] in nulls:
                return _value_error(loc, "must not be null")
            if loc[0] in cls._nullable:
                return _value_error(loc, "is required (null if none)")
        if len(loc) == 1 and kind == "extra_forbidden" and loc[0] in cls.read_only:
            return _value_error(loc, cls.read_only[loc[0]])
        return error

    @model_validator(mode="after")
    def _rules(self) -> Record:
        errors = self.rules()
        if errors:
            refuse(type(self).__name__, errors)
        return self


def listing(item: Any, *, min_items: int = 0, max_items: int = 1000, unique: str | None = None,
            distinct: bool = False) -> Any:
    """A list of ``item`` of ``min_items`` to ``max_items`` (sizes checked before the items);
    ``unique`` names an item field that must not repeat, ``distinct`` forbids repeated items."""

    def size(value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError("must be a list")
        if len(value) < min_items:
            raise ValueError(f"must have at least {min_items} item{'s' if min_items > 1 else ''}")
        if len(value) > max_items:
            raise ValueError(f"must have at most {max_items} items")
        return value

    def once(value: list, info: ValidationInfo) -> list:
        seen: dict[Any, int] = {}
        errors: list[RuleError] = []
        for i, entry in enumerate(value):
            key = getattr(entry, unique) if unique else entry
            if key in seen:
                where = f"{info.field_name}[{seen[key]}]"
                errors.append(((i, unique) if unique else (i,),
                               f"duplicate {unique or 'value'} {key!r} (also at {where})"))
            else:
                seen[key] = i
        if errors:
            refuse("list", errors)
        return value

    checks: list[Any] = [BeforeValidator(size)]
    if unique or distinct:
        checks.append(AfterValidator(once))
    bounds = {"min_length": min_items} if min_items else {}
    extra = {"json_schema_extra": {"uniqueItems": True}} if distinct else {}
    return Annotated[list[item], Field(max_length=max_items, **bounds, **extra), *checks]
