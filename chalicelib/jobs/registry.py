"""The job registry: every batch job's name, title, schedule, parameters and implementation."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from chalicelib.domain.errors import FieldError, ValidationError

_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class Resources:
    """The AWS resources a job touches beyond the runtime's own (run and coordination tables,
    the parameters record). Each Lambda function's least-privilege IAM policy is generated from
    these declarations (``deploy/iam.py``); the IAM test fails when a job uses more.

    ``tables``: model class -> ``"read"`` (get, batch get, query; its indexes included) or
    ``"write"`` (read, put, update, delete, batch write); append ``"+scan"`` to allow a Scan.
    ``objects``: ``"<bucket>/<key prefix>"`` (bucket ``data`` or ``migration``) -> ``"read"``
    (get, list under the prefix), ``"write"`` (read, put) or ``"delete"`` (write, delete).
    ``email``: sends mail from ``MAIL_FROM``.

    >>> Resources(tables={LedgerLine: "write", MasterRecord: "read"}, objects={"data/exports/": "write"})
    """

    tables: dict = field(default_factory=dict)
    objects: dict = field(default_factory=dict)
    email: bool = False


@dataclass(frozen=True)
class Param:
    """One run parameter. ``kind``: bool, int, str, date, ids (list of ids) or choice."""

    kind: str
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    help: str = ""
    required: bool = False

    def clean(self, value: Any, path: str) -> tuple[Any, list[FieldError]]:
        if value is None:
            return self.default, [FieldError(path, "is required")] if self.required else []
        if self.kind == "bool":
            ok = isinstance(value, bool)
            return value, [] if ok else [FieldError(path, "must be true or false")]
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                return value, [FieldError(path, "must be an integer")]
            if self.minimum is not None and value < self.minimum:
                return value, [FieldError(path, f"must be at least {self.minimum}")]
            return value, []
        if self.kind == "date":
            try:
                return date.fromisoformat(value).isoformat(), [] if len(value) == 10 else [
                    FieldError(path, "must be a date YYYY-MM-DD")]
            except (TypeError, ValueError):
                return value, [FieldError(path, "must be a date YYYY-MM-DD")]
        if self.kind == "ids":
            if not isinstance(value, list) or not all(isinstance(v, str) and _ID.match(v) for v in value):
                return value, [FieldError(path, "must be a list of ids")]
            return sorted(set(value)), []
        if self.kind == "choice":
            if value not in self.choices:
                return value, [FieldError(path, f"must be one of {', '.join(self.choices)}")]
            return value, []
        if not isinstance(value, str) or not value:
            return value, [FieldError(path, "must be a non-empty string")]
        return value, []


STORE_TARGETING = {
    "store_ids": Param("ids", help="only these stores"),
    "org_node_ids": Param("ids", help="only stores under these organization nodes"),
}


def targeted_stores(params: dict, org_tree: Any) -> tuple[set[str] | None, list[str]]:
    """The stores a run's ``store_ids``/``org_node_ids`` name (their union; a node means every
    store below it, resolved now so new stores are picked up), or ``None`` when the run targets
    every store. Unknown ids are returned as warnings, not errors."""
    store_ids, node_ids = params.get("store_ids") or [], params.get("org_node_ids") or []
    if not store_ids and not node_ids:
        return None, []
    chosen: set[str] = set()
    warnings = []
    for store_id in store_ids:
        if org_tree.has_store(store_id):
            chosen.add(store_id)
        else:
            warnings.append(f"unknown store {store_id}")
    for node_id in node_ids:
        if org_tree.has_node(node_id):
            chosen |= org_tree.stores_under(node_id)
        else:
            warnings.append(f"unknown org node {node_id}")
    return chosen, warnings


@dataclass
class Job:
    name: str
    title: str
    description: str
    schedule: str
    run: Callable
    params: dict[str, Param] = field(default_factory=dict)
    # Runs whose scopes are equal never execute at once; the default serialises the whole job.
    lock_scope: Callable[[dict], str] = lambda params: "all"
    # For per-store fan-out: returns the shard keys (store ids) of a run, or None to run whole.
    shards: Callable | None = None
    # What the job touches in AWS beyond the runtime; the default is nothing more.
    resources: Resources = field(default_factory=Resources)

    def clean_params(self, params: Any) -> dict:
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ValidationError([FieldError("params", "must be an object")])
        errors = [FieldError(f"params.{name}", "unknown parameter") for name in params if name not in self.params]
        cleaned = {}
        for name, spec in self.params.items():
            value, problems = spec.clean(params.get(name), f"params.{name}")
            errors.extend(problems)
            if value is not None:
                cleaned[name] = value
        if errors:
            raise ValidationError(errors, f"invalid parameters for job {self.name}")
        return cleaned

    def describe(self) -> dict:
        return {"name": self.name, "title": self.title, "description": self.description,
                "schedule": self.schedule,
                "params": {k: {"type": p.kind, "default": p.default, "help": p.help,
                               **({"choices": list(p.choices)} if p.choices else {}),
                               **({"required": True} if p.required else {})}
                           for k, p in self.params.items()}}


JOBS: dict[str, Job] = {}


def register(job: Job) -> Job:
    if job.name in JOBS:
        raise ValueError(f"job {job.name} registered twice")
    JOBS[job.name] = job
    return job


def get_job(name: str) -> Job | None:
    load_all()
    return JOBS.get(name)


def all_jobs() -> list[Job]:
    load_all()
    return sorted(JOBS.values(), key=lambda j: j.name)


def load_all() -> None:
    """Import every job module so it registers itself (kept lazy for cold starts)."""
    from chalicelib.jobs import catalog  # noqa: F401
