"""API tokens: minted once, stored only as SHA-256 hashes, checked by the API's authorizer.

Roles: ``operator`` (HQ staff: every route) and ``store`` (one store: ``/stores/<its id>/...``).
A token may expire (``expires_in``: people's tokens should); an expired one is refused like an
unknown one.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from datetime import timedelta

from chalicelib.domain.errors import FieldError, ValidationError
from chalicelib.storage.base import iso, utcnow
from chalicelib.storage.tokens import ApiToken

ROLES = ("operator", "store")
TOKEN_PREFIX = "rs_"
# last_used_at is bookkeeping, not security: refreshed at most this often per token.
_LAST_USED_RESOLUTION = 300
_last_used_written: dict[str, float] = {}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_DURATION = re.compile(r"([1-9][0-9]{0,5})([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
MAX_LIFETIME = timedelta(days=366)


def parse_duration(text: str, field: str = "expires_in") -> timedelta:
    """``30m``, ``12h``, ``7d``: a token's lifetime (a year at most); a clear error naming ``field``."""
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    lifetime = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))}) if match else None
    if lifetime is None or lifetime > MAX_LIFETIME:
        raise ValidationError([FieldError(field, "must be minutes, hours or days such as 30m, 12h or 7d, "
                                                 "at most 366d")])
    return lifetime


def issue_token(role: str, store_id: str | None = None, label: str = "", expires_in: timedelta | None = None) -> str:
    """Mint a token and return it; only its hash is stored, so this is the one time it is seen.
    With ``expires_in`` it is refused once that time has passed.

    >>> token = issue_token("store", store_id="S001", label="POS S001")
    >>> token = issue_token("operator", label="Ana", expires_in=parse_duration("12h"))
    """
    if role not in ROLES:
        raise ValidationError([FieldError("role", f"must be one of {', '.join(ROLES)}")])
    if role == "store" and not store_id:
        raise ValidationError([FieldError("store_id", "is required for a store token")])
    if role == "operator" and store_id:
        raise ValidationError([FieldError("store_id", "an operator token is not tied to a store")])
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ApiToken(hash_token(token), token_id=uuid.uuid4().hex[:16], role=role, store_id=store_id,
             label=label, created_at=iso(), expires_at=iso(utcnow() + expires_in) if expires_in else None,
             ).save(condition=ApiToken.token_hash.does_not_exist())
    return token


def verify(token: str) -> ApiToken | None:
    """The live token record for ``token``, or None when unknown, revoked or expired."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = hash_token(token)
    try:
        record = ApiToken.get(digest)
    except ApiToken.DoesNotExist:
        return None
    if record.revoked_at or (record.expires_at and record.expires_at <= iso()):
        return None
    now = time.time()
    if now - _last_used_written.get(digest, 0) > _LAST_USED_RESOLUTION:
        record.update(actions=[ApiToken.last_used_at.set(iso())])
        _last_used_written[digest] = now
    return record


def list_tokens() -> list[dict]:
    # An admin listing of a small table; not on any hot path.
    return sorted((t.to_api() for t in ApiToken.scan()), key=lambda t: t["created_at"])


def revoke(token_id: str) -> dict | None:
    """Revoke the token ``token_id``; its record as revoked, or None when there is no such token."""
    for record in ApiToken.scan(ApiToken.token_id == token_id):
        if not record.revoked_at:
            record.update(actions=[ApiToken.revoked_at.set(iso())])
        return record.to_api()
    return None
