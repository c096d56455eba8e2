"""Alerts (``domain/alerts.py``): events that need a person, kept for the console and the digest.

Table ``alerts`` keyed by ``alert_id`` (derived from what the alert is about, so recording the
same event again is a put refused by its condition, never a second alert). Indexes, each serving
one query:

- ``by_status`` (``status``, ``created_at``): the open (or acknowledged) alerts newest first,
  ``GET /alerts``.
- ``unpublished`` (sparse: ``unpublished``, ``created_at``): only alerts not yet in a digest carry
  ``unpublished``; ``publish_alerts`` reads exactly those and removes the attribute (setting
  ``published_at``) once their message went out.

An acknowledged alert expires through DynamoDB's TTL ``RETENTION_AFTER_ACK`` after it was acknowledged.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta

from pynamodb.attributes import TTLAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.domain.alerts import ACKNOWLEDGED, OPEN, AlertView, plain
from chalicelib.storage.base import iso, meta, save_if, update_if
from chalicelib.storage.transact import MAX_ACTIONS, Put, Update, write_transaction

RETENTION_AFTER_ACK = timedelta(days=30)
PENDING = "pending"  # the one value of ``unpublished``: the sparse index's single partition


class AlertsByStatus(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_status"
        projection = AllProjection()

    status = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class UnpublishedAlerts(GlobalSecondaryIndex):
    class Meta:
        index_name = "unpublished"
        projection = AllProjection()

    unpublished = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class Alert(Model):
    """One alert: ``kind`` (``domain.alerts.KINDS``), what it is about (job, store, run, subject)
    and a plain-text ``message``."""

    Meta = meta("alerts")
    alert_id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()
    job = UnicodeAttribute(null=True)
    store_id = UnicodeAttribute(null=True)
    run_id = UnicodeAttribute(null=True)
    subject_id = UnicodeAttribute(null=True)
    message = UnicodeAttribute()
    created_at = UnicodeAttribute()
    status = UnicodeAttribute(default=OPEN)
    unpublished = UnicodeAttribute(null=True)
    published_at = UnicodeAttribute(null=True)
    acknowledged_at = UnicodeAttribute(null=True)
    acknowledged_by = UnicodeAttribute(null=True)
    expires = TTLAttribute(null=True)
    by_status = AlertsByStatus()
    unpublished_index = UnpublishedAlerts()

    def to_api(self) -> dict:
        return {"alert_id": self.alert_id, "kind": self.kind, "job": self.job, "store_id": self.store_id,
                "run_id": self.run_id, "subject_id": self.subject_id, "message": self.message,
                "created_at": self.created_at, "status": self.status, "published_at": self.published_at}

    def view(self) -> AlertView:
        return AlertView(self.alert_id, self.kind, self.job, self.store_id, self.run_id, self.subject_id,
                         self.message, self.created_at)


def new_alert(alert_id: str, kind: str, message: str, *, job: str | None = None, store_id: str | None = None,
              run_id: str | None = None, subject_id: str | None = None) -> Alert:
    """An open alert not yet published (``alert_id`` from ``domain.alerts.alert_id``)."""
    return Alert(alert_id, kind=kind, job=job, store_id=store_id, run_id=run_id, subject_id=subject_id,
                 message=plain(message), created_at=iso(), status=OPEN, unpublished=PENDING)


def first_time(alert: Alert) -> Put:
    """The put of ``alert`` for a transaction: refused if the alert was recorded before."""
    return Put(alert, Alert.alert_id.does_not_exist())


def record(alerts: Iterable[Alert]) -> int:
    """Save each alert unless it was recorded before (one conditional put each); returns how many
    were new."""
    return sum(save_if(alert, Alert.alert_id.does_not_exist()) for alert in alerts)


MAX_ID_BYTES = 1024  # DynamoDB refuses a key over 2048 bytes (a 500); no alert id comes near


def get_alert(alert_id: str) -> Alert | None:
    if len(alert_id.encode()) > MAX_ID_BYTES:
        return None
    try:
        return Alert.get(alert_id, consistent_read=True)
    except Alert.DoesNotExist:
        return None


def by_status(status: str, limit: int, cursor: dict | None):
    """One status's alerts newest first (a PynamoDB result: iterate it, then ``last_evaluated_key``)."""
    return Alert.by_status.query(status, scan_index_forward=False, limit=limit, page_size=limit,
                                 last_evaluated_key=cursor)


def count(status: str) -> int:
    """How many alerts have ``status`` (a counting query of ``by_status``)."""
    return Alert.by_status.count(status)


def created_after(status: str, after: str) -> list[Alert]:
    """One status's alerts created after ``after`` (an ISO time), oldest first."""
    return list(Alert.by_status.query(status, Alert.created_at > after))


def acknowledge(alert_id: str, by: str) -> Alert | None:
    """Acknowledge an open alert (it expires ``RETENTION_AFTER_ACK`` later); an acknowledged one is
    answered as it is. None when there is no such alert."""
    alert = get_alert(alert_id)
    if alert is None or alert.status == ACKNOWLEDGED:
        return alert
    actions = [Alert.status.set(ACKNOWLEDGED), Alert.acknowledged_at.set(iso()), Alert.acknowledged_by.set(by),
               Alert.expires.set(RETENTION_AFTER_ACK)]
    update_if(alert, actions, Alert.status == OPEN)  # refused: acknowledged meanwhile, just as well
    return get_alert(alert_id)


def unpublished(page_size: int) -> Iterator[Alert]:
    """Every alert not yet in a digest, oldest first (the sparse ``unpublished`` index)."""
    yield from Alert.unpublished_index.query(PENDING, page_size=page_size)


def mark_published(alert_ids: list[str], at: str) -> None:
    """Take the alerts off the ``unpublished`` index: 100 to a transaction (an alert expired
    meanwhile is not brought back)."""
    for start in range(0, len(alert_ids), MAX_ACTIONS):
        updates = [Update(Alert(alert_id), [Alert.published_at.set(at), Alert.unpublished.remove()],
                          Alert.alert_id.exists()) for alert_id in alert_ids[start:start + MAX_ACTIONS]]
        if write_transaction(updates=updates):
            for update in updates:  # one alert gone (its TTL): mark the others one by one
                update_if(update.item, update.actions, update.condition)
