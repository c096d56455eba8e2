"""Generate and export account activity (DOMAIN §3, §4) on moto, driven through the HTTP routes
and the scheduled functions; ledger lines are written through the ledger storage module."""
import csv
import io
import json
import random
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from chalicelib.storage.ledger import make_line, write_numbered
from tests.conftest import run_directly, schedule_event

TODAY = date(2026, 11, 20)
START = date(2026, 11, 1)
MAPPED = {"401100": "Sales & Returns <net>", "222000": "Tax", "110100": "Cash", "110200": "Card", "999999": "Unused"}


class Clock:
    """The business date the jobs see (noon UTC); a test moves it with ``set(d)``, or to a moment
    with ``at(datetime)``."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.set(TODAY)

    def set(self, day: date) -> None:
        self.at(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))

    def at(self, moment: datetime) -> None:
        from chalicelib.jobs import generate_account_activity

        self.monkeypatch.setattr(generate_account_activity, "now", lambda: moment)


@pytest.fixture
def today(monkeypatch):
    return Clock(monkeypatch)


def put_profile(client, operator, profile_id="RE-DEFAULT", file_format="xml", start=START, names=MAPPED,
                prefix="RE-"):
    lines = [{"exported_account_name": name, "main_account": account} for account, name in names.items()]
    body = {"items": [{"id": profile_id, "name": f"{profile_id} profile", "lines": lines,
                       "file_format": file_format, "file_prefix": prefix, "start_date": start.isoformat()}]}
    response = client.http.put("/data/account-export-profiles", headers=operator, body=json.dumps(body))
    assert response.status_code == 200, response.body


_statements = iter(range(1, 1_000_000))


# (legal entity, currency) of the stores the tests post for
STORES = {"S1": ("USRT", "USD"), "S2": ("USRT", "USD"), "S3": ("USRT", "USD"), "S-CA": ("CART", "CAD")}


def post_statement(day: date, store_id: str = "S1", amounts: list[tuple[str, str, str]] | None = None) -> list:
    """One statement's ledger lines [(account, debit, credit)], numbered and written as statement
    posting does."""
    statement = f"ST-{store_id}-{day:%Y%m%d}-{next(_statements)}"
    legal_entity, currency = STORES[store_id]
    lines = [make_line(statement, n, posting_date=day.isoformat(), main_account=account, debit=Decimal(debit),
                       credit=Decimal(credit), store_id=store_id, currency=currency)
             for n, (account, debit, credit) in enumerate(amounts or [], start=1)]
    if lines:
        assert write_numbered(legal_entity, lines) == []
    return lines


def random_statement(rng: random.Random, day: date, store_id: str) -> list:
    net = Decimal(rng.randint(1, 500_000)) / 100
    tax = Decimal(rng.randint(0, 40_000)) / 100
    cash = Decimal(rng.randint(0, int((net + tax) * 100))) / 100
    return post_statement(day, store_id, [
        ("401100", "0", str(net)), ("222000", "0", str(tax)), ("110100", str(cash), "0"),
        ("110200", str(net + tax - cash), "0"),
        ("401500", "0", "12.34"),  # not mapped: ignored
    ])


def run_job(client, operator, job, params=None, dry_run=False):
    response = client.http.post(f"/jobs/{job}/runs", headers=operator,
                                body=json.dumps({"params": params or {}, "dry_run": dry_run}))
    assert response.status_code == 202, response.body
    return response.json_body["run"]


def results_of(client, operator, profile_id="RE-DEFAULT"):
    response = client.http.get(f"/account-activity?profile_id={profile_id}", headers=operator)
    assert response.status_code == 200, response.body
    return response.json_body["results"]


def s3_objects(prefix="account-activity/"):
    from chalicelib import settings
    from chalicelib.storage import aws

    listing = aws.client("s3").list_objects_v2(Bucket=settings.data_bucket(), Prefix=prefix)
    return {o["Key"]: o for o in listing.get("Contents", [])}


def s3_text(key):
    from chalicelib import settings
    from chalicelib.storage import aws

    return aws.client("s3").get_object(Bucket=settings.data_bucket(), Key=key)["Body"].read().decode("utf-8")


def totals(result):
    return {line["main_account"]: (Decimal(line["debit"]), Decimal(line["credit"])) for line in result["lines"]}


# --- generate ---------------------------------------------------------------------------------------

def test_totals_equal_an_independent_sum_over_the_ledger_to_the_cent(client, operator, today):
    put_profile(client, operator)
    rng = random.Random(7)
    written = []
    for offset in range(-3, 21):  # before the start date, the range, and today
        day = START + timedelta(days=offset)
        for store in ("S1", "S2", "S3"):
            written += random_statement(rng, day, store)

    run = run_job(client, operator, "generate-account-activity")

    assert run["status"] == "Ended", run
    [result] = results_of(client, operator)
    assert (result["from_date"], result["to_date"]) == ("2026-11-01", "2026-11-19")
    expected = {account: (Decimal(0), Decimal(0)) for account in MAPPED}
    for line in written:
        if START.isoformat() <= line.posting_date < TODAY.isoformat() and line.main_account in MAPPED:
            debit, credit = expected[line.main_account]
            expected[line.main_account] = (debit + line.debit, credit + line.credit)
    assert totals(result) == expected
    assert totals(result)["999999"] == (Decimal("0.00"), Decimal("0.00"))  # every mapped account has a line
    assert [line["exported_account_name"] for line in result["lines"]] == list(MAPPED.values())
    assert run["counters"]["read"] == len(written)  # each numbered line read once, in no date order


def test_continuations_after_every_page_count_each_line_once(client, operator, today, monkeypatch):
    from chalicelib.jobs import generate_account_activity

    monkeypatch.setattr(generate_account_activity, "PAGE", 3)  # a page holds one statement (2 lines) whole
    put_profile(client, operator, start=TODAY - timedelta(days=5))
    for offset in range(1, 6):
        post_statement(TODAY - timedelta(days=offset), amounts=[("401100", "0", "10.01"), ("110100", "10.01", "0")])
    monkeypatch.setenv("JOB_TIME_BUDGET_MS", "0")  # every checkpoint hands over to a fresh invocation
    monkeypatch.setenv("JOB_MAX_HOPS", "50")  # (run directly: the test client would apply the stage's budget)

    run = run_directly("generate-account-activity")

    assert run["status"] == "Ended" and run["counters"]["read"] == 10, run
    assert run["hops"] == 4  # after each page (one statement) but the last
    [result] = results_of(client, operator)
    assert totals(result)["401100"] == (Decimal("0.00"), Decimal("50.05"))
    assert totals(result)["110100"] == (Decimal("50.05"), Decimal("0.00"))


def test_a_statement_posted_today_is_not_in_todays_result_but_in_tomorrows(client, operator, today):
    put_profile(client, operator, start=TODAY - timedelta(days=1))
    post_statement(TODAY - timedelta(days=1), amounts=[("401100", "0", "100.00")])
    post_statement(TODAY, amounts=[("401100", "0", "7.25")])  # posted today, while the day is still open

    run_job(client, operator, "generate-account-activity")
    [first] = results_of(client, operator)
    assert totals(first)["401100"] == (Decimal("0.00"), Decimal("100.00"))

    today.set(TODAY + timedelta(days=1))
    run_job(client, operator, "generate-account-activity")
    second, again_first = results_of(client, operator)
    assert again_first == first
    assert (second["from_date"], second["to_date"]) == (TODAY.isoformat(), TODAY.isoformat())
    assert totals(second)["401100"] == (Decimal("0.00"), Decimal("7.25"))


def test_two_runs_the_same_day_produce_one_result(client, operator, today):
    put_profile(client, operator)
    post_statement(START, amounts=[("110100", "10.00", "0")])

    first = client.lambda_.invoke("generate_account_activity", schedule_event(client, "evt-a")).payload
    second = client.lambda_.invoke("generate_account_activity", schedule_event(client, "evt-b")).payload

    assert first["status"] == second["status"] == "Ended"
    assert len(results_of(client, operator)) == 1
    assert second["counters"]["written"] == 0 and "nothing to do" in second["message"]


def test_a_run_that_misses_the_watermark_still_leaves_one_result(client, operator, today, monkeypatch):
    """Two runs computing the same range (a race, a crash after the put) meet on the profile's cursor."""
    from chalicelib.storage import account_activity

    put_profile(client, operator)
    run_job(client, operator, "generate-account-activity")
    monkeypatch.setattr(account_activity, "latest_to_date", lambda profile_id: None)
    monkeypatch.setattr(account_activity, "cursors", lambda profile_ids: {})

    run = run_job(client, operator, "generate-account-activity")

    assert run["status"] == "Ended" and "already generated" in run["message"], run
    assert len(results_of(client, operator)) == 1


