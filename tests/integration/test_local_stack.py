"""The local stack's moto process (the bench's): it never outlives the stack, even when the stack is killed."""
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
HOLD_STACK = """
import time
from devstack.stack import local_stack
with local_stack(moto_process=True) as stack:
    print(stack.server.port, flush=True)
    time.sleep(300)
"""


def test_a_terminated_stack_stops_its_moto_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(PROJECT)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_STACK], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(holder.stdout.readline())
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # moto is up

        holder.send_signal(signal.SIGTERM)  # what kill or a CI timeout sends

        assert holder.wait(timeout=30) == 128 + signal.SIGTERM
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        holder.kill()
        holder.wait()
