"""Account activity: ranges, ledger totals and the export files (DOMAIN §3, §4)."""
from __future__ import annotations

import csv
import io
import random
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from chalicelib.domain.account_activity import (
    CSV_HEADER,
    AccountExportProfile,
    AccountExportResult,
    AccountTotal,
    ChainCursor,
    DateRange,
    FileFormat,
    LedgerLine,
    LineFate,
    ProfileLine,
    ResultLine,
    accumulate,
    adjustment_id,
    complete_blocks,
    export_key,
    line_fate,
    next_range,
    requested_range,
    result_lines,
    unbalanced_warning,
    write_csv,
    write_xml,
)
from chalicelib.domain.errors import ValidationError

TODAY = date(2026, 11, 4)

PROFILE = AccountExportProfile(
    id="RE-DEFAULT",
    name="Default retail export",
    lines=(
        ProfileLine("4000-Sales", "401100"),
        ProfileLine("2200-Tax", "222000"),
        ProfileLine("1100-Cash", "110100"),
        ProfileLine("1200-Card", "110200"),
        ProfileLine("1300-Dormant", "199999"),
    ),
    file_format=FileFormat.XML,
    file_prefix="AX_",
    start_date=date(2026, 10, 1),
)
UNMAPPED = ("500000", "600100")


def ledger(account: str, debit: str = "0", credit: str = "0") -> LedgerLine:
    return LedgerLine(
        posting_date=date(2026, 11, 1),
        main_account=account,
        debit=Decimal(debit),
        credit=Decimal(credit),
        store_id="S1",
        statement_id="ST1",
    )


def result(lines: list[ResultLine], result_id: str = "17") -> AccountExportResult:
    return AccountExportResult(
        result_id=result_id,
        profile_id=PROFILE.id,
        from_date=date(2026, 11, 1),
        to_date=date(2026, 11, 3),
        generated_at=datetime(2026, 11, 4, 1, 0, tzinfo=UTC),
        lines=lines,
    )


# --- totals ----------------------------------------------------------------------------------


def random_ledger(count: int, seed: int = 20261104) -> list[LedgerLine]:
    rng = random.Random(seed)
    accounts = [line.main_account for line in PROFILE.lines[:4]] + list(UNMAPPED)
    lines = []
    for _ in range(count):
        cents = rng.randint(1, 2_000_000)
        amount = f"{cents // 100}.{cents % 100:02d}"
        side = rng.choice(("debit", "credit"))
        lines.append(ledger(rng.choice(accounts), **{side: amount}))
    return lines


def test_totals_equal_an_independent_sum_to_the_cent():
    lines = random_ledger(1_000)
    expected: dict[str, list[int]] = {}
    for line in lines:
        if line.main_account in UNMAPPED:
            continue
        cents = expected.setdefault(line.main_account, [0, 0])
        cents[0] += int(line.debit * 100)
        cents[1] += int(line.credit * 100)

    totals: dict[str, AccountTotal] = {}
    added = accumulate(totals, iter(lines), PROFILE.mapped_accounts)

    assert added == sum(1 for line in lines if line.main_account not in UNMAPPED)
    by_account = {ln.main_account: ln for ln in result_lines(PROFILE, totals)}
    for account, (debit_cents, credit_cents) in expected.items():
        assert by_account[account].debit == Decimal(debit_cents).scaleb(-2)
        assert by_account[account].credit == Decimal(credit_cents).scaleb(-2)


def test_accumulating_page_by_page_equals_one_pass():
    lines = random_ledger(1_000, seed=7)
    one_pass: dict[str, AccountTotal] = {}
    accumulate(one_pass, lines, PROFILE.mapped_accounts)

    paged: dict[str, AccountTotal] = {}
    for start in range(0, len(lines), 100):
        accumulate(paged, lines[start:start + 100], PROFILE.mapped_accounts)

    assert paged == one_pass
    assert set(paged) <= PROFILE.mapped_accounts


def test_every_mapped_account_has_a_line_in_profile_order_zero_totals_included():
    totals: dict[str, AccountTotal] = {}
    accumulate(totals, [ledger("401100", credit="12345.67")], PROFILE.mapped_accounts)

    lines = result_lines(PROFILE, totals)

    assert [ln.exported_account_name for ln in lines] == [
        "4000-Sales", "2200-Tax", "1100-Cash", "1200-Card", "1300-Dormant",
    ]
    assert lines[0] == ResultLine("4000-Sales", "401100", Decimal("0.00"), Decimal("12345.67"))
    assert all(ln.debit == ln.credit == Decimal("0.00") for ln in lines[1:])


