"""The fuzz run's own check: every 4xx/5xx answer is the contract's error document."""
import json

from devstack.fuzz_checks import error_problems

JSON = "application/json"


def test_the_contracts_error_document_passes():
    body = {"error": {"code": "invalid_input", "message": "1 invalid field",
                      "details": [{"field": "items[3].price", "message": "must be at least 0"}]}}
    assert error_problems(400, JSON, json.dumps(body)) == []
    assert error_problems(404, "application/json; charset=utf-8",
                          '{"error": {"code": "not_found", "message": "no such route", "details": []}}') == []


def test_success_answers_are_left_to_the_schema_checks():
    assert error_problems(200, "text/html", "<html>") == []


def test_gateway_and_server_formats_are_findings():
    assert error_problems(401, JSON, '{"message": "Unauthorized"}')  # API Gateway's own
    assert error_problems(403, JSON, '{"Message": "User is not authorized to access this resource"}')
    assert error_problems(501, "text/html", "<h1>Error response</h1>")  # http.server's
    assert error_problems(500, JSON, "not json")
    assert error_problems(415, JSON, '{"Code": "UnsupportedMediaType", "Message": "x"}')  # Chalice's own


def test_each_missing_or_malformed_part_is_named():
    def problems(error: dict) -> list[str]:
        return error_problems(400, JSON, json.dumps({"error": error}))

    assert problems({"code": "x", "message": "y"}) == ["error.details is not a list"]
    assert problems({"code": "", "message": "y", "details": []}) == ["error.code is not a non-empty string"]
    assert problems({"code": "x", "message": "y", "details": [{"field": "a"}]}) == [
        'error.details[0] is not {"field", "message"} strings']
    assert problems({"code": "x", "message": "y", "details": [], "hint": "z"}) == [
        "error has keys the contract lacks: hint"]
    assert error_problems(400, JSON, json.dumps({"error": {"code": "x", "message": "y", "details": []},
                                                  "extra": 1}))


def test_a_frameworks_own_format_is_told_apart():
    from devstack.fuzz_checks import own_format

    assert own_format('{"message": "Unauthorized"}') == "gateway"
    assert own_format('{"Message": "User is not authorized to access this resource"}') == "gateway"
    assert own_format('{"Code": "MethodNotAllowedError", "Message": "Unsupported method: TRACE"}') == "chalice"
    assert own_format('{"error": {"code": "x"}}') is None
    assert own_format("<html>") is None
