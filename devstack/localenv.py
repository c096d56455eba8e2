"""The ``local`` stage's environment (from .chalice/config.json), for tests, the local stack and
the benchmark, so they use exactly the settings the Chalice test client applies per invocation."""
from __future__ import annotations

import json
import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def stage_environment(stage: str = "local") -> dict[str, str]:
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env


def apply(stage: str = "local", endpoint: str | None = None) -> None:
    """Set the stage's variables plus fake credentials (and an endpoint) in ``os.environ``."""
    os.environ.update(stage_environment(stage))
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
    if endpoint:
        os.environ["AWS_ENDPOINT_URL"] = endpoint


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB: ``VmHWM`` of ``/proc/self/status``, the high-water
    mark of its own address space. (``ru_maxrss`` would not do for a process the bench starts: Linux
    carries the parent's peak over fork and exec, so a child of a large process reports the
    parent's size.) Elsewhere, ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
