"""What ``make fuzz`` found, each reproduced: on the local stack's HTTP server as ``make serve``
runs it (a fresh process, its own moto, real tokens)."""
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
SERVE = """
import time
from devstack.fuzz import local_api
with local_api() as api:
    print(api.base, api.operator, flush=True)
    time.sleep(600)
"""


@pytest.fixture(scope="module")
def served():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(PROJECT)
    server = subprocess.Popen([sys.executable, "-c", SERVE], cwd=PROJECT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base, token = server.stdout.readline().split()
        yield base, token
    finally:
        server.terminate()
        server.wait(timeout=30)


def send(served, method: str, path: str) -> tuple[int, str, str]:
    base, token = served
    request = urllib.request.Request(f"{base}{path}", method=method,
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_a_method_no_route_has_is_refused_by_the_api_not_answered_501_html(served):
    # found: TRACE on every path answered 501 with http.server's HTML page (a server error)
    for method, path in [("TRACE", "/health"), ("TRACE", "/jobs"), ("PATCH", "/jobs")]:
        status, content_type, body = send(served, method, path)
        assert (status, content_type) == (405, "application/json"), (method, path, body)
        assert method in body