def test_no_result_when_there_is_nothing_to_do(client, operator, today):
    put_profile(client, operator, start=TODAY)  # the first range would end yesterday, before it starts
    run = run_job(client, operator, "generate-account-activity")
    assert run["status"] == "Ended" and "nothing to do" in run["message"]
    assert results_of(client, operator) == []


def test_explicit_dates_create_a_new_result_and_leave_the_exported_one_alone(client, operator, today):
    put_profile(client, operator)
    post_statement(START + timedelta(days=2), amounts=[("401100", "0", "50.00")])
    run_job(client, operator, "generate-account-activity")
    run_job(client, operator, "export-account-activity")
    [exported] = results_of(client, operator)
    post_statement(START + timedelta(days=2), amounts=[("401100", "0", "5.00")])  # a late statement

    run = run_job(client, operator, "generate-account-activity",
                  {"from_date": "2026-11-01", "to_date": "2026-11-19"})

    assert run["status"] == "Ended", run
    results = results_of(client, operator)
    assert len(results) == 2
    [regenerated] = [r for r in results if r["result_id"] != exported["result_id"]]
    assert [r for r in results if r["result_id"] == exported["result_id"]] == [exported]
    assert exported["exported"] is True and regenerated["exported"] is False
    assert totals(regenerated)["401100"] == (Decimal("0.00"), Decimal("55.00"))


