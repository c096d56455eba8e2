"""The retail parameters record (DOMAIN §11), with working defaults for everything unset."""
from __future__ import annotations

from chalicelib.domain.parameters import parameters_with_defaults
from chalicelib.storage import records


def retail_parameters() -> dict:
    return parameters_with_defaults(records.get("parameters", "default"))
