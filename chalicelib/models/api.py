"""The HTTP API's own documents as typed models: query strings, request bodies that are not
record lists (their records are ``models.records``/``models.uploads``), and the responses.

Routes name these models in their operation declaration (``http/common.operation``); the route
layer parses each request with them before the handler runs, and ``http/openapi.py`` publishes
their JSON Schemas. Loaded on a route's first request, never by ``import app`` or the authorizer.

Query strings arrive as text: ``limit`` accepts digits, a ``cursor`` is the opaque text a list
answered (decoded here into the key of the next page). An unknown parameter or filter value is
refused (400 naming it).
"""
from __future__ import annotations

import base64
import binascii
import json
from datetime import date
from typing import Annotated, Any

from pydantic import Field, PlainValidator, WithJsonSchema, create_model, field_validator, model_validator
from pydantic import ValidationError as PydanticError
from pydantic_core import InitErrorDetails, PydanticCustomError

from chalicelib.domain import alerts
from chalicelib.domain.pay import REGISTRATION_STATUSES
from chalicelib.domain.runs import RunStatus
from chalicelib.domain.sessions import SessionStatus
from chalicelib.models.base import BOOLEAN, DATE, DATETIME, ID, StrictModel, choice
from chalicelib.models.params import COPY_ROWS, STAGING_ENTITIES

RUN_STATUSES = tuple(status.value for status in RunStatus)
RUN_TRIGGERS = ("manual", "schedule", "event")  # how a run was started (runtime.start/submit's trigger)
# Spelled out because its owner is a storage module (PynamoDB), which a model may not import;
# tests/unit/test_api_models.py keeps it equal to its owner's.
ISSUE_KINDS = ("conflict", "rejected")  # storage/upload_issues.CONFLICT, REJECTED
SESSION_STATUSES = tuple(status.value for status in SessionStatus)

MAX_DATA_ITEMS = 1000
MAX_TRANSACTIONS = 500
MAX_REGISTRATIONS = 1000
MAX_MESSAGES = 1000
MAX_APPROVAL_WORKERS = 100
MAX_APPROVAL_STORES = 50  # store_ids: a district or region a request (each day read once for all of them)
MAX_STORES_DAYS = 14  # store_ids: a (two-)week's registrations of 50 stores, tens of thousands at most
MAX_BATCH_DAYS = 62  # worker_ids / store_id / the registration list: about two months
MAX_WORKER_DAYS = 366  # one worker's approval


def errors_at(*errors: tuple[tuple, str]) -> PydanticError:
    """Errors of a rule across fields, each on the field it names (``(("to",), "must not be ...")``);
    raised from a model validator, pydantic reports them at those locations."""
    return PydanticError.from_exception_data("request", [
        InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=None)
        for loc, message in errors])


# ---------------------------------------------------------------------------
# Query string scalars
# ---------------------------------------------------------------------------

def page_size(maximum: int) -> Any:
    """``limit``: how many items a page holds, from the query string's digits."""

    def check(value: Any) -> int:
        text = value if isinstance(value, str) else None
        if text is None or not text.isdigit() or not 1 <= int(text) <= maximum:
            raise ValueError(f"must be an integer from 1 to {maximum}")
        return int(text)

    return Annotated[int, PlainValidator(check),
                     WithJsonSchema({"type": "integer", "minimum": 1, "maximum": maximum})]


_CURSOR_SCHEMA = {"type": "string", "description": "the cursor of the previous page, as the list answered it"}
_NOT_A_CURSOR = "is not a cursor this API returned"


def _decode_cursor(value: Any) -> dict | None:
    if not isinstance(value, str):
        raise ValueError(_NOT_A_CURSOR)
    if not value:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(value.encode()))
    except (ValueError, binascii.Error):
        raise ValueError(_NOT_A_CURSOR) from None
    if not isinstance(key, dict):
        raise ValueError(_NOT_A_CURSOR)
    return key


