"""Every job, killed or throttled at every AWS call of its fault-free run, ends where the
fault-free run ends once AWS has redelivered, retried and ticked (see ``harness``)."""
import json

import pytest

from tests.crash.harness import Crashes
from tests.crash.scenarios import SCENARIOS


def catalog_jobs() -> list[str]:
    """The job table: every job the application lists (test-only jobs excluded)."""
    from chalicelib.jobs.registry import all_jobs

    return [job.name for job in all_jobs() if job.implementation.startswith("chalicelib.jobs.")]


def test_every_job_has_a_crash_scenario():
    missing = [job for job in catalog_jobs() if job not in SCENARIOS]
    assert not missing, f"jobs without a crash scenario in tests/crash/scenarios.py: {missing}"


@pytest.mark.crash
@pytest.mark.parametrize("job", catalog_jobs())
def test_every_crash_point_ends_in_the_fault_free_state(job, crash_world, record_property):
    scenario = SCENARIOS.get(job)
    if scenario is None:
        pytest.fail(f"no crash scenario for job {job}")
    outcome = Crashes(crash_world, scenario).run()
    record_property("crash_points", json.dumps({"job": job, "calls": len(outcome.calls), "tried": outcome.tried,
                                                "passed": outcome.passed, "seconds": outcome.seconds,
                                                "settled_after": outcome.settled_after}))
    assert outcome.tried > 0
    assert not outcome.failures, f"{job}: {len(outcome.failures)} of {outcome.tried} crash points end elsewhere:\n" \
        + "\n".join(outcome.failures)
