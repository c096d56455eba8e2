"""Every job's run parameters as a typed model: the one definition of what ``POST /jobs/{job}/runs``
accepts in ``params`` and of what ``GET /jobs`` describes.

The job table (``chalicelib/jobs/registry.py``) names each job's model and holds the values of the
parameters left out (``defaults``, plain data, so that the scheduled tick never imports this
module). A parameter sent as ``null`` counts as left out. Unknown parameters are refused; the
normal forms are those runs store (``store_ids`` sorted without repeats, dates ``YYYY-MM-DD``).
"""
from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import Field, model_validator

from chalicelib.domain.migration import MIGRATION_ENTITIES
from chalicelib.domain.pay import PayPeriodType
from chalicelib.models.base import ID_PATTERN, StrictModel, _scalar, parse

# The parameters' own words (the API has answered with these since jobs took parameters).
WORDS = {"extra_forbidden": "unknown parameter"}


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def count(minimum: int) -> Any:
    """A whole number of at least ``minimum``."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer")
        if value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value

    return Annotated[int, *_scalar(check, {"type": "integer", "minimum": minimum})]


def _day(value: Any) -> str:
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise ValueError("must be a date YYYY-MM-DD")


_ID = re.compile(ID_PATTERN)


def _ids(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and _ID.fullmatch(v) for v in value):
        raise ValueError("must be a list of ids")
    return sorted(set(value))


def one_of(*words: str) -> Any:
    choices = tuple(str(word) for word in words)

    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return Annotated[str, *_scalar(check, {"type": "string", "enum": list(choices)})]


def _word(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


FLAG = Annotated[bool, *_scalar(_flag, {"type": "boolean"})]
DAY = Annotated[str, *_scalar(_day, {"type": "string", "format": "date"})]
IDS = Annotated[list[str], *_scalar(_ids, {"type": "array", "items": {"type": "string", "pattern": f"^{ID_PATTERN}$"}})]
WORD = Annotated[str, *_scalar(_word, {"type": "string", "minLength": 1})]

# The migration entities and the staging rows of files whose entity was not recognised
# (``storage.migration.UNKNOWN_ENTITY``; a test keeps the two equal).
STAGING_ENTITIES = (*MIGRATION_ENTITIES, "unknown")
COPY_ROWS = ("all", "errors")
CLEAN_UP_SCOPES = ("all", "copied", "errors")
STAGING_ENTITY = one_of(*STAGING_ENTITIES)
COPY_ROW = one_of(*COPY_ROWS)
CLEAN_UP_SCOPE = one_of(*CLEAN_UP_SCOPES)
PERIOD_TYPE = one_of(*PayPeriodType)
DAYS_0 = count(0)
DAYS_1 = count(1)


class Params(StrictModel):
    """Parameters of a job that takes none; the base of every other job's."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_left_out(cls, data: Any) -> Any:
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data


class StoreTargeting(Params):
    """Per-store targeting (DOMAIN §0, ``chalicelib/jobs/targeting.py``)."""

    store_ids: IDS = Field(None, description="only these stores")
    org_node_ids: IDS = Field(None, description="only stores under these organization nodes")


class CleanUpStaging(Params):
    entity: STAGING_ENTITY = Field(None, description="only this entity")
    staging_job_id: WORD = Field(None, description="only this staging job")
    scope: CLEAN_UP_SCOPE = Field(None, description="all rows; only jobs copied to target; only rows with errors")
    older_than_days: DAYS_0 = Field(None, description="only jobs created longer ago (the weekly schedule: 30)")


class CopyMigrationToTarget(Params):
    staging_job_id: WORD = Field(description="the staging job to copy")
    rows: COPY_ROW = Field(None, description="all valid rows, or only the rows that failed the last copy")


class GenerateAccountActivity(Params):
    profile_ids: IDS = Field(None, description="only these account export profiles")
    from_date: DAY = Field(None, description="restate from this date (a new result outside the chain)")
    to_date: DAY = Field(None, description="restate through this date, before today (a new result outside the "
                                           "chain)")


class PostStatements(StoreTargeting):
    through_date: DAY = Field(None, description="post business dates up to this one (default: yesterday in each "
                                                "store's time zone)")


_RERUN_OF = "the session the new one replaces (POST /download-sessions/{id}/rerun)"


class ProcessDeliveryModes(StoreTargeting):
    full_sync: FLAG = Field(None, description="send every targeted store all its delivery modes")
    rerun_of: WORD = Field(None, description=_RERUN_OF)


class ProcessAssortments(StoreTargeting):
    assortment_ids: IDS = Field(None, description="only the stores these assortments cover (publishing passes "
                                                  "its id)")
    full_sync: FLAG = Field(None, description="send every targeted store its whole assortment")
    rerun_of: WORD = Field(None, description=_RERUN_OF)


class PurgeRunHistory(Params):
    older_than_days: DAYS_1 = Field(None, description="override the retention parameter")


class SendEmailReceipts(Params):
    include_unposted: FLAG = Field(None, description="also send receipts of completed transactions not posted yet")


class StageMigrationFile(Params):
    key: WORD = Field(description="the object key, e.g. migration/data/products/items.csv")
    bucket: WORD = Field(None, description="default: the migration bucket")
    etag: WORD = Field(None, description="the ETag the drop notification named (set by on_migration_drop)")


class TransferToPay(Params):
    pay_date: DAY = Field(None, description="transfer the periods containing this date (default: every ended "
                                            "period with pay items not yet transferred)")
    period_type: PERIOD_TYPE = Field(None, description="only this pay period type (default: all)")
    include_already_exported: FLAG = Field(None, description="export pay items transferred before again (without "
                                                             "pay_date: each type's most recently ended period)")
    accept_errors: FLAG = Field(None, description="export approved registrations even if the period has "
                                                  "unapproved ones")


def clean(model: type[Params], params: Any, defaults: dict, message: str) -> dict:
    """``params`` validated by ``model`` in normal form, ``defaults`` filling what was left out;
    raises ``ValidationError`` naming every offending ``params.<name>``."""
    if params is None:
        params = {}
    parsed = parse(model, params, "params", message, words=WORDS)
    return {**defaults, **parsed.model_dump(exclude_none=True)}


_KINDS = {"boolean": "bool", "integer": "int", "array": "ids"}


def _kind(schema: dict) -> str:
    if "enum" in schema:
        return "choice"
    if schema.get("format") == "date":
        return "date"
    return _KINDS.get(schema.get("type"), "str")


def describe(model: type[Params], defaults: dict) -> dict:
    """What ``GET /jobs`` shows of each parameter, read from the model's JSON Schema."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    return {name: {"type": _kind(field), "default": defaults.get(name), "help": field.get("description", ""),
                   **({"choices": field["enum"]} if "enum" in field else {}),
                   **({"required": True} if name in required else {})}
            for name, field in schema.get("properties", {}).items()}
