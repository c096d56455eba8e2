"""Strict validation of every record the system accepts (DOMAIN.md §2, §3, §5, §9–§12).

Each record type is a small table of fields built from reusable validators; one generic
record validator walks the table. The cleaned record has every declared field (optional
fields without a default are ``None``), defaults applied, and these normal forms:

- ids are strings of 1–64 ASCII letters, digits, ``-``, ``_``, ``.``;
- dates stay ``YYYY-MM-DD`` strings (real calendar dates only);
- date-times must carry a zone and are normalised to UTC with millisecond precision,
  ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (sub-millisecond digits are truncated). The fixed width
  makes the strings sort in time order, which the status-message job relies on;
- decimals arrive as JSON strings (``"12.30"``) or as ``int``/``Decimal`` (the HTTP layer
  parses JSON with ``parse_float=Decimal``) and leave as ``Decimal``; floats are refused
  because a float cannot hold money exactly.

Transaction sign convention (§10): a ``Sale`` has positive ``qty`` and non-negative line
amounts and payments; a ``Return`` has negative ``qty`` and non-positive line amounts and
payments (money goes back to the customer). ``unit_price`` is never negative. Payments are
net of change given. An exchange is two transactions. Either way the lines (net + tax) must
add up to the payments to less than a cent, except for ``Voided`` transactions, which were
never paid. Line amounts may carry four decimals (line tax is often computed finer than
cents; DOMAIN §0 rounds at output), which is what the tolerance is for; payments are whole
cents, so a transaction whose amounts are all whole cents must balance exactly.

Cross-record references (does the store exist?) are the storage layer's business.

Example::

    record, errors = validate("products", {"id": "P1", ...}, path="items[3]")
    cleaned = validate_many("products", body["items"])   # raises ValidationError
"""
from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chalicelib.domain.errors import FieldError, ValidationError

__all__ = [
    "DEFAULT_PARAMETERS",
    "ENTITIES",
    "OTHER_RECORDS",
    "SESSION_STATUSES",
    "parameters_with_defaults",
    "parse_datetime",
    "validate",
    "validate_many",
]

ENTITIES: tuple[str, ...] = (
    "org-nodes",
    "stores",
    "categories",
    "products",
    "customers",
    "workers",
    "pay-types",
    "delivery-modes",
    "assortments",
    "account-export-profiles",
    "parameters",
)
"""The ``/data/{entity}`` record types."""

OTHER_RECORDS: tuple[str, ...] = ("transactions", "time-registrations", "status-messages", "inventory")
"""Record types uploaded by stores or staged by migration; validated by the same ``validate``."""

DEFAULT_PARAMETERS: dict = {
    "id": "default",
    "receipt_subject": "Your receipt from {store_name}",
    "receipt_file_name": "receipt",
    "company_language": "en-us",
    "receipt_templates": {},
    "accounts": {
        "revenue_default": "401100",
        "tax": "222000",
        "cash": "110100",
        "card": "110200",
        "gift_card": "110300",
    },
    "try_count": 3,
    "stale_after_hours": 24,
    "download_session_retention_days": 30,
    "run_history_retention_days": 90,
    "email_max_attempts": 3,
    "email_expiry_days": 30,
    "max_backdated_days": 60,
}
"""Retail parameters (§11) used for every value the stored record does not set."""

SESSION_STATUSES: tuple[str, ...] = (
    "Started", "Available", "Requested", "Downloaded", "Applied", "Canceled",
    "CreateFailed", "DownloadFailed", "ApplyFailed", "NoData", "Suspended",
)

# A validator checks one value at ``path``, appends what is wrong to ``errors`` and returns
# the cleaned value, or ``_INVALID`` when it reported an error.
Validator = Callable[[Any, str, list[FieldError]], Any]
# A rule checks a record whose fields are all valid and returns its errors.
Rule = Callable[[dict, str], list[FieldError]]

_INVALID = object()
_ABSENT = object()


class _Invalid(Exception):
    """Raised by a scalar check; the message becomes the field error."""


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# ---------------------------------------------------------------------------
# Record tables
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _SameAs:
    """A default copied from another field of the same record (stores: warehouse = store id)."""

    field: str


