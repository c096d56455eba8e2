"""The published contract: the API's OpenAPI 3.1 document, generated from the operation table
(``http/common.OPERATIONS``: each route's method, path, who may call it, its models, answer and
errors) and the JSON Schemas of the models (``models/api.py``, and the record models of
``models/records.py`` / ``models/uploads.py`` for the bodies that carry records).

``GET /openapi.json`` serves it; ``docs/openapi.json`` is the committed copy, written by
``make openapi`` (``python -m chalicelib.http.openapi docs/openapi.json``); a test fails when the
copy differs from what the code generates.
"""
from __future__ import annotations

import functools
import json
import re
import sys
from typing import Any

from chalicelib.http.common import OPERATIONS, Operation
from chalicelib.jobs.runtime import DispatchDeferred

TITLE = "retail-sync API"
VERSION = "1.0.0"
SCHEMAS = "#/components/schemas/"

ERRORS = {
    400: "Invalid input: `details` name each offending field (`invalid_input`), or a body that is not "
         "JSON (`invalid_json`).",
    401: "Missing, unknown or revoked token (`unauthorized`).",
    403: "This token may not use this resource: an operator route, or another store's (`forbidden`).",
    404: "No such resource (`not_found`).",
    409: "The resource's state does not allow it (`conflict`).",
    413: "The body exceeds the size limit (`payload_too_large`).",
    415: "The body is not sent as `Content-Type: application/json`.",
    422: "The `Idempotency-Key` was used before with a different body.",
    503: "The run is recorded but could not be started now: send the same request again, with the same "
         "`Idempotency-Key`, after `Retry-After` seconds (`service_unavailable`).",
}
RUN_STARTS = {"RunAnswer", "RunAndStagingJob"}
"""The answers of ``common.run_started``: 202 for a run started, 200 for the one a repeated request
(the same Idempotency-Key, content or session) found."""
PATH_PARAMETERS = {
    "job": "a job name (GET /jobs lists them)",
    "entity": "a master-data entity",
    "record_id": "the record's id",
    "run_id": "a run's id",
    "store_id": "a store's id; a store token reaches only its own",
    "asset": "a file of the console: one of its scripts (*.js) or its style sheet (console.css)",
}


@functools.cache
def document() -> dict:
    """The OpenAPI document of every route registered (import ``app`` first)."""
    from pydantic.json_schema import models_json_schema

    from chalicelib.models import api as models
    from chalicelib.models.records import ENTITY_MODELS
    from chalicelib.models.uploads import UPLOAD_MODELS

    named = {op.response for op in OPERATIONS if op.response} | {op.body for op in OPERATIONS if op.body}
    classes = {getattr(models, name) for name in named} | {models.ErrorDocument}
    classes |= set(ENTITY_MODELS.values()) | set(UPLOAD_MODELS.values())
    _, defs = models_json_schema([(model, "validation") for model in sorted(classes, key=lambda m: m.__name__)],
                                 ref_template=SCHEMAS + "{model}")
    schemas = {name: _tidy(schema) for name, schema in sorted(defs["$defs"].items())}
    record_models = {"entities": ENTITY_MODELS, **{kind: {kind: model} for kind, model in UPLOAD_MODELS.items()}}

    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, models, record_models, schemas)
    statuses = sorted({status for op in OPERATIONS for status in _errors(op)})
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": _INFO},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "responses": {f"Error{status}": _error(status) for status in statuses},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "an API token (python -m chalicelib tokens create)"}},
        },
    }


_INFO = ("The HTTP API of retail-sync. JSON in and out; decimals are exact (send them as JSON numbers or "
         'strings such as "12.50"). Every error answers `{"error": {"code", "message", "details": '
         '[{"field", "message"}]}}`. A list answers `{"<plural>": [...], "cursor": <the next page\'s or '
         "null>}`; pass the cursor back as `?cursor=` for the next page. Unknown fields and parameters "
         "are refused.")