def test_unmapped_accounts_are_ignored():
    totals: dict[str, AccountTotal] = {}

    added = accumulate(
        totals,
        [ledger("500000", debit="10.00"), ledger("110100", debit="5.00"),
         ledger("600100", credit="3.00")],
        PROFILE.mapped_accounts,
    )

    assert added == 1
    assert set(totals) == {"110100"}
    lines = result_lines(PROFILE, totals)
    assert {ln.main_account for ln in lines}.isdisjoint(UNMAPPED)


def test_result_lines_round_half_up():
    totals = {"401100": AccountTotal(debit=Decimal("0.005"), credit=Decimal("2.344"))}

    line = result_lines(PROFILE, totals)[0]

    assert (line.debit, line.credit) == (Decimal("0.01"), Decimal("2.34"))


# --- ranges ----------------------------------------------------------------------------------


def test_first_run_starts_at_the_profile_start_date_and_ends_yesterday():
    assert next_range(PROFILE, None, TODAY) == DateRange(date(2026, 10, 1), date(2026, 11, 3))


def test_subsequent_run_starts_the_day_after_the_previous_result():
    assert next_range(PROFILE, date(2026, 10, 31), TODAY) == (date(2026, 11, 1), date(2026, 11, 3))


def test_nothing_to_do_when_the_previous_result_ended_yesterday():
    assert next_range(PROFILE, TODAY - timedelta(days=1), TODAY) is None


def test_today_is_never_included():
    # A profile starting today has nothing complete to add up yet.
    starts_today = replace(PROFILE, start_date=TODAY)
    assert next_range(starts_today, None, TODAY) is None
    for previous in (None, date(2026, 10, 15), date(2026, 11, 2)):
        date_range = next_range(PROFILE, previous, TODAY)
        assert date_range is not None and date_range.to_date < TODAY


def test_requested_range_without_override_is_the_next_range():
    assert requested_range(PROFILE, date(2026, 11, 1), TODAY) == next_range(
        PROFILE, date(2026, 11, 1), TODAY
    )
    assert requested_range(PROFILE, TODAY - timedelta(days=1), TODAY) is None


def test_override_regenerates_an_earlier_range():
    assert requested_range(
        PROFILE, date(2026, 11, 3), TODAY, date(2026, 10, 5), date(2026, 10, 9)
    ) == (date(2026, 10, 5), date(2026, 10, 9))
    # A bound left out defaults as in a normal run.
    assert requested_range(PROFILE, date(2026, 11, 3), TODAY, from_date=date(2026, 10, 5)) == (
        date(2026, 10, 5), date(2026, 11, 3)
    )


@pytest.mark.parametrize(
    ("from_date", "to_date", "bad_fields"),
    [
        (date(2026, 11, 1), TODAY, {"to_date"}),
        (date(2026, 11, 1), TODAY + timedelta(days=3), {"to_date"}),
        (date(2026, 11, 3), date(2026, 11, 2), {"from_date"}),
        (TODAY + timedelta(days=1), TODAY, {"from_date", "to_date"}),
    ],
)
def test_override_is_refused_when_it_includes_today_or_is_reversed(from_date, to_date, bad_fields):
    with pytest.raises(ValidationError) as caught:
        requested_range(PROFILE, None, TODAY, from_date, to_date)

    assert {error.path for error in caught.value.errors} == bad_fields


# --- files -----------------------------------------------------------------------------------


def test_xml_parses_and_carries_the_totals():
    totals: dict[str, AccountTotal] = {}
    accumulate(totals, [ledger("401100", credit="12000.00"), ledger("401100", credit="345.67"),
                        ledger("110100", debit="12345.67")], PROFILE.mapped_accounts)
    out = io.BytesIO()

    write_xml(result(result_lines(PROFILE, totals)), PROFILE, out)

    body = out.getvalue()
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    root = ET.fromstring(body)
    assert root.tag == "AccountExport"
    assert root.attrib == {"profile": "RE-DEFAULT", "resultId": "17",
                           "fromDate": "2026-11-01", "toDate": "2026-11-03"}
    accounts = root.findall("Account")
    names = [ln.exported_account_name for ln in PROFILE.lines]
    assert [a.attrib["name"] for a in accounts] == names
    assert accounts[0].attrib == {"name": "4000-Sales", "mainAccount": "401100",
                                  "debit": "0.00", "credit": "12345.67"}
    assert accounts[2].attrib["debit"] == "12345.67"
    assert accounts[4].attrib["credit"] == "0.00"


