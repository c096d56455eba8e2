"""Local days and plausible business dates (DOMAIN §13), and the canonical record of an upload."""
from datetime import UTC, date, datetime
from decimal import Decimal

from chalicelib.domain.days import business_date_problem, in_future, local_today, local_yesterday
from chalicelib.domain.uploads import canonical_hash

MORNING_UTC = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def test_the_local_day_follows_the_store_time_zone():
    assert local_today("UTC", MORNING_UTC) == date(2026, 11, 30)
    assert local_today(None, MORNING_UTC) == date(2026, 11, 30)
    assert local_today("America/Toronto", MORNING_UTC) == date(2026, 11, 29)  # 22:00 the evening before
    assert local_yesterday("America/Los_Angeles", MORNING_UTC) == date(2026, 11, 28)
    assert local_today("Pacific/Kiritimati", MORNING_UTC) == date(2026, 11, 30)


def test_a_business_date_is_plausible_from_max_backdated_days_ago_through_tomorrow():
    today = date(2026, 11, 30)
    assert business_date_problem("2026-10-01", today, 60) is None
    assert "more than 60 days before" in business_date_problem("2026-09-30", today, 60)
    assert business_date_problem("2026-12-01", today, 60) is None
    assert "after the store's tomorrow (2026-12-01)" in business_date_problem("2026-12-02", today, 60)
    assert "1999-01-01 is more than 60 days" in business_date_problem("1999-01-01", today, 60)


def test_five_minutes_ahead_is_the_most_a_store_clock_may_be():
    assert not in_future(datetime(2026, 11, 30, 3, 5, tzinfo=UTC), MORNING_UTC)
    assert in_future(datetime(2026, 11, 30, 3, 5, 1, tzinfo=UTC), MORNING_UTC)


def test_the_canonical_record_ignores_key_order_and_keeps_decimal_text():
    record = {"transaction_id": "T1", "lines": [{"qty": Decimal("1"), "net_amount": Decimal("5.00")}]}
    stored = {"lines": [{"net_amount": "5.00", "qty": "1"}], "transaction_id": "T1"}
    assert canonical_hash(record) == canonical_hash(stored)
    assert canonical_hash(record) != canonical_hash({**stored, "lines": [{"net_amount": "5.0", "qty": "1"}]})
