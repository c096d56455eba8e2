"""`make serve` started as a newcomer starts it, for the tests that drive it from outside: a fresh
process (`python -m devstack serve`) with its own moto server, a free port and real tokens, read
from the banner it prints."""
from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]


@dataclass
class Served:
    base: str
    banner: str
    operator: str
    store: str
    store_id: str
    env: dict  # the environment it runs in (no AWS_* of the test's own), for CLIs run beside it
    folder: Path  # where it runs: its local-stack.json and demo-output/


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served(folder: Path, banner_seconds: float = 300) -> Iterator[Served]:
    """Start ``python -m devstack serve`` in ``folder`` and yield once its banner is printed; stop it after."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(PYTHONPATH=str(PROJECT), LOCAL_STACK_FILE=str(folder / "local-stack.json"))
    process = subprocess.Popen([sys.executable, "-m", "devstack", "serve", "--port", str(port)], cwd=folder,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    printed, deadline = [], time.monotonic() + banner_seconds
    try:
        try:
            while not printed or "Ctrl-C stops" not in printed[-1]:
                printed.append(lines.get(timeout=max(1.0, deadline - time.monotonic())))
        except queue.Empty:
            pytest.fail("make serve printed no banner:\n" + "".join(printed))
        banner = "".join(printed)
        operator = re.search(r"operator token (\S+)", banner).group(1)
        store, store_id = re.search(r"store token +(\S+) +\(store (\S+)\)", banner).groups()
        yield Served(f"http://127.0.0.1:{port}", banner, operator, store, store_id, env, folder)
    finally:
        process.terminate()
        process.wait(timeout=60)