@dataclass(frozen=True)
class Field:
    name: str
    check: Validator
    required: bool = True
    nullable: bool = False  # a required field that may be sent as null (a root's parent_id)
    default: Any = None  # optional fields only: value when absent or null


@dataclass(frozen=True)
class Schema:
    fields: tuple[Field, ...]
    rules: tuple[Rule, ...] = ()
    read_only: tuple[tuple[str, str], ...] = ()  # (field, why it cannot be sent)
    key: tuple[str, ...] = ("id",)  # what must be unique within a batch; () = nothing


def req(name: str, check: Validator, *, nullable: bool = False) -> Field:
    return Field(name, check, required=True, nullable=nullable)


def opt(name: str, check: Validator, default: Any = None) -> Field:
    return Field(name, check, required=False, default=default)


def schema(
    *fields: Field,
    rules: tuple[Rule, ...] = (),
    read_only: dict[str, str] | None = None,
    key: tuple[str, ...] = ("id",),
) -> Schema:
    return Schema(fields, rules, tuple((read_only or {}).items()), key)


def record_of(spec: Schema) -> Validator:
    """Validator for an object laid out by ``spec``: every field, unknown keys, then the rules."""
    names = {f.name for f in spec.fields}
    read_only = dict(spec.read_only)

    def validate(value: Any, path: str, errors: list[FieldError]) -> Any:
        if not isinstance(value, dict):
            errors.append(FieldError(path, "must be an object"))
            return _INVALID
        found: list[FieldError] = []
        cleaned: dict = {}
        for f in spec.fields:
            field_path = _join(path, f.name)
            raw = value.get(f.name, _ABSENT)
            if raw is _ABSENT or raw is None:
                if f.required and raw is _ABSENT:
                    message = "is required (null if none)" if f.nullable else "is required"
                    found.append(FieldError(field_path, message))
                elif f.required and not f.nullable:
                    found.append(FieldError(field_path, "must not be null"))
                else:
                    cleaned[f.name] = None if f.required else copy.deepcopy(f.default)
                continue
            result = f.check(raw, field_path, found)
            if result is not _INVALID:
                cleaned[f.name] = result
        for key in value:
            if key in read_only:
                found.append(FieldError(_join(path, str(key)), read_only[key]))
            elif key not in names:
                found.append(FieldError(_join(path, str(key)), "unknown field"))
        if found:
            errors.extend(found)
            return _INVALID
        for name, default in cleaned.items():
            if isinstance(default, _SameAs):
                cleaned[name] = cleaned[default.field]
        for rule in spec.rules:
            found.extend(rule(cleaned, path))
        if found:
            errors.extend(found)
            return _INVALID
        return cleaned

    return validate


def list_of(
    item: Validator,
    *,
    min_items: int = 0,
    max_items: int = 1000,
    unique: str | None = None,
    distinct: bool = False,
) -> Validator:
    """A list of ``item``; ``unique`` names an item field that must not repeat, ``distinct``
    forbids repeated scalar items."""

    def validate(value: Any, path: str, errors: list[FieldError]) -> Any:
        if not isinstance(value, list):
            errors.append(FieldError(path, "must be a list"))
            return _INVALID
        if len(value) < min_items:
            plural = "s" if min_items > 1 else ""
            errors.append(FieldError(path, f"must have at least {min_items} item{plural}"))
            return _INVALID
        if len(value) > max_items:
            errors.append(FieldError(path, f"must have at most {max_items} items"))
            return _INVALID
        cleaned = [item(v, f"{path}[{i}]", errors) for i, v in enumerate(value)]
        if any(c is _INVALID for c in cleaned):
            return _INVALID
        if unique or distinct:
            seen: dict[Any, int] = {}
            ok = True
            for i, c in enumerate(cleaned):
                k = c[unique] if unique else c
                if k in seen:
                    where = f"{path}[{i}].{unique}" if unique else f"{path}[{i}]"
                    message = f"duplicate {unique or 'value'} {k!r} (also at {path}[{seen[k]}])"
                    errors.append(FieldError(where, message))
                    ok = False
                else:
                    seen[k] = i
            if not ok:
                return _INVALID
        return cleaned

    return validate


