"""What every HTTP route shares: the token authorizer, JSON in and out (decimals exact), the
contract's error format, body limits, list paging and the caller's identity."""
from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from chalice import AuthResponse, Blueprint, Response

from chalicelib import settings
from chalicelib.domain.errors import DomainError, FieldError, ValidationError
from chalicelib.storage.base import dumps

bp = Blueprint(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: list | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or []


class NotFound(ApiError):
    def __init__(self, message: str):
        super().__init__(404, "not_found", message)


class Conflict(ApiError):
    def __init__(self, message: str):
        super().__init__(409, "conflict", message)


class Forbidden(ApiError):
    def __init__(self, message: str = "this token may not use this resource"):
        super().__init__(403, "forbidden", message)


def error_body(code: str, message: str, details: list | None = None) -> dict:
    """The contract's error document."""
    return {"error": {"code": code, "message": message, "details": details or []}}


# What API Gateway answers itself, before any function runs, in the contract's format (deploy/chalice_tf.py).
GATEWAY_ERRORS = {
    "UNAUTHORIZED": (401, error_body("unauthorized", "missing, unknown or revoked token")),
    "ACCESS_DENIED": (403, error_body("forbidden", "this token may not use this resource")),
    "MISSING_AUTHENTICATION_TOKEN": (404, error_body("not_found", "no such route")),
    "REQUEST_TOO_LARGE": (413, error_body("payload_too_large", "body exceeds the API Gateway limit")),
}


def _unauthorized():
    """401 for a missing, unknown or revoked token.

    Deployed, API Gateway turns an authorizer's ``Unauthorized`` exception into 401; Chalice's
    local gateway (test client, ``chalice local``) needs its own exception type for the same.
    """
    try:
        from chalice.local import NotAuthorizedError
    except ImportError:
        return Exception("Unauthorized")
    body = json.dumps(GATEWAY_ERRORS["UNAUTHORIZED"][1]).encode()
    return NotAuthorizedError({"x-amzn-ErrorType": "UnauthorizedException"}, body)


@bp.authorizer(ttl_seconds=60)
def token_authorizer(auth_request):
    """Bearer tokens: operators reach every route, a store token only ``/stores/<its id>/...``."""
    from chalicelib.auth import verify

    header = auth_request.token or ""
    scheme, _, token = header.partition(" ")
    record = verify(token.strip()) if scheme.lower() == "bearer" else None
    if record is None:
        raise _unauthorized()
    if record.role == "operator":
        routes = ["*"]
    else:
        routes = [f"/stores/{record.store_id}", f"/stores/{record.store_id}/*"]
    return AuthResponse(routes=routes, principal_id=record.token_id,
                        context={"role": record.role, "store_id": record.store_id or ""})


AUTH = {"authorizer": token_authorizer}  # every route but /health: ``@bp.route(path, **AUTH)``


@dataclass(frozen=True)
class Principal:
    token_id: str
    role: str
    store_id: str | None

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


def principal(request) -> Principal:
    auth = (request.context or {}).get("authorizer") or {}
    return Principal(auth.get("principalId", ""), auth.get("role", ""), auth.get("store_id") or None)


def require_operator(request) -> Principal:
    who = principal(request)
    if not who.is_operator:
        raise Forbidden("an operator token is required")
    return who


def require_store(request, store_id: str) -> Principal:
    """Operators reach every store; a store token only its own (checked again behind the policy)."""
    who = principal(request)
    if not who.is_operator and who.store_id != store_id:
        raise Forbidden(f"this token may not act for store {store_id}")
    return who


def json_response(body: Any, status: int = 200) -> Response:
    return Response(body=dumps(body), status_code=status, headers={"Content-Type": "application/json"})


def error_response(status: int, code: str, message: str, details: list | None = None) -> Response:
    return json_response(error_body(code, message, details), status)


def read_body(request, allowed: set[str], required: set[str] = frozenset(), limit: int | None = None) -> dict:
    """The JSON object body; numbers become ``Decimal`` (never float); unknown keys rejected."""
    raw = request.raw_body or b""
    if len(raw) > (limit or settings.max_body_bytes()):
        raise ApiError(413, "payload_too_large", f"body exceeds {limit or settings.max_body_bytes()} bytes")
    if not raw.strip():
        body = {}
    else:
        try:
            body = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
        except ValueError as exc:
            raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValidationError([FieldError("", "body must be a JSON object")])
    errors = [FieldError(k, "unknown field") for k in body if k not in allowed]
    errors += [FieldError(k, "is required") for k in sorted(required) if k not in body]
    if errors:
        raise ValidationError(errors)
    return body


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number")


def idempotency_key(request) -> str | None:
    """The run idempotency key of an ``Idempotency-Key`` header (a repeated request finds its run)."""
    key = (request.headers or {}).get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= 128:
        raise ValidationError([FieldError("Idempotency-Key", "must be 1 to 128 characters")])
    return f"http#{key}"


def run_started(started, more: Callable[[], dict] | None = None) -> Response:
    """Answer a run started with ``runtime.start``: ``202 {"run"}`` when this request dispatched
    it (inline where no Lambda exists, so it has executed by now), ``200`` when an idempotency key
    found it. ``more()`` adds to the answer what the run may have changed (read after the dispatch)."""
    return json_response({"run": started.run.to_api(), **(more() if more else {})},
                         202 if started.dispatched else 200)


def query_param(request, name: str, default: str | None = None) -> str | None:
    return (request.query_params or {}).get(name, default)


def limit_param(request, default: int = 50, maximum: int = 500) -> int:
    raw = query_param(request, "limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ValidationError([FieldError("limit", f"must be an integer from 1 to {maximum}")])
    return int(raw)


def encode_cursor(key: dict | None) -> str | None:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode() if key else None


def decode_cursor(request) -> dict | None:
    raw = query_param(request, "cursor")
    if not raw:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except ValueError:
        raise ValidationError([FieldError("cursor", "is not a cursor this API returned")]) from None
    if not isinstance(value, dict):
        raise ValidationError([FieldError("cursor", "is not a cursor this API returned")])
    return value


def list_response(plural: str, items: list, cursor_key: dict | None) -> Response:
    return json_response({plural: items, "cursor": encode_cursor(cursor_key)})


def query_response(plural: str, results, limit: int) -> Response:
    """A list of the ``to_api()`` of a PynamoDB query run with ``limit``; a cursor when the page is full."""
    items = [item.to_api() for item in results]
    return list_response(plural, items, results.last_evaluated_key if len(items) == limit else None)


def api(fn: Callable) -> Callable:
    """Translate domain errors into the contract's error format; log, never leak, the unexpected."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            result = fn(*args, **kwargs)
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.message, exc.details)
        except ValidationError as exc:
            return error_response(exc.http_status, exc.code, exc.message, [e.to_dict() for e in exc.errors])
        except DomainError as exc:
            response = error_response(exc.http_status, exc.code, str(exc))
            if getattr(exc, "retry_after_seconds", None):
                response.headers["Retry-After"] = str(exc.retry_after_seconds)
            return response
        except Exception:  # noqa: BLE001
            from chalicelib.observability import logger

            logger().exception("unhandled error in route")
            return error_response(500, "internal_error", "internal error; see the logs")
        return result if isinstance(result, Response) else json_response(result)

    return wrapper

