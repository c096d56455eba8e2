"""The crash harness's fixture (one moto per job, hooks installed, Lambda dispatch as deployed) and
the per-job table of crash points printed at the end of the session."""
import json
import os

import pytest

from tests.crash.harness import FAULTS, fresh_clients, install


def pytest_collection_modifyitems(config, items):
    """The crash points take minutes: ``make crash`` runs them (``make test`` checks only that every
    job has a scenario)."""
    if os.environ.get("CRASH_POINTS"):
        return
    skip = pytest.mark.skip(reason="crash points run by make crash (CRASH_POINTS=1)")
    for item in items:
        if item.get_closest_marker("crash"):
            item.add_marker(skip)


@pytest.fixture
def crash_world(aws, monkeypatch):
    from chalice.test import BaseClient, Client

    import app
    from chalicelib import clock
    from devstack import localenv, moto_transactions
    from tests.crash.harness import World

    install()
    fresh_clients()
    # moto writes its item answers with json.dumps (its serializer was half a crash point's time).
    moto_transactions.answer_items_as_json()
    # The receipts scenario's few receipts are a backlog (a page is one): its crash points cover the fan-out.
    monkeypatch.setattr("chalicelib.jobs.send_email_receipts.PAGE", 1)
    deployed = {"RUN_DISPATCH": "lambda"}  # runs hand over through run_job, as on AWS
    patched = BaseClient._patched_env_vars
    monkeypatch.setattr(BaseClient, "_patched_env_vars", lambda self, env: patched(self, {**env, **deployed}))
    clock.reset()
    with Client(app.app, stage_name="local", project_dir=str(localenv.PROJECT_DIR)) as client:
        world = World(client)
        FAULTS.__init__(on_invoke=world._invoked)
        try:
            yield world
        finally:
            FAULTS.__init__()
            clock.reset()
            fresh_clients()
            moto_transactions.uninstall()


def pytest_terminal_summary(terminalreporter):
    rows = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", []):
                if name == "crash_points" and getattr(report, "when", "call") == "call":
                    rows.append(json.loads(value))
    if not rows:
        return
    terminalreporter.section("crash points per job")
    terminalreporter.write_line("calls: AWS calls of the fault-free run; tried: calls x (kill before, kill after, "
                                "throttle); fault-free: crash points that end in the fault-free state; settled: "
                                "simulated time the slowest crash point needed (retries, leases, ticks)")
    terminalreporter.write_line(f"{'job':28} {'calls':>5} {'tried':>6} {'fault-free':>10} {'failed':>6} "
                                f"{'settled s':>9} {'took s':>7}")
    for row in sorted(rows, key=lambda r: r["job"]):
        terminalreporter.write_line(f"{row['job']:28} {row['calls']:>5} {row['tried']:>6} {row['passed']:>10} "
                                    f"{row['tried'] - row['passed']:>6} {row.get('settled_after', 0):>9.0f} "
                                    f"{row['seconds']:>7.1f}")
    total = sum(r["tried"] for r in rows), sum(r["passed"] for r in rows)
    terminalreporter.write_line(f"{'all jobs':28} {'':>5} {total[0]:>6} {total[1]:>10} {total[0] - total[1]:>6}")
