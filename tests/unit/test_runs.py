"""Run statuses, their moves and the outcome decisions of the runtime (pure: no AWS, no moto)."""
import pytest

from chalicelib.domain.runs import (
    FINAL_STATUSES,
    LATE_CANCEL,
    OPEN_STATUSES,
    RunStatus,
    allowed,
    cancel_message,
    claimed_status,
    executing_elsewhere,
    fan_out_outcome,
    finishing_from,
    is_final,
    late_cancel,
    must_resume,
    retry_outcome,
)

S = RunStatus


def test_the_statuses_are_ax_batch_statuses_and_compare_as_their_words():
    assert [s.value for s in S] == ["Waiting", "Executing", "Cancelling", "Ended", "Error", "Canceled", "NotRun"]
    assert S.NOT_RUN == "NotRun" and f"{S.ENDED}" == "Ended"
    assert FINAL_STATUSES | set(OPEN_STATUSES) == set(S) and not FINAL_STATUSES & set(OPEN_STATUSES)
    assert is_final("Canceled") and not is_final("Cancelling")


@pytest.mark.parametrize("final", sorted(FINAL_STATUSES))
def test_a_final_status_goes_nowhere(final):
    assert not any(allowed(final, target) for target in S)


def test_the_moves_between_open_statuses():
    assert allowed(S.WAITING, S.EXECUTING) and allowed(S.EXECUTING, S.WAITING)  # claimed; a transient fault
    assert allowed(S.EXECUTING, S.CANCELLING) and not allowed(S.CANCELLING, S.EXECUTING)  # a cancel sticks
    assert not allowed(S.WAITING, S.WAITING)
    assert all(allowed(s, final) for s in OPEN_STATUSES for final in FINAL_STATUSES)


def test_a_run_asked_to_cancel_never_ends_ended_plainly():
    assert finishing_from(S.ENDED) == (S.WAITING, S.EXECUTING)
    assert finishing_from(S.ERROR) == OPEN_STATUSES
    assert finishing_from(S.CANCELED, (S.WAITING,)) == (S.WAITING,)
    assert finishing_from(S.NOT_RUN, ("Ended", "Waiting")) == (S.WAITING,)  # never out of a final status
    assert late_cancel("processed 4") == f"{LATE_CANCEL}: processed 4" and late_cancel(None) == LATE_CANCEL


def test_claim_and_cancel_wording():
    assert claimed_status(False) == S.EXECUTING and claimed_status(True) == S.CANCELLING
    assert cancel_message(False) == "canceled before it started"
    assert cancel_message(True) == "canceled while waiting to retry"


def test_which_run_a_trigger_resumes_and_which_delivery_stays_away():
    assert must_resume(S.WAITING, lease_until=200, now=100)  # waits after a transient fault
    assert must_resume(S.EXECUTING, lease_until=99, now=100)  # died: its lease ran out
    assert not must_resume(S.EXECUTING, lease_until=200, now=100)  # alive elsewhere
    assert executing_elsewhere(True, 200, 100, started=True, handover=False)
    assert not executing_elsewhere(True, 200, 100, started=True, handover=True)  # a continuation's turn
    assert not executing_elsewhere(True, 99, 100, started=True, handover=False)  # dead: take it over
    assert not executing_elsewhere(False, 200, 100, started=True, handover=False)


def test_a_transient_fault_waits_until_the_attempts_are_spent():
    assert retry_outcome(1, 5, "SlowDown: x") == (
        S.WAITING, "waiting to retry (1 of 5 attempts failed) after a transient AWS fault: SlowDown: x")
    assert retry_outcome(5, 5, "SlowDown: x") == (
        S.ERROR, "gave up after 5 transient AWS fault(s); the last: SlowDown: x")


def test_a_fan_out_ends_as_its_shards_did():
    assert fan_out_outcome([("S1", "Ended"), ("S2", "Ended")], False) == (S.ENDED, "2 shards: 2 Ended")
    assert fan_out_outcome([("S1", "Ended"), ("S2", "Canceled")], False) == (
        S.CANCELED, "2 shards: 1 Ended, 1 Canceled (S2)")
    assert fan_out_outcome([("S1", "NotRun"), ("S2", "Canceled")], False) == (
        S.ERROR, "2 shards: 1 Canceled (S2), 1 NotRun (S1)")
    assert fan_out_outcome([("S1", "Ended")], True) == (S.ENDED, f"{LATE_CANCEL}: 1 shard: 1 Ended")
    six = [(f"S00{i}", "Ended") for i in range(1, 7)]
    six[3] = ("S004", "Error")
    assert fan_out_outcome(six, False) == (S.ERROR, "6 shards: 5 Ended, 1 Error (S004)")
    many = fan_out_outcome([(f"S{i}", "Error") for i in range(30)], False)[1]
    assert many.startswith("30 shards: 30 Error (S0, S1,") and many.endswith("S19, +10 more)")
