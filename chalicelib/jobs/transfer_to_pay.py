"""Transfer to pay (DOMAIN §2, §13 "Late pay lines"): approved time registrations become payroll
CSV files, one per run, period type and period; payroll receives each pay item (worker × pay type
× day) once, and a correction when it changes.

Without ``pay_date`` a run transfers, for every *ended* period, every pay item not yet transferred
— not only the latest period. It finds them through the pay backlog (``storage.pay``: entries
written on every upload and approval, naming a worker's days), so it reads only the days that
changed, never all history: one query per period type for the backlog, one ``by_day`` query per
changed day (shared by every period type), a batch get of those days' transferred markers. A
period has ended when it has ended in the time zone of every store whose workers it holds
(a US store's Sunday ends hours after a UTC one's). ``pay_date`` picks the periods that contain it
instead and reads all their days; ``include_already_exported`` without ``pay_date`` re-exports
each type's most recently ended period (the original behaviour).

The first file of a period is ``payroll/<type>/<start>_<end>-<run id>.csv``. Registrations
approved after their period went out go in a *supplementary* file for that period,
``<start>_<end>-supplement-<n>.csv`` (``n`` counts the period's earlier files, so it never
overwrites one); a pay item that changed since it was sent is reversed (negative hours and
amount, as sent) and sent anew. The run's message says how many late lines it sent.

Per period, in this order: record the transfer ``pending``, mark its pay items (with what payroll
had before), write the file, mark the transfer ``done``; the backlog entries it settled are
deleted last. The record is written before the file, so every file has one. Any later run (a
resumed one or a new run id) first settles the period's ``pending`` transfers by their file: present,
the transfer is marked ``done`` and its items were exported; absent, the run that started it died
before writing it, payroll still has the items' previous state, and this run writes the period's
next file under that transfer's id and file name (so a crash never turns a first file into a
supplement, nor leaves an orphan object). Runs are single flight; the job lock is renewed (or found lost,
ending the run) right before the items are marked, so two runs never mark and write the same items.

A period with unapproved registrations waits (nothing of it goes out; a warning names the period
and the workers) unless ``accept_errors``, which exports the approved ones and lists the rest as
warnings. Other periods go out either way; the run ends ``Error`` only when something waited or
failed and nothing went out.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from chalicelib import clock, settings
from chalicelib.domain.alerts import PAY_PERIOD_REFUSED, alert_id
from chalicelib.domain.days import store_zone
from chalicelib.domain.pay import (
    ExportedItem,
    PayLine,
    PayPeriod,
    PayPeriodType,
    PayType,
    UnknownPayType,
    Worker,
    check_unapproved,
    daily_hours,
    last_ended_period,
    pay_lines,
    period_for,
    reconcile,
    write_pay_csv,
)
from chalicelib.jobs.runtime import JobContext, JobFailed
from chalicelib.storage import alerts, exports, records
from chalicelib.storage import pay as store
from chalicelib.storage.base import iso, utcnow
from chalicelib.storage.pay import registrations_on

PERIOD_TYPES = tuple(period.value for period in PayPeriodType)
SENT, NOTHING, WAITING, REFUSED = "sent", "nothing", "waiting", "refused"


def now() -> datetime:
    """The run's wall clock (UTC, aware): which periods have ended depends on it. Tests move it."""
    return utcnow()


def run(ctx: JobContext) -> str:
    workers, pay_types, zones = _master_data()
    plans, entries = _plans(ctx, workers, zones)
    outcomes: dict = ctx.state.get("outcomes", {})
    days: dict[str, list] = {}  # registrations read per day, shared by the period types
    for plan in plans:
        if plan["id"] in outcomes:  # a continuation skips the periods transferred before it
            continue
        registrations = _read_registrations(ctx, plan, workers, days)
        outcome = _transfer(ctx, plan, workers, pay_types, registrations)
        if outcome["status"] in (WAITING, REFUSED) and not ctx.dry_run:
            _alert_refused(ctx, plan, outcome)
        outcomes[plan["id"]] = outcome
        ctx.checkpoint(outcomes=outcomes)
    if entries and not ctx.dry_run:
        _clear_settled(ctx, entries, outcomes, workers)
    message = _summary(plans, outcomes)
    statuses = {outcome["status"] for outcome in outcomes.values()}
    if statuses & {WAITING, REFUSED} and SENT not in statuses:
        raise JobFailed(message)
    return message


