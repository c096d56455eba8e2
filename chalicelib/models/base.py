"""The building blocks of every typed model (pydantic v2): a strict base class, the scalar types
the contract uses (ids, exact decimals, dates, zoned date-times, codes) and ``parse``, which turns
pydantic's errors into the contract's field errors (``items[3].price: must be at least 0``).

Normal forms (what a validated value looks like):

- ids are strings of 1–64 ASCII letters, digits, ``-``, ``_``, ``.``;
- dates stay ``YYYY-MM-DD`` strings (real calendar dates only);
- date-times must carry a zone and are normalised to UTC with millisecond precision,
  ``YYYY-MM-DDTHH:MM:SS.mmmZ``: fixed width, so the strings sort in time order;
- decimals arrive as JSON numbers (the HTTP layer parses them with ``parse_float=Decimal``, never
  through a binary float: a POS sends ``12.50``), as JSON strings (``"12.50"``) or as ``int`` and
  leave as ``Decimal``; a Python ``float`` is refused because it cannot hold money exactly.

Every scalar checks its value in one plain validator with the contract's wording, and declares its
JSON Schema for the published OpenAPI document.

Example::

    class Price(StrictModel):
        product_id: Id
        price: Decimal2Min0

    record = parse(Price, {"product_id": "P1", "price": "12.50"}, path="items[3]")
"""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
from pydantic import BaseModel, ConfigDict, PlainValidator, TypeAdapter, WithJsonSchema

from chalicelib.domain.errors import FieldError, ValidationError

__all__ = [
    "BOOLEAN", "COUNTRY", "CURRENCY", "DATE", "DATETIME", "EMAIL", "ID", "LANGUAGE", "TIME_ZONE",
    "StrictModel", "choice", "decimal", "integer", "matching", "parse", "parse_datetime", "text",
]

M = TypeVar("M")


class StrictModel(BaseModel):
    """Unknown fields are refused; values are validated as declared, never coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def _scalar(check, schema: dict) -> Any:
    """An ``Annotated`` marker: ``check(value)`` returns the normal form or raises ``ValueError``
    with the contract's message; ``schema`` is its JSON Schema."""
    return (PlainValidator(check), WithJsonSchema(schema))


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def text(max_len: int = 200) -> Any:
    """Free text, not blank."""

    def check(value: Any) -> str:
        s = _string(value)
        if not s.strip():
            raise ValueError("must not be blank")
        if len(s) > max_len:
            raise ValueError(f"must be at most {max_len} characters")
        return s

    return Annotated[str, *_scalar(check, {"type": "string", "minLength": 1, "maxLength": max_len})]


def matching(pattern: str, description: str) -> Any:
    regex = re.compile(pattern)

    def check(value: Any) -> str:
        s = _string(value)
        if not regex.fullmatch(s):
            raise ValueError(f"must be {description}")
        return s

    return Annotated[str, *_scalar(check, {"type": "string", "pattern": f"^{pattern}$",
                                           "description": description})]


def choice(*allowed: str) -> Any:
    """One of a fixed set of words (an enum of the contract)."""

    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise ValueError(f"must be one of: {', '.join(allowed)}")
        return value

    return Annotated[str, *_scalar(check, {"type": "string", "enum": list(allowed)})]


def _check_boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be a boolean (true or false)")
    return value


def integer(minimum: int, maximum: int) -> Any:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer")
        if not minimum <= value <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}")
        return value

    return Annotated[int, *_scalar(check, {"type": "integer", "minimum": minimum, "maximum": maximum})]


_DECIMAL_TEXT = re.compile(r"[+-]?\d+(\.\d+)?")
_MAX_INTEGER_DIGITS = 18


def decimal(places: int, minimum: Decimal | int | None = None) -> Any:
    """A decimal with at most ``places`` decimals, from a JSON number or string, ``int`` or
    ``Decimal``; more decimals are accepted only when they are zeros."""
    quantum = Decimal(1).scaleb(-places)

    def check(value: Any) -> Decimal:
        if isinstance(value, float):
            raise ValueError('must not be a float; send a decimal string such as "12.30"')
        if isinstance(value, bool):
            raise ValueError("must be a number")
        if isinstance(value, str):
            if not _DECIMAL_TEXT.fullmatch(value):
                raise ValueError('must be a decimal number such as "12.30"')
        elif not isinstance(value, int | Decimal):
            raise ValueError("must be a number")
        d = Decimal(value)
        if not d.is_finite():
            raise ValueError("must be a finite number")
        if d and d.adjusted() >= _MAX_INTEGER_DIGITS:
            raise ValueError("is too large")
        exponent = d.as_tuple().exponent
        if exponent < -places:
            if d != d.quantize(quantum):
                raise ValueError(f"must have at most {places} decimal places")
            d = d.quantize(quantum)
        elif exponent > 0:  # 1E+2 from JSON: keep plain digits
            d = d.quantize(Decimal(1))
        if d.is_zero():
            d = abs(d)  # no -0.00
        if minimum is not None and d < minimum:
            raise ValueError(f"must be at least {minimum}")
        return d

    bound = {} if minimum is None else {"minimum": int(minimum)}
    schema = {"description": f"an exact decimal with at most {places} decimal places, as a JSON "
                             'number or string ("12.50")',
              "oneOf": [{"type": "number", **bound},
                        {"type": "string", "pattern": r"^[+-]?\d+(\.\d+)?$"}]}
    return Annotated[Decimal, *_scalar(check, schema)]


