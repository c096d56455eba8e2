"""The one place that creates AWS clients.

Clients are created lazily, after configuration, and cached per (service, region, endpoint) so a
changed environment (tests, the local stack) gets fresh clients. Endpoints come only from the
standard ``AWS_ENDPOINT_URL``/``AWS_DEFAULT_REGION`` variables that botocore reads itself.
"""
from __future__ import annotations

import os
import threading

import boto3
from botocore.config import Config

_RETRY = Config(retries={"mode": "standard", "max_attempts": 5})
_lock = threading.Lock()
_clients: dict[tuple, object] = {}


def client(service: str):
    """A boto3 client for ``service`` with standard retry mode."""
    key = (service, os.environ.get("AWS_DEFAULT_REGION"), os.environ.get("AWS_ENDPOINT_URL"))
    found = _clients.get(key)
    if found is None:
        with _lock:
            found = _clients.get(key)
            if found is None:
                found = boto3.session.Session().client(service, config=_RETRY)
                _clients[key] = found
    return found


def reset() -> None:
    """Forget cached clients (tests start a fresh moto between cases)."""
    with _lock:
        _clients.clear()