def _alert_refused(ctx: JobContext, plan: dict, outcome: dict) -> None:
    """A period held back (unapproved registrations, DOMAIN §2's refusal) or refused: one alert
    per run and period, naming the workers by id."""
    period = f"{plan['period_type']} {plan['start']}..{plan['end']}"
    if outcome["status"] == WAITING:
        text = (f"{period} refused: registrations of worker(s) {', '.join(outcome['held'])} are not approved; "
                "approve them or run with accept_errors")
    else:
        text = outcome["text"]
    alerts.record([alerts.new_alert(alert_id(PAY_PERIOD_REFUSED, ctx.run_id, plan["id"]), PAY_PERIOD_REFUSED,
                                    text, job=ctx.run.job, run_id=ctx.run_id, subject_id=period)])


def _summary(plans: list[dict], outcomes: dict) -> str:
    """One text per period that sent or was refused; periods that wait are the run's warnings;
    periods of the backlog with nothing new are counted, not listed."""
    texts, quiet, quiet_lines = [], 0, 0
    for plan in plans:
        outcome = outcomes[plan["id"]]
        if outcome["status"] == NOTHING and plan["scope"] is not None:
            quiet, quiet_lines = quiet + 1, quiet_lines + outcome.get("lines", 0)
        elif outcome["text"]:
            texts.append(outcome["text"])
    if quiet:
        texts.append(f"nothing new to transfer in {quiet} other period(s) "
                     f"({quiet_lines} pay line(s) already transferred)")
    if not plans:
        texts.append("nothing to transfer: no approved registration of an ended period waits")
    return "; ".join(texts)


# --- which periods ----------------------------------------------------------------------------------

def _plans(ctx: JobContext, workers: dict, zones: dict) -> tuple[list[dict], list]:
    """The periods to transfer, each with the workers' days to look at (``None``: all of them),
    and the backlog entries read (empty when ``pay_date`` names the periods)."""
    types = [ctx.params["period_type"]] if ctx.params.get("period_type") else list(PERIOD_TYPES)
    earliest_today = min([_local_today(zone) for zone in zones.values()] + [_local_today(None)])
    if ctx.params.get("pay_date") or ctx.params.get("include_already_exported"):
        plans = []
        for period_type in types:
            if ctx.params.get("pay_date"):
                period = period_for(period_type, date.fromisoformat(ctx.params["pay_date"]))
                pay_date = ctx.params["pay_date"]
                if period.end >= earliest_today:
                    ctx.warn(f"{_label(period_type, period)} has not ended yet; registrations may still come in")
            else:
                period = last_ended_period(period_type, earliest_today)
                pay_date = period.end.isoformat()
            plans.append(_plan(period_type, period, pay_date, None))
        return plans, []
    return _backlog_plans(ctx, types, workers, zones)


