"""Purge run history: deletes finished run records older than the retention period."""
from __future__ import annotations

from datetime import timedelta

from chalicelib.domain.runs import FINAL_STATUSES
from chalicelib.jobs.parameters import retail_parameters
from chalicelib.jobs.registry import all_jobs
from chalicelib.jobs.runtime import JobContext
from chalicelib.storage.base import BatchWriter, iso, utcnow
from chalicelib.storage.runs import RunRecord

PAGE = 200


def run(ctx: JobContext) -> str:
    days = ctx.params.get("older_than_days") or retail_parameters()["run_history_retention_days"]
    cutoff = iso(utcnow() - timedelta(days=days))
    deleted = 0
    for job in all_jobs():
        def fetch(cursor, job=job):
            page = RunRecord.by_job.query(job.name, RunRecord.created_at < cutoff, limit=PAGE,
                                          page_size=PAGE, last_evaluated_key=cursor)
            items = list(page)
            return items, page.last_evaluated_key if len(items) == PAGE else None

        for runs in ctx.pages(f"runs:{job.name}", fetch):
            old = [r for r in runs if r.status in FINAL_STATUSES and r.run_id != ctx.run_id]
            ctx.count(read=len(runs), skipped=len(runs) - len(old))
            if not ctx.dry_run and old:
                with BatchWriter(RunRecord) as batch:
                    for record in old:
                        batch.delete(record)
                ctx.count(written=batch.written)
            deleted += len(old)
    verb = "would delete" if ctx.dry_run else "deleted"
    return f"{verb} {deleted} run record(s) created before {cutoff[:10]} ({days} days)"
