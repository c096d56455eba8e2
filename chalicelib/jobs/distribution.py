"""Sending changed store data as download sessions, exactly once per (run, store, data group).

Shared by process-assortments and process-delivery-modes (which compute what changed) and by
the operator's cancel and rerun. A page of changed stores goes out in steps:

1. each session is saved ``Started`` with its deterministic id, a fresh ``seq`` and the
   package's row count and checksum, then its package is written to S3;
2. the stores' new state is written, its *marker* item last — the marker names the session
   that delivered it (``last_session``) and is the commit point (``storage/distribution.py``);
3. each session moves ``Started → Available``, and the state the commit replaced is deleted.

A run that dies and resumes (same run id, same session ids) finds, per store: a session past
``Started`` — done (a further change is left to the next run, with a warning); a ``Started``
session the stored marker names — committed, so it is made ``Available``; any other
``Started`` session — not committed, so it is rebuilt from the change computed now (same
``seq``), or closed ``NoData`` when nothing is left to send.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.domain.catalog import Catalog, OrgTree
from chalicelib.domain.errors import DomainError
from chalicelib.domain.sessions import (
    SessionState,
    SessionStatus,
    StatusMessage,
    apply_status_message,
    build_package_lines,
    gzip_package,
    read_package,
)
from chalicelib.storage import records
from chalicelib.storage.base import iso, utcnow, write_all
from chalicelib.storage.distribution import StateChange, StoreState, next_seq
from chalicelib.storage.download_sessions import (
    DownloadSession,
    get_package,
    get_session,
    get_sessions,
    package_key,
    package_location,
    put_package,
    session_id_for,
)

STARTED = SessionStatus.STARTED.value
AVAILABLE = SessionStatus.AVAILABLE.value


class SessionNotFound(DomainError):
    pass


class SessionConflict(DomainError):
    """The session's status does not allow the request (cancel a final session, rerun one without a package)."""


@dataclass
class StoreChange:
    """What one store must be sent: the package rows, and the state recording it as sent."""

    rows: list[dict]
    full: bool
    state: StateChange


def transaction() -> TransactWrite:
    """A transaction on the sessions table's connection (status messages update sessions 100 at once)."""
    return TransactWrite(connection=DownloadSession._get_connection().connection)


def is_conflict(exc: Exception) -> bool:
    """A write refused because its condition failed (someone changed the item first)."""
    if isinstance(exc, TransactWriteError):
        return any(r and r.code == "ConditionalCheckFailed" for r in exc.cancellation_reasons or [])
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def load_org_tree() -> OrgTree:
    return OrgTree(records.scan_entity("org-nodes"), records.scan_entity("stores"))


def load_catalog() -> Catalog:
    return Catalog(records.scan_entity("categories"), records.scan_entity("products"))


# --- sending a page of stores -----------------------------------------------------------------------

PAGE = 25


def store_pages(ctx, store_ids: Iterable[str]) -> Iterator[list[str]]:
    """The stores in sorted pages of ``PAGE``, checkpointed after each; a resumed run starts
    after the last page it finished."""
    after = ctx.state.get("after")
    pending = sorted(s for s in store_ids if after is None or s > after)
    for start in range(0, len(pending), PAGE):
        page = pending[start:start + PAGE]
        yield page
        ctx.checkpoint(after=page[-1])


def sessions_sent(ctx) -> int:
    return ctx.state.get("sent", 0)


def send_changes(ctx, group: str, store_ids: list[str], changes: dict[str, StoreChange],
                 committed: dict[str, str | None]) -> None:
    """Send each changed store of a page its session (counted in ``sessions_sent``).

    ``store_ids`` is the whole page (unchanged stores too: a crash may have left a ``Started``
    session of this run for one of them); ``committed`` is each store's stored ``last_session``.
    """
    ids = {store_id: session_id_for(ctx.run_id, store_id, group=group) for store_id in store_ids}
    found = get_sessions(ids.values())
    ready: list[DownloadSession] = []
    opened: list[tuple[DownloadSession, StoreChange]] = []
    for store_id in store_ids:
        session, change = found.get(ids[store_id]), changes.get(store_id)
        if session is not None and (session.status != STARTED or committed.get(store_id) == session.session_id):
            if change is not None:
                ctx.warn(f"store {store_id}: {group} changed again while this run resumed; the next run sends it")
            if session.status == STARTED and not ctx.dry_run:
                ready.append(session)
        elif ctx.dry_run:
            ctx.state["sent"] = sessions_sent(ctx) + (change is not None)
        elif change is None:
            if session is not None:
                _close(session, SessionStatus.NO_DATA, "nothing left to send when the run resumed")
        else:
            try:
                session = open_session(session, ids[store_id], store_id, group, ctx.run_id, change.rows, change.full)
            except Exception as exc:  # noqa: BLE001 - one store's failure must not stop the others
                ctx.error(store_id, f"{group} package not created: {exc}")
                continue
            change.state.marker.last_session = session.session_id
            opened.append((session, change))
    write_all(StoreState, puts=[item for _, change in opened for item in change.state.writes])
    write_all(StoreState, puts=[change.state.marker for _, change in opened])
    for session in ready + [session for session, _ in opened]:
        make_available(session)
        ctx.output("session", id=session.session_id, store_id=session.store_id, data_group=group,
                   rows=int(session.rows))
    ctx.state["sent"] = sessions_sent(ctx) + len(ready) + len(opened)
    write_all(StoreState, deletes=[item for _, change in opened for item in change.state.garbage])