def _operation(op: Operation, models, record_models: dict, schemas: dict) -> dict:
    description = " ".join((op.handler.__doc__ or op.handler.__name__).split())
    if op.order:
        description += f" List order: {op.order}."
    spec: dict[str, Any] = {
        "operationId": op.handler.__name__,
        "tags": [op.handler.__module__.rsplit(".", 1)[-1]],
        "summary": re.split(r"(?<=[.;])\s|\s\(", description, maxsplit=1)[0].rstrip(".;"),
        "description": description,
        "security": [{"bearer": []}] if op.auth else [],
    }
    parameters = [_path_parameter(name, record_models) for name in re.findall(r"{(\w+)}", op.path)]
    if op.query:
        parameters += _query_parameters(getattr(models, op.query))
    if op.idempotency_key:
        parameters.append({"name": "Idempotency-Key", "in": "header", "required": False,
                           "description": "a repeated request with the same key finds the run the first started",
                           "schema": {"type": "string", "minLength": 1, "maxLength": 128}})
    if parameters:
        spec["parameters"] = parameters
    if op.body:
        spec["requestBody"] = _request_body(op, record_models, schemas)
    errors = {str(status): {"$ref": f"#/components/responses/Error{status}"} for status in _errors(op)}
    answers = {str(op.status): _answer(op), **errors}
    if op.response in RUN_STARTS:
        answers["200"] = {**_answer(op), "description": "OK: the run a repeated request found (not started again)"}
    spec["responses"] = dict(sorted(answers.items()))
    return spec


def _path_parameter(name: str, record_models: dict) -> dict:
    schema: dict[str, Any] = {"type": "string"}
    # No enum of job names: the job table is the code's (GET /jobs answers it), and tests add jobs to it.
    if name == "entity":
        schema["enum"] = list(record_models["entities"])
    return {"name": name, "in": "path", "required": True, "schema": schema,
            **({"description": PATH_PARAMETERS[name]} if name in PATH_PARAMETERS else {})}


def _query_parameters(model) -> list[dict]:
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    parameters = []
    for name, field in schema["properties"].items():
        field = _tidy(field)
        field.pop("title", None)
        description = field.pop("description", None)
        parameters.append({"name": name, "in": "query", "required": name in required, "schema": field,
                           **({"description": description} if description else {})})
    return parameters


def _request_body(op: Operation, record_models: dict, schemas: dict) -> dict:
    schema: dict[str, Any] = {"$ref": SCHEMAS + op.body}
    if op.records:  # the body's list carries records of the route's models
        body = json.loads(json.dumps(schemas[op.body]))
        (name, prop), = body["properties"].items()
        refs = [{"$ref": SCHEMAS + model.__name__} for model in dict.fromkeys(record_models[op.records].values())]
        prop["items"] = refs[0] if len(refs) == 1 else {"anyOf": refs}
        schema = body
    required = bool(schemas[op.body].get("required"))
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _answer(op: Operation) -> dict:
    description = {200: "OK", 202: "Accepted: the run, recorded and started"}.get(op.status, "OK")
    if op.files:
        return {"description": description, "content": {kind: {"schema": {"type": "string"}} for kind in op.files}}
    schema = {"$ref": SCHEMAS + op.response} if op.response else {"type": "object"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(op: Operation) -> list[int]:
    statuses = set(op.errors)
    if op.query or op.body:
        statuses.add(400)
    if op.auth:
        statuses |= {401, 403}
    if op.body:
        statuses |= {413, 415}
    if op.idempotency_key:
        statuses.add(422)
    return sorted(statuses)


def _error(status: int) -> dict:
    answer: dict[str, Any] = {"description": ERRORS[status],
                              "content": {"application/json": {"schema": {"$ref": SCHEMAS + "ErrorDocument"}}}}
    if status == 503:
        answer["headers"] = {"Retry-After": {"description": f"seconds to wait ({DispatchDeferred.retry_after_seconds})",
                                             "schema": {"type": "integer"}}}
    return answer


def _tidy(schema: Any) -> Any:
    """Drop ``"default": null`` from schemas that do not admit null (an absent optional field)."""
    if isinstance(schema, list):
        return [_tidy(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    tidy = {key: _tidy(value) for key, value in schema.items()}
    nullable = any(option.get("type") == "null" for option in tidy.get("anyOf", ()))
    if "default" in tidy and tidy["default"] is None and not nullable:
        del tidy["default"]
    return tidy


def text() -> str:
    """The document as committed (two-space indent, paths sorted)."""
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> None:
    import app  # noqa: F401 - registers every route's operation

    if argv:
        with open(argv[0], "w", encoding="utf-8") as out:
            out.write(text())
    else:
        sys.stdout.write(text())


if __name__ == "__main__":
    main(sys.argv[1:])
