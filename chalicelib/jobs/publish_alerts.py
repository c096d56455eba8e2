"""Publish alerts (issue 15): the hourly digest of the alerts recorded since the last one.

Reads exactly the alerts not yet published (the sparse ``unpublished`` index of
``storage/alerts.py``), groups them by kind and job (or store) and publishes one SNS message per
group to ``ALERTS_TOPIC_ARN`` (``domain.alerts.digest``: a group too big for one SNS message is
split into numbered parts, none left out); each group's alerts are marked published right after
its message went out. A run that dies between a publish and its mark sends that group's digest
again on the next run: an alert may be told twice, never dropped.
"""
from __future__ import annotations

from chalicelib import settings
from chalicelib.domain.alerts import digest
from chalicelib.jobs.runtime import JobContext, JobFailed
from chalicelib.storage import alerts, notify
from chalicelib.storage.base import iso

PAGE = 500


def run(ctx: JobContext) -> str:
    topic = settings.alerts_topic_arn()
    if not topic:
        raise JobFailed("ALERTS_TOPIC_ARN is not set: there is no topic to publish alerts to")
    pending = [alert.view() for alert in alerts.unpublished(PAGE)]
    ctx.count(read=len(pending))
    messages = digest(pending)
    if ctx.dry_run:
        return f"would publish {len(pending)} alert(s) in {len(messages)} message(s)"
    for message in messages:
        notify.publish(topic, message.subject, message.body)
        alerts.mark_published(list(message.alert_ids), iso())
        ctx.count(written=len(message.alert_ids))
        ctx.checkpoint()  # a continuation reads what is still unpublished
    return f"published {len(pending)} alert(s) in {len(messages)} message(s)"
