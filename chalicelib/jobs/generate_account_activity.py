"""Generate account activity (DOMAIN §3): per export profile, the debit and credit totals of every
mapped account from the day after its previous result through yesterday.

The plans (profile, range, result id) are fixed by the first invocation and kept in the run's
state together with the running totals, so a continuation after midnight neither moves a range nor
counts a ledger line twice. The ledger is read once per posting date for all profiles (the
``by_date`` index, never a scan); nothing is written until every total is complete, then one
conditional put per result: a default range has a deterministic result id, so two runs the same
day leave one result.
"""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from chalicelib.jobs.registry import Job, Param, Resources, register
from chalicelib.jobs.runtime import JobContext
from chalicelib.storage.account_activity import AccountActivityResult
from chalicelib.storage.base import utcnow
from chalicelib.storage.ledger import LedgerLine

PAGE = 1000


def today() -> date:
    """The business date (UTC); its ledger lines are never in a result. Tests move it."""
    return utcnow().date()


def run(ctx: JobContext) -> str:
    from chalicelib.domain.account_activity import AccountExportProfile, result_lines
    from chalicelib.storage import account_activity as results

    if "plans" not in ctx.state:
        ctx.state["plans"] = _plans(ctx)
    plans = ctx.state["plans"]
    if not plans:
        return "nothing to do: every profile has results through yesterday"
    totals = _read_ledger(ctx, plans)
    created, existing = [], []
    for plan in plans:
        profile = AccountExportProfile.from_record(plan["profile"])
        lines = result_lines(profile, totals[plan["result_id"]])
        span = f"{plan['result_id']} ({plan['from_date']}..{plan['to_date']}, {len(lines)} lines)"
        if ctx.dry_run or results.create(profile.id, plan["result_id"], date.fromisoformat(plan["from_date"]),
                                         date.fromisoformat(plan["to_date"]), ctx.run_id, lines):
            created.append(span)
        else:
            existing.append(plan["result_id"])
    ctx.count(written=0 if ctx.dry_run else len(created), skipped=len(existing))
    verb = "would create" if ctx.dry_run else "created"
    parts = [f"{verb} {len(created)} result(s): {', '.join(created)}" if created else f"{verb} no result"]
    if existing:
        parts.append(f"already generated: {', '.join(existing)}")
    parts.append(f"{ctx.counters.get('read', 0)} ledger line(s) read")
    return "; ".join(parts)


def _plans(ctx: JobContext) -> list[dict]:
    """One plan per profile with something to do: its range and result id (ranges checked first,
    so a bad override fails the run before anything is read)."""
    from chalicelib.domain.account_activity import AccountExportProfile, requested_range
    from chalicelib.storage import account_activity as results
    from chalicelib.storage import records

    wanted = ctx.params.get("profile_ids")
    if wanted:
        found = records.get_by_ids("account-export-profiles", wanted)
        for missing in sorted(set(wanted) - set(found)):
            ctx.error(missing, "no account export profile with this id")
        profiles = list(found.values())
    else:
        profiles = list(records.scan_entity("account-export-profiles"))
    from_date, to_date = (_date(ctx.params.get(name)) for name in ("from_date", "to_date"))
    # An explicit range is a regeneration: a new result (tagged with this run), never an edited one.
    tag = ctx.run_id.rsplit("-", 1)[-1] if from_date or to_date else None
    business_date = today()
    plans = []
    for record in sorted(profiles, key=lambda r: r["id"]):
        profile = AccountExportProfile.from_record(record)
        span = requested_range(profile, results.latest_to_date(profile.id), business_date, from_date, to_date)
        if span is None:
            ctx.count(skipped=1)
            continue
        plans.append({"profile": record, "from_date": span.from_date.isoformat(),
                      "to_date": span.to_date.isoformat(),
                      "result_id": results.result_id(profile.id, span.from_date, span.to_date, tag)})
    return plans


def _read_ledger(ctx: JobContext, plans: list[dict]) -> dict:
    """Totals per result id and main account, adding each posting date's lines to the plans whose
    range holds that date; the totals ride in the checkpoint after every page."""
    from chalicelib.domain.account_activity import AccountExportProfile, LedgerLine, accumulate

    totals = _load_totals(ctx.state.get("totals"), plans)
    mapped = {p["result_id"]: AccountExportProfile.from_record(p["profile"]).mapped_accounts for p in plans}
    first = min(p["from_date"] for p in plans)
    last = max(p["to_date"] for p in plans)

    for day, page in ctx.pages("ledger", lambda cursor: _ledger_page(cursor, first, last)):
        lines = [LedgerLine.from_record(line.to_dict()) for line in page]
        for plan in plans:
            if plan["from_date"] <= day <= plan["to_date"]:
                accumulate(totals[plan["result_id"]], lines, mapped[plan["result_id"]])
        ctx.count(read=len(lines))
        ctx.state["totals"] = _dump_totals(totals)
    return totals


def _ledger_page(cursor: dict | None, first: str, last: str) -> tuple[tuple[str, list], dict | None]:
    """One page of one posting date's ledger lines, and the cursor of the next page or date."""
    from chalicelib.storage.ledger import LedgerLine

    day, key = (cursor["day"], cursor["key"]) if cursor else (first, None)
    page = LedgerLine.by_date.query(day, limit=PAGE, page_size=PAGE, last_evaluated_key=key)
    lines = list(page)
    if len(lines) == PAGE and page.last_evaluated_key:
        return (day, lines), {"day": day, "key": page.last_evaluated_key}
    following = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    return (day, lines), ({"day": following, "key": None} if following <= last else None)


def _load_totals(saved: dict | None, plans: list[dict]) -> dict:
    from chalicelib.domain.account_activity import AccountTotal

    saved = saved or {}
    return {p["result_id"]: {account: AccountTotal(Decimal(debit), Decimal(credit))
                             for account, (debit, credit) in saved.get(p["result_id"], {}).items()}
            for p in plans}


def _dump_totals(totals: dict) -> dict:
    return {result: {account: [str(t.debit), str(t.credit)] for account, t in accounts.items()}
            for result, accounts in totals.items()}


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


JOB = register(Job(
    name="generate-account-activity",
    title="Generate account activity",
    description="Adds up ledger debits and credits per mapped account for each account export profile, "
                "from the day after its previous result through yesterday (today is never included).",
    schedule="cron(0 2 * * ? *)",
    run=run,
    params={
        "profile_ids": Param("ids", help="only these account export profiles"),
        "from_date": Param("date", help="regenerate from this date (creates a new result)"),
        "to_date": Param("date", help="regenerate through this date, before today (creates a new result)"),
    },
    resources=Resources(tables={AccountActivityResult: "write", LedgerLine: "read"}),
))
