"""Transfer to pay: periods, the pay calculation and the payroll CSV (DOMAIN §2)."""
from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.money import round_money
from chalicelib.domain.pay import (
    BIWEEKLY_ANCHOR,
    CSV_HEADER,
    PayPeriod,
    PayPeriodType,
    PayType,
    TimeRegistration,
    UnknownPayType,
    Worker,
    check_unapproved,
    daily_hours,
    last_ended_period,
    pay_lines,
    period_for,
    refusal_message,
    registration_day,
    write_pay_csv,
)

PAY_TYPES = {
    "REG": PayType(id="REG", export_id="R100", include_in_export=True),
    "OT": PayType(id="OT", export_id="OT150", include_in_export=True),
}


def worker(base_rate: str = "20.00", period_type: str = "monthly", worker_id: str = "W1") -> Worker:
    return Worker(
        id=worker_id,
        export_id=f"E-{worker_id}",
        pay_period_type=PayPeriodType(period_type),
        base_rate=Decimal(base_rate),
    )


_sequence = iter(range(1_000_000))


def shift(
    worker_id: str, start: str, hours: int, approved: bool = True, minutes: int = 0
) -> TimeRegistration:
    clock_in = datetime.fromisoformat(start).replace(tzinfo=UTC)
    return TimeRegistration(
        registration_id=f"R{next(_sequence)}",
        worker_id=worker_id,
        clock_in=clock_in,
        clock_out=clock_in + timedelta(hours=hours, minutes=minutes),
        approved=approved,
    )


def hours_of(worker_id: str, registrations: list[TimeRegistration]) -> dict[date, Decimal]:
    return {day: h for (wid, day), h in daily_hours(registrations).items() if wid == worker_id}


# --- the pay calculation -------------------------------------------------------------------


def test_ten_hour_day_is_eight_regular_and_two_overtime_at_one_and_a_half():
    w = worker(base_rate="17.35")
    day = date(2026, 11, 3)
    period = period_for("monthly", day)

    lines = pay_lines(w, hours_of("W1", [shift("W1", "2026-11-03T08:00", 10)]), PAY_TYPES,
                      period, period.end)

    assert [(ln.pay_type_id, ln.hours, ln.rate, ln.amount) for ln in lines] == [
        ("REG", Decimal("8.00"), Decimal("17.35"), Decimal("138.80")),
        # 1.5 x 17.35 = 26.025 is printed unrounded; the amount is 2 x 26.025 to the cent.
        ("OT", Decimal("2.00"), Decimal("26.025"), Decimal("52.05")),
    ]
    assert all(ln.profile_date == day for ln in lines)
    assert lines[0].worker_export_id == "E-W1"
    assert [ln.pay_type_export_id for ln in lines] == ["R100", "OT150"]
    assert {(ln.period_start, ln.period_end, ln.pay_date) for ln in lines} == {
        (date(2026, 11, 1), date(2026, 11, 30), date(2026, 11, 30))
    }


def test_amount_comes_from_the_printed_hours_so_the_line_adds_up():
    # 20 min of overtime at 30.00: 0.33 h printed, so 9.90 (not 10.00 from the exact third of an hour).
    regs = [shift("W1", "2026-11-03T08:00", 8, minutes=20)]
    w = worker(base_rate="20.00")
    (reg, ot) = pay_lines(w, hours_of("W1", regs), PAY_TYPES, period_for("monthly",
                          date(2026, 11, 3)), date(2026, 11, 30))

    assert (reg.hours, reg.amount) == (Decimal("8.00"), Decimal("160.00"))
    assert (ot.hours, ot.rate, ot.amount) == (Decimal("0.33"), Decimal("30.00"), Decimal("9.90"))


