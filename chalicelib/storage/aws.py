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

from chalicelib.storage import metering

_RETRY = Config(retries={"mode": "standard", "max_attempts": 5})
# A receipt's claim is a lease of the job lock's length (120 s), never renewed: one SES call, its
# retries included, must end well inside it (3 x (5 + 15) s plus backoff: about a minute at worst).
_SERVICE_CONFIG = {"sesv2": _RETRY.merge(Config(connect_timeout=5, read_timeout=15,
                                                 retries={"mode": "standard", "max_attempts": 3}))}
_lock = threading.Lock()
_clients: dict[tuple, object] = {}


def client(service: str):
    """A boto3 client for ``service`` with standard retry mode (SES: bounded below a claim's lease),
    its requests counted for the run that makes them (``storage.metering``)."""
    key = (service, os.environ.get("AWS_DEFAULT_REGION"), os.environ.get("AWS_ENDPOINT_URL"))
    found = _clients.get(key)
    if found is None:
        with _lock:
            found = _clients.get(key)
            if found is None:
                found = boto3.session.Session().client(service, config=_SERVICE_CONFIG.get(service, _RETRY))
                metering.attach(found.meta.events)
                _clients[key] = found
    return found


def reset() -> None:
    """Forget cached clients (tests start a fresh moto between cases)."""
    with _lock:
        _clients.clear()
