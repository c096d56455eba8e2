"""EventBridge schedule expressions: whether one fires in a minute (``make serve`` fires the
schedules locally, ``make cost`` counts a month's runs), when it fires next and what it says in
words (``GET /jobs``). ``cron(m h dom mon dow yr)`` with ``*``, ``?``, lists, ranges and ``/``
steps, and ``rate(n unit)``; days of week 1-7 = SUN-SAT; UTC. Pure: no AWS client."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

_DOW = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_DAY_NAMES = {1: "Sundays", 2: "Mondays", 3: "Tuesdays", 4: "Wednesdays", 5: "Thursdays", 6: "Fridays",
              7: "Saturdays"}
_RATE_MINUTES = {"minute": 1, "minutes": 1, "hour": 60, "hours": 60, "day": 1440, "days": 1440}
HORIZON_DAYS = 366  # next_fire looks this far ahead


def _matches(field: str, value: int, low: int) -> bool:
    if field in ("*", "?"):
        return True
    for part in field.split(","):
        part = _DOW.get(part, part)
        step = 1
        if isinstance(part, str) and "/" in part:
            part, step_text = part.split("/")
            step = int(step_text)
        if part in ("*", "?"):
            start, end = low, 10_000
        elif isinstance(part, int):
            start = end = part
        elif "-" in part:
            a, b = part.split("-")
            start, end = int(_DOW.get(a, a)), int(_DOW.get(b, b))
        else:
            start = end = int(part)
            if step > 1:
                end = 10_000
        if start <= value <= end and (value - start) % step == 0:
            return True
    return False


def _fields(expression: str) -> list[str]:
    """A cron expression's six fields; a rate as the cron it fires like (every n minutes of the day)."""
    if expression.startswith("rate("):
        amount, unit = expression[5:-1].split()
        minutes = int(amount) * _RATE_MINUTES[unit]
        return ["rate", str(minutes), "*", "*", "?", "*"]
    return expression[5:-1].split()


def _day_fires(fields: list[str], day: datetime) -> bool:
    _, _, dom, month, dow, year = fields
    weekday = day.isoweekday() % 7 + 1
    return (_matches(dom, day.day, 1) and _matches(month, day.month, 1) and _matches(dow, weekday, 1)
            and _matches(year, day.year, 1970))


def _minute_fires(fields: list[str], hour: int, minute: int) -> bool:
    if fields[0] == "rate":
        return (hour * 60 + minute) % int(fields[1]) == 0
    return _matches(fields[0], minute, 0) and _matches(fields[1], hour, 0)


def _times_of_day(fields: list[str]) -> list[tuple[int, int]]:
    """The (hour, minute)s of a day the expression fires in, in order."""
    if fields[0] == "rate":
        step = int(fields[1])
        return [divmod(minute, 60) for minute in range(0, 1440, step)] if step <= 1440 else [(0, 0)]
    hours = [hour for hour in range(24) if _matches(fields[1], hour, 0)]
    minutes = [minute for minute in range(60) if _matches(fields[0], minute, 0)]
    return [(hour, minute) for hour in hours for minute in minutes]


def is_due(expression: str, moment: datetime) -> bool:
    """Whether ``expression`` fires in the minute of ``moment`` (UTC)."""
    fields = _fields(expression)
    return _day_fires(fields, moment) and _minute_fires(fields, moment.hour, moment.minute)


def next_fire(expression: str, after: datetime) -> datetime | None:
    """The first minute after ``after`` (aware) in which ``expression`` fires, None within a year."""
    fields = _fields(expression)
    start = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    times = _times_of_day(fields)
    day = start.replace(hour=0, minute=0)
    for _ in range(HORIZON_DAYS):
        if _day_fires(fields, day):
            for hour, minute in times:
                moment = day.replace(hour=hour, minute=minute)
                if moment >= start:
                    return moment
        day += timedelta(days=1)
    return None


def in_words(expression: str) -> str | None:
    """What a schedule says to a person ("every 15 minutes", "daily at 02:00 UTC", "Sundays at
    03:00 UTC"); the expression itself when it is of another shape; None for no schedule."""
    if not expression:
        return None
    if expression.startswith("rate("):
        return f"every {expression[5:-1]}"
    minute, hour, dom, month, dow, year = _fields(expression)
    every_day = dom in ("*", "?") and month == "*" and year == "*"
    if every_day and hour == "*" and minute.startswith(("0/", "*/")):
        return f"every {minute.split('/')[1]} minutes"
    if every_day and hour == "*" and minute.isdigit() and dow in ("*", "?"):
        return f"hourly at minute {int(minute):02d}"
    if every_day and hour.isdigit() and minute.isdigit():
        at = f"at {int(hour):02d}:{int(minute):02d} UTC"
        if dow in ("*", "?"):
            return f"daily {at}"
        days = [_DAY_NAMES.get(_DOW.get(d) or int(d)) for d in dow.split(",") if d in _DOW or d.isdigit()]
        if len(days) == len(dow.split(",")):
            return f"{', '.join(days)} {at}"
    return f"{expression} (UTC)"