_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")


def _check_date(value: Any) -> str:
    if not isinstance(value, str) or not _DATE_TEXT.fullmatch(value):
        raise ValueError("must be a date YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a real calendar date") from None
    return value


_DATETIME_TEXT = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?")
_DATETIME_EXAMPLE = "an ISO 8601 date-time with zone, e.g. 2026-11-03T09:15:00Z or 2026-11-03T10:15:00+01:00"


def _check_datetime(value: Any) -> str:
    match = _DATETIME_TEXT.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"must be {_DATETIME_EXAMPLE}")
    stamp, fraction, zone = match.groups()
    if zone is None:
        raise ValueError(f"must include a time zone (Z or +hh:mm): {_DATETIME_EXAMPLE}")
    try:
        parsed = datetime.fromisoformat(stamp + ("+00:00" if zone == "Z" else zone))
        micro = int((fraction or "").ljust(6, "0")[:6])
        utc = (parsed + timedelta(microseconds=micro)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"is not a valid date-time: {_DATETIME_EXAMPLE}") from None
    return utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_datetime(value: str) -> datetime:
    """The aware ``datetime`` of a validated date-time string."""
    return datetime.fromisoformat(value)


def _check_time_zone(value: Any) -> str:
    s = _string(value)
    if s != "UTC" and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){1,2}", s):
        raise ValueError("must be an IANA time zone such as America/New_York or UTC")
    try:
        ZoneInfo(s)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {s!r}") from None
    return s


ID_PATTERN = r"[A-Za-z0-9._-]{1,64}"
ID_DESCRIPTION = "1-64 characters of letters, digits, '-', '_', '.'"
ID = matching(ID_PATTERN, ID_DESCRIPTION)
BOOLEAN = Annotated[bool, *_scalar(_check_boolean, {"type": "boolean"})]
DATE = Annotated[str, *_scalar(_check_date, {"type": "string", "format": "date"})]
DATETIME = Annotated[str, *_scalar(_check_datetime, {"type": "string", "format": "date-time"})]
EMAIL = matching(r"(?=.{3,254}$)[^@\s]+@[^@\s.]+(\.[^@\s.]+)+", "an email address such as name@example.com")
LANGUAGE = matching(r"[a-z]{2}(-[a-z]{2})?", "a lowercase language code such as en or en-us")
COUNTRY = matching(r"[A-Z]{2,3}", "an uppercase ISO 3166-1 alpha-2 or alpha-3 country code such as US or USA")
CURRENCY = matching(r"[A-Z]{3}", "an uppercase ISO 4217 currency code such as USD or CAD")
TIME_ZONE = Annotated[str, *_scalar(_check_time_zone, {
    "type": "string", "description": "an IANA time zone such as America/New_York or UTC"})]


# ---------------------------------------------------------------------------
# Errors in the contract's words
# ---------------------------------------------------------------------------

_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "unknown field",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "too_short": None,  # pydantic's own text names the bound; kept
    "too_long": None,
}


def _path(prefix: str, loc: tuple) -> str:
    """``items[3].price``; a map's bad key is reported at the key (``receipt_templates.DE``)."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and part != "[key]" and not part.startswith(("function-", "tagged-union")):
            path = f"{path}.{part}" if path else part
    return path


def _message(error: dict, words: dict | None = None) -> str:
    message = (words or {}).get(error["type"]) or _MESSAGES.get(error["type"])
    if message:
        return message
    text_ = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if text_.startswith(prefix):
            return text_[len(prefix):]
    return text_[:1].lower() + text_[1:]


def field_errors(exc: pydantic.ValidationError, path: str = "", words: dict | None = None) -> list[FieldError]:
    """pydantic's errors as the contract's field errors, in input order, one per field; ``words``
    (pydantic error type -> message) overrides the contract's usual wording."""
    seen, errors = set(), []
    for error in exc.errors(include_url=False, include_input=False):
        item = FieldError(_path(path, error["loc"]), _message(error, words))
        if item not in seen:
            seen.add(item)
            errors.append(item)
    return errors


def parse(model: type[M] | TypeAdapter, data: Any, path: str = "", message: str = "invalid input",
          words: dict | None = None) -> M:
    """``data`` validated by ``model`` (a model class or a ``TypeAdapter``); raises the domain's
    ``ValidationError`` naming every offending field (prefixed by ``path``)."""
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(data)
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(field_errors(exc, path, words), message) from None
