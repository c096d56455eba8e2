"""A store posts status messages about its download sessions (DOMAIN §9, §13).

What can be decided on receipt is decided on receipt and answered per message: a malformed
message, one naming an unknown session or a session of another store, and one whose ``at`` is
more than 5 minutes in the future (a store clock set to 2099 would otherwise freeze its
session: every real message after it looks older) are refused in the response, with the field
named, and not stored. The rest are kept as received for process-status-messages. Only the
envelope (not a list, empty, more than 1,000: the route's model) is all or nothing (400).
"""
from __future__ import annotations

from chalicelib.domain.errors import FieldError


def receive(store_id: str, messages: list) -> dict:
    """Keep the acceptable messages; returns ``{"accepted": n, "rejected": [{index, session_id, errors}]}``."""
    from chalicelib.domain.days import MAX_FUTURE, in_future
    from chalicelib.domain.schemas import parse_datetime, validate
    from chalicelib.storage.base import iso, utcnow, write_all
    from chalicelib.storage.download_sessions import StatusMessageRecord, get_sessions, new_message

    now = utcnow()
    rejected, valid = [], []
    for i, message in enumerate(messages):
        path = f"messages[{i}]"
        cleaned, errors = validate("status-messages", message, path)
        if cleaned is not None and in_future(parse_datetime(cleaned["at"]), now):
            minutes = int(MAX_FUTURE.total_seconds() // 60)
            errors = [FieldError(f"{path}.at", f"{cleaned['at']} is more than {minutes} minutes in the future "
                                               f"(HQ time {iso(now)}); check the store's clock")]
        if errors:
            session_id = message.get("session_id") if isinstance(message, dict) else None
            rejected.append(_rejection(i, session_id, errors))
        else:
            valid.append((i, cleaned))
    sessions = get_sessions({m["session_id"] for _, m in valid})
    kept = []
    for i, message in valid:
        session = sessions.get(message["session_id"])
        problem = ("unknown session" if session is None
                   else "session of another store" if session.store_id != store_id else None)
        if problem:
            error = FieldError(f"messages[{i}].session_id", f"{problem}: {message['session_id']}")
            rejected.append(_rejection(i, message["session_id"], [error]))
        else:
            kept.append(message)
    received_at = iso(now)
    write_all(StatusMessageRecord, puts=[new_message(store_id, m, received_at) for m in kept])
    return {"accepted": len(kept), "rejected": sorted(rejected, key=lambda r: r["index"])}


def _rejection(index: int, session_id: object, errors: list[FieldError]) -> dict:
    return {"index": index, "session_id": session_id if isinstance(session_id, str) else None,
            "errors": [e.to_dict() for e in errors]}
