"""PLACEHOLDER until branch ``models-data`` lands with the upload models: ``UPLOAD_MODELS`` maps
each kind of record a store uploads (or migration stages) to its model."""
from __future__ import annotations

from chalicelib.models.base import StrictModel
from chalicelib.models.records import AnyRecord

UPLOAD_MODELS: dict[str, type[StrictModel]] = dict.fromkeys(
    ("transactions", "time-registrations", "status-messages", "inventory"), AnyRecord)