def _after_cursor(value: Any) -> tuple[str, str, str] | None:
    key = _decode_cursor(value)
    if key is None:
        return None
    after = key.get("after")
    if not (isinstance(after, list) and len(after) == 3 and all(isinstance(part, str) for part in after)):
        raise ValueError(_NOT_A_CURSOR)
    return tuple(after)


CURSOR = Annotated[dict | None, PlainValidator(_decode_cursor), WithJsonSchema(_CURSOR_SCHEMA)]
"""A table's next key (``ExclusiveStartKey``)."""
AFTER_CURSOR = Annotated[tuple | None, PlainValidator(_after_cursor), WithJsonSchema(_CURSOR_SCHEMA)]
"""The sort key of the last item of the previous page (a list sorted in memory)."""


def items_list(maximum: int) -> Any:
    """A request's list of records, 1 to ``maximum`` of them; each record is validated by its own
    model (``models.records`` / ``models.uploads``) where the route handles it."""

    def check(value: Any) -> list:
        if not isinstance(value, list) or not value:
            raise ValueError("must be a non-empty list")
        if len(value) > maximum:
            raise ValueError(f"at most {maximum} items per request")
        return value

    return Annotated[list, PlainValidator(check),
                     WithJsonSchema({"type": "array", "minItems": 1, "maxItems": maximum, "items": {}})]


def _object(value: Any) -> dict | None:
    if value is not None and not isinstance(value, dict):
        raise ValueError("must be an object")
    return value


OBJECT = Annotated[dict | None, PlainValidator(_object), WithJsonSchema({"type": "object"})]


# ---------------------------------------------------------------------------
# Query strings
# ---------------------------------------------------------------------------

class RunHistoryQuery(StrictModel):
    status: choice(*RUN_STATUSES) = None
    limit: page_size(500) = 50
    cursor: CURSOR = None


class RunsQuery(StrictModel):
    """Every job's runs (or one job's), newest first, created from ``since`` through ``until``."""

    job: ID = None
    status: choice(*RUN_STATUSES) = None
    trigger: choice(*RUN_TRIGGERS) = None
    since: DATETIME = Field(None, description="the oldest creation time (default: the run history's retention)")
    until: DATETIME = Field(None, description="the newest creation time (default: now)")
    limit: page_size(500) = 50
    cursor: CURSOR = None

    @model_validator(mode="after")
    def _range(self):
        if self.since and self.until and self.since > self.until:  # both UTC in one format: ordered as text
            raise errors_at((("until",), "must not be before since"))
        return self


class PackagePreviewQuery(StrictModel):
    limit: page_size(500) = 50


class DataListQuery(StrictModel):
    limit: page_size(1000) = 100
    cursor: CURSOR = None


class AccountActivityQuery(StrictModel):
    profile_id: ID
    limit: page_size(100) = 20
    cursor: CURSOR = None


class TimeRegistrationQuery(StrictModel):
    """A store's or a worker's registrations (``store_id`` or ``worker_id`` is required)."""

    status: choice(*REGISTRATION_STATUSES) = None
    store_id: ID = None
    worker_id: ID = None
    start: DATE = Field(alias="from", description="the first day (the store's local day)")
    end: DATE = Field(alias="to", description=f"the last day: at most {MAX_BATCH_DAYS} days from the first")
    limit: page_size(500) = 100
    cursor: AFTER_CURSOR = None

    @model_validator(mode="after")
    def _rules(self):
        problems = []
        if self.store_id is None and self.worker_id is None:
            problems.append((("store_id",), "store_id or worker_id is required"))
        problems += _range_errors(self.start, self.end, MAX_BATCH_DAYS)
        if problems:
            raise errors_at(*problems)
        return self


def _range_errors(start: str, end: str, max_days: int) -> list[tuple[tuple, str]]:
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    if first > last:
        return [(("to",), "must not be before from")]
    if (last - first).days + 1 > max_days:
        return [(("to",), f"the range may span at most {max_days} days")]
    return []


