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
    """Base of every error the domain and jobs layers raise on purpose. Each class declares the
    HTTP status and error code it is answered with (``http/common.api``); 400 unless it says so."""

    http_status = 400
    code = "invalid_request"


class NotFoundError(DomainError):
    """The thing the request names does not exist (→ 404)."""

    http_status = 404
    code = "not_found"


class ConflictError(DomainError):
    """The thing's state does not allow the request (→ 409)."""

    http_status = 409
    code = "conflict"


class ValidationError(DomainError):
    """Input rejected; ``errors`` names every offending field."""

    code = "invalid_input"

    def __init__(self, errors: list[FieldError], message: str = "invalid input"):
        super().__init__(message)
        self.errors = errors
        self.message = message
