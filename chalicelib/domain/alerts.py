"""Alerts (issue 15): the events that need a person, and the hourly digest that tells them.

An alert is recorded where its event happens, once: its id is derived from what it is about (the
run, the run and period, the session and its last change, the store and upload issue), so a
retried run end or an issue recorded again finds the alert it wrote before instead of adding one.
The digest job groups the alerts not yet published by kind and job (or store) and sends one
message per group; a group whose body would pass SNS's limit is split into numbered parts, so no
alert is ever left out. Pure Python: ``storage/alerts.py`` keeps them, ``jobs/publish_alerts.py``
sends them.

Alert messages name ids (runs, sessions, stores, workers), never a person's email address.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chalicelib.domain.runs import RunStatus

RUN_ERROR = "run_error"
FAILED_RECORDS = "failed_records"
PAY_PERIOD_REFUSED = "pay_period_refused"
SESSION_SUSPENDED = "session_suspended"
SESSION_STALE = "session_stale"
UPLOAD_CONFLICT = "upload_conflict"
KINDS = (RUN_ERROR, FAILED_RECORDS, PAY_PERIOD_REFUSED, SESSION_SUSPENDED, SESSION_STALE, UPLOAD_CONFLICT)

OPEN = "open"
ACKNOWLEDGED = "acknowledged"
STATUSES = (OPEN, ACKNOWLEDGED)

# SNS refuses a message above 256 KiB (subject and attributes aside); a margin for the encoding.
MAX_MESSAGE_BYTES = 250 * 1024
MAX_SUBJECT_CHARS = 99  # SNS: ASCII, under 100 characters
MAX_ALERT_MESSAGE_CHARS = 2000  # one alert's text; a run's message can be long


def alert_id(kind: str, *about: object) -> str:
    """The alert's id, the same every time the same event is recorded: ``<kind>-<digest>``."""
    digest = hashlib.blake2b(json.dumps([kind, *about], default=str).encode(), digest_size=10).hexdigest()
    return f"{kind}-{digest}"


def run_end_kind(status: str, counters: Mapping[str, int] | None) -> str | None:
    """The alert a run's end raises: ``run_error`` when it ends Error, ``failed_records`` when it
    ends otherwise with failed records (canceled ones included), else none."""
    if status == RunStatus.ERROR:
        return RUN_ERROR
    if status in (RunStatus.ENDED, RunStatus.CANCELED) and (counters or {}).get("failed", 0) > 0:
        return FAILED_RECORDS
    return None


def run_end_message(kind: str, job: str, status: str, counters: Mapping[str, int] | None,
                    message: str | None, dry_run: bool) -> str:
    dry = " (dry run)" if dry_run else ""
    if kind == RUN_ERROR:
        text = f"run of {job}{dry} ended Error: {message or 'no message'}"
    else:
        failed = (counters or {}).get("failed", 0)
        text = f"run of {job}{dry} ended {status} with {failed} failed record(s): {message or 'no message'}"
    return plain(text)


_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+")


def plain(text: str, limit: int = MAX_ALERT_MESSAGE_CHARS) -> str:
    """An alert's text: one line, an email address that a job's message quoted replaced by
    ``<email>``, at most ``limit`` characters."""
    text = _EMAIL.sub("<email>", " ".join(str(text).split()))
    return text if len(text) <= limit else text[:limit - 2] + " …"


@dataclass(frozen=True)
class AlertView:
    """What the digest needs of an alert."""

    alert_id: str
    kind: str
    job: str | None
    store_id: str | None
    run_id: str | None
    subject_id: str | None
    message: str
    created_at: str


def group_key(alert: AlertView) -> tuple[str, str]:
    """An alert's digest group: its kind and its job, or its store when it has no job."""
    return alert.kind, alert.job or (f"store {alert.store_id}" if alert.store_id else "retail-sync")


def line(alert: AlertView) -> str:
    about = [f"{name} {value}" for name, value in (("store", alert.store_id), ("run", alert.run_id),
                                                   ("subject", alert.subject_id)) if value]
    return f"- {alert.created_at} {alert.alert_id}" + (f" ({', '.join(about)})" if about else "") + \
        f": {alert.message}"


@dataclass(frozen=True)
class DigestMessage:
    subject: str
    body: str
    alert_ids: tuple[str, ...]


def digest(alerts: Iterable[AlertView], max_bytes: int = MAX_MESSAGE_BYTES) -> list[DigestMessage]:
    """One message per (kind, job or store) group, oldest alert first; a group whose body would
    pass ``max_bytes`` becomes several messages ("part 1 of 2"), every alert in one of them."""
    groups: dict[tuple[str, str], list[AlertView]] = {}
    for alert in sorted(alerts, key=lambda a: (a.created_at, a.alert_id)):
        groups.setdefault(group_key(alert), []).append(alert)
    messages = []
    for (kind, about), members in sorted(groups.items()):
        parts = _split([line(a) for a in members], members, max_bytes)
        for number, (lines, ids) in enumerate(parts, start=1):
            subject = f"retail-sync: {len(members)} {kind} alert{'s' if len(members) != 1 else ''} for {about}"
            if len(parts) > 1:
                subject += f" (part {number} of {len(parts)})"
            body = "\n".join([subject[len("retail-sync: "):] + ":", "", *lines, ""])
            messages.append(DigestMessage(_subject(subject), body, tuple(ids)))
    return messages


def _subject(text: str) -> str:
    text = text.encode("ascii", "replace").decode()
    return text if len(text) <= MAX_SUBJECT_CHARS else text[:MAX_SUBJECT_CHARS - 3] + "..."


def _split(lines: list[str], members: list[AlertView], max_bytes: int) -> list[tuple[list[str], list[str]]]:
    header = 200  # the heading line of a part
    parts: list[tuple[list[str], list[str]]] = [([], [])]
    size = header
    for text, alert in zip(lines, members, strict=True):
        cost = len(text.encode()) + 1
        if parts[-1][0] and size + cost > max_bytes:
            parts.append(([], []))
            size = header
        parts[-1][0].append(text)
        parts[-1][1].append(alert.alert_id)
        size += cost
    return parts
