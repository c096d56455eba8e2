"""Download sessions: the status state machine and the package format (DOMAIN §9).

A store receives HQ data as a download session: one gzip JSON-lines package per store and data
group per job run that changed something for the store. The store reports progress with status
messages; ``apply_messages_in_order`` replays them on the session, refusing illegal moves.

Example (process status messages)::

    replay = apply_messages_in_order(session, messages, try_limit=params.try_count)
    for msg, outcome in replay.outcomes:
        mark_processed(msg, error=outcome.error)
    save(replay.state)

Example (a job writing a package: rows are generated lazily and the gzip streams into ``out``)::

    rows = assortment_rows(added, removed, full=False, all_items=wanted)
    checksum = gzip_package(build_package_lines({**header, "rows": len(added) + len(removed)}, rows), out)
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, BinaryIO

from chalicelib.domain.catalog import VariantKey, variant_key_text
from chalicelib.domain.errors import DomainError, FieldError, ValidationError
from chalicelib.domain.jsonvalues import json_default


class SessionStatus(StrEnum):
    """``RetailCDXDownloadSessionStatus`` names, plus D365's ``Suspended``."""

    STARTED = "Started"
    AVAILABLE = "Available"
    REQUESTED = "Requested"
    DOWNLOADED = "Downloaded"
    APPLIED = "Applied"
    CANCELED = "Canceled"
    CREATE_FAILED = "CreateFailed"
    DOWNLOAD_FAILED = "DownloadFailed"
    APPLY_FAILED = "ApplyFailed"
    NO_DATA = "NoData"
    SUSPENDED = "Suspended"


_S = SessionStatus

FINAL_STATUSES: frozenset[SessionStatus] = frozenset(
    {_S.APPLIED, _S.CANCELED, _S.NO_DATA, _S.CREATE_FAILED}
)

ALLOWED: Mapping[SessionStatus, frozenset[SessionStatus]] = {
    _S.STARTED: frozenset({_S.AVAILABLE, _S.CREATE_FAILED, _S.NO_DATA}),
    _S.AVAILABLE: frozenset({_S.REQUESTED, _S.CANCELED}),
    _S.REQUESTED: frozenset({_S.DOWNLOADED, _S.DOWNLOAD_FAILED, _S.CANCELED}),
    _S.DOWNLOAD_FAILED: frozenset({_S.REQUESTED, _S.CANCELED}),
    _S.DOWNLOADED: frozenset({_S.APPLIED, _S.APPLY_FAILED, _S.CANCELED}),
    _S.APPLY_FAILED: frozenset({_S.APPLIED, _S.REQUESTED, _S.SUSPENDED, _S.CANCELED}),
    _S.SUSPENDED: frozenset({_S.REQUESTED, _S.CANCELED}),
    _S.APPLIED: frozenset(),
    _S.CANCELED: frozenset(),
    _S.NO_DATA: frozenset(),
    _S.CREATE_FAILED: frozenset(),
}
"""The moves of §9, exactly; a final status allows none."""

FAILED_TRIES: frozenset[SessionStatus] = frozenset({_S.DOWNLOAD_FAILED, _S.APPLY_FAILED})
"""Statuses that count one try in ``try_count``."""

_STAMPED = {_S.REQUESTED: "requested_at", _S.DOWNLOADED: "downloaded_at", _S.APPLIED: "applied_at"}


