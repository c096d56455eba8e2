"""Routes of alerts (``storage/alerts.py``): the list an operator (and the console's banner) reads,
and acknowledging one."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.http.common import NotFound, operation, principal, query_response

bp = Blueprint(__name__)


@operation(bp, "GET", "/alerts", query="AlertsQuery", response="AlertList", order="newest first (by created_at)")
def list_alerts(query):
    """Alerts of one status, ``open`` (the default) or ``acknowledged``."""
    from chalicelib.storage import alerts

    return query_response("alerts", alerts.by_status(query.status, query.limit, query.cursor), query.limit)


@operation(bp, "POST", "/alerts/{alert_id}/acknowledge", body="NoBody", response="Alert", errors=(404,))
def acknowledge_alert(alert_id, body):
    """Acknowledge an alert (again: the alert as it is); it expires 30 days later."""
    from chalicelib.storage import alerts

    alert = alerts.acknowledge(alert_id, principal(bp.current_request).token_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    return alert.to_api()