class SessionsQuery(StrictModel):
    store_id: ID = None
    status: choice(*SESSION_STATUSES) = None
    limit: page_size(500) = 50
    cursor: CURSOR = None


class StoreSessionsQuery(StrictModel):
    status: choice(*SESSION_STATUSES) = SessionStatus.AVAILABLE.value
    limit: page_size(500) = 50
    cursor: CURSOR = None


class StagingJobsQuery(StrictModel):
    entity: choice(*STAGING_ENTITIES) = None
    limit: page_size(500) = 50
    cursor: CURSOR = None


class UploadIssuesQuery(StrictModel):
    kind: choice(*ISSUE_KINDS) = None
    limit: page_size(500) = 50
    cursor: CURSOR = None


class StatementsQuery(StrictModel):
    """A store's statements (of one business date), or one business date's (one of the two is required)."""

    store_id: ID = None
    business_date: DATE = None
    limit: page_size(500) = 50
    cursor: CURSOR = None

    @model_validator(mode="after")
    def _one_key(self):
        if self.store_id is None and self.business_date is None:
            raise errors_at((("store_id",), "store_id or business_date is required"))
        return self


class AlertsQuery(StrictModel):
    status: choice(*alerts.STATUSES) = alerts.OPEN
    limit: page_size(500) = 50
    cursor: CURSOR = None


class OnHandQuery(StrictModel):
    store_id: ID
    product_id: ID = None
    limit: page_size(1000) = 100
    cursor: CURSOR = None


# ---------------------------------------------------------------------------
# Request bodies
# ---------------------------------------------------------------------------

class NoBody(StrictModel):
    """Nothing to send: no body, or ``{}``."""


class StartRun(StrictModel):
    params: OBJECT = Field(None, description="the job's parameters (GET /jobs describes them)")
    dry_run: BOOLEAN = False


class CopyToTarget(StrictModel):
    rows: choice(*COPY_ROWS) = "all"


SELECTORS = ("worker_id", "worker_ids", "store_id", "store_ids")


class Approval(StrictModel):
    """One worker (a year at most), up to 100 workers or a store (62 days at most), or up to 50
    stores (14 days at most), of the days ``from`` through ``to`` (the store's local days)."""

    worker_id: ID = None
    worker_ids: list[ID] = Field(None, description=f"1 to {MAX_APPROVAL_WORKERS} worker ids, each once")
    store_id: ID = None
    store_ids: list[ID] = Field(None, description=f"1 to {MAX_APPROVAL_STORES} store ids, each once: every "
                                                  "registration their POS uploaded")
    start: DATE = Field(alias="from", description="the first day (the store's local days)")
    end: DATE = Field(alias="to", description=f"the last day: at most {MAX_WORKER_DAYS} days from the first for "
                                              f"worker_id, {MAX_BATCH_DAYS} for worker_ids or store_id, "
                                              f"{MAX_STORES_DAYS} for store_ids")

    @field_validator("worker_ids", "store_ids", mode="before")
    @classmethod
    def _id_count(cls, value, info):
        most, kind = {"worker_ids": (MAX_APPROVAL_WORKERS, "worker"),
                      "store_ids": (MAX_APPROVAL_STORES, "store")}[info.field_name]
        if not isinstance(value, list) or not 1 <= len(value) <= most:
            raise ValueError(f"must be a list of 1 to {most} {kind} ids")
        return value

    @model_validator(mode="after")
    def _rules(self):
        given = [name for name in SELECTORS if getattr(self, name) is not None]
        problems = []
        if not given:
            problems.append((("worker_id",), "one of worker_id, worker_ids, store_id or store_ids is required"))
        problems += [((name,), f"give only one of worker_id, worker_ids, store_id or store_ids (got {given[0]} too)")
                     for name in given[1:]]
        for field, kind in (("worker_ids", "worker"), ("store_ids", "store")):
            seen = set()
            for i, value in enumerate(getattr(self, field) or ()):
                if value in seen:
                    problems.append(((field, i), f"{kind} {value} is listed twice"))
                seen.add(value)
        longest = {"worker_id": MAX_WORKER_DAYS, "store_ids": MAX_STORES_DAYS}.get(given[0] if given else "",
                                                                                    MAX_BATCH_DAYS)
        problems += _range_errors(self.start, self.end, longest)
        if problems:
            raise errors_at(*problems)
        return self

    @property
    def selector(self) -> str:
        return next(name for name in SELECTORS if getattr(self, name) is not None)


