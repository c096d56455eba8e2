"""Each error the domain and jobs layers raise is answered with the status it declares (no guessing
from class names)."""
import json

import pytest

from chalicelib.domain.errors import DomainError, FieldError, ValidationError
from chalicelib.domain.runs import JobFailed, JobNotRun, RunConflict, RunNotFound
from chalicelib.http.common import api
from chalicelib.jobs.distribution import SessionConflict, SessionNotFound
from chalicelib.jobs.post_statements import CannotPost
from chalicelib.jobs.runtime import DispatchDeferred
from chalicelib.jobs.transaction_upload import IssueConflict, IssueNotFound, StoreNotFound
from chalicelib.storage.account_activity import ResultConflict, ResultNotFound
from chalicelib.storage.pay import RegistrationConflict
from chalicelib.storage.runs import RunRecord


def answer(exc: Exception):
    @api
    def route():
        raise exc

    response = route()
    return response.status_code, json.loads(response.body)["error"], response.headers


@pytest.mark.parametrize(("error", "status", "code"), [
    (RunNotFound, 404, "not_found"), (RunConflict, 409, "conflict"),
    (SessionNotFound, 404, "not_found"), (SessionConflict, 409, "conflict"),
    (StoreNotFound, 404, "not_found"), (IssueNotFound, 404, "not_found"), (IssueConflict, 409, "conflict"),
    (ResultNotFound, 404, "not_found"), (ResultConflict, 409, "conflict"),
    (RegistrationConflict, 409, "conflict"),
    (JobFailed, 400, "invalid_request"), (JobNotRun, 400, "invalid_request"), (CannotPost, 400, "invalid_request"),
])
def test_each_error_is_answered_with_its_declared_status(error, status, code):
    assert answer(error("the message"))[:2] == (status, {"code": code, "message": "the message", "details": []})


def test_a_class_name_alone_decides_nothing():
    class WidgetNotFound(DomainError):
        pass

    class WidgetConflict(DomainError):
        http_status, code = 409, "conflict"

    assert answer(WidgetNotFound("gone"))[0] == 400  # named like a 404, declared nothing
    assert answer(WidgetConflict("busy"))[0] == 409


def test_invalid_input_names_its_fields():
    status, error, _ = answer(ValidationError([FieldError("items[0].price", "must be at least 0")]))
    assert status == 400 and error["code"] == "invalid_input"
    assert error["details"] == [{"field": "items[0].price", "message": "must be at least 0"}]


def test_a_deferred_hand_over_is_503_with_retry_after():
    from botocore.exceptions import ClientError

    throttled = ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}}, "Invoke")
    status, error, headers = answer(DispatchDeferred(RunRecord("R-1", job="j"), throttled))
    assert (status, error["code"], headers["Retry-After"]) == (503, "service_unavailable", "30")
    assert "run R-1 is recorded" in error["message"] and "TooManyRequestsException" in error["message"]