def test_an_explicit_range_including_today_is_refused(client, operator, today):
    put_profile(client, operator)
    run = run_job(client, operator, "generate-account-activity", {"to_date": TODAY.isoformat()})
    assert run["status"] == "Error" and "to_date" in run["message"]
    assert results_of(client, operator) == []


def test_dry_run_writes_no_result(client, operator, today):
    put_profile(client, operator)
    run = run_job(client, operator, "generate-account-activity", dry_run=True)
    assert run["status"] == "Ended" and run["message"].startswith("would create 1 result")
    assert results_of(client, operator) == []


def test_list_pages_with_a_cursor_and_needs_a_profile(client, operator, today):
    put_profile(client, operator)
    for day in range(3):
        today.set(START + timedelta(days=day + 1))
        run_job(client, operator, "generate-account-activity")
    page = client.http.get("/account-activity?profile_id=RE-DEFAULT&limit=2", headers=operator).json_body
    rest = client.http.get(f"/account-activity?profile_id=RE-DEFAULT&limit=2&cursor={page['cursor']}",
                           headers=operator).json_body
    assert [r["to_date"] for r in page["results"] + rest["results"]] == ["2026-11-03", "2026-11-02", "2026-11-01"]
    assert rest["cursor"] is None
    missing = client.http.get("/account-activity", headers=operator)
    assert missing.status_code == 400 and missing.json_body["error"]["details"][0]["field"] == "profile_id"


# --- export -----------------------------------------------------------------------------------------

def test_export_writes_xml_that_parses_and_carries_the_totals(client, operator, today):
    put_profile(client, operator)
    post_statement(START, amounts=[("401100", "0", "1234.56"), ("222000", "0", "98.77"), ("110200", "1333.33", "0")])
    run_job(client, operator, "generate-account-activity")
    [result] = results_of(client, operator)

    run = run_job(client, operator, "export-account-activity")

    key = f"account-activity/RE-DEFAULT/{result['result_id']}.xml"  # the id starts with the prefix already
    assert run["status"] == "Ended" and run["outputs"] == [
        {"kind": "s3", "bucket": "retail-sync-local-data", "key": key}], run
    root = ET.fromstring(s3_text(key))
    assert root.attrib == {"profile": "RE-DEFAULT", "resultId": result["result_id"],
                           "fromDate": "2026-11-01", "toDate": "2026-11-19"}
    accounts = {a.get("mainAccount"): a.attrib for a in root}
    assert accounts["401100"] == {"name": "Sales & Returns <net>", "mainAccount": "401100",
                                  "debit": "0.00", "credit": "1234.56"}
    assert (accounts["110200"]["debit"], accounts["999999"]["credit"]) == ("1333.33", "0.00")
    [after] = results_of(client, operator)
    assert after["exported"] is True and after["export_key"] == key and after["exported_at"]


def test_export_writes_csv_that_parses_and_carries_the_totals(client, operator, today):
    put_profile(client, operator, profile_id="FIN-CSV", file_format="csv", prefix="fin_")
    post_statement(START, amounts=[("401100", "0", "10.005"), ("401100", "0", "0.01")])
    run_job(client, operator, "generate-account-activity")

    run_job(client, operator, "export-account-activity")

    [result] = results_of(client, operator, "FIN-CSV")
    rows = list(csv.DictReader(io.StringIO(s3_text(result["export_key"]), newline="")))
    assert result["export_key"] == f"account-activity/FIN-CSV/fin_{result['result_id']}.csv"
    assert rows[0] == {"result_id": result["result_id"], "from_date": "2026-11-01", "to_date": "2026-11-19",
                       "exported_account_name": "Sales & Returns <net>", "main_account": "401100",
                       "debit": "0.00", "credit": "10.02"}  # half-up of the exact 10.015
    assert len(rows) == len(MAPPED)