class DataItems(StrictModel):
    items: items_list(MAX_DATA_ITEMS)


class TransactionUpload(StrictModel):
    transactions: items_list(MAX_TRANSACTIONS)


class RegistrationUpload(StrictModel):
    registrations: items_list(MAX_REGISTRATIONS)


class StatusMessageUpload(StrictModel):
    messages: items_list(MAX_MESSAGES)


# ---------------------------------------------------------------------------
# Responses (published in the contract; the routes build them from storage's ``to_api``)
# ---------------------------------------------------------------------------

class FieldProblem(StrictModel):
    field: str = Field(description="the offending field's path, e.g. items[3].price")
    message: str


class ErrorBody(StrictModel):
    code: str
    message: str
    details: list[FieldProblem]


class ErrorDocument(StrictModel):
    error: ErrorBody


class Health(StrictModel):
    status: str
    stage: str


class Counters(StrictModel):
    read: int
    written: int
    skipped: int
    failed: int


class Shard(StrictModel):
    run_id: str
    status: choice(*RUN_STATUSES)
    scope: str | None = Field(description="what the shard works for: its store's id, or its group's key "
                                          "(post-statements: the legal entity; send-email-receipts: the email "
                                          "queue partition)")
    ended_at: str | None


class Run(StrictModel):
    run_id: str
    job: str
    status: choice(*RUN_STATUSES)
    trigger: str
    params: dict[str, Any]
    dry_run: bool
    requested_by: str | None = Field(description="the id of the token that asked for the run, or what started it")
    requested_by_label: str | None = Field(description="that token's label when the run was asked for; null for "
                                                       "schedules and events")
    created_at: str
    started_at: str | None
    ended_at: str | None
    counters: Counters
    errors: list[dict[str, Any]] = Field(description="per-record errors: {key, message}")
    outputs: list[dict[str, Any]] = Field(description='{"kind": "s3", "bucket", "key"} or {"kind": "session", "id"}')
    aws_requests: dict[str, int] = Field(description='AWS requests made, by "service.Operation"')
    message: str | None
    estimated_cost_usd: str = Field(description="what aws_requests cost at list prices (USD, a decimal string): "
                                                "the requests alone, not the run's Lambda compute")
    parent_run_id: str | None = Field(None, description="a shard's fan-out parent")
    shards: list[Shard] | None = Field(None, description="a fan-out parent's shard runs (GET /runs/{run_id} only)")


class RunAnswer(StrictModel):
    run: Run


class RunAndStagingJob(StrictModel):
    run: Run
    job: dict[str, Any] = Field(description="the staging job, as GET /migration/jobs/{job_id} answers it")


class DataWritten(StrictModel):
    accepted: int
    written: int = Field(description="the records that were new or changed")
    unchanged: int


class Deleted(StrictModel):
    deleted: str = Field(description="the id of the record deleted")


class TransactionOutcome(StrictModel):
    """Each record's outcome (DOMAIN §13): new, an identical resend, another version of a stored id, invalid."""

    accepted: int
    duplicates: int
    conflicts: list[dict[str, Any]] = Field(description="by index: the transaction id and the upload issue kept")
    rejected: list[dict[str, Any]] = Field(description="by index: the field errors and the upload issue kept")


