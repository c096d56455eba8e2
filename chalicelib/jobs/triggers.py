"""Adapters from Lambda events to the runtime (kept out of app.py so it stays a table of contents).

``app.py`` imports this module, so every function does at its cold start (the token authorizer
and ``api_handler`` included): the runtime, the job table and the storage models are imported by
the handlers that use them, not here.
"""
from __future__ import annotations

import json
from urllib.parse import unquote_plus

from chalice.app import S3Event


def on_schedule(job_name: str, event) -> dict:
    """A scheduled delivery: the EventBridge event id makes a duplicated delivery find one run."""
    from chalicelib.jobs import runtime  # off the cold start of functions that run no job

    event_id = event.to_dict().get("id") or f"{job_name}#{event.time}"
    return runtime.run_scheduled(job_name, f"schedule#{event_id}", event.context).to_api()


def on_run_job(event: dict, context) -> dict:
    from chalicelib.jobs import runtime  # off the cold start of functions that run no job

    return runtime.run_invoked(event, context)


def on_shard_messages(event) -> None:
    from chalicelib.jobs import runtime  # off the cold start of functions that run no job

    for record in event:
        runtime.run_invoked(json.loads(record.body), getattr(event, "context", None))


class MigrationDropEvent(S3Event):
    """Chalice's ``S3Event`` reads ``Records[0]`` as it is built, so S3's ``s3:TestEvent`` (no
    records) would fail before the handler runs; this one lets it through to be ignored."""

    def _extract_attributes(self, event_dict: dict) -> None:
        s3 = ((event_dict.get("Records") or [{}])[0]).get("s3") or {}
        self.bucket = (s3.get("bucket") or {}).get("name")
        self.key = unquote_plus((s3.get("object") or {}).get("key") or "")


def on_migration_files(event) -> dict:
    """Files dropped in the migration bucket: every record of the raw event (see migration_drops)."""
    from chalicelib.jobs.migration_drops import handle_drop_event

    return handle_drop_event(event.to_dict(), event.context)