def test_a_rerun_writes_nothing_and_a_reset_exports_again(client, operator, today):
    put_profile(client, operator)
    run_job(client, operator, "generate-account-activity")
    run_job(client, operator, "export-account-activity")
    [result] = results_of(client, operator)

    rerun = run_job(client, operator, "export-account-activity")
    assert rerun["outputs"] == [] and rerun["counters"]["written"] == 0
    assert not any(op.startswith("s3.") for op in rerun["aws_requests"]), rerun["aws_requests"]

    reset = client.http.post(f"/account-activity/{result['result_id']}/reset-export", headers=operator)
    assert reset.status_code == 200 and reset.json_body["exported"] is False
    again = run_job(client, operator, "export-account-activity")
    assert [o["key"] for o in again["outputs"]] == [result["export_key"]]
    assert list(s3_objects()) == [result["export_key"]]
    assert results_of(client, operator)[0]["exported"] is True


def test_reset_of_an_unexported_or_unknown_result_is_refused(client, operator, today):
    put_profile(client, operator)
    run_job(client, operator, "generate-account-activity")
    [result] = results_of(client, operator)
    assert client.http.post(f"/account-activity/{result['result_id']}/reset-export",
                            headers=operator).status_code == 409
    assert client.http.post("/account-activity/nope/reset-export", headers=operator).status_code == 404


@pytest.mark.parametrize("file_format", ["xml", "csv"])
def test_account_names_with_markup_characters_survive_the_round_trip(client, operator, today, file_format):
    name = 'Fees & "Charges" <EU> \'misc\''
    put_profile(client, operator, file_format=file_format, names={"401100": name})
    run_job(client, operator, "generate-account-activity")
    run_job(client, operator, "export-account-activity")
    [result] = results_of(client, operator)
    text = s3_text(result["export_key"])
    if file_format == "xml":
        names = [a.get("name") for a in ET.fromstring(text)]
    else:
        names = [row["exported_account_name"] for row in csv.DictReader(io.StringIO(text, newline=""))]
    assert names == [name]


def test_a_failing_result_is_reported_and_does_not_stop_the_others(client, operator, today):
    put_profile(client, operator, profile_id="A-BAD", names={"401100": "Sales\x01"})  # XML cannot carry \x01
    put_profile(client, operator, profile_id="B-GONE")
    put_profile(client, operator, profile_id="C-GOOD")
    run_job(client, operator, "generate-account-activity")
    assert client.http.delete("/data/account-export-profiles/B-GONE", headers=operator).status_code == 200

    run = run_job(client, operator, "export-account-activity")

    assert run["counters"]["written"] == 1 and run["counters"]["failed"] == 2
    assert {e["key"].split("-")[0] for e in run["errors"]} == {"A", "B"}
    assert any("exported_account_name" in e["message"] for e in run["errors"])
    assert any("B-GONE no longer exists" in e["message"] for e in run["errors"])
    assert [o["key"] for o in run["outputs"]] == [results_of(client, operator, "C-GOOD")[0]["export_key"]]
    assert results_of(client, operator, "A-BAD")[0]["exported"] is False  # retried next run


def test_a_crash_between_upload_and_flag_leaves_one_file(client, operator, today, monkeypatch):
    from chalicelib.storage import account_activity

    put_profile(client, operator)
    run_job(client, operator, "generate-account-activity")
    real = account_activity.mark_exported

    def crash(result, key):
        raise RuntimeError("Lambda died")

    monkeypatch.setattr(account_activity, "mark_exported", crash)
    first = run_job(client, operator, "export-account-activity")
    assert first["counters"]["failed"] == 1 and len(s3_objects()) == 1
    monkeypatch.setattr(account_activity, "mark_exported", real)

    second = run_job(client, operator, "export-account-activity")

    assert second["counters"]["written"] == 1
    assert list(s3_objects()) == [results_of(client, operator)[0]["export_key"]]


def test_export_dry_run_uploads_and_flags_nothing(client, operator, today):
    put_profile(client, operator)
    run_job(client, operator, "generate-account-activity")
    run = run_job(client, operator, "export-account-activity", dry_run=True)
    assert run["message"] == "would export 1 result(s)"
    assert s3_objects() == {} and results_of(client, operator)[0]["exported"] is False
