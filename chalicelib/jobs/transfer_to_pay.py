"""Transfer to pay (DOMAIN §2): approved time registrations become payroll CSV files, one per run
and period type, each pay item (worker × pay type × day) exported at most once.

By default each period type transfers its most recently ended period unless a finished transfer
already covers it; ``pay_date`` picks the periods that contain it instead. Registrations are read
once per day of the periods through the ``by_day`` index. Per period type, in this order:
record the transfer ``pending``, mark its pay items, write the file, mark the transfer ``done``.
A later run that finds items of another run's ``pending`` transfer looks for that file: present,
the items were exported; absent, that run died before writing it and the items are exported
again. Runs are single flight; the job lock is renewed (or found lost, ending the run) right
before the items are marked, so two runs never mark and write the same items.

A period with unapproved registrations is refused (the run ends Error naming the workers) unless
``accept_errors``, which exports the approved ones and lists the rest as warnings. Other period
types of the same run are transferred either way.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from chalicelib.jobs.registry import Job, Param, Resources, register
from chalicelib.jobs.runtime import JobContext, JobFailed
from chalicelib.storage.base import utcnow
from chalicelib.storage.pay import PayItem, PayTransfer, TimeRegistration

PERIOD_TYPES = ("weekly", "biweekly", "monthly")


def today() -> date:
    """The business date (UTC): a period ending today has not ended. Tests move it."""
    return utcnow().date()


def run(ctx: JobContext) -> str:
    if "plans" not in ctx.state:
        ctx.state["plans"], ctx.state["outcomes"] = _plans(ctx)
    # A continuation skips the period types transferred before it.
    plans = [p for p in ctx.state["plans"] if p["period_type"] not in ctx.state["outcomes"]]
    if plans:
        workers, pay_types = _master_data()
        registrations = _read_registrations(ctx, plans, workers)
        for plan in plans:
            outcome = _transfer(ctx, plan, workers, pay_types, registrations[plan["period_type"]])
            ctx.checkpoint(outcomes={**ctx.state["outcomes"], plan["period_type"]: outcome})
    outcomes = [ctx.state["outcomes"][t] for t in PERIOD_TYPES if t in ctx.state["outcomes"]]
    message = "; ".join(text for text, _ in outcomes)
    if any(not ok for _, ok in outcomes):
        raise JobFailed(message)
    return message


def _plans(ctx: JobContext) -> tuple[list[dict], dict]:
    """The period of each period type to transfer, and outcomes for the types with nothing to do."""
    from chalicelib.domain.pay import last_ended_period, period_for
    from chalicelib.storage.pay import transfer_done

    requested = ctx.params.get("pay_date")
    plans, outcomes = [], {}
    for period_type in [ctx.params["period_type"]] if ctx.params.get("period_type") else PERIOD_TYPES:
        if requested:
            period, pay_date = period_for(period_type, date.fromisoformat(requested)), requested
            if period.end >= today():
                ctx.warn(f"{_label(period_type, period)} has not ended yet; registrations may still come in")
        else:
            period = last_ended_period(period_type, today())
            pay_date = period.end.isoformat()
            if not ctx.params.get("include_already_exported") and transfer_done(period_type, period.start):
                outcomes[period_type] = (f"{_label(period_type, period)}: already transferred", True)
                continue
        plans.append({"period_type": period_type, "start": period.start.isoformat(),
                      "end": period.end.isoformat(), "pay_date": pay_date})
    return plans, outcomes


def _master_data() -> tuple[dict, dict]:
    from chalicelib.domain.pay import PayType, Worker
    from chalicelib.storage import records

    workers = {w.id: w for w in map(Worker.from_record, records.scan_entity("workers"))}
    pay_types = {t.id: t for t in map(PayType.from_record, records.scan_entity("pay-types"))}
    return workers, pay_types


def _read_registrations(ctx: JobContext, plans: list[dict], workers: dict) -> dict[str, list]:
    """Each plan's registrations: those of its period type's workers on the days of its period."""
    from chalicelib.storage.pay import registrations_on

    windows = {p["period_type"]: (p["start"], p["end"]) for p in plans}
    first, last = min(p["start"] for p in plans), max(p["end"] for p in plans)
    found: dict[str, list] = {p["period_type"]: [] for p in plans}
    unknown = set()
    day = date.fromisoformat(first)
    while day.isoformat() <= last:
        if any(start <= day.isoformat() <= end for start, end in windows.values()):
            for page in registrations_on(day):
                ctx.count(read=len(page))
                for item in page:
                    worker = workers.get(item.worker_id)
                    if worker is None:
                        unknown.add(item.worker_id)
                        continue
                    start, end = windows.get(worker.pay_period_type.value, ("", ""))
                    if start <= item.work_date <= end:
                        found[worker.pay_period_type.value].append(item.to_domain())
        day += timedelta(days=1)
    if unknown:
        ctx.warn("registrations of unknown workers ignored: " + ", ".join(sorted(unknown)[:20]))
    return found


def _transfer(ctx: JobContext, plan: dict, workers: dict, pay_types: dict, registrations: list) -> tuple[str, bool]:
    """Transfer one period type's period; returns (what happened, whether it went through)."""
    from chalicelib.domain.pay import PayPeriod, UnknownPayType, check_unapproved, refusal_message

    period = PayPeriod(date.fromisoformat(plan["start"]), date.fromisoformat(plan["end"]))
    label = _label(plan["period_type"], period)
    unapproved = check_unapproved(registrations)
    if unapproved and not ctx.params.get("accept_errors"):
        return f"{label} refused: {refusal_message(unapproved, period).rstrip('.')}", False
    if unapproved:
        ctx.warn(f"{label}: exported approved registrations only; not approved: "
                 + ", ".join(f"{w} ({n})" for w, n in unapproved.items()))
    try:
        lines = _pay_lines(registrations, workers, pay_types, period, date.fromisoformat(plan["pay_date"]))
    except UnknownPayType as exc:
        return f"{label} refused: {exc}", False
    return _export(ctx, plan, label, lines)