class RegistrationOutcome(StrictModel):
    accepted: int
    updated: int = Field(description="resent with other times: their approval is withdrawn")
    duplicates: int
    approval_withdrawn: int


class MessageRejection(StrictModel):
    index: int
    session_id: str | None
    errors: list[FieldProblem]


class MessageOutcome(StrictModel):
    accepted: int
    rejected: list[MessageRejection]


class ApprovalOutcome(StrictModel):
    """The request's selector and days, and what was approved."""

    worker_id: str | None = None
    worker_ids: list[str] | None = None
    store_id: str | None = None
    store_ids: list[str] | None = None
    start: str = Field(alias="from")
    end: str = Field(alias="to")
    approved: int
    already_approved: int
    not_approved: list[dict[str, Any]] = Field(description="{registration_id, worker_id, reason}")


class Job(StrictModel):
    name: str
    title: str
    description: str
    schedule: str | None
    schedule_text: str | None = Field(description='the schedule in words ("every 15 minutes", "daily at 02:00 UTC")')
    next_run_at: str | None = Field(description="when the schedule fires next (UTC), null without a schedule")
    params: dict[str, Any]
    last_run: Run | None


class Package(StrictModel):
    bucket: str
    key: str


class Session(StrictModel):
    session_id: str
    store_id: str
    data_group: str
    seq: int
    job_run_id: str | None
    status: choice(*SESSION_STATUSES)
    rows: int
    checksum: str | None
    package: Package | None
    created_at: str
    requested_at: str | None
    downloaded_at: str | None
    applied_at: str | None
    try_count: int
    message: str | None
    replaced_by: str | None
    stale: bool
    message_errors: list[dict[str, Any]]


class PackagePreview(StrictModel):
    session_id: str
    store_id: str
    data_group: str
    seq: int
    header: dict[str, Any] = Field(description="the package's header line")
    rows: list[dict[str, Any]] = Field(description="its first rows ({op, entity, key, data}), at most limit")
    total_rows: int = Field(description="how many rows the package holds (its header's count)")


class OutputLink(StrictModel):
    url: str = Field(description="a presigned GET of the object, valid 15 minutes")
    expires_at: str
    key: str
    kind: str


class Alert(StrictModel):
    """An event that needs a person (README "Alerts")."""

    alert_id: str
    kind: choice(*alerts.KINDS)
    job: str | None
    store_id: str | None
    run_id: str | None
    subject_id: str | None = Field(description="what else the alert is about: a session id, a pay period, "
                                               "an upload issue id")
    message: str = Field(description="plain text")
    created_at: str
    status: choice(*alerts.STATUSES)
    published_at: str | None = Field(description="when an hourly digest sent it; null until then")


class StoreSession(Session):
    package_url: str | None = Field(description="a short-lived link to download the package")


def _page(name: str, plural: str, item: Any) -> type[StrictModel]:
    """A list route's answer: ``{<plural>: [...], "cursor": <the next page's, or null>}``."""
    cursor = (str | None, Field(description="the next page's cursor (pass it as ?cursor=), or null on the last page"))
    fields = {plural: (list[item], ...), "cursor": cursor}
    return create_model(name, __base__=StrictModel, __module__=__name__, **fields)


JobList = _page("JobList", "jobs", Job)
RunList = _page("RunList", "runs", Run)
SessionList = _page("SessionList", "sessions", Session)
StoreSessionList = _page("StoreSessionList", "sessions", StoreSession)
ItemList = _page("ItemList", "items", dict[str, Any])
ResultList = _page("ResultList", "results", dict[str, Any])
StagingJobList = _page("StagingJobList", "jobs", dict[str, Any])
IssueList = _page("IssueList", "issues", dict[str, Any])
StatementList = _page("StatementList", "statements", dict[str, Any])
AlertList = _page("AlertList", "alerts", Alert)
