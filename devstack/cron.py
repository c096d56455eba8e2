"""Enough of EventBridge's cron to fire schedules on the local stack: ``cron(m h dom mon dow yr)``
with ``*``, ``?``, lists, ranges and ``/`` steps, and ``rate(n unit)``. Days of week 1-7 = SUN-SAT."""
from __future__ import annotations

from datetime import datetime

_DOW = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


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


def is_due(expression: str, moment: datetime) -> bool:
    """Whether ``expression`` fires in the minute of ``moment`` (UTC)."""
    if expression.startswith("rate("):
        amount, unit = expression[5:-1].split()
        minutes = int(amount) * {"minute": 1, "minutes": 1, "hour": 60, "hours": 60, "day": 1440, "days": 1440}[unit]
        return (moment.hour * 60 + moment.minute) % minutes == 0
    minute, hour, dom, month, dow, year = expression[5:-1].split()
    weekday = moment.isoweekday() % 7 + 1
    return (_matches(minute, moment.minute, 0) and _matches(hour, moment.hour, 0)
            and _matches(dom, moment.day, 1) and _matches(month, moment.month, 1)
            and _matches(dow, weekday, 1) and _matches(year, moment.year, 1970))
