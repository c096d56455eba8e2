"""Account activity with late, foreign-currency and unmapped ledger lines (DOMAIN §13 "Late ledger
lines", "Days are local"; issue 11's "Account activity" and "Exports that mislead")."""
import json
import xml.etree.ElementTree as ET
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.integration.test_account_activity import (
    START,
    TODAY,
    Clock,
    post_statement,
    put_profile,
    results_of,
    run_job,
    s3_text,
    totals,
)


@pytest.fixture
def today(monkeypatch):
    return Clock(monkeypatch)


SALE = [("401100", "0", "50.00"), ("110100", "50.00", "0")]
LATE = [("401100", "0", "5.00"), ("110100", "5.00", "0")]


def put_stores(client, operator):
    stores = [{"id": "S1", "name": "Houston", "legal_entity": "USRT", "org_node_id": "D1", "currency": "USD"},
              {"id": "S2", "name": "Dallas", "legal_entity": "USRT", "org_node_id": "D1", "currency": "USD"},
              {"id": "S-CA", "name": "Toronto", "legal_entity": "CART", "org_node_id": "D2", "currency": "CAD",
               "time_zone": "America/Toronto"}]
    nodes = [{"id": "HQ", "name": "Contoso", "parent_id": None}, {"id": "D1", "name": "Texas", "parent_id": "HQ"},
             {"id": "D2", "name": "Ontario", "parent_id": "HQ"}]
    response = client.http.put("/data/org-nodes", headers=operator, body=json.dumps({"items": nodes}))
    assert response.status_code == 200, response.body
    response = client.http.put("/data/stores", headers=operator, body=json.dumps({"items": stores}))
    assert response.status_code == 200, response.body


def test_a_statement_posted_late_for_a_covered_date_reaches_an_export_as_one_adjustment(client, operator, today):
    put_profile(client, operator)
    post_statement(START + timedelta(days=2), amounts=SALE)
    run_job(client, operator, "generate-account-activity")
    run_job(client, operator, "export-account-activity")
    [normal] = results_of(client, operator)
    post_statement(START + timedelta(days=2), store_id="S2", amounts=LATE)  # a store uploading a day late

    first = run_job(client, operator, "generate-account-activity")
    second = run_job(client, operator, "generate-account-activity")  # the same day: no second adjustment

    assert first["status"] == "Ended" and "2 late ledger line(s)" in first["message"], first
    assert second["status"] == "Ended" and second["counters"]["written"] == 0, second
    results = results_of(client, operator)
    assert len(results) == 2
    [adjustment] = [r for r in results if r["result_id"] != normal["result_id"]]
    assert adjustment["result_id"].endswith("-adj1") and adjustment["adjustment"] is True
    assert (adjustment["from_date"], adjustment["to_date"]) == ((START + timedelta(days=2)).isoformat(),) * 2
    assert totals(adjustment)["401100"] == (Decimal("0.00"), Decimal("5.00"))
    assert totals(adjustment)["110100"] == (Decimal("5.00"), Decimal("0.00"))

    run = run_job(client, operator, "export-account-activity")

    assert run["counters"]["written"] == 1, run
    [after] = [r for r in results_of(client, operator) if r["adjustment"]]
    root = ET.fromstring(s3_text(after["export_key"]))
    assert root.get("adjustment") == "true" and root.get("resultId") == adjustment["result_id"]
    assert {a.get("mainAccount"): a.get("credit") for a in root}["401100"] == "5.00"


def test_a_regeneration_with_dates_is_a_restatement_outside_the_chain(client, operator, today):
    put_profile(client, operator)
    post_statement(START + timedelta(days=2), amounts=SALE)
    run_job(client, operator, "generate-account-activity")
    post_statement(START + timedelta(days=2), amounts=LATE)

    restated = run_job(client, operator, "generate-account-activity",
                       {"from_date": START.isoformat(), "to_date": (TODAY - timedelta(days=1)).isoformat()})
    chain = run_job(client, operator, "generate-account-activity")

    assert restated["status"] == chain["status"] == "Ended", (restated, chain)
    results = results_of(client, operator)
    [restatement] = [r for r in results if r.get("restatement")]
    assert totals(restatement)["401100"] == (Decimal("0.00"), Decimal("55.00"))  # the range as of now
    # the chain (normal + adjustments) still adds every ledger line exactly once
    in_chain = [r for r in results if not r.get("restatement")]
    assert sum(totals(r)["401100"][1] for r in in_chain) == Decimal("55.00")
    assert [r["result_id"][-5:] for r in in_chain if r["adjustment"]] == ["-adj1"]
    run_job(client, operator, "export-account-activity")
    [exported] = [r for r in results_of(client, operator) if r.get("restatement")]
    assert ET.fromstring(s3_text(exported["export_key"])).get("restatement") == "true"


def test_a_profile_adds_only_its_legal_entitys_ledger_and_never_two_currencies(client, operator, today):
    put_stores(client, operator)
    put_profile(client, operator, profile_id="RE-DEFAULT")
    put_profile(client, operator, profile_id="US-ONLY")
    put_profile(client, operator, profile_id="CA-ONLY")
    for profile_id, legal_entity in (("US-ONLY", "USRT"), ("CA-ONLY", "CART")):
        record = client.http.get(f"/data/account-export-profiles/{profile_id}", headers=operator).json_body
        record.update(legal_entity=legal_entity)
        client.http.put("/data/account-export-profiles", headers=operator, body=json.dumps({"items": [record]}))
    post_statement(START, store_id="S1", amounts=[("401100", "0", "100.00"), ("110100", "100.00", "0")])
    post_statement(START, store_id="S-CA", amounts=[("401100", "0", "70.00"), ("110100", "70.00", "0")])

    run = run_job(client, operator, "generate-account-activity")

    assert totals(results_of(client, operator, "US-ONLY")[0])["401100"] == (Decimal("0.00"), Decimal("100.00"))
    assert totals(results_of(client, operator, "CA-ONLY")[0])["401100"] == (Decimal("0.00"), Decimal("70.00"))
    assert results_of(client, operator, "RE-DEFAULT") == []  # USD and CAD: refused, nothing added
    [error] = run["errors"]
    assert error["key"] == "RE-DEFAULT" and "CAD, USD" in error["message"] and "legal_entity" in error["message"]