def test_two_registrations_on_one_day_are_summed():
    regs = [shift("W1", "2026-11-03T08:00", 4), shift("W1", "2026-11-03T13:00", 5)]

    assert daily_hours(regs) == {("W1", date(2026, 11, 3)): Decimal(9)}
    lines = pay_lines(worker(), hours_of("W1", regs), PAY_TYPES,
                      period_for("monthly", date(2026, 11, 3)), date(2026, 11, 30))
    assert [(ln.pay_type_id, ln.hours, ln.amount) for ln in lines] == [
        ("REG", Decimal("8.00"), Decimal("160.00")),
        ("OT", Decimal("1.00"), Decimal("30.00")),
    ]


def test_hours_are_exact_before_rounding():
    # Three 20-minute registrations are exactly one hour, not 3 x 0.33.
    regs = [shift("W1", f"2026-11-03T{h:02d}:00", 0, minutes=20) for h in (8, 9, 10)]

    assert daily_hours(regs)[("W1", date(2026, 11, 3))] == Decimal(1)


def test_a_day_of_eight_hours_or_less_has_no_overtime_line():
    regs = [shift("W1", "2026-11-03T08:00", 8)]
    lines = pay_lines(worker(), hours_of("W1", regs), PAY_TYPES,
                      period_for("monthly", date(2026, 11, 3)), date(2026, 11, 30))

    assert [ln.pay_type_id for ln in lines] == ["REG"]


def test_a_shift_crossing_midnight_counts_for_its_clock_in_day():
    regs = [shift("W1", "2026-11-03T22:00", 10)]

    assert daily_hours(regs) == {("W1", date(2026, 11, 3)): Decimal(10)}
    # The day is the clock-in date in the requested time zone.
    minus_five = timezone(timedelta(hours=-5))
    assert registration_day(regs[0], minus_five) == date(2026, 11, 3)
    early = shift("W1", "2026-11-04T02:00", 1)
    assert daily_hours([early], minus_five) == {("W1", date(2026, 11, 3)): Decimal(1)}


def test_clock_out_before_clock_in_is_rejected():
    bad = shift("W1", "2026-11-03T08:00", -1)

    with pytest.raises(ValidationError) as caught:
        daily_hours([bad])
    assert bad.registration_id in caught.value.errors[0].message


def test_unapproved_registrations_are_excluded_and_reported():
    regs = [
        shift("W1", "2026-11-03T08:00", 6),
        shift("W1", "2026-11-04T08:00", 6, approved=False),
        shift("W2", "2026-11-03T08:00", 3, approved=False),
        shift("W2", "2026-11-05T08:00", 3, approved=False),
        shift("W3", "2026-11-03T08:00", 7),
    ]

    assert daily_hours(regs) == {
        ("W1", date(2026, 11, 3)): Decimal(6),
        ("W3", date(2026, 11, 3)): Decimal(7),
    }
    unapproved = check_unapproved(regs)
    assert unapproved == {"W1": 1, "W2": 2}
    message = refusal_message(unapproved, PayPeriod(date(2026, 11, 1), date(2026, 11, 30)))
    assert "W1" in message and "W2" in message and "W3" not in message
    assert "2026-11-01" in message


def test_a_clean_period_has_nothing_to_refuse():
    assert check_unapproved([shift("W1", "2026-11-03T08:00", 6)]) == {}


def test_excluded_pay_type_is_not_exported():
    pay_types = {**PAY_TYPES, "OT": PayType(id="OT", export_id="OT150", include_in_export=False)}
    regs = [shift("W1", "2026-11-03T08:00", 10)]

    lines = pay_lines(worker(), hours_of("W1", regs), pay_types,
                      period_for("monthly", date(2026, 11, 3)), date(2026, 11, 30))

    assert [(ln.pay_type_id, ln.hours) for ln in lines] == [("REG", Decimal("8.00"))]


def test_missing_pay_type_is_an_error():
    regs = [shift("W1", "2026-11-03T08:00", 10)]

    with pytest.raises(UnknownPayType) as caught:
        pay_lines(worker(), hours_of("W1", regs), {"REG": PAY_TYPES["REG"]},
                  period_for("monthly", date(2026, 11, 3)), date(2026, 11, 30))
    assert caught.value.pay_type_id == "OT"


