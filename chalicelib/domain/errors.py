"""Domain exceptions and the field error every validator reports."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field; ``path`` is dotted with list indexes, e.g. ``items[3].price``."""

    path: str
    message: str

    def to_dict(self) -> dict:
        return {"field": self.path, "message": self.message}


class DomainError(Exception):
    """Base of every error the domain layer raises on purpose."""


class ValidationError(DomainError):
    """Input rejected; ``errors`` names every offending field."""

    def __init__(self, errors: list[FieldError], message: str = "invalid input"):
        super().__init__(message)
        self.errors = errors
        self.message = message