def _pay_lines(registrations: list, workers: dict, pay_types: dict, period, pay_date: date) -> list:
    from chalicelib.domain.pay import daily_hours, pay_lines

    per_worker: dict[str, dict] = defaultdict(dict)
    for (worker_id, day), hours in daily_hours(registrations).items():
        per_worker[worker_id][day] = hours
    lines = []
    for worker_id in sorted(per_worker):
        lines.extend(pay_lines(workers[worker_id], per_worker[worker_id], pay_types, period, pay_date))
    return lines


def _export(ctx: JobContext, plan: dict, label: str, lines: list) -> tuple[str, bool]:
    from chalicelib import settings
    from chalicelib.domain.pay import write_pay_csv
    from chalicelib.storage import exports
    from chalicelib.storage import pay as store
    from chalicelib.storage.base import iso

    observed = store.pay_items(line.item_key for line in lines)
    exported = _already_exported(ctx, observed)
    _warn_changed_since_transfer(ctx, label, lines, observed, exported)
    if ctx.params.get("include_already_exported"):
        todo = lines
    else:
        todo = [line for line in lines if line.item_key not in exported]
    skipped = len(lines) - len(todo)
    ctx.count(skipped=skipped)
    already = f", {skipped} already transferred" if skipped else ""
    if ctx.dry_run:
        return f"{label}: would transfer {len(todo)} line(s){already}", True
    key = f"payroll/{plan['period_type']}/{plan['start']}_{plan['end']}-{ctx.run_id}.csv" if todo else None
    transfer = store.PayTransfer(plan["period_type"], f"{plan['start']}#{ctx.run_id}", run_id=ctx.run_id,
                                 period_start=plan["start"], period_end=plan["end"], pay_date=plan["pay_date"],
                                 status=store.PENDING, export_key=key, lines=len(todo), created_at=iso())
    store.start_transfer(transfer)
    if todo:
        now = iso()
        items = [store.PayItem(line.item_key, worker_id=line.worker_id, pay_type_id=line.pay_type_id,
                               profile_date=line.profile_date.isoformat(), hours=line.hours, amount=line.amount,
                               period_type=plan["period_type"], transfer_id=transfer.transfer_id,
                               run_id=ctx.run_id, export_key=key, transferred_at=now) for line in todo]
        ctx.hold_lock()  # or stop here: another run holds the lock now
        store.mark_transferred(items)
        exports.upload(key, exports.as_text(lambda out: write_pay_csv(todo, out)), "text/csv")
        ctx.output("s3", bucket=settings.data_bucket(), key=key)
    store.finish_transfer(transfer)
    ctx.count(written=len(todo))
    if not todo:
        return f"{label}: nothing to transfer ({len(lines)} pay line(s){already})", True
    return f"{label}: {len(todo)} line(s) to {key}{already}", True


def _already_exported(ctx: JobContext, observed: dict) -> set[str]:
    """Item keys exported by a finished transfer, or by a pending one whose file exists (that run
    died after writing it; its transfer is closed now). This run's own items do not count."""
    from chalicelib.storage import exports
    from chalicelib.storage import pay as store

    others = {k: item for k, item in observed.items() if item.run_id != ctx.run_id}
    found = store.transfers({(item.period_type, item.transfer_id) for item in others.values()})
    exported_by = {}
    for ref, transfer in found.items():
        done = transfer.status == store.DONE or (transfer.export_key and exports.exists(transfer.export_key))
        if done and transfer.status != store.DONE and not ctx.dry_run:
            store.finish_transfer(transfer)
        exported_by[ref] = done
    # A marker whose transfer record is gone counts as exported: never risk paying twice.
    return {k for k, item in others.items() if exported_by.get((item.period_type, item.transfer_id), True)}


def _warn_changed_since_transfer(ctx: JobContext, label: str, lines: list, observed: dict, exported: set) -> None:
    changed = [line for line in lines if line.item_key in exported
               and (observed[line.item_key].hours, observed[line.item_key].amount) != (line.hours, line.amount)]
    if changed and not ctx.params.get("include_already_exported"):
        sample = ", ".join(f"{line.item_key} {observed[line.item_key].hours} h -> {line.hours} h"
                           for line in changed[:5])
        ctx.warn(f"{label}: {len(changed)} transferred pay item(s) changed since ({sample}); "
                 "run with include_already_exported to send them again")


def _label(period_type: str, period) -> str:
    return f"{period_type} {period.start.isoformat()}..{period.end.isoformat()}"


JOB = register(Job(
    name="transfer-to-pay",
    title="Transfer to pay",
    description="Exports approved worked time per worker, pay type and day as a payroll CSV per period type "
                "(default: each type's most recently ended period not yet transferred).",
    schedule="cron(0 3 * * ? *)",
    run=run,
    params={
        "pay_date": Param("date", help="transfer the periods containing this date (default: last ended)"),
        "period_type": Param("choice", choices=PERIOD_TYPES, help="only this pay period type (default: all)"),
        "include_already_exported": Param("bool", default=False, help="export pay items transferred before again"),
        "accept_errors": Param("bool", default=False,
                               help="export approved registrations even if the period has unapproved ones"),
    },
    resources=Resources(tables={PayItem: "write", PayTransfer: "write", TimeRegistration: "read"},
                        objects={"data/payroll/": "write"}),
))
