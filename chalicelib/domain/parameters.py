"""The retail parameters (DOMAIN §11): the working default of every value, and a stored record
completed with them.

The ``parameters`` record model (``models/records.py``) takes its defaults from here, so a
record sent without a value and a record never stored read the same.
"""
from __future__ import annotations

import copy

from chalicelib.domain.statements import Tender

DEFAULT_PARAMETERS: dict = {
    "id": "default",
    "receipt_subject": "Your receipt from {store_name}",
    "receipt_file_name": "receipt",
    "company_language": "en-us",
    "receipt_templates": {},
    "accounts": {
        "revenue_default": "401100",
        "tax": "222000",
        Tender.CASH.value: "110100",  # one account per tender: the statement debits it
        Tender.CARD.value: "110200",
        Tender.GIFT_CARD.value: "110300",
    },
    "try_count": 3,
    "stale_after_hours": 24,
    "download_session_retention_days": 30,
    "run_history_retention_days": 90,
    "email_max_attempts": 3,
    "email_expiry_days": 30,
    "max_backdated_days": 60,
}
"""Retail parameters (§11) used for every value the stored record does not set."""


def parameters_with_defaults(record: dict | None) -> dict:
    """The stored parameters record (or ``None``) completed with ``DEFAULT_PARAMETERS``.

    Absent or null values take the default; ``accounts`` is completed account by account.
    ``receipt_templates`` is taken as stored: languages it lacks fall back to the receipt
    module's built-in templates. Returns a fresh dict the caller may change.
    """
    merged = copy.deepcopy(DEFAULT_PARAMETERS)
    for name, value in (record or {}).items():
        if value is None:
            continue
        if name == "accounts" and isinstance(value, dict):
            merged["accounts"].update({k: v for k, v in value.items() if v is not None})
        else:
            merged[name] = copy.deepcopy(value)
    return merged
