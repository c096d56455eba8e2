"""Process status messages (DOMAIN §9): apply what stores report to their download sessions.

Per page of unprocessed messages (the sparse ``pending`` index, in ``at`` order): the sessions
named are read with BatchGetItem, each session's messages are replayed in time order through
§9's table (``domain/sessions.py``), the changed sessions are written as conditional updates
(on the version read) 100 to a transaction, and the messages are marked processed (outcome,
error, TTL) 25 to a batch — about 0.05 requests per message. If an operator changed a session
meanwhile, its messages stay pending and the next run applies them to the new state.

Messages for unknown sessions and refused moves are kept with their error and listed in the
run's errors; a refused message is also recorded on its session (``message_errors``, the last
20), so the store's own session shows why its report changed nothing. A message dated more
than 5 minutes after it was received (kept before the route refused such messages) is refused
too: applied, it would move the session's clock into the future and every real message after
it would be ignored as older. Then sessions Available or Requested longer than ``stale_after_hours`` are
flagged ``stale`` (and named in the run's message), and final sessions whose last change is
older than ``download_session_retention_days`` are deleted with their package objects.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from chalicelib.domain.alerts import SESSION_STALE, SESSION_SUSPENDED, alert_id
from chalicelib.domain.days import in_future
from chalicelib.domain.sessions import (
    FINAL_STATUSES,
    OutcomeKind,
    SessionStatus,
    StatusMessage,
    apply_messages_in_order,
)
from chalicelib.jobs.distribution import state_actions, transaction
from chalicelib.jobs.parameters import retail_parameters
from chalicelib.jobs.runtime import JobContext
from chalicelib.storage import alerts, faults
from chalicelib.storage.base import iso, parse_iso, update_if, utcnow, write_all
from chalicelib.storage.download_sessions import (
    MESSAGE_ERRORS,
    DownloadSession,
    StatusMessageRecord,
    delete_packages,
    get_sessions,
    pending_messages,
    sessions_changed_before,
)

PAGE = 1000
MAX_ACTIONS = 100
MAX_NAMED = 10


@dataclass
class _Unit:
    """One session's messages as the job decided them, and the session's new state if it changed."""

    session: object | None
    actions: list | None
    messages: list = field(default_factory=list)
    suspended: object | None = None  # the session's new state when these messages suspended it


def run(ctx: JobContext) -> str:
    params = retail_parameters()
    tally: Counter = Counter()
    for page in ctx.pages("messages", lambda cursor: pending_messages(PAGE, cursor)):
        _apply_page(ctx, page, params, tally)
    stale = _flag_stale(ctx, params["stale_after_hours"])
    purged = _purge(ctx, params["download_session_retention_days"])
    counters = ctx.counters
    parts = [f"{counters.get('read', 0)} message(s): {counters.get('written', 0)} applied, "
             f"{counters.get('skipped', 0)} ignored, {counters.get('failed', 0)} refused"]
    if counters.get("skipped"):
        parts.append(f"{counters['skipped']} arrived late (older than their session's last change, or repeated)")
    if tally["suspended"]:
        parts.append(f"{tally['suspended']} session(s) suspended")
    if tally["retry"]:
        parts.append(f"{tally['retry']} message(s) left for the next run (their session changed meanwhile)")
    if stale:
        named = ", ".join(f"{s.store_id} {s.session_id} ({s.status})" for s in stale[:MAX_NAMED])
        parts.append(f"{len(stale)} stale session(s): {named}" + (" …" if len(stale) > MAX_NAMED else ""))
    verb = "would purge" if ctx.dry_run else "purged"
    parts.append(f"{verb} {purged} final session(s) and their packages")
    return "; ".join(parts)


def _apply_page(ctx: JobContext, page: list, params: dict, tally: Counter) -> None:
    by_session: dict[str, list] = defaultdict(list)
    for record in sorted(page, key=lambda m: (m.at, m.message_key)):
        by_session[record.session_id].append(record)
    sessions = get_sessions(by_session)
    ctx.count(read=len(page))
    units = [_replay(ctx, sessions.get(session_id), records, params["try_count"], tally)
             for session_id, records in by_session.items()]
    if not ctx.dry_run:
        _write(ctx, units, params["download_session_retention_days"], tally)


def _replay(ctx: JobContext, session, records: list, try_limit: int, tally: Counter) -> _Unit:
    if session is None or any(r.store_id != session.store_id for r in records):
        problem = "unknown session" if session is None else "session of another store"
        for record in records:
            _mark(record, "refused", f"{problem} {record.session_id}")
            ctx.error(record.ref, record.error)
        return _Unit(None, None, records)
    refused = []
    # Dated in the future when received (kept before HQ refused them on receipt): a store clock at
    # 2099 would make every later real message look older than the session's last change.
    timely = []
    for record in records:
        if in_future(parse_iso(record.at), parse_iso(record.received_at)):
            _mark(record, "refused", f"dated {record.at}, more than 5 minutes after it was received "
                                     f"({record.received_at})")
            ctx.error(record.ref, record.error)
            refused.append(record)
        else:
            timely.append(record)
    before = session.state()
    replay = apply_messages_in_order(before, [StatusMessage.from_record(r.as_record()) for r in timely], try_limit)
    for (_, outcome), record in zip(replay.outcomes, timely, strict=True):
        _mark(record, outcome.kind.value, outcome.error or outcome.note)
        if outcome.kind is OutcomeKind.REFUSED:
            ctx.error(record.ref, outcome.error)
            refused.append(record)
        elif outcome.kind is OutcomeKind.APPLIED:
            ctx.count(written=1)
        else:
            ctx.count(skipped=1)
    actions = [] if replay.state == before else state_actions(replay.state)
    if refused:
        errors = list(session.message_errors or [])
        # A rerun after a crash may refuse the same message again: it is listed once.
        errors += [e for e in ({"at": r.at, "status": r.status, "error": r.error}
                               for r in sorted(refused, key=lambda r: r.at)) if e not in errors]
        actions.append(DownloadSession.message_errors.set(errors[-MESSAGE_ERRORS:]))
    # Suspended and changed: (again) suspended by these messages, a manual retry's failure included.
    suspended = replay.state.status is SessionStatus.SUSPENDED and replay.state != before
    if suspended:
        tally["suspended"] += 1
    return _Unit(session, actions or None, records, replay.state if suspended else None)


def _mark(record, outcome: str, error: str | None) -> None:
    record.outcome, record.error = outcome, error


def _write(ctx: JobContext, units: list[_Unit], retention_days: int, tally: Counter) -> None:
    """Sessions first — conditional updates, 100 a transaction — then their messages marked
    processed (25 a batch). A crash in between leaves the messages pending: replayed next run
    they are older than (or duplicates of) the session's last change, so they change nothing.
    A session changed meanwhile (an operator's cancel) keeps its messages pending for the next run."""
    changed = [unit for unit in units if unit.actions]
    conflicts: set[str] = set()
    for start in range(0, len(changed), MAX_ACTIONS):
        conflicts |= _update_sessions(changed[start:start + MAX_ACTIONS])
    for session_id in sorted(conflicts):
        ctx.warn(f"session {session_id} changed while its messages were applied; they are applied by the next run")
    alerts.record(_suspended_alert(ctx, unit.session, unit.suspended) for unit in changed
                  if unit.suspended is not None and unit.session.session_id not in conflicts)
    processed_at = iso()
    done = []
    for unit in units:
        if unit.session is not None and unit.session.session_id in conflicts:
            tally["retry"] += len(unit.messages)
            continue
        for record in unit.messages:
            record.pending, record.processed_at = None, processed_at
            record.expires = timedelta(days=retention_days)
            done.append(record)
    write_all(StatusMessageRecord, puts=done)


def _update_sessions(units: list[_Unit]) -> set[str]:
    """Update the sessions in one transaction; on a version conflict, each alone. Returns the
    ids of the sessions that changed since they were read."""
    try:
        with transaction() as t:
            for unit in units:
                t.update(unit.session, actions=list(unit.actions))  # PynamoDB appends to the list
        return set()
    except faults.ConditionFailed:
        pass
    if len(units) == 1:
        return {units[0].session.session_id}
    return set().union(*(_update_sessions([unit]) for unit in units))


def _suspended_alert(ctx: JobContext, session, state) -> alerts.Alert:
    """A session the messages suspended (one alert per suspension: a session retried by hand and
    suspended again raises another)."""
    return alerts.new_alert(
        alert_id(SESSION_SUSPENDED, session.session_id, iso(state.changed_at)), SESSION_SUSPENDED,
        f"session {session.session_id} ({session.data_group}, seq {session.seq}) of store {session.store_id} "
        f"suspended after {state.try_count} failed tries: {state.message or 'no message'}",
        job=ctx.run.job, store_id=session.store_id, run_id=ctx.run_id, subject_id=session.session_id)


def _flag_stale(ctx: JobContext, hours: int) -> list:
    """Flag sessions unchanged for ``hours``; each newly stale one raises an alert (one per
    session and last change: a session that moves on and goes stale again raises another)."""
    cutoff = iso(utcnow() - timedelta(hours=hours))
    stale, newly = [], []
    for status in ("Available", "Requested"):
        for session in sessions_changed_before(status, cutoff):
            stale.append(session)
            if session.stale or ctx.dry_run:
                continue
            # refused: it changed, it is not stale
            if update_if(session, [DownloadSession.stale.set(True)], None):
                newly.append(session)
    alerts.record(alerts.new_alert(
        alert_id(SESSION_STALE, s.session_id, s.changed_at), SESSION_STALE,
        f"session {s.session_id} ({s.data_group}, seq {s.seq}) of store {s.store_id} is stale: {s.status} "
        f"since {s.changed_at}, more than {hours} hour(s)",
        job=ctx.run.job, store_id=s.store_id, run_id=ctx.run_id, subject_id=s.session_id) for s in newly)
    return sorted(stale, key=lambda s: (s.store_id, s.seq))


def _purge(ctx: JobContext, days: int) -> int:
    cutoff = iso(utcnow() - timedelta(days=days))
    purged = 0
    for status in sorted(FINAL_STATUSES):
        batch: list = []
        for session in sessions_changed_before(status.value, cutoff):
            batch.append(session)
            if len(batch) == 100:
                purged += _purge_batch(ctx, batch)
                batch = []
        purged += _purge_batch(ctx, batch)
    return purged


def _purge_batch(ctx: JobContext, batch: list) -> int:
    if batch and not ctx.dry_run:
        # Objects first: a crash in between leaves sessions whose (missing) objects are deleted again.
        delete_packages([s.package for s in batch if s.package])
        write_all(DownloadSession, deletes=batch)
        ctx.checkpoint()
    return len(batch)
