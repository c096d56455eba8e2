"""What a store's upload did with each record (DOMAIN §13 "Uploads are per record").

**Decision — the canonical record.** Two uploads of a transaction are the same when their
*cleaned* records are equal: the record after schema validation (every declared field present,
optional ones ``null``, date-times normalised to UTC milliseconds, decimals exact), written as
JSON with sorted keys, no spaces and decimals as their text. ``canonical_hash`` is the SHA-256 of
that text; it is stored on the transaction (``content_hash``). So key order, whitespace or a
``+01:00`` offset for the same instant do not make a conflict, while ``"5.0"`` against ``"5.00"``
does (the POS sent other text for the amount).

Outcomes: ``accepted`` (new), ``duplicates`` (same id, same canonical record: nothing changes),
``conflicts`` (same id, other content: not applied, kept as an upload issue for operators),
``rejected`` (invalid: field reasons, kept as an upload issue).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


def _text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def canonical_hash(record: dict) -> str:
    """SHA-256 hex of the canonical JSON of a cleaned (or stored) transaction record."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_text)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class UploadOutcome:
    """The per-record answer of one upload, in the order of the request."""

    accepted: int = 0
    duplicates: int = 0
    conflicts: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)

    def reject(self, index: int, transaction_id: str | None, errors: list[dict], issue_id: str) -> None:
        self.rejected.append({"index": index, "transaction_id": transaction_id, "issue_id": issue_id,
                              "errors": errors})

    def conflict(self, index: int, transaction_id: str, issue_id: str, message: str) -> None:
        self.conflicts.append({"index": index, "transaction_id": transaction_id, "issue_id": issue_id,
                               "message": message})

    def to_api(self) -> dict:
        return {"accepted": self.accepted, "duplicates": self.duplicates,
                "conflicts": sorted(self.conflicts, key=lambda c: c["index"]),
                "rejected": sorted(self.rejected, key=lambda r: r["index"])}
