"""Sending changed store data as download sessions, so that whatever a run commits, any later run
of the job finishes.

Shared by process-assortments and process-delivery-modes (which compute what changed) and by
the operator's cancel and rerun. Stores go in pages sized by rows (``store_pages``: stores until
their (store, variant) pairs reach ``PAGE_ROWS``, at most ``PAGE`` stores, at least one), and a
page of changed stores goes out in steps:

1. each session is saved ``Started`` with a fresh ``seq`` (its id derives from store and
   ``seq``) and the package's row count (counted from the change's keys; no checksum yet), then
   its package is streamed to S3 one store at a time: rows generated lazily, gzip written as it
   comes (``put_package``), the checksum taken on the way;
2. the stores' new state is written, its *marker* item last — the marker names the session
   that delivered it (``last_session``) and is the commit point (``storage/distribution.py``);
3. what the commit replaced is deleted, a resend request the session satisfies is dropped, the
   session a rerun replaces gets ``replaced_by``, and each session moves ``Started → Available``
   with its checksum recorded in the same write.

A ``Started`` session is the record of unfinished work, whoever left it: every run of the job,
whatever its run id, lists the group's ``Started`` sessions (one index query, none in the
steady state) and finishes them store by store within its pages. One the store's marker names
was committed: step 3 is done for it (and chunks a dead run left are swept; its checksum, if the
dead run had not recorded it, is read back from its package). Any other was not:
it is rebuilt in place from the change computed now (same id and ``seq``; a full one stays
full), or closed ``NoData`` when nothing is left to send or when the store's ``seq`` has moved
on meanwhile (then a new session carries the change, so ``seq`` never goes backwards). A
multipart upload a killed run left incomplete never became an object; the rebuild writes the
package again and the bucket's lifecycle rule aborts the leftover upload.

Truthfulness (DOMAIN §13): cancelling a session the store has not applied records a resend
request, and the next run sends the store a full package of the group; a rerun starts a targeted
``full_sync`` run (param ``rerun_of``) whose new session carries the store's current data and
names the old one in ``replaces``.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pynamodb.transactions import TransactWrite

from chalicelib.domain.catalog import Catalog, OrgTree
from chalicelib.domain.errors import ConflictError, DomainError, NotFoundError
from chalicelib.domain.runs import RunStatus
from chalicelib.domain.sessions import (
    SessionState,
    SessionStatus,
    StatusMessage,
    apply_status_message,
    build_package_lines,
)
from chalicelib.jobs import runtime
from chalicelib.storage import faults, records
from chalicelib.storage.base import iso, update_if, utcnow, write_all
from chalicelib.storage.distribution import (
    StateChange,
    StoreState,
    clear_full_resend,
    last_seq,
    next_seq,
    request_full_resend,
)
from chalicelib.storage.download_sessions import (
    DownloadSession,
    get_session,
    package_checksum,
    package_key,
    package_location,
    put_package,
    session_id_for,
    started_sessions,
)

STARTED = SessionStatus.STARTED.value
AVAILABLE = SessionStatus.AVAILABLE.value


class SessionNotFound(NotFoundError):
    pass


class SessionConflict(ConflictError):
    """The session's status does not allow the request (cancel a final session, rerun one without a package)."""


@dataclass
class StoreChange:
    """What one store must be sent: the package rows (an iterable generating them once, when
    the package is written), how many there are, and the state recording it as sent."""

    rows: Iterable[dict]
    count: int
    full: bool
    state: StateChange


@contextlib.contextmanager
def transaction() -> Iterator[TransactWrite]:
    """A transaction on the sessions table's connection (status messages update sessions 100 at
    once); a refused condition raises ``faults.ConditionFailed``."""
    with faults.translated(), TransactWrite(connection=DownloadSession._get_connection().connection) as t:
        yield t


def load_org_tree() -> OrgTree:
    return OrgTree(records.scan_entity("org-nodes"), records.scan_entity("stores"))


def load_catalog() -> Catalog:
    return Catalog(records.scan_entity("categories"), records.scan_entity("products"))


# --- sending a page of stores -----------------------------------------------------------------------

PAGE = 25  # stores at most: one BatchGetItem reads a page's state
PAGE_ROWS = 250_000  # (store, variant) pairs a page holds at most, unless one store alone has more
JOB_OF_GROUP = {"assortments": "process-assortments", "delivery-modes": "process-delivery-modes"}


def store_pages(ctx, store_ids: Iterable[str], rows: Callable[[str], int]) -> Iterator[list[str]]:
    """The stores in sorted pages, checkpointed after each; a resumed run starts after the last
    page it finished. A page holds stores until their estimated rows (``rows(store_id)``) would
    pass ``PAGE_ROWS``, at most ``PAGE`` stores and at least one: what a page holds in memory (the
    old chunks it compares, the state it writes) grows with its rows, not with the run's stores."""
    after = ctx.state.get("after")
    page: list[str] = []
    total = 0
    for store_id in sorted(s for s in store_ids if after is None or s > after):
        weight = rows(store_id)
        if page and (len(page) == PAGE or total + weight > PAGE_ROWS):
            yield page
            ctx.checkpoint(after=page[-1])
            page, total = [], 0
        page.append(store_id)
        total += weight
    if page:
        yield page
        ctx.checkpoint(after=page[-1])