def map_of(key: Validator, value: Validator, *, max_items: int = 100) -> Validator:
    """An object with free keys (each checked by ``key``) and values checked by ``value``."""

    def validate(raw: Any, path: str, errors: list[FieldError]) -> Any:
        if not isinstance(raw, dict):
            errors.append(FieldError(path, "must be an object"))
            return _INVALID
        if len(raw) > max_items:
            errors.append(FieldError(path, f"must have at most {max_items} entries"))
            return _INVALID
        cleaned = {}
        ok = True
        for k, v in raw.items():
            item_path = _join(path, str(k))
            k_clean = key(k, item_path, errors)
            v_clean = value(v, item_path, errors)
            if k_clean is _INVALID or v_clean is _INVALID:
                ok = False
            else:
                cleaned[k_clean] = v_clean
        return cleaned if ok else _INVALID

    return validate


# ---------------------------------------------------------------------------
# Scalar validators
# ---------------------------------------------------------------------------


def _scalar(check: Callable[[Any], Any]) -> Validator:
    def validate(value: Any, path: str, errors: list[FieldError]) -> Any:
        try:
            return check(value)
        except _Invalid as exc:
            errors.append(FieldError(path, str(exc)))
            return _INVALID

    return validate


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid("must be a string")
    return value


def text(max_len: int = 200) -> Validator:
    """Free text, not blank."""

    def check(value: Any) -> str:
        s = _string(value)
        if not s.strip():
            raise _Invalid("must not be blank")
        if len(s) > max_len:
            raise _Invalid(f"must be at most {max_len} characters")
        return s

    return _scalar(check)


def matching(pattern: str, description: str, *, allow_empty: bool = False) -> Validator:
    regex = re.compile(pattern)

    def check(value: Any) -> str:
        s = _string(value)
        if not (allow_empty and s == "") and not regex.fullmatch(s):
            raise _Invalid(f"must be {description}")
        return s

    return _scalar(check)


_ID_PATTERN = r"[A-Za-z0-9._-]{1,64}"
_ID_DESCRIPTION = "1-64 characters of letters, digits, '-', '_', '.'"


def one_of(*allowed: str) -> Validator:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise _Invalid(f"must be one of: {', '.join(allowed)}")
        return value

    return _scalar(check)


def _check_boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid("must be a boolean (true or false)")
    return value


def integer(minimum: int, maximum: int) -> Validator:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid("must be an integer")
        if not minimum <= value <= maximum:
            raise _Invalid(f"must be between {minimum} and {maximum}")
        return value

    return _scalar(check)


_DECIMAL_TEXT = re.compile(r"[+-]?\d+(\.\d+)?")
_MAX_INTEGER_DIGITS = 18


def decimal(places: int, minimum: Decimal | int | None = None) -> Validator:
    """A decimal with at most ``places`` decimals, from a string, ``int`` or ``Decimal``."""
    quantum = Decimal(1).scaleb(-places)

    def check(value: Any) -> Decimal:
        if isinstance(value, float):
            raise _Invalid('must not be a float; send a decimal string such as "12.30"')
        if isinstance(value, bool):
            raise _Invalid("must be a number")
        if isinstance(value, str):
            if not _DECIMAL_TEXT.fullmatch(value):
                raise _Invalid('must be a decimal number such as "12.30"')
        elif not isinstance(value, int | Decimal):
            raise _Invalid("must be a number")
        d = Decimal(value)
        if not d.is_finite():
            raise _Invalid("must be a finite number")
        if d and d.adjusted() >= _MAX_INTEGER_DIGITS:
            raise _Invalid("is too large")
        exponent = d.as_tuple().exponent
        if exponent < -places:
            if d != d.quantize(quantum):
                raise _Invalid(f"must have at most {places} decimal places")
            d = d.quantize(quantum)
        elif exponent > 0:  # 1E+2 from JSON: keep plain digits
            d = d.quantize(Decimal(1))
        if d.is_zero():
            d = abs(d)  # no -0.00
        if minimum is not None and d < minimum:
            raise _Invalid(f"must be at least {minimum}")
        return d

    return _scalar(check)


_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")


