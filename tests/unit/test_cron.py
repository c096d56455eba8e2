from datetime import datetime

from devstack.cron import is_due


def test_daily_cron_fires_once_a_day():
    assert is_due("cron(0 1 * * ? *)", datetime(2026, 11, 25, 1, 0))
    assert not is_due("cron(0 1 * * ? *)", datetime(2026, 11, 25, 1, 1))
    assert not is_due("cron(0 1 * * ? *)", datetime(2026, 11, 25, 2, 0))


def test_steps_lists_and_weekdays():
    assert is_due("cron(*/15 * * * ? *)", datetime(2026, 11, 25, 7, 45))
    assert not is_due("cron(*/15 * * * ? *)", datetime(2026, 11, 25, 7, 50))
    assert is_due("cron(0 3 ? * SUN *)", datetime(2026, 11, 29, 3, 0))  # a Sunday
    assert not is_due("cron(0 3 ? * SUN *)", datetime(2026, 11, 25, 3, 0))
    assert is_due("cron(0,30 2 * * ? *)", datetime(2026, 11, 25, 2, 30))


def test_rate():
    assert is_due("rate(30 minutes)", datetime(2026, 11, 25, 7, 30))
    assert not is_due("rate(30 minutes)", datetime(2026, 11, 25, 7, 31))