def test_an_unbalanced_result_names_its_unmapped_accounts_and_their_totals(client, operator, today):
    put_profile(client, operator, profile_id="FIN-CSV", file_format="csv", prefix="fin_",
                names={"401100": "Sales", "110100": "Cash"})
    post_statement(START, amounts=[("401100", "0", "100.00"), ("222000", "0", "8.00"),
                                   ("110100", "60.00", "0"), ("110200", "48.00", "0")])

    run = run_job(client, operator, "generate-account-activity")

    [result] = results_of(client, operator, "FIN-CSV")
    assert "222000 (debit 0.00, credit 8.00)" in result["warning"], result
    assert "110200 (debit 48.00, credit 0.00)" in result["warning"]
    assert "debits 60.00" in result["warning"] and "credits 100.00" in result["warning"]
    assert "222000" in run["message"] and result["result_id"] in run["message"]


def test_result_ids_read_from_date_first_and_file_names_carry_the_prefix_once(client, operator, today):
    put_profile(client, operator, profile_id="RE-DEFAULT", prefix="RE-")
    put_profile(client, operator, profile_id="FIN-CSV", file_format="csv", prefix="fin_")
    run_job(client, operator, "generate-account-activity")
    run_job(client, operator, "export-account-activity")

    [xml_result] = results_of(client, operator, "RE-DEFAULT")
    [csv_result] = results_of(client, operator, "FIN-CSV")
    assert xml_result["result_id"] == "RE-DEFAULT-20261101-20261119"
    assert xml_result["export_key"] == "account-activity/RE-DEFAULT/RE-DEFAULT-20261101-20261119.xml"
    assert csv_result["export_key"] == "account-activity/FIN-CSV/fin_FIN-CSV-20261101-20261119.csv"


def test_yesterday_is_the_profiles_own(client, operator, today):
    from datetime import UTC, datetime

    put_profile(client, operator, profile_id="UTC-DAYS")
    put_profile(client, operator, profile_id="NY-DAYS")
    record = client.http.get("/data/account-export-profiles/NY-DAYS", headers=operator).json_body
    record.update(time_zone="America/New_York")
    client.http.put("/data/account-export-profiles", headers=operator, body=json.dumps({"items": [record]}))
    today.at(datetime(2026, 11, 20, 2, 0, tzinfo=UTC))  # 21:00 on the 19th in New York

    run_job(client, operator, "generate-account-activity")

    assert results_of(client, operator, "UTC-DAYS")[0]["to_date"] == "2026-11-19"
    assert results_of(client, operator, "NY-DAYS")[0]["to_date"] == "2026-11-18"


def test_a_posting_not_yet_visible_belongs_to_the_next_run(client, operator, today, monkeypatch):
    """The index lags: a hole in the numbers ends what a result covers; nothing is lost or doubled."""
    from chalicelib.storage import ledger

    put_profile(client, operator)
    yesterday = TODAY - timedelta(days=1)
    post_statement(yesterday, amounts=SALE)
    [hidden, _] = post_statement(yesterday, amounts=LATE)  # committed, not yet in the index
    post_statement(yesterday, amounts=[("401100", "0", "1.00"), ("110100", "1.00", "0")])
    visible = ledger.lines_from


    def lagging(entity, first, limit):
        lines, more = visible(entity, first, limit)
        return [line for line in lines if line.statement_id != hidden.statement_id], more

    monkeypatch.setattr(ledger, "lines_from", lagging)

    first = run_job(client, operator, "generate-account-activity")

    [normal] = results_of(client, operator)
    assert totals(normal)["401100"] == (Decimal("0.00"), Decimal("50.00")), first
    assert normal["sequence_through"] == {"USRT": 2}
    monkeypatch.setattr(ledger, "lines_from", visible)
    second = run_job(client, operator, "generate-account-activity")
    assert "4 late ledger line(s)" in second["message"], second
    [adjustment] = [r for r in results_of(client, operator) if r["adjustment"]]
    assert totals(adjustment)["401100"] == (Decimal("0.00"), Decimal("6.00"))
    assert adjustment["sequence_through"] == {"USRT": 6}


def test_a_line_for_today_numbered_before_yesterdays_waits_for_tomorrows_result(client, operator, today):
    put_profile(client, operator, start=TODAY - timedelta(days=1))
    post_statement(TODAY, amounts=[("401100", "0", "7.25"), ("110100", "7.25", "0")])  # today, posted first
    post_statement(TODAY - timedelta(days=1), amounts=SALE)

    run_job(client, operator, "generate-account-activity")
    today.set(TODAY + timedelta(days=1))
    run = run_job(client, operator, "generate-account-activity")

    by_range = {(r["from_date"], r["to_date"]): totals(r)["401100"] for r in results_of(client, operator)}
    day = (TODAY - timedelta(days=1)).isoformat()
    assert by_range == {(day, day): (Decimal("0.00"), Decimal("50.00")),
                        (TODAY.isoformat(), TODAY.isoformat()): (Decimal("0.00"), Decimal("7.25"))}
    assert "0 late" in run["message"]
