"""Which AWS failures leave a run resumable (transient) and which end it (no AWS needed)."""
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError, VerboseClientError

from chalicelib.storage.faults import (
    BatchWriteFailed,
    ConditionFailed,
    NotFound,
    TransactionFailed,
    describe,
    is_transient,
    translated,
)


def client_error(code: str, status: int = 400, operation: str = "PutItem") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} happened"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException", "Throttling",
                                  "RequestLimitExceeded", "TooManyRequestsException", "SlowDown",
                                  "InternalServerError", "ServiceUnavailable", "TransactionConflictException"])
def test_throttling_and_service_faults_are_transient(code):
    assert is_transient(client_error(code))
    assert is_transient(PutError("Failed to put item", client_error(code)))  # PynamoDB's wrapper


def test_any_5xx_is_transient_and_a_refusal_is_not():
    assert is_transient(client_error("SomethingNew", status=503))
    for code in ("AccessDeniedException", "ValidationException", "ConditionalCheckFailedException",
                 "ResourceNotFoundException", "MessageRejected"):
        assert not is_transient(client_error(code))
        assert not is_transient(UpdateError("Failed to update item", client_error(code)))


def cancelled(*codes):
    response = {"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                "CancellationReasons": [{"Code": c} for c in codes]}
    return TransactWriteError("Failed", VerboseClientError(response, "TransactWriteItems",
                                                           cancellation_reasons=[
                                                               None if c == "None" else _reason(c)
                                                               for c in codes]))


def test_a_cancelled_transaction_is_transient_only_when_nothing_but_throttling_or_conflicts_cancelled_it():
    assert is_transient(cancelled("None", "ThrottlingError"))
    assert is_transient(cancelled("TransactionConflict", "None"))
    assert not is_transient(cancelled("ConditionalCheckFailed", "ThrottlingError"))


def _reason(code):
    from pynamodb.exceptions import CancellationReason

    return CancellationReason(code=code)


def test_the_storage_layers_own_after_retries_failures_and_lost_connections_are_transient():
    assert is_transient(BatchWriteFailed("rows", [{"k": {"S": "1"}}], 8))
    assert is_transient(TransactionFailed("conflicted 8 times"))
    assert is_transient(EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"))
    assert not is_transient(ValueError("a bug"))
    assert not is_transient(KeyError("id"))


def test_describe_names_the_aws_code():
    assert describe(PutError("Failed to put item", client_error("ThrottlingException"))) == (
        "ThrottlingException: ThrottlingException happened")


def raised_inside_translated(exc):
    try:
        with translated():
            raise exc
    except Exception as translated_exc:  # noqa: BLE001
        return translated_exc


@pytest.mark.parametrize("refusal", [
    PutError("Failed to put item", client_error("ConditionalCheckFailedException")),
    UpdateError("Failed to update item", client_error("ConditionalCheckFailedException", operation="UpdateItem")),
    cancelled("None", "ConditionalCheckFailed"),
    client_error("PreconditionFailed", status=412, operation="GetObject"),  # S3: the ETag moved
])
def test_a_refused_condition_is_raised_as_condition_failed(refusal):
    raised = raised_inside_translated(refusal)
    assert isinstance(raised, ConditionFailed) and raised.__cause__ is refusal


@pytest.mark.parametrize("code", ["404", "NoSuchKey", "NotFound"])
def test_a_missing_object_is_raised_as_not_found(code):
    assert isinstance(raised_inside_translated(client_error(code, status=404, operation="HeadObject")), NotFound)


def test_every_other_error_passes_unchanged_so_a_transient_one_stays_transient():
    for exc in (client_error("ProvisionedThroughputExceededException"), cancelled("ThrottlingError"),
                client_error("AccessDeniedException"), ValueError("a bug")):
        assert raised_inside_translated(exc) is exc
    assert is_transient(raised_inside_translated(client_error("SlowDown", status=503)))