def test_xml_has_exactly_the_documented_shape():
    line = ResultLine("4000-Sales", "401100", Decimal(0), Decimal("12345.67"))
    out = io.BytesIO()

    write_xml(result([line]), PROFILE, out)

    assert out.getvalue().decode("utf-8") == (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<AccountExport profile="RE-DEFAULT" resultId="17" fromDate="2026-11-01"'
        ' toDate="2026-11-03">\n'
        '  <Account name="4000-Sales" mainAccount="401100" debit="0.00" credit="12345.67"/>\n'
        "</AccountExport>\n"
    )


@pytest.mark.parametrize(
    "name",
    [
        "Sales & Returns",
        "<Tax>",
        'He said "cash"',
        "Card's fees",
        "both \" and ' & <",
        "tab\tand\nline",
        "Umsätze €",
    ],
)
def test_special_characters_in_names_survive_the_xml_round_trip(name):
    line = ResultLine(name, "401100", Decimal("1.00"), Decimal("2.00"))
    out = io.BytesIO()

    write_xml(result([line]), PROFILE, out)

    account = ET.fromstring(out.getvalue()).find("Account")
    assert account is not None and account.attrib["name"] == name


def test_a_name_xml_cannot_carry_is_refused_before_writing():
    out = io.BytesIO()

    with pytest.raises(ValidationError) as caught:
        write_xml(result([ResultLine("bell\x07", "401100", Decimal(0), Decimal(0))]), PROFILE, out)

    assert caught.value.errors[0].path == "lines[0].exported_account_name"
    assert out.getvalue() == b""


def test_csv_round_trip():
    lines = [
        ResultLine("4000-Sales, net", "401100", Decimal("0.00"), Decimal("12345.67")),
        ResultLine('Tax "VAT"', "222000", Decimal("1.5"), Decimal(0)),
    ]
    out = io.StringIO(newline="")

    assert write_csv(result(lines), out) == 2

    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert tuple(rows[0]) == CSV_HEADER
    assert rows == [
        {"result_id": "17", "from_date": "2026-11-01", "to_date": "2026-11-03",
         "exported_account_name": "4000-Sales, net", "main_account": "401100",
         "debit": "0.00", "credit": "12345.67"},
        {"result_id": "17", "from_date": "2026-11-01", "to_date": "2026-11-03",
         "exported_account_name": 'Tax "VAT"', "main_account": "222000",
         "debit": "1.50", "credit": "0.00"},
    ]


def test_export_key_is_prefix_result_id_and_format_under_the_profile_folder():
    assert export_key(PROFILE, "17") == "account-activity/RE-DEFAULT/AX_17.xml"
    as_csv = replace(PROFILE, file_format=FileFormat.CSV, file_prefix="")
    assert export_key(as_csv, "18") == "account-activity/RE-DEFAULT/18.csv"


def test_a_file_name_carries_the_prefix_once():
    profile = replace(PROFILE, file_prefix="RE-")
    assert export_key(profile, "RE-DEFAULT-20261101-20261103") == \
        "account-activity/RE-DEFAULT/RE-DEFAULT-20261101-20261103.xml"
    assert export_key(profile, "X-20261101-20261103") == "account-activity/RE-DEFAULT/RE-X-20261101-20261103.xml"


def test_an_adjustment_says_so_on_the_root_element():
    adjustment = replace(result([ResultLine("4000-Sales", "401100", Decimal("0.00"), Decimal("5.00"))]),
                         result_id="RE-DEFAULT-20261102-20261102-adj1", adjustment=True)
    out = io.BytesIO()
    write_xml(adjustment, PROFILE, out)
    root = ET.fromstring(out.getvalue())
    assert root.get("adjustment") == "true" and root.get("resultId").endswith("-adj1")
    normal = io.BytesIO()
    write_xml(result([]), PROFILE, normal)
    assert "adjustment" not in ET.fromstring(normal.getvalue()).attrib


# --- late ledger lines -----------------------------------------------------------------------


def numbered(seq: int, block_end: int, day: date = date(2026, 11, 1)) -> LedgerLine:
    return replace(ledger("401100", credit="1.00"), posting_date=day, seq=seq, block_end=block_end,
                   legal_entity="USRT")


