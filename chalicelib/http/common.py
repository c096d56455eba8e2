"""What every HTTP route shares: the token authorizer, the operation table (each route declared
once with ``operation``: who may call it, its models, answer and errors; ``http/openapi.py``
publishes it), JSON in and out (decimals exact), the contract's error format, body limits, list
paging and the caller's identity."""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
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


# What Chalice answers itself in the function, before any route runs (a body that is not JSON, a
# method the route lacks): its ``{"Code", "Message"}`` becomes the contract's error document.
CHALICE_ERRORS = {
    "UnsupportedMediaType": ("unsupported_media_type", "; send Content-Type: application/json"),
    "MethodNotAllowedError": ("method_not_allowed", ""),
    "BadRequest": ("bad_request", ""),
    "InternalServerError": ("internal_error", ""),
}


@bp.middleware("http")
def contract_errors(event, get_response):
    response = get_response(event)
    body = response.body
    if isinstance(body, dict) and set(body) == {"Code", "Message"} and body["Code"] in CHALICE_ERRORS:
        code, hint = CHALICE_ERRORS[body["Code"]]
        response.body = error_body(code, body["Message"] + hint)
    return response


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
                        context={"role": record.role, "store_id": record.store_id or "", "label": record.label or ""})


AUTH = {"authorizer": token_authorizer}  # every route but /health: ``@bp.route(path, **AUTH)``


@dataclass(frozen=True)
class Principal:
    token_id: str
    role: str
    store_id: str | None
    label: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


def principal(request) -> Principal:
    auth = (request.context or {}).get("authorizer") or {}
    return Principal(auth.get("principalId", ""), auth.get("role", ""), auth.get("store_id") or None,
                     auth.get("label") or None)


def requester(request) -> dict:
    """Who asks for a run, as ``runtime.start`` records it: the token's id and its label."""
    who = principal(request)
    return {"requested_by": who.token_id, "requested_by_label": who.label}


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


def read_body(request, model: str, limit: int | None = None):
    """The JSON body parsed by the API model named ``model`` (``models/api.py``); numbers become
    ``Decimal`` (never float); no body reads as ``{}``."""
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
        except RecursionError:  # far deeper than MAX_JSON_DEPTH
            raise _too_deep() from None
        if nesting_depth(body) > MAX_JSON_DEPTH:
            raise _too_deep()
    return _parse(model, body)


def read_query(request, model: str):
    """The query string parsed by the API model named ``model``; an unknown parameter is refused."""
    params = dict(request.query_params or {})
    if params.get("cursor"):
        params["cursor"] = _unsealed_cursor(request, params["cursor"])
    try:
        return _parse(model, params)
    except ValidationError as exc:
        exc.errors = [FieldError(e.path, "unknown parameter") if e.message == "unknown field" else e
                      for e in exc.errors]
        raise


def _parse(model: str, data: dict):
    from chalicelib.models import api as models
    from chalicelib.models.base import parse

    return parse(getattr(models, model), data)


# No request model nests objects and lists this deep (a product's variants are at 4); deeper bodies
# are refused before any model walks them (Python's recursion limit would make them a 500).
MAX_JSON_DEPTH = 16


def nesting_depth(value: Any) -> int:
    """How many objects and lists ``value`` nests (0 for a scalar), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _too_deep() -> ApiError:
    return ApiError(400, "invalid_json", f"body is nested deeper than {MAX_JSON_DEPTH} levels")


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


def request_digest(request, body) -> str:
    """The digest of a request's path parameters and its parsed body (the route's model, in its
    JSON form with keys sorted), kept on the run that its ``Idempotency-Key`` names."""
    canonical = json.dumps({"path": request.uri_params or {}, "body": body.model_dump(mode="json")},
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_started(started, more: Callable[[], dict] | None = None) -> Response:
    """Answer a run started with ``runtime.start``: ``202 {"run"}`` when this request dispatched
    it (inline where no Lambda exists, so it has executed by now), ``200`` when an idempotency key
    found it. ``more()`` adds to the answer what the run may have changed (read after the dispatch)."""
    return json_response({"run": started.run.to_api(), **(more() if more else {})},
                         202 if started.dispatched else 200)


def encode_cursor(key: dict | None) -> str | None:
    """The next page's cursor: the start key, sealed to the list answering it (``_seal``)."""
    if not key:
        return None
    text = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
    return f"{text}.{_seal(bp.current_request, text)}"


def _seal(request, text: str) -> str:
    """A digest of the cursor with its list: the route, path parameters and filters (the page size
    aside). A start key only fits the table or index it came from; another list's cursor would reach
    DynamoDB as a start key it refuses (500), so it is refused first. A checksum, not a secret:
    it catches a cursor passed to the wrong list, not one forged on purpose."""
    filters = {k: v for k, v in (request.query_params or {}).items() if k not in ("cursor", "limit")}
    identity = json.dumps([request.path, request.uri_params or {}, filters, text], sort_keys=True)
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def _unsealed_cursor(request, cursor: str) -> str:
    text, _, seal = cursor.rpartition(".")
    if not text or not hmac.compare_digest(seal, _seal(request, text)):
        raise ValidationError([FieldError("cursor", "is not a cursor this list returned")])
    return text


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


@dataclass(frozen=True)
class Operation:
    """One route of the contract as ``http/openapi.py`` publishes it. Models are named, not
    imported, so that ``import app`` loads none of them."""

    method: str
    path: str
    handler: Callable
    auth: str | None  # "operator", "store" (its own store, or an operator) or None: public
    query: str | None = None  # a model of models/api.py
    body: str | None = None
    response: str | None = None  # None: a JSON object the route documents in its docstring
    status: int = 200
    errors: tuple[int, ...] = ()  # what the route itself answers beyond 400/401/403/413/415
    order: str | None = None  # a list route's order, stated in the contract
    records: str | None = None  # the record models of the body's list: "entities" or an upload kind
    idempotency_key: bool = False  # takes an Idempotency-Key header
    files: tuple[str, ...] = ()  # the answer is a file of one of these media types (the console's), not JSON


OPERATIONS: list[Operation] = []
"""Every route, in declaration order: the operation table the OpenAPI document is generated from."""


def operation(bp: Blueprint, method: str, path: str, *, auth: str | None = "operator", **declared) -> Callable:
    """Declare a route once: its method and path, who may call it (checked first), the models of
    its query string and body (parsed before the handler runs, which receives them as ``query``
    and ``body``), its answer and the errors it can give. Errors become the contract's error
    document (``api``).

    Example::

        @operation(bp, "GET", "/jobs/{job}/runs", query="RunHistoryQuery", response="RunList",
                   errors=(404,), order="newest first")
        def job_runs(job, query): ...
    """

    def declare(handler: Callable) -> Callable:
        op = Operation(method, path, handler, auth, **declared)
        OPERATIONS.append(op)

        @functools.wraps(handler)
        def view(**params):
            request = bp.current_request
            if auth == "operator":
                require_operator(request)
            elif auth == "store":
                require_store(request, params["store_id"])
            if op.query:
                params["query"] = read_query(request, op.query)
            if op.body:
                params["body"] = read_body(request, op.body)
            return handler(**params)

        bp.route(path, methods=[method], **(AUTH if auth else {}))(api(view))
        return handler

    return declare
