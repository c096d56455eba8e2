"""``python -m devstack importtime [--runs N]``: what ``import app`` costs beside the libraries it
cannot avoid (chalice, pynamodb.models, boto3), measured side by side in one run.

Each sample is a fresh interpreter (a Lambda cold start imports everything once); the two
statements alternate so that both see the same machine load, and the medians are compared. The
goal (issue 14) is a ratio of at most 1.3.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = "import app"
LIBRARIES = "import chalice, pynamodb.models, boto3"
GOAL = 1.3


def sample(statement: str) -> float:
    """Seconds a fresh interpreter takes to run ``statement`` (start-up included)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION",
                                                                                           "us-east-1")}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True, cwd=ROOT, env=env)
    return time.perf_counter() - started


def measure(runs: int) -> tuple[float, float]:
    """Median seconds of ``import app`` and of its libraries, ``runs`` alternating samples each."""
    sample(APP)  # compile the bytecode once, outside the samples
    app, libraries = [], []
    for _ in range(runs):
        libraries.append(sample(LIBRARIES))
        app.append(sample(APP))
    return statistics.median(app), statistics.median(libraries)


def main(runs: int = 21) -> int:
    app, libraries = measure(runs)
    ratio = app / libraries
    print(f"{LIBRARIES}: median {libraries * 1000:.0f} ms")
    print(f"{APP}: median {app * 1000:.0f} ms")
    print(f"ratio {ratio:.2f} (goal ≤ {GOAL}; {runs} fresh interpreters each, alternating)")
    return 0