def test_complete_blocks_stop_at_the_first_hole():
    lines = [numbered(5, 6), numbered(6, 6), numbered(8, 9), numbered(9, 9)]
    blocks = complete_blocks(lines, 5)
    assert ([line.seq for line in blocks.lines], blocks.reached, blocks.gap) == ([5, 6], 6, True)


def test_complete_blocks_never_split_a_statement():
    lines = [numbered(1, 2), numbered(2, 2), numbered(3, 5), numbered(4, 5)]  # 5 not read yet
    blocks = complete_blocks(lines, 1)
    assert ([line.seq for line in blocks.lines], blocks.reached, blocks.gap) == ([1, 2], 2, False)
    assert complete_blocks([numbered(4, 5)], 3) == ([], 2, True)


def test_line_fate_sorts_counted_late_normal_and_deferred_lines():
    cursor = ChainCursor(to_date=date(2026, 11, 2), through={"USRT": 10}, reread_from={"USRT": 8})
    start, to_date = date(2026, 10, 1), date(2026, 11, 3)
    fate = {
        "counted": line_fate(numbered(9, 9, date(2026, 11, 2)), cursor, start, to_date),
        "late": line_fate(numbered(11, 11, date(2026, 11, 1)), cursor, start, to_date),
        "normal": line_fate(numbered(12, 12, date(2026, 11, 3)), cursor, start, to_date),
        "deferred seen": line_fate(numbered(8, 8, date(2026, 11, 3)), cursor, start, to_date),
        "deferred": line_fate(numbered(13, 13, date(2026, 11, 4)), cursor, start, to_date),
        "before start": line_fate(numbered(14, 14, date(2026, 9, 30)), cursor, start, to_date),
    }
    assert fate == {"counted": LineFate.COUNTED, "late": LineFate.LATE, "normal": LineFate.NORMAL,
                    "deferred seen": LineFate.NORMAL, "deferred": LineFate.DEFERRED,
                    "before start": LineFate.OUT_OF_SCOPE}
    assert cursor.first_unread("USRT") == 8 and cursor.first_unread("CART") == 1


def test_adjustment_ids_name_the_dates_they_correct():
    assert adjustment_id("FIN-CSV", DateRange(date(2026, 11, 23), date(2026, 11, 25)), 2) == \
        "FIN-CSV-20261123-20261125-adj2"


def test_an_unbalanced_result_names_the_unmapped_accounts():
    totals = {"401100": AccountTotal(credit=Decimal("100")), "110100": AccountTotal(debit=Decimal("60")),
              "500000": AccountTotal(debit=Decimal("40.004"))}
    assert unbalanced_warning(PROFILE, totals) == (
        "unbalanced: debits 60.00 != credits 100.00; unmapped accounts 500000 (debit 40.00, credit 0.00)")
    totals["110100"] = AccountTotal(debit=Decimal("100"))
    assert unbalanced_warning(PROFILE, totals) is None


# --- records ---------------------------------------------------------------------------------


def test_records_convert_to_domain_objects():
    profile = AccountExportProfile.from_record({
        "id": "RE-DEFAULT", "name": "Default", "file_format": "csv", "file_prefix": "AX_",
        "start_date": "2026-10-01",
        "lines": [{"exported_account_name": "4000-Sales", "main_account": "401100"}],
    })
    line = LedgerLine.from_record({"posting_date": "2026-11-01", "main_account": "401100",
                                   "debit": "0", "credit": "12.30", "store_id": "S1",
                                   "statement_id": "ST1"})
    stored = AccountExportResult.from_record({
        "result_id": "17", "profile_id": "RE-DEFAULT", "from_date": "2026-11-01",
        "to_date": "2026-11-03", "generated_at": "2026-11-04T01:00:00+00:00",
        "lines": [{"exported_account_name": "4000-Sales", "main_account": "401100",
                   "debit": "0.00", "credit": "12.30"}],
    })

    assert profile.file_format is FileFormat.CSV and profile.start_date == date(2026, 10, 1)
    assert line.credit == Decimal("12.30")
    assert stored.lines[0].credit == Decimal("12.30") and stored.exported is False


def test_ledger_amounts_are_never_floats():
    with pytest.raises(ValidationError):
        LedgerLine.from_record({"posting_date": "2026-11-01", "main_account": "401100",
                                "debit": 0.1, "credit": "0"})
