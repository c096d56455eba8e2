from datetime import UTC, datetime

from chalicelib.schedules import in_words, is_due, next_fire


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


def test_next_fire_is_the_first_minute_after_the_moment():
    after = datetime(2026, 11, 25, 7, 44, 30, tzinfo=UTC)  # a Wednesday
    assert next_fire("cron(0/15 * * * ? *)", after) == datetime(2026, 11, 25, 7, 45, tzinfo=UTC)
    assert next_fire("cron(0/15 * * * ? *)", datetime(2026, 11, 25, 7, 45, tzinfo=UTC)) == \
        datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert next_fire("cron(0 2 * * ? *)", after) == datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    assert next_fire("cron(5 * * * ? *)", after) == datetime(2026, 11, 25, 8, 5, tzinfo=UTC)
    assert next_fire("cron(0 3 ? * SUN *)", after) == datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    assert next_fire("rate(1 day)", after) == datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    assert next_fire("cron(0 0 1 1 ? 2020)", after) is None


def test_schedules_in_words():
    assert in_words("cron(0/15 * * * ? *)") == "every 15 minutes"
    assert in_words("cron(0 2 * * ? *)") == "daily at 02:00 UTC"
    assert in_words("cron(30 4 * * ? *)") == "daily at 04:30 UTC"
    assert in_words("cron(0 3 ? * SUN *)") == "Sundays at 03:00 UTC"
    assert in_words("cron(5 * * * ? *)") == "hourly at minute 05"
    assert in_words("rate(1 day)") == "every 1 day"
    assert in_words("cron(0 0 1 * ? *)") == "cron(0 0 1 * ? *) (UTC)"
    assert in_words("") is None


def test_every_scheduled_job_has_its_schedule_in_words():
    from chalicelib.jobs.registry import all_jobs

    for job in all_jobs():
        if job.schedule:
            assert "cron(" not in in_words(job.schedule), job.name
