"""PLACEHOLDER until branch ``models-data`` lands with the record models: ``ENTITY_MODELS`` maps
each ``/data/{entity}`` to the model of its records (the OpenAPI document names them)."""
from __future__ import annotations

from pydantic import ConfigDict

from chalicelib.domain.schemas import ENTITIES
from chalicelib.models.base import StrictModel


class AnyRecord(StrictModel):
    """Any JSON object (the records' own models replace it)."""

    model_config = ConfigDict(extra="allow")


ENTITY_MODELS: dict[str, type[StrictModel]] = dict.fromkeys(ENTITIES, AnyRecord)