def test_item_key_is_stable_and_unique_per_worker_pay_type_and_day():
    regs = [shift("W1", "2026-11-03T08:00", 10), shift("W1", "2026-11-04T08:00", 10)]
    args = (worker(), hours_of("W1", regs), PAY_TYPES, period_for("monthly", date(2026, 11, 3)),
            date(2026, 11, 30))

    keys = [ln.item_key for ln in pay_lines(*args)]

    assert keys == [ln.item_key for ln in pay_lines(*args)]
    assert keys[0] == "W1|REG|2026-11-03"
    assert len(set(keys)) == 4


# --- periods -------------------------------------------------------------------------------

# Monday 2026-03-30 .. Sunday 2026-04-05 straddles the end of March.
WEEK_ACROSS_MONTHS = [date(2026, 3, 30) + timedelta(days=i) for i in range(7)]


@pytest.mark.parametrize(
    ("period_type", "day", "expected"),
    [
        ("weekly", date(2026, 3, 30), (date(2026, 3, 30), date(2026, 4, 5))),
        ("weekly", date(2026, 4, 5), (date(2026, 3, 30), date(2026, 4, 5))),
        ("biweekly", date(2026, 3, 31), (date(2026, 3, 23), date(2026, 4, 5))),
        ("biweekly", date(2026, 4, 2), (date(2026, 3, 23), date(2026, 4, 5))),
        ("monthly", date(2026, 3, 31), (date(2026, 3, 1), date(2026, 3, 31))),
        ("monthly", date(2026, 4, 1), (date(2026, 4, 1), date(2026, 4, 30))),
        ("monthly", date(2024, 2, 10), (date(2024, 2, 1), date(2024, 2, 29))),
    ],
)
def test_period_for(period_type, day, expected):
    assert period_for(period_type, day) == expected


@pytest.mark.parametrize(
    ("period_type", "pay_date", "expected_days"),
    [
        ("weekly", date(2026, 4, 5), WEEK_ACROSS_MONTHS),
        ("biweekly", date(2026, 3, 23), WEEK_ACROSS_MONTHS),
        ("monthly", date(2026, 3, 15), WEEK_ACROSS_MONTHS[:2]),
        ("monthly", date(2026, 4, 30), WEEK_ACROSS_MONTHS[2:]),
    ],
)
def test_a_week_across_a_month_boundary_lands_in_the_right_period(
    period_type, pay_date, expected_days
):
    w = worker(period_type=period_type)
    regs = [shift("W1", f"{day.isoformat()}T09:00", 6) for day in WEEK_ACROSS_MONTHS]

    lines = pay_lines(w, hours_of("W1", regs), PAY_TYPES, period_for(period_type, pay_date),
                      pay_date)

    assert [ln.profile_date for ln in lines] == expected_days


def test_biweekly_blocks_start_at_the_anchor():
    assert BIWEEKLY_ANCHOR == date(2024, 1, 1)
    assert BIWEEKLY_ANCHOR.weekday() == 0
    assert period_for("biweekly", date(2024, 1, 1)) == (date(2024, 1, 1), date(2024, 1, 14))
    assert period_for("biweekly", date(2024, 1, 14)) == (date(2024, 1, 1), date(2024, 1, 14))
    assert period_for("biweekly", date(2024, 1, 15)) == (date(2024, 1, 15), date(2024, 1, 28))


def test_biweekly_blocks_extend_backwards_before_the_anchor():
    assert period_for("biweekly", date(2023, 12, 31)) == (date(2023, 12, 18), date(2023, 12, 31))
    assert period_for("biweekly", date(2023, 12, 18)) == (date(2023, 12, 18), date(2023, 12, 31))
    assert period_for("biweekly", date(2023, 12, 17)) == (date(2023, 12, 4), date(2023, 12, 17))