def _backlog_plans(ctx: JobContext, types: list[str], workers: dict, zones: dict) -> tuple[list[dict], list]:
    latest_today = max([_local_today(zone) for zone in zones.values()] + [_local_today(None)])
    entries, unknown = [], set()
    scopes: dict[tuple[str, date], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    # Entries are filed under the worker's period type when written; a worker whose type changed
    # since is read under every type, so the whole backlog is read whatever ``period_type`` asks.
    for filed_under in PERIOD_TYPES:
        bound = period_for(filed_under, latest_today).start.isoformat()
        for entry in store.backlog(filed_under, bound):
            entries.append(entry)
            worker = workers.get(entry.worker_id)
            if worker is None:
                unknown.add(entry.worker_id)
                continue
            period_type = worker.pay_period_type.value
            for day in entry.days:
                scopes[(period_type, period_for(period_type, date.fromisoformat(day)))][entry.worker_id].add(day)
    if unknown:
        ctx.warn("registrations of unknown workers wait: " + ", ".join(sorted(unknown)[:20]))
    plans = []
    for (period_type, period), scope in sorted(scopes.items(), key=lambda item: (item[0][1].start, item[0][0])):
        if period_type not in types:
            continue
        stores = {workers[w].store_id for w in scope}
        if any(period.end >= _local_today(zones.get(s)) for s in stores):
            continue  # not ended everywhere its workers work: the next run takes it
        plans.append(_plan(period_type, period, period.end.isoformat(),
                           {w: sorted(days) for w, days in sorted(scope.items())}))
    return plans, entries


def _plan(period_type: str, period, pay_date: str, scope: dict | None) -> dict:
    return {"id": f"{period_type}#{period.start.isoformat()}", "period_type": period_type,
            "start": period.start.isoformat(), "end": period.end.isoformat(), "pay_date": pay_date,
            "scope": scope}


def _local_today(zone) -> date:
    return now().astimezone(zone or UTC).date()


def _master_data() -> tuple[dict, dict, dict]:
    workers = {w.id: w for w in map(Worker.from_record, records.scan_entity("workers"))}
    pay_types = {t.id: t for t in map(PayType.from_record, records.scan_entity("pay-types"))}
    stores_of_workers = {w.store_id for w in workers.values()}
    zones = {s["id"]: store_zone(s) for s in records.scan_entity("stores") if s["id"] in stores_of_workers}
    return workers, pay_types, zones


def _read_registrations(ctx: JobContext, plan: dict, workers: dict, cache: dict) -> list:
    """The plan's registrations: those of its workers on its days (``by_day``, each day read once)."""
    scope = plan["scope"]
    if scope is None:
        start, end = date.fromisoformat(plan["start"]), date.fromisoformat(plan["end"])
        days = [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    else:
        days = sorted({day for worker_days in scope.values() for day in worker_days})
    found, unknown = [], set()
    for day in days:
        if day not in cache:
            cache[day] = []
            for page in registrations_on(date.fromisoformat(day)):
                ctx.count(read=len(page))
                cache[day].extend(page)
        for item in cache[day]:
            worker = workers.get(item.worker_id)
            if worker is None:
                unknown.add(item.worker_id)
            elif scope is None:
                if worker.pay_period_type.value == plan["period_type"]:
                    found.append(item.to_domain())
            elif day in scope.get(item.worker_id, ()):
                found.append(item.to_domain())
    if unknown:
        ctx.warn("registrations of unknown workers ignored: " + ", ".join(sorted(unknown)[:20]))
    return found


# --- one period ---------------------------------------------------------------------------------------

def _transfer(ctx: JobContext, plan: dict, workers: dict, pay_types: dict, registrations: list) -> dict:
    """Transfer one period type's period; returns its outcome (text, status, workers held back)."""
    period = PayPeriod(date.fromisoformat(plan["start"]), date.fromisoformat(plan["end"]))
    label = _label(plan["period_type"], period)
    unapproved = check_unapproved(registrations)
    named = ", ".join(f"{w} ({n})" for w, n in unapproved.items())
    if unapproved and not ctx.params.get("accept_errors"):
        ctx.warn(f"{label} waits for approval of registrations of workers {named} (nothing of it was "
                 "transferred); approve them or run with accept_errors to export the approved ones")
        return {"text": "", "status": WAITING, "held": sorted(unapproved)}
    if unapproved:
        ctx.warn(f"{label}: exported approved registrations only; not approved: {named}")
    try:
        lines, evaluated = _pay_lines(plan, registrations, workers, pay_types, period)
    except UnknownPayType as exc:
        return {"text": f"{label} refused: {exc}", "status": REFUSED, "held": []}
    outcome = _export(ctx, plan, label, period, lines, evaluated, workers, pay_types)
    return {**outcome, "held": sorted(unapproved)}


def _pay_lines(plan: dict, registrations: list, workers: dict, pay_types: dict, period) -> tuple[list, set]:
    """The period's pay lines now, and the pay items looked at: (worker, pay type, day) for each
    worker-day in scope (an item with no line now may have been sent before)."""
    per_worker: dict[str, dict] = defaultdict(dict)
    for (worker_id, day), hours in daily_hours(registrations).items():
        per_worker[worker_id][day] = hours
    exported_types = [t.id for t in pay_types.values() if t.include_in_export]
    worker_days = {(r.worker_id, day) for r in registrations for day in [r.work_date] if day}
    for worker_id, days in (plan["scope"] or {}).items():
        worker_days.update((worker_id, date.fromisoformat(day)) for day in days)
    evaluated = {(w, t, day) for w, day in worker_days if period.start <= day <= period.end for t in exported_types}
    pay_date = date.fromisoformat(plan["pay_date"])
    lines = []
    for worker_id in sorted(per_worker):
        lines.extend(pay_lines(workers[worker_id], per_worker[worker_id], pay_types, period, pay_date))
    return lines, evaluated


def _export(ctx: JobContext, plan: dict, label: str, period, lines: list, evaluated: set,
            workers: dict, pay_types: dict) -> dict:
    keys = {PayLine.key(*item) for item in evaluated} | {line.item_key for line in lines}
    observed = store.pay_items(keys)
    exported = _exported_state(ctx, observed)
    pay_date = date.fromisoformat(plan["pay_date"])
    if ctx.params.get("include_already_exported"):
        todo, reversals = lines, 0
    else:
        todo, reversals = reconcile(lines, exported, evaluated | {(ln.worker_id, ln.pay_type_id, ln.profile_date)
                                                                   for ln in lines},
                                    workers, pay_types, period, pay_date)
    unchanged = len(lines) - (len(todo) - reversals)
    ctx.count(skipped=unchanged)
    already = f", {unchanged} already transferred" if unchanged else ""
    earlier, abandoned = _earlier_files(ctx, plan)
    supplement = bool(earlier) and not ctx.params.get("include_already_exported")
    if ctx.dry_run:
        return {"text": f"{label}: would transfer {len(todo)} line(s){already}", "status": SENT if todo else NOTHING}
    if not todo:
        return {"text": f"{label}: nothing to transfer ({len(lines)} pay line(s){already})", "status": NOTHING,
                "lines": len(lines)}
    base = f"payroll/{plan['period_type']}/{plan['start']}_{plan['end']}"
    key = f"{base}-supplement-{len(earlier)}.csv" if supplement else f"{base}-{ctx.run_id}.csv"
    transfer_id = f"{plan['start']}#{ctx.run_id}"
    if abandoned is not None:  # a dead run's transfer that wrote no file: this run finishes it, under its name
        key, transfer_id = abandoned.export_key, abandoned.transfer_id
    transfer = store.PayTransfer(plan["period_type"], transfer_id, run_id=ctx.run_id,
                                 period_start=plan["start"], period_end=plan["end"], pay_date=plan["pay_date"],
                                 status=store.PENDING, export_key=key, lines=len(todo), created_at=iso())
    store.start_transfer(transfer)
    stamp = iso()
    final = {line.item_key: line for line in todo}  # a reversal and its new line: the new line wins
    items = []
    for item_key, line in final.items():
        before = exported.get(item_key)
        sent = line if line.hours >= 0 else None  # reversed only: payroll has nothing of it now
        items.append(store.PayItem(
            item_key, worker_id=line.worker_id, pay_type_id=line.pay_type_id,
            profile_date=line.profile_date.isoformat(), hours=sent.hours if sent else 0, rate=line.rate,
            amount=sent.amount if sent else 0, prev_hours=before.hours if before else None,
            prev_amount=before.amount if before else None, prev_rate=before.rate if before else None,
            period_type=plan["period_type"], transfer_id=transfer.transfer_id, run_id=ctx.run_id,
            export_key=key, transferred_at=stamp))
    unmarked = []
    if abandoned is not None:  # what the dead run marked that this file does not send goes back
        restored, unmarked = _restore_unsent(observed, final, transfer, key, stamp)
        items += restored
    ctx.hold_lock()  # or stop here: another run holds the lock now
    store.mark_transferred(items, unmarked)
    exports.upload(key, exports.as_text(lambda out: write_pay_csv(todo, out)), "text/csv")
    ctx.output("s3", bucket=settings.data_bucket(), key=key)
    store.finish_transfer(transfer)
    ctx.count(written=len(todo))
    if supplement:
        corrected = f" ({reversals} reversal(s) of changed pay items)" if reversals else ""
        return {"text": f"{plan['period_type']}: {len(todo)} late pay line(s) for {plan['start']}..{plan['end']} "
                        f"in a supplementary file {key}{corrected}", "status": SENT}
    return {"text": f"{label}: {len(todo)} line(s) to {key}{already}", "status": SENT}


def _restore_unsent(observed: dict, final: dict, transfer, key: str, stamp: str) -> tuple[list, list]:
    """The markers a dead run wrote for the transfer this run takes over that its file will not
    hold (the registration changed since): put back to what payroll has (their previous state),
    or deleted when payroll has nothing of them, so the transfer's ``done`` claims only what it sent."""
    puts, deletes = [], []
    for item_key, item in observed.items():
        if item_key in final or (item.period_type, item.transfer_id) != (transfer.period_type, transfer.transfer_id):
            continue
        if item.prev_hours is None:
            deletes.append(item)
            continue
        puts.append(store.PayItem(
            item_key, worker_id=item.worker_id, pay_type_id=item.pay_type_id, profile_date=item.profile_date,
            hours=item.prev_hours, amount=item.prev_amount, rate=item.prev_rate, prev_hours=item.prev_hours,
            prev_amount=item.prev_amount, prev_rate=item.prev_rate, period_type=item.period_type,
            transfer_id=transfer.transfer_id, run_id=transfer.run_id, export_key=key, transferred_at=stamp))
    return puts, deletes


def _earlier_files(ctx: JobContext, plan: dict) -> tuple[list, object]:
    """The period's files already sent, and the transfer a dead run left ``pending`` without its
    file (``None``: none). A pending transfer whose file exists was sent: it is marked ``done``
    here, whoever started it. One whose file is missing is the period's next file still to write:
    the run that writes it now takes its transfer id and file name, so a run that died mid-export
    leaves neither a second name for the same file nor an orphan object."""
    sent, abandoned = [], None
    for transfer in store.period_transfers(plan["period_type"], plan["start"]):
        if not transfer.export_key:
            continue
        if transfer.status == store.DONE:
            sent.append(transfer)
        elif exports.exists(transfer.export_key):
            if not ctx.dry_run:
                store.finish_transfer(transfer)
            sent.append(transfer)
        elif abandoned is None:
            abandoned = transfer
    return sent, abandoned


def _exported_state(ctx: JobContext, observed: dict) -> dict:
    """What payroll has of each observed pay item (``ExportedItem``): the item as marked if its
    transfer finished, or is pending with its file in S3 (that run died after writing it; its
    transfer is closed now), else what it had before (that run died before writing its file)."""
    others = observed  # this run's own items too: a resumed run counts what it already sent
    found = store.transfers({(item.period_type, item.transfer_id) for item in others.values()})
    sent_by = {}
    for ref, transfer in found.items():
        done = transfer.status == store.DONE or (transfer.export_key and exports.exists(transfer.export_key))
        if done and transfer.status != store.DONE and not ctx.dry_run:
            store.finish_transfer(transfer)
        sent_by[ref] = done
    state = {}
    for key, item in others.items():
        # A marker whose transfer record is gone counts as sent: never risk paying twice.
        if sent_by.get((item.period_type, item.transfer_id), True):
            state[key] = ExportedItem(item.hours, item.amount, item.rate)
        elif item.prev_hours is not None:
            state[key] = ExportedItem(item.prev_hours, item.prev_amount, item.prev_rate)
    return state


def _clear_settled(ctx: JobContext, entries: list, outcomes: dict, workers: dict) -> None:
    """Delete the backlog entries whose days all went out (or had nothing new) this run, once
    they are older than the index lag they wait for; the rest stay for the next run."""
    # The wall clock the entries were stamped with (``now()`` is the business clock).
    settled_before = iso(datetime.fromtimestamp(clock.now(), UTC) - timedelta(seconds=store.SETTLE_SECONDS))
    settled = []
    for entry in entries:
        worker = workers.get(entry.worker_id)
        if worker is None or entry.created_at > settled_before:
            continue
        period_type = worker.pay_period_type.value
        done = True
        for day in entry.days:
            outcome = outcomes.get(f"{period_type}#{period_for(period_type, date.fromisoformat(day)).start}")
            if not outcome or outcome["status"] not in (SENT, NOTHING) or entry.worker_id in outcome["held"]:
                done = False
                break
        if done:
            settled.append(entry)
    store.clear_backlog(settled)


def _label(period_type: str, period) -> str:
    return f"{period_type} {period.start.isoformat()}..{period.end.isoformat()}"