def _check_date(value: Any) -> str:
    if not isinstance(value, str) or not _DATE_TEXT.fullmatch(value):
        raise _Invalid("must be a date YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise _Invalid("is not a real calendar date") from None
    return value


_DATETIME_TEXT = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?")
_DATETIME_EXAMPLE = "an ISO 8601 date-time with zone, e.g. 2026-11-03T09:15:00Z or 2026-11-03T10:15:00+01:00"


def _check_datetime(value: Any) -> str:
    match = _DATETIME_TEXT.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise _Invalid(f"must be {_DATETIME_EXAMPLE}")
    stamp, fraction, zone = match.groups()
    if zone is None:
        raise _Invalid(f"must include a time zone (Z or +hh:mm): {_DATETIME_EXAMPLE}")
    try:
        parsed = datetime.fromisoformat(stamp + ("+00:00" if zone == "Z" else zone))
        micro = int((fraction or "").ljust(6, "0")[:6])
        utc = (parsed + timedelta(microseconds=micro)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise _Invalid(f"is not a valid date-time: {_DATETIME_EXAMPLE}") from None
    return utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_datetime(value: str) -> datetime:
    """The aware ``datetime`` of a cleaned date-time string."""
    return datetime.fromisoformat(value)


ID = matching(_ID_PATTERN, _ID_DESCRIPTION)
NAME = text(200)
BOOLEAN = _scalar(_check_boolean)
DATE = _scalar(_check_date)
DATETIME = _scalar(_check_datetime)
EMAIL = matching(r"(?=.{3,254}$)[^@\s]+@[^@\s.]+(\.[^@\s.]+)+", "an email address such as name@example.com")
LANGUAGE = matching(r"[a-z]{2}(-[a-z]{2})?", "a lowercase language code such as en or en-us")
COUNTRY = matching(r"[A-Z]{2,3}", "an uppercase ISO 3166-1 alpha-2 or alpha-3 country code such as US or USA")
MONEY = decimal(2)
PRICE = decimal(2, minimum=0)
QTY = decimal(4)
LINE_AMOUNT = decimal(2)
LINE_TYPE = one_of("Include", "Exclude")
DAYS = integer(1, 3650)
CURRENCY = matching(r"[A-Z]{3}", "an uppercase ISO 4217 currency code such as USD or CAD")


def _check_time_zone(value: Any) -> str:
    s = _string(value)
    if s != "UTC" and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){1,2}", s):
        raise _Invalid("must be an IANA time zone such as America/New_York or UTC")
    try:
        ZoneInfo(s)
    except (ZoneInfoNotFoundError, ValueError):
        raise _Invalid(f"unknown IANA time zone {s!r}") from None
    return s


TIME_ZONE = _scalar(_check_time_zone)


# ---------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------


def _exactly_one_of(*names: str) -> Rule:
    def rule(r: dict, path: str) -> list[FieldError]:
        if sum(r[n] is not None for n in names) != 1:
            return [FieldError(path, f"must have exactly one of {', '.join(names)}")]
        return []

    return rule


def _not_own_parent(r: dict, path: str) -> list[FieldError]:
    if r["parent_id"] == r["id"]:
        return [FieldError(_join(path, "parent_id"), "must not be the record's own id")]
    return []


def _category_root(r: dict, path: str) -> list[FieldError]:
    if r["id"] == "ALL" and r["parent_id"] is not None:
        return [FieldError(_join(path, "parent_id"), "must be null for the root category ALL")]
    if r["id"] != "ALL" and r["parent_id"] is None:
        return [FieldError(_join(path, "parent_id"), "is required for every category but the root ALL")]
    return []


_ID_REGEX = re.compile(_ID_PATTERN)


def _product_line_ref(r: dict, path: str) -> list[FieldError]:
    parts = r["ref"].split("/") if r["kind"] == "variant" else [r["ref"]]
    if len(parts) == (2 if r["kind"] == "variant" else 1) and all(_ID_REGEX.fullmatch(p) for p in parts):
        return []
    if r["kind"] == "variant":
        message = f"must be product_id/variant_id for kind variant, each {_ID_DESCRIPTION}"
    else:
        message = f"must be a {r['kind']} id: {_ID_DESCRIPTION}"
    return [FieldError(_join(path, "ref"), message)]


def _valid_to_after_from(r: dict, path: str) -> list[FieldError]:
    if r["valid_to"] is not None and r["valid_to"] < r["valid_from"]:
        return [FieldError(_join(path, "valid_to"), "must not be before valid_from")]
    return []


def _parameters_id(r: dict, path: str) -> list[FieldError]:
    if r["id"] != "default":
        return [FieldError(_join(path, "id"), "must be default (there is one parameters record)")]
    return []


_TOTALS_TOLERANCE = Decimal("0.01")


# kind -> (is an amount's sign wrong?, message for qty, message for amounts); see the module doc.
_SIGNS: dict[str, tuple[Callable[[Decimal], bool], str, str]] = {
    "Sale": (lambda d: d < 0, "must be positive for a Sale", "must not be negative for a Sale"),
    "Return": (lambda d: d > 0, "must be negative for a Return", "must not be positive for a Return"),
}


def _transaction_signs_and_totals(t: dict, path: str) -> list[FieldError]:
    wrong_sign, qty_message, amount_message = _SIGNS[t["kind"]]
    errors = []
    lines_path, payments_path = _join(path, "lines"), _join(path, "payments")
    for i, line in enumerate(t["lines"]):
        if line["qty"] == 0 or wrong_sign(line["qty"]):
            errors.append(FieldError(f"{lines_path}[{i}].qty", qty_message))
        for name in ("net_amount", "tax_amount"):
            if wrong_sign(line[name]):
                errors.append(FieldError(f"{lines_path}[{i}].{name}", amount_message))
    for i, payment in enumerate(t["payments"]):
        if wrong_sign(payment["amount"]):
            errors.append(FieldError(f"{payments_path}[{i}].amount", amount_message))
    if t["status"] != "Voided":  # a voided sale was never paid
        due = sum((line["net_amount"] + line["tax_amount"] for line in t["lines"]), Decimal(0))
        paid = sum((p["amount"] for p in t["payments"]), Decimal(0))
        if abs(due - paid) > _TOTALS_TOLERANCE:  # within a cent; posting books the cent to rounding
            message = f"must add up to the lines total (net + tax) {due}, got {paid}"
            errors.append(FieldError(payments_path, message))
    return errors


_MAX_SHIFT = timedelta(hours=24)


def _clock_out_after_clock_in(r: dict, path: str) -> list[FieldError]:
    worked = parse_datetime(r["clock_out"]) - parse_datetime(r["clock_in"])
    if worked <= timedelta(0):
        return [FieldError(_join(path, "clock_out"), "must be after clock_in")]
    if worked > _MAX_SHIFT:
        return [FieldError(_join(path, "clock_out"), "must be at most 24 hours after clock_in")]
    return []


# ---------------------------------------------------------------------------
# The record types
# ---------------------------------------------------------------------------

_CHANNEL_LINES = list_of(
    record_of(schema(
        opt("org_node_id", ID),
        opt("store_id", ID),
        rules=(_exactly_one_of("org_node_id", "store_id"),),
    )),
    max_items=2000,
)

_PRODUCT_LINES = list_of(
    record_of(schema(
        req("kind", one_of("category", "product", "variant")),
        req("ref", text(129)),
        req("line_type", LINE_TYPE),
        rules=(_product_line_ref,),
    )),
    max_items=2000,
)

_ADDRESS_LINES = list_of(
    record_of(schema(req("country", COUNTRY), opt("state", text(64)), req("line_type", LINE_TYPE))),
    max_items=2000,
)

_ACCOUNTS = record_of(schema(
    *(opt(name, ID, default=account) for name, account in DEFAULT_PARAMETERS["accounts"].items()),
))

_RECEIPT_TEMPLATE = record_of(schema(req("html", text(100_000)), req("text", text(100_000))))

_ADDRESS = record_of(schema(
    req("lines", list_of(text(200), min_items=1, max_items=4)),
    req("city", text(100)),
    req("postal_code", text(20)),
    req("country", COUNTRY),
))

_DEFAULT = DEFAULT_PARAMETERS

_SCHEMAS: dict[str, Schema] = {
    "org-nodes": schema(
        req("id", ID), req("name", NAME), req("parent_id", ID, nullable=True),
        rules=(_not_own_parent,),
    ),
    "stores": schema(
        req("id", ID), req("name", NAME), req("legal_entity", ID), req("org_node_id", ID),
        opt("warehouse_id", ID, default=_SameAs("id")), opt("email", EMAIL),
        opt("time_zone", TIME_ZONE, default="UTC"), opt("currency", CURRENCY, default="USD"),
        opt("address", _ADDRESS),
    ),
    "categories": schema(
        req("id", ID), req("name", NAME), req("parent_id", ID, nullable=True), opt("revenue_account", ID),
        rules=(_not_own_parent, _category_root),
    ),
    "products": schema(
        req("id", ID), req("name", NAME), req("category_id", ID), req("price", PRICE),
        req("released_to", list_of(ID, max_items=200, distinct=True)),
        opt("stopped", BOOLEAN, default=False),
        opt("allow_negative_inventory", BOOLEAN, default=True),
        opt("variants", list_of(
            record_of(schema(req("id", ID), opt("size", text(64)), opt("color", text(64)))),
            unique="id",
        ), default=[]),
    ),
    "customers": schema(
        req("id", ID), req("name", NAME), opt("email", EMAIL), req("language", LANGUAGE),
        req("receipt_option", one_of("POS", "Email", "Both")),
    ),
    "workers": schema(
        req("id", ID), req("name", NAME), req("export_id", ID), req("store_id", ID),
        req("pay_period_type", one_of("weekly", "biweekly", "monthly")), req("base_rate", PRICE),
    ),
    "pay-types": schema(
        req("id", ID), opt("description", NAME), req("export_id", ID), req("include_in_export", BOOLEAN),
    ),
    "delivery-modes": schema(
        req("id", ID), req("name", NAME), req("channel_lines", _CHANNEL_LINES),
        req("product_lines", _PRODUCT_LINES), req("address_lines", _ADDRESS_LINES),
    ),
    "assortments": schema(
        req("id", ID), req("name", NAME), req("valid_from", DATE), opt("valid_to", DATE),
        req("channel_lines", _CHANNEL_LINES), req("product_lines", _PRODUCT_LINES),
        rules=(_valid_to_after_from,),
        read_only={"status": "is read-only: the system manages an assortment's status "
                             "(POST /assortments/{id}/publish to publish it)"},
    ),
    "account-export-profiles": schema(
        req("id", ID), req("name", NAME),
        req("lines", list_of(
            record_of(schema(req("exported_account_name", NAME), req("main_account", ID))),
            min_items=1, unique="main_account",
        )),
        req("file_format", one_of("xml", "csv")),
        req("file_prefix", matching(_ID_PATTERN, f"empty or {_ID_DESCRIPTION}", allow_empty=True)),
        req("start_date", DATE),
        opt("legal_entity", ID), opt("time_zone", TIME_ZONE, default="UTC"),
    ),
    "parameters": schema(
        req("id", ID),
        opt("receipt_subject", text(200), default=_DEFAULT["receipt_subject"]),
        opt("receipt_file_name", ID, default=_DEFAULT["receipt_file_name"]),
        opt("company_language", LANGUAGE, default=_DEFAULT["company_language"]),
        opt("receipt_templates", map_of(LANGUAGE, _RECEIPT_TEMPLATE), default=_DEFAULT["receipt_templates"]),
        opt("accounts", _ACCOUNTS, default=_DEFAULT["accounts"]),
        opt("try_count", integer(0, 100), default=_DEFAULT["try_count"]),
        opt("stale_after_hours", integer(1, 24 * 365), default=_DEFAULT["stale_after_hours"]),
        opt("download_session_retention_days", DAYS, default=_DEFAULT["download_session_retention_days"]),
        opt("run_history_retention_days", DAYS, default=_DEFAULT["run_history_retention_days"]),
        opt("email_max_attempts", integer(1, 100), default=_DEFAULT["email_max_attempts"]),
        opt("email_expiry_days", DAYS, default=_DEFAULT["email_expiry_days"]),
        opt("max_backdated_days", DAYS, default=_DEFAULT["max_backdated_days"]),
        rules=(_parameters_id,),
    ),
    "transactions": schema(
        req("transaction_id", ID), req("store_id", ID), req("terminal_id", ID), req("receipt_id", ID),
        req("business_date", DATE), req("created_at", DATETIME),
        opt("customer_id", ID), opt("receipt_email", EMAIL),
        req("kind", one_of("Sale", "Return")),
        req("status", one_of("Completed", "Voided", "Training")),
        req("lines", list_of(
            record_of(schema(
                req("line_no", integer(1, 100_000)), req("product_id", ID), opt("variant_id", ID),
                req("qty", QTY), req("unit_price", PRICE),
                req("net_amount", LINE_AMOUNT), req("tax_amount", LINE_AMOUNT),
            )),
            min_items=1, unique="line_no",
        )),
        req("payments", list_of(
            record_of(schema(req("tender", one_of("cash", "card", "gift_card")), req("amount", MONEY))),
            max_items=100,
        )),
        rules=(_transaction_signs_and_totals,),
        key=("transaction_id",),
    ),
    "time-registrations": schema(
        req("registration_id", ID), req("worker_id", ID),
        req("clock_in", DATETIME), req("clock_out", DATETIME),
        rules=(_clock_out_after_clock_in,),
        read_only={"approved": "is read-only: an operator approves registrations "
                               "(POST /time-registrations/approve)"},
        key=("registration_id",),
    ),
    "status-messages": schema(
        req("session_id", ID), req("status", one_of(*SESSION_STATUSES)), req("at", DATETIME),
        opt("message", text(2000)), opt("rows_affected", integer(0, 10**12)),
        key=(),
    ),
    "inventory": schema(
        req("store_id", ID), req("product_id", ID), opt("variant_id", ID), req("qty", QTY),
        key=("store_id", "product_id", "variant_id"),
    ),
}

_VALIDATORS: dict[str, Validator] = {name: record_of(spec) for name, spec in _SCHEMAS.items()}


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def _validator(entity: str) -> Validator:
    try:
        return _VALIDATORS[entity]
    except KeyError:
        known = ", ".join(ENTITIES + OTHER_RECORDS)
        raise ValueError(f"unknown entity {entity!r}; expected one of: {known}") from None


def validate(entity: str, item: Any, path: str = "") -> tuple[dict | None, list[FieldError]]:
    """Validate one record; return ``(cleaned, [])`` or ``(None, errors)``.

    ``path`` prefixes every error path: with ``path="items[3]"`` a bad price is reported at
    ``items[3].price``. Raises ``ValueError`` for an unknown ``entity``.
    """
    errors: list[FieldError] = []
    cleaned = _validator(entity)(item, path, errors)
    if cleaned is _INVALID:
        return None, errors
    return cleaned, []


def validate_many(entity: str, items: list, path: str = "items") -> list[dict]:
    """Validate a batch; return the cleaned records or raise ``ValidationError`` with every error.

    Besides each record's own errors, a key (``id``, ``transaction_id``, ...) that repeats
    within the batch is an error at the later occurrence.
    """
    _validator(entity)  # an unknown entity is a ValueError, even for a malformed batch
    if not isinstance(items, list):
        raise ValidationError([FieldError(path, "must be a list")])
    key = _SCHEMAS[entity].key
    errors: list[FieldError] = []
    cleaned: list[dict] = []
    first_at: dict[tuple, int] = {}
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]"
        cleaned_item, item_errors = validate(entity, item, item_path)
        if cleaned_item is None:
            errors.extend(item_errors)
            continue
        cleaned.append(cleaned_item)
        if not key:
            continue
        value = tuple(cleaned_item[k] for k in key)
        if value in first_at:
            where = _join(item_path, key[0]) if len(key) == 1 else item_path
            shown = value[0] if len(key) == 1 else dict(zip(key, value, strict=True))
            message = f"duplicate {'/'.join(key)} {shown!r} (also at {path}[{first_at[value]}])"
            errors.append(FieldError(where, message))
        else:
            first_at[value] = i
    if errors:
        raise ValidationError(errors)
    return cleaned


def parameters_with_defaults(record: dict | None) -> dict:
    """The stored parameters record (or ``None``) completed with ``DEFAULT_PARAMETERS``.

    Absent or null values take the default; ``accounts`` is completed account by account.
    ``receipt_templates`` is taken as stored: languages it lacks fall back to the receipt
    module's built-in templates. Returns a fresh dict the caller may change.
    """
    merged = copy.deepcopy(DEFAULT_PARAMETERS)
    for name, value in (record or {}).items():
        if value is None:
            continue
        if name == "accounts" and isinstance(value, dict):
            merged["accounts"].update({k: v for k, v in value.items() if v is not None})
        else:
            merged[name] = copy.deepcopy(value)
    return merged