def test_periods_tile_the_calendar_without_gaps_or_overlaps():
    for period_type in PayPeriodType:
        day = date(2023, 6, 1)
        previous = None
        while day < date(2024, 9, 1):
            start, end = period_for(period_type, day)
            assert start <= day <= end
            if period_type is PayPeriodType.BIWEEKLY:
                assert (start - BIWEEKLY_ANCHOR).days % 14 == 0 and (end - start).days == 13
            if period_type is PayPeriodType.WEEKLY:
                assert start.weekday() == 0 and end.weekday() == 6
            if previous is not None and previous != (start, end):
                assert start == previous[1] + timedelta(days=1)
            previous = (start, end)
            day += timedelta(days=1)


@pytest.mark.parametrize(
    ("period_type", "today", "expected"),
    [
        ("weekly", date(2026, 11, 25), (date(2026, 11, 16), date(2026, 11, 22))),
        ("weekly", date(2026, 11, 23), (date(2026, 11, 16), date(2026, 11, 22))),
        # A period ending today has not ended yet.
        ("weekly", date(2026, 11, 22), (date(2026, 11, 9), date(2026, 11, 15))),
        ("biweekly", date(2024, 1, 20), (date(2024, 1, 1), date(2024, 1, 14))),
        ("biweekly", date(2024, 1, 3), (date(2023, 12, 18), date(2023, 12, 31))),
        ("monthly", date(2026, 11, 25), (date(2026, 10, 1), date(2026, 10, 31))),
        ("monthly", date(2026, 1, 1), (date(2025, 12, 1), date(2025, 12, 31))),
    ],
)
def test_last_ended_period(period_type, today, expected):
    assert last_ended_period(period_type, today) == expected


# --- the CSV ---------------------------------------------------------------------------------


def test_csv_parses_back_with_two_decimal_amounts():
    regs = [shift("W1", "2026-11-03T08:00", 10), shift("W1", "2026-11-04T08:00", 7, minutes=40)]
    lines = pay_lines(worker(base_rate="17.35"), hours_of("W1", regs), PAY_TYPES,
                      period_for("monthly", date(2026, 11, 3)), date(2026, 11, 30))
    out = io.StringIO(newline="")

    written = write_pay_csv(iter(lines), out)

    rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert written == 3
    assert tuple(rows[0]) == CSV_HEADER
    assert rows[1:] == [
        ["E-W1", "R100", "2026-11-03", "8.00", "17.35", "138.80",
         "2026-11-01", "2026-11-30", "2026-11-30"],
        ["E-W1", "OT150", "2026-11-03", "2.00", "26.025", "52.05",
         "2026-11-01", "2026-11-30", "2026-11-30"],
        ["E-W1", "R100", "2026-11-04", "7.67", "17.35", "133.07",
         "2026-11-01", "2026-11-30", "2026-11-30"],
    ]


def test_csv_of_no_lines_is_the_header_only():
    out = io.StringIO(newline="")

    assert write_pay_csv([], out) == 0
    assert out.getvalue() == ",".join(CSV_HEADER) + "\r\n"


# --- records ---------------------------------------------------------------------------------


def test_records_convert_to_domain_objects():
    w = Worker.from_record({"id": "W1", "name": "Ann", "export_id": "E1", "store_id": "S1",
                            "pay_period_type": "biweekly", "base_rate": "21.50"})
    reg = TimeRegistration.from_record({"registration_id": "R1", "worker_id": "W1",
                                        "clock_in": "2026-11-03T08:00:00Z",
                                        "clock_out": "2026-11-03T12:30:00+00:00",
                                        "approved": True})

    assert (w.pay_period_type, w.base_rate) == (PayPeriodType.BIWEEKLY, Decimal("21.50"))
    assert daily_hours([reg]) == {("W1", date(2026, 11, 3)): Decimal("4.5")}


@pytest.mark.parametrize("rate", [21.5, "abc", "NaN", None])
def test_worker_rate_must_be_a_decimal_never_a_float(rate):
    with pytest.raises(ValidationError):
        Worker.from_record({"id": "W1", "export_id": "E1", "pay_period_type": "weekly",
                            "base_rate": rate})