def open_session(session: DownloadSession | None, session_id: str, store_id: str, group: str,
                 job_run_id: str | None, rows: list[dict], full: bool, message: str | None = None) -> DownloadSession:
    """Save the session ``Started`` with its package's row count and checksum, then write the package.

    ``session`` is the ``Started`` session a crashed attempt left (its ``seq`` and ``created_at``
    are kept) or ``None`` for a new one. A failed upload leaves the session ``CreateFailed``.
    """
    if session is None:
        created = iso()
        session = DownloadSession(session_id, store_id=store_id, data_group=group, seq=next_seq(store_id),
                                  job_run_id=job_run_id, status=STARTED, created_at=created, changed_at=created,
                                  message=message)
    header = {"session_id": session_id, "store_id": store_id, "data_group": group, "seq": int(session.seq),
              "created_at": session.created_at, "rows": len(rows), "full": full}
    body, checksum = gzip_package(build_package_lines(header, rows))
    session.rows, session.full, session.checksum = len(rows), full, checksum
    session.package = package_location(package_key(store_id, int(session.seq), session_id))
    session.save()
    try:
        put_package(session.package, body)
    except Exception as exc:
        _close(session, SessionStatus.CREATE_FAILED, f"package upload failed: {exc}")
        raise
    return session


def make_available(session: DownloadSession) -> None:
    session.update(actions=[DownloadSession.status.set(AVAILABLE)], condition=DownloadSession.status == STARTED)


def _close(session: DownloadSession, status: SessionStatus, message: str) -> None:
    session.update(actions=[DownloadSession.status.set(status.value), DownloadSession.message.set(message),
                            DownloadSession.changed_at.set(iso())])


# --- status changes ---------------------------------------------------------------------------------

_STATE_FIELDS = ("status", "try_count", "requested_at", "downloaded_at", "applied_at", "message",
                 "rows_affected", "last_changed_at")


def state_actions(state: SessionState) -> list:
    """Update actions writing a session state the domain computed (and clearing ``stale``)."""
    actions = []
    for name in _STATE_FIELDS:
        value: Any = getattr(state, name)
        if hasattr(value, "isoformat"):
            value = iso(value)
        attribute = getattr(DownloadSession, name)
        actions.append(attribute.remove() if value is None else attribute.set(value))
    actions.append(DownloadSession.changed_at.set(iso(state.changed_at)))
    actions.append(DownloadSession.stale.set(False))
    return actions


def require_session(session_id: str) -> DownloadSession:
    session = get_session(session_id)
    if session is None:
        raise SessionNotFound(f"download session {session_id} not found")
    return session


def cancel_session(session_id: str, reason: str = "canceled by an operator") -> DownloadSession:
    """Cancel a session as §9's table allows (not from Started or a final status: 409)."""
    session = require_session(session_id)
    state = session.state()
    # The operator's clock may be behind the store's: never let the cancel look older than the last change.
    at = max(utcnow(), state.changed_at)
    outcome = apply_status_message(state, StatusMessage(session_id, SessionStatus.CANCELED, at, reason), 0)
    if outcome.error:
        raise SessionConflict(f"cannot cancel session {session_id}: {outcome.error}")
    try:
        session.update(actions=state_actions(outcome.state))
    except UpdateError as exc:
        if not is_conflict(exc):
            raise
        return cancel_session(session_id, reason)  # a status message landed first; decide again
    return session


_NOTHING_TO_RERUN = {STARTED, SessionStatus.CREATE_FAILED.value, SessionStatus.NO_DATA.value}


def rerun_session(session_id: str) -> DownloadSession:
    """A new session with the same rows (new id, ``seq`` and checksum); the old one gets
    ``replaced_by`` and, unless final, is canceled. Asking again returns the same replacement."""
    old = require_session(session_id)
    if old.replaced_by:
        return require_session(old.replaced_by)
    if old.status in _NOTHING_TO_RERUN or not old.package:
        raise SessionConflict(f"session {session_id} is {old.status}: it has no package to rerun")
    new_id = session_id_for(session_id, "rerun", group=old.data_group)
    new = get_session(new_id)
    if new is None or new.status == STARTED:
        header, rows = read_package(get_package(old.package), old.checksum)
        try:
            new = open_session(new, new_id, old.store_id, old.data_group, old.job_run_id, rows,
                               bool(header["full"]), message=f"rerun of {session_id}")
        except PutError as exc:
            if not is_conflict(exc):
                raise
            return rerun_session(session_id)  # a concurrent rerun created it
        make_available(new)
    _replace(old, new.session_id)
    return new


def _replace(old: DownloadSession, new_id: str) -> None:
    actions = [DownloadSession.replaced_by.set(new_id)]
    state = old.state()
    if not state.is_final:
        at = max(utcnow(), state.changed_at)
        outcome = apply_status_message(
            state, StatusMessage(old.session_id, SessionStatus.CANCELED, at, f"replaced by {new_id}"), 0)
        if not outcome.error:
            actions = state_actions(outcome.state) + actions
    try:
        old.update(actions=actions)
    except UpdateError as exc:
        if not is_conflict(exc):
            raise
        _replace(require_session(old.session_id), new_id)
