"""Generate account activity (DOMAIN §3, §13): per export profile, the debit and credit totals of
every mapped account from the day after its previous result through the profile's yesterday, and
an *adjustment* result for ledger lines that arrived late for dates already covered.

What a profile's results hold is exact (DOMAIN §13 "Late ledger lines"): ledger lines carry a
sequence number per legal entity, and the profile's cursor records through which number every
line was seen. A run reads each legal entity's lines numbered after that (a query on the
``by_seq`` index, never a scan), stops at the first hole (a posting not yet visible belongs to the
next run) and sorts each line: dated in the new range → the normal result; dated in a range
already covered → the adjustment ``<profile>-<from>-<to>-adj<n>``; dated after yesterday → left
for a later run. The results and the moved cursor are written in one transaction, conditioned on
the cursor being where the run found it, so a second run the same day makes no second adjustment.

A profile with ``legal_entity`` adds only that company's lines; one without adds every company's,
and is refused when their stores use several currencies. Explicit ``from_date``/``to_date`` make a
*restatement*: the range's totals as of now (read by date), flagged as such in the result and its
file, outside the chain — it never moves the cursor, so normal results and adjustments still add
up to the ledger exactly once.

The plans are fixed by the first invocation and kept in the run's state with the running totals,
so a continuation neither moves a range nor counts a ledger line twice.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from chalicelib.domain.account_activity import (
    AccountExportProfile,
    AccountTotal,
    ChainCursor,
    DateRange,
    LineFate,
    adjustment_id,
    complete_blocks,
    line_fate,
    requested_range,
    result_lines,
    unbalanced_warning,
)
from chalicelib.domain.account_activity import LedgerLine as Line
from chalicelib.jobs.runtime import JobContext
from chalicelib.storage import account_activity as results
from chalicelib.storage import ledger, records
from chalicelib.storage.account_activity import AccountActivityCursor
from chalicelib.storage.base import utcnow
from chalicelib.storage.ledger import LedgerLine, legal_entities

PAGE = 1000


def now() -> datetime:
    """The moment the run plans at (each profile's today is taken from it); tests move it."""
    return utcnow()


def run(ctx: JobContext) -> str:
    if "plans" not in ctx.state:
        ctx.state["plans"] = _plans(ctx)
    plans = ctx.state["plans"]
    if not plans:
        return "nothing to do: every profile has results through yesterday and no late ledger line"
    if ctx.state.get("restatement"):
        return _restate(ctx, plans)
    _read_sequence(ctx, plans)
    return _write_chain(ctx, plans)


# --- planning -------------------------------------------------------------------------------------

def _plans(ctx: JobContext) -> list[dict]:
    """One plan per profile in scope: its range, legal entities and cursor (ranges checked first,
    so a bad override fails the run before anything is read)."""
    wanted = ctx.params.get("profile_ids")
    if wanted:
        found = records.get_by_ids("account-export-profiles", wanted)
        for missing in sorted(set(wanted) - set(found)):
            ctx.error(missing, "no account export profile with this id")
        profiles = [found[p] for p in sorted(found)]
    else:
        profiles = sorted(records.scan_entity("account-export-profiles"), key=lambda r: r["id"])
    from_date, to_date = (_date(ctx.params.get(name)) for name in ("from_date", "to_date"))
    restatement = bool(from_date or to_date)
    ctx.state["restatement"] = restatement
    moment = now()

    currencies: dict[str, set[str]] = {entity: set() for entity in legal_entities()}
    for store in records.scan_entity("stores"):
        currencies.setdefault(store.get("legal_entity") or "-", set()).add(store.get("currency") or "USD")
    heads = results.cursors([p["id"] for p in profiles])
    tag = ctx.run_id.rsplit("-", 1)[-1]
    plans = []
    for record in profiles:
        profile = AccountExportProfile.from_record(record)
        entities = [profile.legal_entity] if profile.legal_entity else sorted(currencies)
        spread = sorted(set().union(*(currencies.get(e, set()) for e in entities)))
        if len(spread) > 1:
            ctx.error(profile.id, f"refused: its stores use several currencies ({', '.join(spread)}) and a result "
                                  "never adds two; set legal_entity on the profile (one profile per company)")
            continue
        head = heads.get(profile.id)
        previous = head.to_domain().to_date if head else results.latest_to_date(profile.id)
        span = requested_range(profile, previous, profile.today(moment), from_date, to_date)
        plan = {"profile": record, "entities": entities, "currency": spread[0] if spread else None,
                "version": int(head.version) if head else 0,
                "cursor": _dump_cursor(head.to_domain()) if head else {"to_date": _iso(previous)},
                "to_date": (profile.today(moment) - timedelta(days=1)).isoformat()}
        if span is not None:
            plan.update(from_date=span.from_date.isoformat(), to_date=span.to_date.isoformat(),
                        result_id=results.result_id(profile.id, span.from_date, span.to_date,
                                                    tag if restatement else None))
        elif restatement:
            continue
        plans.append(plan)
    return plans


# --- the chain: normal results and adjustments ----------------------------------------------------

def _read_sequence(ctx: JobContext, plans: list[dict]) -> None:
    """Read every legal entity's lines numbered after the lowest cursor of the plans using it,
    page by page; each plan sorts the lines past its own cursor. Totals ride in the checkpoint."""
    entities = sorted({e for plan in plans for e in plan["entities"]})
    starts = {e: min(_cursor(p).first_unread(e) for p in plans if e in p["entities"]) for e in entities}
    ctx.state.setdefault("reached", {e: starts[e] - 1 for e in entities})
    ctx.state.setdefault("acc", {p["profile"]["id"]: _new_accumulator() for p in plans})
    if not entities:
        return
    for entity, reached, lines in ctx.pages("ledger", lambda cursor: _sequence_page(cursor, entities, starts)):
        for plan in plans:
            if entity in plan["entities"]:
                _sort_lines(plan, ctx.state["acc"][plan["profile"]["id"]], entity, lines)
        ctx.state["reached"][entity] = max(ctx.state["reached"][entity], reached)
        ctx.count(read=len(lines))


def _sequence_page(cursor: dict | None, entities: list[str], starts: dict) -> tuple[tuple, dict | None]:
    """The complete statement blocks of one page of one legal entity, from a number on; the next
    cursor continues after them, or moves to the next legal entity at a hole or the end."""
    index, first = (cursor["i"], cursor["from"]) if cursor else (0, starts[entities[0]])
    entity = entities[index]
    found, more = ledger.lines_from(entity, first, PAGE)  # through the module: tests stand in for the index
    blocks = complete_blocks((Line.from_record(line.to_dict()) for line in found), first)
    if more and not blocks.gap and blocks.lines:
        following = {"i": index, "from": blocks.reached + 1}
    elif index + 1 < len(entities):
        following = {"i": index + 1, "from": starts[entities[index + 1]]}
    else:
        following = None
    return (entity, blocks.reached, blocks.lines), following


def _sort_lines(plan: dict, acc: dict, entity: str, lines: list) -> None:
    profile = AccountExportProfile.from_record(plan["profile"])
    cursor = _cursor(plan)
    first = cursor.first_unread(entity)
    to_date = date.fromisoformat(plan["to_date"])
    for line in lines:
        if line.seq < first:
            continue
        fate = line_fate(line, cursor, profile.start_date, to_date)
        if fate is LineFate.NORMAL:
            _add(acc["normal"], line)
        elif fate is LineFate.LATE:
            _add(acc["late"], line)
            acc["late_lines"] += 1
            day = line.posting_date.isoformat()
            acc["late_from"] = min(acc["late_from"] or day, day)
            acc["late_to"] = max(acc["late_to"] or day, day)
        elif fate is LineFate.DEFERRED:
            acc["deferred"][entity] = min(acc["deferred"].get(entity, line.seq), line.seq)
        if fate in (LineFate.NORMAL, LineFate.LATE) and line.currency:
            acc["currencies"] = sorted({*acc["currencies"], line.currency})


def _write_chain(ctx: JobContext, plans: list[dict]) -> str:
    created, existing, late_lines = [], [], 0
    for plan in plans:
        profile = AccountExportProfile.from_record(plan["profile"])
        acc = ctx.state["acc"][profile.id]
        cursor = _cursor(plan)
        if len(acc["currencies"]) > 1:
            ctx.error(profile.id, f"refused: its ledger lines are in several currencies "
                                  f"({', '.join(acc['currencies'])}); set legal_entity on the profile")
            continue
        through = {e: max(cursor.through.get(e, 0), ctx.state["reached"][e]) for e in plan["entities"]}
        common = {"legal_entity": profile.legal_entity, "currency": plan["currency"], "sequence_through": through}
        items = []
        if "result_id" in plan:
            totals = _load(acc["normal"])
            items.append(results.new_result(
                profile.id, plan["result_id"], date.fromisoformat(plan["from_date"]),
                date.fromisoformat(plan["to_date"]), ctx.run_id, result_lines(profile, totals),
                warning=unbalanced_warning(profile, totals), **common))
        if acc["late_lines"]:
            late_lines += acc["late_lines"]
            dates = DateRange(date.fromisoformat(acc["late_from"]), date.fromisoformat(acc["late_to"]))
            totals = _load(acc["late"])
            items.append(results.new_result(
                profile.id, adjustment_id(profile.id, dates, cursor.adjustments + 1), dates.from_date,
                dates.to_date, ctx.run_id, result_lines(profile, totals), adjustment=True,
                late_lines=acc["late_lines"], warning=unbalanced_warning(profile, totals), **common))
        if not items:
            ctx.count(skipped=1)
            continue
        head = AccountActivityCursor(
            profile.id, to_date=plan["to_date"] if "result_id" in plan else _iso(cursor.to_date),
            through=through, reread_from={e: min(acc["deferred"].get(e, through[e] + 1), through[e] + 1)
                                          for e in plan["entities"]},
            adjustments=cursor.adjustments + (1 if acc["late_lines"] else 0), run_id=ctx.run_id,
            updated_at=utcnow().isoformat())
        if not ctx.dry_run and not results.commit_chain(items, head, plan["version"]):
            existing += [item.result_id for item in items]
            continue
        for item in items:
            created.append(f"{item.result_id} ({item.from_date}..{item.to_date}, {len(item.lines)} lines)")
            if item.warning:
                ctx.warn(f"{item.result_id} {item.warning}")
    ctx.count(written=0 if ctx.dry_run else len(created), skipped=len(existing))
    return _summary(ctx, created, existing, late_lines)


# --- restatements: an explicit range, outside the chain ------------------------------------------

def _restate(ctx: JobContext, plans: list[dict]) -> str:
    """Totals of each plan's range as of now, read by posting date (the ``by_date`` index)."""
    ctx.state.setdefault("acc", {p["profile"]["id"]: _new_accumulator() for p in plans})
    first = min(p["from_date"] for p in plans)
    last = max(p["to_date"] for p in plans)
    for day, page in ctx.pages("ledger", lambda cursor: _date_page(cursor, first, last)):
        for plan in plans:
            entity = plan["profile"].get("legal_entity")
            if plan["from_date"] <= day <= plan["to_date"]:
                for line in page:
                    if not entity or line.legal_entity == entity:
                        _add(ctx.state["acc"][plan["profile"]["id"]]["normal"], line)
        ctx.count(read=len(page))
    created, existing = [], []
    for plan in plans:
        profile = AccountExportProfile.from_record(plan["profile"])
        totals = _load(ctx.state["acc"][profile.id]["normal"])
        warning = unbalanced_warning(profile, totals)
        span = f"{plan['result_id']} ({plan['from_date']}..{plan['to_date']}, restatement)"
        if ctx.dry_run or results.create(profile.id, plan["result_id"], date.fromisoformat(plan["from_date"]),
                                         date.fromisoformat(plan["to_date"]), ctx.run_id,
                                         result_lines(profile, totals), restatement=True, warning=warning,
                                         legal_entity=profile.legal_entity, currency=plan["currency"]):
            created.append(span)
            if warning:
                ctx.warn(f"{plan['result_id']} {warning}")
        else:
            existing.append(plan["result_id"])
    ctx.count(written=0 if ctx.dry_run else len(created), skipped=len(existing))
    return _summary(ctx, created, existing, None)


def _date_page(cursor: dict | None, first: str, last: str) -> tuple[tuple[str, list], dict | None]:
    """One page of one posting date's ledger lines, and the cursor of the next page or date."""
    day, key = (cursor["day"], cursor["key"]) if cursor else (first, None)
    page = LedgerLine.by_date.query(day, limit=PAGE, page_size=PAGE, last_evaluated_key=key)
    lines = [Line.from_record(line.to_dict()) for line in page]
    if len(lines) == PAGE and page.last_evaluated_key:
        return (day, lines), {"day": day, "key": page.last_evaluated_key}
    following = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    return (day, lines), ({"day": following, "key": None} if following <= last else None)


# --- helpers --------------------------------------------------------------------------------------

def _summary(ctx: JobContext, created: list[str], existing: list[str], late_lines: int | None) -> str:
    verb = "would create" if ctx.dry_run else "created"
    if created:
        parts = [f"{verb} {len(created)} result(s): {', '.join(created)}"]
    elif existing:
        parts = [f"{verb} no result"]
    else:
        parts = ["nothing to do: every profile has results through yesterday"]
    if existing:
        parts.append(f"already generated: {', '.join(existing)}")
    if late_lines is not None:
        parts.append(f"{late_lines} late ledger line(s) for dates already covered")
    parts.append(f"{ctx.counters.get('read', 0)} ledger line(s) read")
    return "; ".join(parts)


def _new_accumulator() -> dict:
    return {"normal": {}, "late": {}, "late_lines": 0, "late_from": None, "late_to": None, "deferred": {},
            "currencies": []}


def _add(totals: dict, line) -> None:
    """Every account, mapped or not: the unmapped ones name an unbalanced result's gap."""
    debit, credit = totals.get(line.main_account, ("0", "0"))
    totals[line.main_account] = [str(Decimal(debit) + line.debit), str(Decimal(credit) + line.credit)]


def _load(saved: dict) -> dict:
    return {account: AccountTotal(Decimal(debit), Decimal(credit)) for account, (debit, credit) in saved.items()}


def _cursor(plan: dict):
    saved = plan["cursor"]
    return ChainCursor(_date(saved.get("to_date")), saved.get("through", {}), saved.get("reread_from", {}),
                       saved.get("adjustments", 0))


def _dump_cursor(cursor) -> dict:
    return {"to_date": _iso(cursor.to_date), "through": dict(cursor.through),
            "reread_from": dict(cursor.reread_from), "adjustments": cursor.adjustments}


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