# --- every pay line adds up (DOMAIN §13 "Late pay lines") ------------------------------------------


def adds_up(row: dict) -> bool:
    """hours x rate, rounded half-up to the cent, is the amount printed on the line."""
    return round_money(Decimal(row["hours"]) * Decimal(row["rate"])) == Decimal(row["amount"])


def test_the_demo_line_that_did_not_add_up_prints_the_unrounded_rate():
    # 3 h of overtime at 1.5 x 31.75 = 47.625: printed 47.63 with amount 142.88 before (3 x 47.63 = 142.89).
    lines = pay_lines(worker(base_rate="31.75"), hours_of("W1", [shift("W1", "2026-11-03T06:00", 11)]),
                      PAY_TYPES, period_for("monthly", date(2026, 11, 3)), date(2026, 11, 30))
    out = io.StringIO(newline="")
    write_pay_csv(lines, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert [(r["hours"], r["rate"], r["amount"]) for r in rows] == [
        ("8.00", "31.75", "254.00"), ("3.00", "47.625", "142.88")]
    assert all(adds_up(r) for r in rows)


@settings(max_examples=400, deadline=None)
@given(seconds=st.integers(min_value=60, max_value=24 * 3600),
       base_rate=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999.99"), places=2),
       extra_seconds=st.integers(min_value=0, max_value=4 * 3600))
def test_every_pay_line_adds_up(seconds, base_rate, extra_seconds):
    start = datetime(2026, 11, 3, 0, 0, tzinfo=UTC)
    registrations = [TimeRegistration("R1", "W1", start, start + timedelta(seconds=seconds), approved=True),
                     TimeRegistration("R2", "W1", start + timedelta(hours=23),
                                      start + timedelta(hours=23, seconds=extra_seconds), approved=True)]
    lines = pay_lines(worker(base_rate=str(base_rate)), hours_of("W1", registrations), PAY_TYPES,
                      period_for("monthly", date(2026, 11, 3)), date(2026, 11, 30))
    out = io.StringIO(newline="")
    write_pay_csv(lines, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert rows and all(adds_up(r) for r in rows), rows
    assert all(len(r["rate"].split(".")[1]) <= 4 for r in rows)


# --- late and changed pay items (DOMAIN §13) ---------------------------------------------------------

def test_reconcile_sends_new_items_skips_unchanged_and_reverses_changed_or_gone_ones():
    from chalicelib.domain.pay import ExportedItem, reconcile

    w = worker(base_rate="31.75", period_type="weekly")
    period = period_for("weekly", date(2026, 11, 3))
    day = date(2026, 11, 3)
    lines = pay_lines(w, {day: Decimal(8), date(2026, 11, 4): Decimal(6)}, PAY_TYPES, period, period.end)
    exported = {"W1|REG|2026-11-03": ExportedItem(Decimal("8.00"), Decimal("254.00"), Decimal("31.75")),
                "W1|OT|2026-11-03": ExportedItem(Decimal("3.00"), Decimal("142.88"), Decimal("47.625")),
                "W1|REG|2026-11-04": ExportedItem(Decimal("7.00"), Decimal("222.25"), Decimal("31.75"))}
    evaluated = {("W1", t, d) for t in ("REG", "OT") for d in (day, date(2026, 11, 4))}

    out, reversals = reconcile(lines, exported, evaluated, {"W1": w}, PAY_TYPES, period, period.end)

    assert [(ln.profile_date.day, ln.pay_type_id, ln.hours, ln.rate, ln.amount) for ln in out] == [
        (3, "OT", Decimal("-3.00"), Decimal("47.625"), Decimal("-142.88")),  # the overtime is gone
        (4, "REG", Decimal("-7.00"), Decimal("31.75"), Decimal("-222.25")),  # 7 h became 6 h
        (4, "REG", Decimal("6.00"), Decimal("31.75"), Decimal("190.50")),
    ]
    assert reversals == 2
    assert all(round_money(ln.hours * ln.rate) == ln.amount for ln in out)
