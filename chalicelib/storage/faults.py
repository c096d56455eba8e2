"""Which AWS failures are transient: worth the same work again in a minute, not a final answer.

The SDK already retries each call (standard mode, 5 attempts); what reaches the code is a fault
that outlasted those retries. Throttling, a service's 5xx, a conflicting transaction and a lost
connection pass with time, so a run that meets one is resumed later instead of ending ``Error``
(``jobs/runtime.py``). Everything else — a bug, a refused condition, an access denial — is final.

The translation lives here, once, so no other module compares AWS error codes: botocore's
``ClientError`` (boto3 and PynamoDB's own calls), PynamoDB's wrappers of it (``PutError``,
``TransactWriteError`` … with ``cause``), and the storage layer's own after-retries failures
(``BatchWriteFailed``, ``TransactionFailed``). Inside ``translated()`` a refused condition
raises ``ConditionFailed`` and a missing item or object ``NotFound``: named exceptions the
callers catch instead of testing codes.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
from pynamodb.exceptions import PynamoDBException, TransactWriteError


class BatchWriteFailed(Exception):
    """Items DynamoDB left unprocessed after every retry (``storage.base``); ``keys`` lists them."""

    def __init__(self, table: str, keys: list[dict], attempts: int):
        super().__init__(f"{len(keys)} item(s) of {table} not written after {attempts} attempts")
        self.table = table
        self.keys = keys


class TransactionFailed(Exception):
    """A transaction still conflicting with concurrent writes after every retry (``storage.transact``)."""


class StorageRefusal(Exception):
    """AWS answered, and the answer is final: the same request will not succeed later."""


class ConditionFailed(StorageRefusal):
    """A write refused because its condition failed: someone changed the item (or the object) first."""


class NotFound(StorageRefusal):
    """The item or object the request names does not exist."""


# S3 answers a conditional read or write whose ETag no longer matches with this code.
_S3_CONDITION_CODES = frozenset({"PreconditionFailed"})
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})

TRANSIENT_CODES = frozenset({
    # throttling
    "ProvisionedThroughputExceededException", "ThrottlingException", "Throttling", "ThrottledException",
    "RequestLimitExceeded", "TooManyRequestsException", "RequestThrottled", "RequestThrottledException",
    "SlowDown", "LimitExceededException", "BandwidthLimitExceeded", "EC2ThrottledException",
    # the service failed or was busy (5xx)
    "InternalServerError", "InternalError", "InternalFailure", "ServiceUnavailable",
    "ServiceUnavailableException", "ServiceException", "RequestTimeout", "RequestTimeoutException",
    # DynamoDB transactions that met another one
    "TransactionConflictException", "TransactionInProgressException",
})
def condition_failed(exc: BaseException) -> bool:
    """A write refused because its condition failed (someone changed the item first): a single-item
    write's ``ConditionalCheckFailedException`` or a transaction cancelled for a failed condition."""
    if isinstance(exc, TransactWriteError):
        return any(r and r.code == "ConditionalCheckFailed" for r in exc.cancellation_reasons or [])
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def _code(exc: BaseException) -> str | None:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code")
    if isinstance(exc, PynamoDBException):
        return exc.cause_response_code
    return None


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Raise ``ConditionFailed`` or ``NotFound`` (from the original) for the AWS refusals they
    name; every other error passes unchanged (``is_transient`` still sees it whole)."""
    try:
        yield
    except StorageRefusal:
        raise
    except (ClientError, PynamoDBException) as exc:
        if condition_failed(exc) or _code(exc) in _S3_CONDITION_CODES:
            raise ConditionFailed(describe(exc)) from exc
        if _code(exc) in _NOT_FOUND_CODES:
            raise NotFound(describe(exc)) from exc
        raise


# Cancellation reasons of a TransactWriteItems call that pass with time (a condition never does).
TRANSIENT_REASONS = frozenset({"ThrottlingError", "TransactionConflict", "ProvisionedThroughputExceeded"})


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) is an AWS fault that passes with time."""
    seen = 0
    while exc is not None and seen < 5:
        seen += 1
        if isinstance(exc, (BatchWriteFailed, TransactionFailed, ConnectionError, HTTPClientError)):
            return True
        if isinstance(exc, TransactWriteError) and exc.cancellation_reasons:
            codes = {r.code for r in exc.cancellation_reasons if r is not None and r.code != "None"}
            return bool(codes) and codes <= TRANSIENT_REASONS
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            return error.get("Code") in TRANSIENT_CODES or int(status) >= 500
        if isinstance(exc, PynamoDBException):
            if exc.cause_response_code in TRANSIENT_CODES:
                return True
            exc = exc.cause
            continue
        exc = exc.__cause__
    return False


def describe(exc: BaseException) -> str:
    """A short reason for the run's message: the AWS error code and text when there is one."""
    inner = exc
    while isinstance(inner, PynamoDBException) and inner.cause is not None:
        inner = inner.cause
    if isinstance(inner, ClientError):
        error = inner.response.get("Error", {})
        return f"{error.get('Code', type(inner).__name__)}: {error.get('Message', '')}".rstrip(": ")
    return f"{type(inner).__name__}: {inner}"
