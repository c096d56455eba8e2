"""A registration's status in the operators' list, and its hours (chalicelib.domain.pay)."""
from datetime import UTC, datetime
from decimal import Decimal

from chalicelib.domain.pay import TimeRegistration, registration_status


def test_status_is_pending_until_approved_and_transferred_only_by_a_transfer_after_the_approval():
    assert registration_status(False, None, "2026-10-05T03:00:00.000Z") == "pending"
    assert registration_status(True, "2026-10-01T09:00:00.000Z", None) == "approved"
    assert registration_status(True, "2026-10-01T09:00:00.000Z", "2026-10-05T03:00:00.000Z") == "transferred"
    # Re-approved after a change: the earlier transfer sent the old times.
    assert registration_status(True, "2026-10-06T09:00:00.000Z", "2026-10-05T03:00:00.000Z") == "approved"


def test_hours_are_exact_and_rounded_half_up_to_two_places():
    def hours(clock_out: datetime) -> Decimal:
        return TimeRegistration("R", "W", datetime(2026, 10, 1, 8, tzinfo=UTC), clock_out).hours()

    assert hours(datetime(2026, 10, 1, 16, 15, tzinfo=UTC)) == Decimal("8.25")
    assert hours(datetime(2026, 10, 1, 8, 20, tzinfo=UTC)) == Decimal("0.33")  # 0.3333...
    assert hours(datetime(2026, 10, 1, 8, 0, 18, tzinfo=UTC)) == Decimal("0.01")  # 0.005 up