def _parse_time(value: datetime | str | None, field: str) -> datetime | None:
    """An ISO 8601 time; a naive time is taken as UTC so that all times compare."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError([FieldError(field, "not an ISO 8601 time")]) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _parse_status(value: Any, field: str) -> SessionStatus:
    try:
        return SessionStatus(value)
    except ValueError:
        raise ValidationError([FieldError(field, f"unknown status {value!r}")]) from None


@dataclass(frozen=True)
class SessionState:
    """The part of a download session that status messages change.

    ``last_changed_at`` is the ``at`` of the last message applied (``None``: never changed
    since ``created_at``); messages older than it are ignored.
    """

    session_id: str
    status: SessionStatus
    created_at: datetime
    try_count: int = 0
    requested_at: datetime | None = None
    downloaded_at: datetime | None = None
    applied_at: datetime | None = None
    message: str | None = None
    rows_affected: int | None = None
    last_changed_at: datetime | None = None

    @property
    def changed_at(self) -> datetime:
        """When the session last changed: ``last_changed_at``, or ``created_at`` if never."""
        return self.last_changed_at or self.created_at

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> SessionState:
        """From a session record (§9 fields; times as ISO strings or datetimes)."""
        return cls(
            session_id=record["session_id"],
            status=_parse_status(record["status"], "status"),
            created_at=_parse_time(record["created_at"], "created_at"),
            try_count=int(record.get("try_count") or 0),
            requested_at=_parse_time(record.get("requested_at"), "requested_at"),
            downloaded_at=_parse_time(record.get("downloaded_at"), "downloaded_at"),
            applied_at=_parse_time(record.get("applied_at"), "applied_at"),
            message=record.get("message"),
            rows_affected=record.get("rows_affected"),
            last_changed_at=_parse_time(record.get("last_changed_at"), "last_changed_at"),
        )


@dataclass(frozen=True)
class StatusMessage:
    """A status message as a store posts it: ``{session_id, status, at, message?, rows_affected?}``.

    Times are timezone-aware (``from_record`` takes a naive time as UTC).
    """

    session_id: str
    status: SessionStatus
    at: datetime
    message: str | None = None
    rows_affected: int | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> StatusMessage:
        return cls(
            session_id=record["session_id"],
            status=_parse_status(record["status"], "status"),
            at=_parse_time(record["at"], "at"),
            message=record.get("message"),
            rows_affected=record.get("rows_affected"),
        )


class OutcomeKind(StrEnum):
    APPLIED = "applied"
    REFUSED = "refused"
    IGNORED = "ignored"


@dataclass(frozen=True)
class Outcome:
    """What one status message did. ``state`` is the session after it (unchanged unless applied).

    ``error`` is the message error to record for a refused message, e.g.
    ``"illegal move Available → Downloaded"`` or, out of a final status,
    ``"illegal move Canceled → Requested: session is final (Canceled)"``; ``note`` says why a
    message was ignored.
    """

    kind: OutcomeKind
    state: SessionState
    error: str | None = None
    note: str | None = None


def _check_try_limit(try_limit: int) -> None:
    if try_limit < 0:
        raise DomainError(f"try limit must be 0 (unlimited) or more, not {try_limit}")


def apply_status_message(session: SessionState, msg: StatusMessage, try_limit: int) -> Outcome:
    """Apply one status message to a session, purely (§9).

    In order:

    1. A message for another session is refused.
    2. A message older than the session's last change (``msg.at < session.changed_at``) is
       ignored. **Decision:** a duplicate (``at`` equal to the last change and the same status,
       or a failure re-delivered after it suspended the session: the same message posted twice)
       is ignored too, not refused.
    3. A move not in ``ALLOWED`` is refused: ``"illegal move <from> → <to>"``. Out of a final
       status (Applied, Canceled, NoData, CreateFailed) nothing moves, and the error says why:
       ``"illegal move Canceled → Requested: session is final (Canceled)"``.
    4. A legal move sets the status, ``last_changed_at = msg.at``, the time stamp of the new
       status (``requested_at``, ``downloaded_at``, ``applied_at``; a retry overwrites it with
       the latest), ``message`` (the store's text; none clears an older failure text) and
       ``rows_affected`` when given.

    Try limit: each DownloadFailed or ApplyFailed adds one to ``try_count``. When it reaches
    ``try_limit`` (``0`` = unlimited) the session becomes Suspended. **Decision:** this holds
    after either failure, as §9's prose says ("each DownloadFailed or ApplyFailed adds to
    try_count; when it reaches … the session becomes Suspended"). ``ALLOWED`` stays exactly the
    table of §9 and governs the moves messages ask for; the suspension is HQ's rule applied after
    a legal failure move, so a store retrying a download forever is stopped too. Suspended →
    Requested (a manual retry) keeps ``try_count``, so the next failure suspends again; the
    operator's *rerun* creates a new session with ``try_count`` 0.
    """
    _check_try_limit(try_limit)
    if msg.session_id != session.session_id:
        return Outcome(
            OutcomeKind.REFUSED,
            session,
            error=f"message for session {msg.session_id}, not {session.session_id}",
        )
    if msg.at < session.changed_at:
        return Outcome(OutcomeKind.IGNORED, session, note="older than the session's last change")
    if msg.at == session.last_changed_at and (
        msg.status == session.status
        or (session.status == _S.SUSPENDED and msg.status in FAILED_TRIES)
    ):
        return Outcome(OutcomeKind.IGNORED, session, note="duplicate of the last change")
    if msg.status not in ALLOWED[session.status]:
        error = f"illegal move {session.status} → {msg.status}"
        if session.is_final:
            error += f": session is final ({session.status})"
        return Outcome(OutcomeKind.REFUSED, session, error=error)

    changes: dict[str, Any] = {
        "status": msg.status,
        "last_changed_at": msg.at,
        "message": msg.message,
    }
    if msg.status in _STAMPED:
        changes[_STAMPED[msg.status]] = msg.at
    if msg.rows_affected is not None:
        changes["rows_affected"] = msg.rows_affected
    if msg.status in FAILED_TRIES:
        tries = session.try_count + 1
        changes["try_count"] = tries
        if try_limit and tries >= try_limit:
            changes["status"] = _S.SUSPENDED
            reason = f"{msg.status}: {msg.message}" if msg.message else str(msg.status)
            changes["message"] = f"suspended after {tries} failed tries ({reason})"
    return Outcome(OutcomeKind.APPLIED, replace(session, **changes))


@dataclass(frozen=True)
class MessageReplay:
    """The outcome of each message, in the order applied, and the session at the end."""

    outcomes: list[tuple[StatusMessage, Outcome]]
    state: SessionState


def apply_messages_in_order(
    session: SessionState, msgs: Iterable[StatusMessage], try_limit: int
) -> MessageReplay:
    """Apply messages in ``at`` order (ties: the order received, i.e. the order of ``msgs``).

    Stores report asynchronously, so messages may arrive out of order; sorting first means a
    late-posted Requested is not refused after its Downloaded.
    """
    _check_try_limit(try_limit)
    outcomes: list[tuple[StatusMessage, Outcome]] = []
    state = session
    for msg in sorted(msgs, key=lambda m: m.at):
        outcome = apply_status_message(state, msg, try_limit)
        outcomes.append((msg, outcome))
        state = outcome.state
    return MessageReplay(outcomes=outcomes, state=state)


def is_stale(session: SessionState, now: datetime, stale_after_hours: float) -> bool:
    """True for a session Available or Requested for longer than ``stale_after_hours``.

    Time in the status is measured from the session's last change (its creation if none).
    """
    if session.status not in (_S.AVAILABLE, _S.REQUESTED):
        return False
    return now - session.changed_at > timedelta(hours=stale_after_hours)


def is_purgeable(session: SessionState, now: datetime, retention_days: float) -> bool:
    """True for a final session older than ``retention_days``.

    **Decision:** age counts from the last change, i.e. when the session became final, so a
    session applied today is kept the full retention period even if it was created long ago.
    """
    return session.is_final and now - session.changed_at > timedelta(days=retention_days)


# --- package format -----------------------------------------------------------------------------


class PackageError(DomainError):
    """A package that cannot be built or read: missing header fields, bad rows, wrong checksum."""


HEADER_FIELDS = ("session_id", "store_id", "data_group", "seq", "created_at", "rows", "full")
ROW_OPS = frozenset({"upsert", "delete"})


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=json_default
)
"""The package's JSON: keys sorted, compact, UTF-8 kept, decimals as strings. One instance, so a
line costs no encoder construction (``json.dumps`` with options builds one per call)."""

_encode_text = json.encoder.encode_basestring  # what ``_ENCODER`` writes a ``str`` with


def _json_value(value: Any) -> str:
    """``_ENCODER.encode(value)``, faster for a string and for a flat dict of strings (an
    assortment row's ``data``): the encoder's per-call set-up costs more than such a value."""
    kind = type(value)
    if kind is str:
        return _encode_text(value)
    if kind is dict:
        parts = []
        for name in sorted(value):
            item = value[name]
            if type(name) is not str or type(item) is not str:
                return _ENCODER.encode(value)
            parts.append(f"{_encode_text(name)}:{_encode_text(item)}")
        return "{" + ",".join(parts) + "}"
    return _ENCODER.encode(value)


def _json_line(obj: Mapping[str, Any]) -> bytes:
    return (_ENCODER.encode(obj) + "\n").encode()


def _row_line(op: Any, entity: Any, key: Any, data: Any) -> bytes:
    """``_json_line({"op", "entity", "key", "data"})`` without building the dict when ``op``,
    ``entity`` and ``key`` are plain strings: the four keys in their sorted order."""
    if type(op) is str and type(entity) is str and type(key) is str:
        return (
            f'{{"data":{_json_value(data)},"entity":{_encode_text(entity)},'
            f'"key":{_encode_text(key)},"op":{_encode_text(op)}}}\n'
        ).encode()
    return _json_line({"op": op, "entity": entity, "key": key, "data": data})


def build_package_lines(
    header: Mapping[str, Any], rows: Iterable[Mapping[str, Any]]
) -> Iterator[bytes]:
    """The JSON lines of a package: the header, then one line per row (§9).

    ``header`` must carry ``session_id, store_id, data_group, seq, created_at, full``; when it
    lacks ``rows`` the rows are counted first (materialised), otherwise they stream and the count
    is checked at the end. Each row is ``{op: upsert|delete, entity, key, data}``. Keys are
    sorted and separators compact, so equal input gives equal bytes; ``Decimal`` becomes a
    string, dates and times ISO 8601.
    """
    header = dict(header)
    if "rows" not in header:
        rows = list(rows)
        header["rows"] = len(rows)
    missing = [f for f in HEADER_FIELDS if f not in header]
    if missing:
        raise PackageError(f"package header lacks {', '.join(missing)}")
    yield _json_line(header)
    count = 0
    for row in rows:
        op, entity, key = row.get("op"), row.get("entity"), row.get("key")
        if op not in ROW_OPS or not entity or not key:
            raise PackageError(f"bad package row {row!r}: needs op upsert|delete, entity, key")
        yield _row_line(op, entity, key, row.get("data"))
        count += 1
    if count != header["rows"]:
        raise PackageError(f"package header says {header['rows']} rows, got {count}")


PACKAGE_GZIP_LEVEL = 6
"""zlib's compression level for packages (part of what fixes a package's bytes and checksum).

6 (zlib's default), not gzip's 9: on a 280k-row assortment package 9 took 2.2 s of CPU against
0.26 s for 6, for a body only 3.7 % smaller (1.52 MB against 1.57 MB). A store reads any level;
the checksum is of the bytes written, whatever they are."""

GZIP_WRITE_BYTES = 64 * 1024
"""Lines are handed to gzip in pieces of about this size: one ``write`` per line (tens of bytes)
would cost more in call overhead than the compression. zlib's output does not depend on how its
input is split, so the bytes are the same."""


def gzip_package(lines: Iterable[bytes], out: BinaryIO) -> str:
    """Write the gzip of ``lines`` to ``out`` as they come; returns the sha256 hex of the bytes
    written: the session's ``checksum``. Only zlib's window and one ``GZIP_WRITE_BYTES`` piece
    are held, never the package.

    The gzip header carries no time stamp or file name, so equal lines give equal bytes and an
    equal checksum.
    """
    hashing = _Hashing(out)
    with gzip.GzipFile(  # type: ignore[arg-type]
        fileobj=hashing, mode="wb", filename="", mtime=0, compresslevel=PACKAGE_GZIP_LEVEL
    ) as packed:
        for piece in _pieces(lines, GZIP_WRITE_BYTES):
            packed.write(piece)
    return hashing.sha256.hexdigest()


def _pieces(lines: Iterable[bytes], size: int) -> Iterator[bytes]:
    """``lines`` joined into pieces of at least ``size`` bytes (the last one may be shorter)."""
    held: list[bytes] = []
    length = 0
    for line in lines:
        held.append(line)
        length += len(line)
        if length >= size:
            yield b"".join(held)
            held, length = [], 0
    if held:
        yield b"".join(held)


class _Hashing:
    """A binary sink passing what it is given on to ``out`` and hashing it."""

    def __init__(self, out: BinaryIO):
        self.out, self.sha256 = out, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.out.write(data)
        return len(data)

    def flush(self) -> None:
        self.out.flush()


def read_package(
    gz_bytes: bytes, expected_sha256: str | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(header, rows)`` of a package, as a store reads it.

    Checks the checksum when ``expected_sha256`` is given and that the header's ``rows`` count
    matches; raises ``PackageError`` otherwise. Decimals come back as the strings they were
    written as.
    """
    if expected_sha256 is not None and hashlib.sha256(gz_bytes).hexdigest() != expected_sha256:
        raise PackageError("package checksum mismatch")
    try:
        lines = gzip.decompress(gz_bytes).splitlines()
        header, *rows = (json.loads(line) for line in lines if line)
    except (OSError, EOFError, ValueError) as exc:
        raise PackageError(f"unreadable package: {exc}") from None
    if header.get("rows") != len(rows):
        raise PackageError(f"package header says {header.get('rows')} rows, found {len(rows)}")
    return header, rows


# --- package rows -------------------------------------------------------------------------------

ASSORTMENT_ENTITY = "assortment"
DELIVERY_MODE_ENTITY = "delivery-mode"


def _assortment_row(op: str, key: VariantKey) -> dict[str, Any]:
    return {
        "op": op,
        "entity": ASSORTMENT_ENTITY,
        "key": variant_key_text(key),
        "data": {"product_id": key[0], "variant_id": key[1]},
    }


def assortment_rows(
    added: Iterable[VariantKey],
    removed: Iterable[VariantKey],
    full: bool,
    all_items: Iterable[VariantKey] = (),
) -> Iterator[dict[str, Any]]:
    """Package rows of a store's assortment change (§5, §12), generated one at a time (a row
    exists only while it is written; the sorted keys are the only list).

    Incremental: deletes for ``removed`` then upserts for ``added``. Full (``full_sync``, header
    ``full: true``: the store replaces its whole assortment): one upsert per item of
    ``all_items`` and no deletes. Rows are sorted by (product, variant). Delete rows keep
    ``data`` ``{product_id, variant_id}`` like upserts, so a store never has to parse the key.
    """
    if full:
        yield from (_assortment_row("upsert", key) for key in sorted(all_items))
        return
    yield from (_assortment_row("delete", key) for key in sorted(removed))
    yield from (_assortment_row("upsert", key) for key in sorted(added))


def delivery_mode_rows(upserts: Mapping[str, Any], deletes: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Package rows of a store's delivery-mode change: deletes (``data`` null) then upserts,
    generated one at a time.

    ``upserts`` is ``{mode_id: data}`` as in ``explosion.delivery_mode_diff``; sorted by mode id.
    """
    for mode_id in sorted(deletes):
        yield {"op": "delete", "entity": DELIVERY_MODE_ENTITY, "key": mode_id, "data": None}
    for mode_id in sorted(upserts):
        yield {"op": "upsert", "entity": DELIVERY_MODE_ENTITY, "key": mode_id, "data": upserts[mode_id]}
