"""Adapters from Lambda events to the runtime (kept out of app.py so it stays a table of contents)."""
from __future__ import annotations

import json

from chalicelib.jobs import runtime
from chalicelib.jobs.registry import get_job


def schedule_of(job_name: str) -> str:
    job = get_job(job_name)
    if job is None:
        raise KeyError(f"no job {job_name}")
    return job.schedule


def on_schedule(job_name: str, event) -> dict:
    """A scheduled delivery: the EventBridge event id makes a duplicated delivery find one run."""
    event_id = event.to_dict().get("id") or f"{job_name}#{event.time}"
    return runtime.run_scheduled(job_name, f"schedule#{event_id}", event.context).to_api()


def on_run_job(event: dict, context) -> dict:
    return runtime.run_invoked(event, context)


def on_shard_messages(event) -> None:
    for record in event:
        runtime.run_invoked(json.loads(record.body), getattr(event, "context", None))