def sessions_sent(ctx) -> int:
    return ctx.state.get("sent", 0)


def recovery_note(ctx) -> str:
    """The summary's note on sessions earlier runs left ``Started`` (empty when there were none)."""
    count = ctx.state.get("recovered", 0)
    return f"; finished {count} session(s) an earlier run left Started" if count else ""


class Sender:
    """One invocation's sending of a data group: the ``Started`` sessions earlier runs left (one
    query) and the session a rerun replaces, then ``send`` page by page.

    A page's stored state (``StoredAssortment`` or ``StoredModes``) gives each store's committed
    ``last_session`` and pending ``resend`` request.
    """

    def __init__(self, ctx, group: str):
        self.ctx, self.group = ctx, group
        self.started = started_sessions(group)
        self.replaces: dict[str, str] = {}
        rerun_of = ctx.params.get("rerun_of")
        if rerun_of:
            old = get_session(rerun_of)
            if old is None or old.data_group != group:
                ctx.warn(f"no {group} session {rerun_of} to replace")
            else:
                self.replaces[old.store_id] = old.session_id

    def full_stores(self, page: list[str], stored: dict[str, Any]) -> set[str]:
        """The page's stores that must get a full package whatever changed: a session of theirs
        was canceled unapplied (unless a committed full session still to finish covers it), a
        full session left uncommitted is rebuilt full, or a rerun replaces one of theirs."""
        full = set()
        for store_id in page:
            last, resend = stored[store_id].last_session, stored[store_id].resend
            orphans = self.started.get(store_id, [])
            if resend is not None and not any(s.session_id == last and s.full and int(s.seq) > resend
                                              for s in orphans):
                full.add(store_id)
            if store_id in self.replaces or any(s.full and s.session_id != last for s in orphans):
                full.add(store_id)
        return full

    def send(self, page: list[str], changes: dict[str, StoreChange], stored: dict[str, Any],
             strays: Callable[[str, Any], list[StoreState]] | None = None) -> None:
        """Send each changed store of a page its session, and finish what earlier runs left.

        ``page`` is every store of the page (unchanged ones too: an earlier run may have left a
        session of theirs ``Started``); ``strays(store_id, digests)`` lists state items a dead
        run left that the committed ``digests`` do not reference.
        """
        ctx = self.ctx
        finished: list[DownloadSession] = []
        opened: list[tuple[DownloadSession, StoreChange]] = []
        recovered: list[str] = []
        for store_id in page:
            orphans, change = self.started.pop(store_id, []), changes.get(store_id)
            if ctx.dry_run:
                ctx.state["sent"] = sessions_sent(ctx) + (change is not None)
                continue
            last = stored[store_id].last_session
            finished += [s for s in orphans if s.session_id == last]
            loose = [s for s in orphans if s.session_id != last]
            if orphans:
                recovered.append(store_id)
            reuse = loose.pop() if loose and change is not None and last_seq(store_id) == int(loose[-1].seq) else None
            for session in loose:
                _close(session, SessionStatus.NO_DATA, "its run died before sending it; nothing of it is left to "
                       "send or a later session carries it")
            if change is None:
                continue
            session = open_session(reuse, store_id, self.group, ctx.run_id, change.count, change.full,
                                   self.replaces.get(store_id) or (reuse.replaces if reuse else None))
            try:
                write_package(session, change.rows)
            except DomainError as exc:  # a package that cannot be built; an AWS fault ends the run instead
                _close(session, SessionStatus.CREATE_FAILED, f"package not created: {exc}")
                ctx.error(store_id, f"{self.group} package not created: {exc}")
                continue
            change.state.marker.last_session = session.session_id
            opened.append((session, change))
        write_all(StoreState, puts=[item for _, change in opened for item in change.state.writes])
        write_all(StoreState, puts=[change.state.marker for _, change in opened])
        committed = {session.store_id: change.state.marker for session, change in opened}
        garbage = {(i.store_id, i.part): i for _, change in opened for i in change.state.garbage}
        if strays is not None:
            for store_id in recovered:
                digests = (committed.get(store_id) or stored[store_id]).digests
                garbage.update({(i.store_id, i.part): i for i in strays(store_id, digests)})
        write_all(StoreState, deletes=garbage.values())
        sessions = sorted(finished + [session for session, _ in opened], key=lambda s: (s.store_id, int(s.seq)))
        for session in sessions:
            if session.full and stored[session.store_id].resend is not None:
                clear_full_resend(session.store_id, self.group, int(session.seq))
        for session in sessions:
            if session.replaces:
                old = get_session(session.replaces)
                if old is not None:
                    _replace(old, session.session_id)
            make_available(session)
            ctx.output("session", id=session.session_id, store_id=session.store_id, data_group=self.group,
                       rows=int(session.rows))
        ctx.state["sent"] = sessions_sent(ctx) + len(sessions)
        ctx.state["recovered"] = ctx.state.get("recovered", 0) + sum(
            1 for session in sessions if session.store_id in recovered and session.job_run_id != ctx.run_id)


