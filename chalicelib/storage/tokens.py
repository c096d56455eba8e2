"""API tokens, stored only as SHA-256 hashes."""
from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from chalicelib.storage.base import meta


class ApiToken(Model):
    Meta = meta("tokens")
    token_hash = UnicodeAttribute(hash_key=True)
    token_id = UnicodeAttribute()  # public handle for listing and revoking; not a secret
    role = UnicodeAttribute()
    store_id = UnicodeAttribute(null=True)
    label = UnicodeAttribute(default="")
    created_at = UnicodeAttribute()
    last_used_at = UnicodeAttribute(null=True)
    revoked_at = UnicodeAttribute(null=True)
    expires_at = UnicodeAttribute(null=True)  # refused from then on; None: until revoked

    def to_api(self) -> dict:
        return {"token_id": self.token_id, "role": self.role, "store_id": self.store_id,
                "label": self.label, "created_at": self.created_at,
                "last_used_at": self.last_used_at, "revoked_at": self.revoked_at, "expires_at": self.expires_at}