def open_session(session: DownloadSession | None, store_id: str, group: str, job_run_id: str,
                 rows: int, full: bool, replaces: str | None = None) -> DownloadSession:
    """Save the session ``Started`` with its package's row count (no checksum yet), before its
    package is written (``write_package``).

    ``session`` is a ``Started`` session an earlier attempt left (rebuilt in place: its id,
    ``seq`` and ``created_at`` are kept, and it is saved again only if what it records differs)
    or ``None`` for a new one.
    """
    if session is None:
        seq, created = next_seq(store_id), iso()
        session = DownloadSession(session_id_for(store_id, str(seq), group=group), store_id=store_id,
                                  data_group=group, seq=seq, job_run_id=job_run_id, status=STARTED,
                                  created_at=created, changed_at=created)
    elif (int(session.rows), bool(session.full), session.checksum, session.replaces) == (rows, full, None, replaces):
        return session
    session.rows, session.full, session.checksum, session.replaces = rows, full, None, replaces
    session.message = f"rerun of {replaces}" if replaces else None
    session.package = package_location(package_key(store_id, int(session.seq), session.session_id))
    session.save()
    return session


def write_package(session: DownloadSession, rows: Iterable[dict]) -> None:
    """Stream the session's package to S3 and keep its checksum on ``session`` (recorded by
    ``make_available``). A failed upload leaves the session ``Started`` for the next run."""
    header = {"session_id": session.session_id, "store_id": session.store_id, "data_group": session.data_group,
              "seq": int(session.seq), "created_at": session.created_at, "rows": int(session.rows),
              "full": bool(session.full)}
    session.checksum = put_package(session.package, build_package_lines(header, rows))


def make_available(session: DownloadSession) -> None:
    """``Started → Available``, recording the package's checksum (read back from the package
    when the run that wrote it died before recording it)."""
    checksum = session.checksum or package_checksum(session.package)
    session.update(actions=[DownloadSession.status.set(AVAILABLE), DownloadSession.checksum.set(checksum)],
                   condition=DownloadSession.status == STARTED)


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
    """Cancel a session as §9's table allows (not from Started or a final status: 409); the
    store is sent a full package of the group by the next run."""
    session = require_session(session_id)
    state = session.state()
    # The operator's clock may be behind the store's: never let the cancel look older than the last change.
    at = max(utcnow(), state.changed_at)
    outcome = apply_status_message(state, StatusMessage(session_id, SessionStatus.CANCELED, at, reason), 0)
    if outcome.error:
        raise SessionConflict(f"cannot cancel session {session_id}: {outcome.error}")
    # Recorded first: a cancel must never leave HQ believing the store has what it was not sent.
    request_full_resend(session.store_id, session.data_group, int(session.seq))
    if not update_if(session, state_actions(outcome.state), None):
        return cancel_session(session_id, reason)  # a status message landed first; decide again
    return session


def rerun_session(session_id: str, requested_by: str | None = None,
                  requested_by_label: str | None = None) -> runtime.Started:
    """Start a targeted ``full_sync`` run of the session's job for its store (DOMAIN §13): its
    new session carries the store's current data and replaces this one (``runtime.start``).
    Asking again finds the same run, unless that one did not send (the job was busy, it failed)."""
    old = require_session(session_id)
    if old.status == STARTED:
        raise SessionConflict(f"session {session_id} is Started: its run has not finished it yet")
    params = {"store_ids": [old.store_id], "full_sync": True, "rerun_of": session_id}
    key = f"rerun#{session_id}"
    while True:
        started = runtime.start(JOB_OF_GROUP[old.data_group], params, trigger="manual",
                                requested_by=requested_by, requested_by_label=requested_by_label,
                                idempotency_key=key)
        if started.dispatched or not started.run.is_final or started.run.status == RunStatus.ENDED:
            return started
        key = f"rerun#{session_id}#{started.run.run_id}"


def _replace(old: DownloadSession, new_id: str) -> None:
    actions = [DownloadSession.replaced_by.set(new_id)]
    state = old.state()
    if not state.is_final:
        at = max(utcnow(), state.changed_at)
        outcome = apply_status_message(
            state, StatusMessage(old.session_id, SessionStatus.CANCELED, at, f"replaced by {new_id}"), 0)
        if not outcome.error:
            actions = state_actions(outcome.state) + actions
    if not update_if(old, actions, None):
        _replace(require_session(old.session_id), new_id)
