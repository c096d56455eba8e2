"""Operators approve and list time registrations (issues 15 and 16): a worker's, up to 100
workers', a store's or up to 50 stores' registrations of a date range at once, conditionally (a registration changed
after it was read is not approved), at ≤ 0.05 AWS requests per registration approved."""
import json
from collections import Counter
from datetime import UTC, date, timedelta

import pytest

from tests.conftest import bare_stores, store_headers
from tests.integration.test_transfer_to_pay import shift, transfer, upload

DAYS = [date(2026, 9, 28) + timedelta(days=i) for i in range(14)]  # two weeks, Monday to Sunday
BIG = [f"W-{n:02d}" for n in range(20)]  # a store of 20 workers
WORKERS = [
    {"id": "W-A", "name": "Ann", "export_id": "E1", "store_id": "S1", "pay_period_type": "weekly",
     "base_rate": "20.00"},
    {"id": "W-B", "name": "Bob", "export_id": "E2", "store_id": "S1", "pay_period_type": "biweekly",
     "base_rate": "18.50"},
    {"id": "W-C", "name": "Cy", "export_id": "E3", "store_id": "S1", "pay_period_type": "monthly",
     "base_rate": "30.00"},
    {"id": "W-X", "name": "Xena", "export_id": "E4", "store_id": "S2", "pay_period_type": "weekly",
     "base_rate": "20.00"},
    *({"id": w, "name": f"Worker {w}", "export_id": f"E-{w}", "store_id": "S9",
       "pay_period_type": ("weekly", "biweekly")[n % 2], "base_rate": "21.00"} for n, w in enumerate(BIG)),
]
PAY_TYPES = [{"id": "REG", "export_id": "100", "include_in_export": True},
             {"id": "OT", "export_id": "150", "include_in_export": True}]
WRITES = ("dynamodb.TransactWriteItems", "dynamodb.BatchWriteItem", "dynamodb.PutItem", "dynamodb.UpdateItem",
          "dynamodb.DeleteItem")


@pytest.fixture
def setup(client, operator):
    data = {**bare_stores(["S1", "S2", "S9"]), "workers": WORKERS, "pay-types": PAY_TYPES}
    for entity, items in data.items():
        response = client.http.put(f"/data/{entity}", headers=operator, body=json.dumps({"items": items}))
        assert response.status_code == 200, response.body
    s1 = [shift(w, day, 8) for w in ("W-A", "W-B", "W-C") for day in DAYS[:7]]
    assert upload(client, s1, "S1").status_code == 200
    assert upload(client, [shift("W-X", day, 8) for day in DAYS[:7]], "S2").status_code == 200
    return client


def approve(client, operator, **body):
    return client.http.post("/time-registrations/approve", headers=operator, body=json.dumps(body))


def listing(client, operator, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.http.get(f"/time-registrations?{query}", headers=operator)


def statuses(client, operator, **params) -> dict[str, str]:
    response = listing(client, operator, limit=500, **params)
    assert response.status_code == 200, response.body
    return {item["registration_id"]: item["status"] for item in response.json_body["items"]}


def reg_id(worker_id: str, day: date) -> str:
    return f"TR-{worker_id}-{day:%Y%m%d}-1"


# --- the three forms --------------------------------------------------------------------------------

def test_the_store_form_approves_that_stores_registrations_in_range_only(setup, operator):
    client = setup
    response = approve(client, operator, store_id="S1", **{"from": "2026-09-29", "to": "2026-10-01"})

    assert response.status_code == 200, response.body
    assert response.json_body == {"store_id": "S1", "from": "2026-09-29", "to": "2026-10-01", "approved": 9,
                                  "already_approved": 0, "not_approved": []}
    approved = {r for r, s in statuses(client, operator, store_id="S1", **{"from": "2026-09-28",
                                                                            "to": "2026-10-11"}).items()
                if s == "approved"}
    assert approved == {reg_id(w, d) for w in ("W-A", "W-B", "W-C") for d in DAYS[1:4]}
    other = statuses(client, operator, store_id="S2", **{"from": "2026-09-28", "to": "2026-10-11"})
    assert set(other.values()) == {"pending"}  # another store's, the same days


def test_the_worker_ids_form_approves_the_named_workers_only(setup, operator):
    client = setup
    response = approve(client, operator, worker_ids=["W-A", "W-X"], **{"from": "2026-09-28", "to": "2026-10-04"})

    assert response.status_code == 200, response.body
    assert response.json_body["approved"] == 14
    assert response.json_body["worker_ids"] == ["W-A", "W-X"]
    s1 = statuses(client, operator, store_id="S1", **{"from": "2026-09-28", "to": "2026-10-04"})
    assert {r for r, s in s1.items() if s == "approved"} == {reg_id("W-A", d) for d in DAYS[:7]}
    assert set(statuses(client, operator, worker_id="W-X", **{"from": "2026-09-28", "to": "2026-10-04"}).values()) \
        == {"approved"}


def test_the_store_ids_form_approves_the_named_stores_only_reading_each_day_once(big_store, operator):
    from chalicelib.storage.metering import metered

    approve(big_store, operator, worker_id="W-A", **{"from": "2026-09-28", "to": "2026-09-28"})  # token in use
    with metered(Counter()) as requests:
        response = approve(big_store, operator, store_ids=["S2", "S1"], **{"from": "2026-09-29", "to": "2026-10-04"})

    assert response.status_code == 200, response.body
    assert response.json_body == {"store_ids": ["S2", "S1"], "from": "2026-09-29", "to": "2026-10-04",
                                  "approved": 3 * 6 + 6, "already_approved": 0, "not_approved": []}
    # The token, the stores, one by_day query a day for both (not a query a store), one transaction.
    assert requests == {"dynamodb.GetItem": 1, "dynamodb.BatchGetItem": 1, "dynamodb.Query": 6,
                        "dynamodb.TransactWriteItems": 1}, dict(requests)
    s1 = statuses(big_store, operator, store_id="S1", **{"from": "2026-09-28", "to": "2026-10-11"})
    assert {r for r, s in s1.items() if s == "approved"} == {reg_id(w, d) for w in ("W-A", "W-B", "W-C")
                                                             for d in DAYS[1:7]} | {reg_id("W-A", DAYS[0])}
    assert set(statuses(big_store, operator, store_id="S9", **{"from": "2026-09-28", "to": "2026-10-11"}).values()) \
        == {"pending"}  # a store not named, the same days


def test_an_unknown_store_in_store_ids_is_refused_by_position_and_nothing_is_approved(setup, operator):
    response = approve(setup, operator, store_ids=["S1", "S-NOWHERE"], **{"from": "2026-09-28", "to": "2026-10-04"})
    assert response.status_code == 400, response.body
    assert "store_ids[1]" in response.body.decode() and "unknown store S-NOWHERE" in response.body.decode()
    assert set(statuses(setup, operator, store_id="S1", **{"from": "2026-09-28", "to": "2026-10-04"}).values()) \
        == {"pending"}


def test_the_single_worker_form_still_answers_as_before(setup, operator):
    response = approve(setup, operator, worker_id="W-B", **{"from": "2026-09-28", "to": "2026-09-30"})
    assert response.json_body == {"worker_id": "W-B", "from": "2026-09-28", "to": "2026-09-30", "approved": 3,
                                  "already_approved": 0, "not_approved": []}


def test_approving_writes_the_pay_backlog_the_payroll_job_reads(setup, operator):
    from chalicelib.storage.pay import PayBacklog, TimeRegistration

    for registration in TimeRegistration.query("W-C"):  # uploaded before registrations kept the period type
        registration.update(actions=[TimeRegistration.period_type.remove()])
    before = {e.entry for t in ("weekly", "biweekly", "monthly") for e in PayBacklog.query(t)}
    approve(setup, operator, store_id="S1", **{"from": "2026-09-28", "to": "2026-10-04"})
    new = [e for t in ("weekly", "biweekly", "monthly") for e in PayBacklog.query(t) if e.entry not in before]
    # One entry per worker and period: W-C's month ends on 09-30, so its week spans two months.
    assert sorted((e.period_type, e.worker_id, len(e.days)) for e in new) == [
        ("biweekly", "W-B", 7), ("monthly", "W-C", 3), ("monthly", "W-C", 4), ("weekly", "W-A", 7)]


@pytest.mark.parametrize("body, field", [
    ({"from": "2026-09-28", "to": "2026-09-30"}, "worker_id"),
    ({"worker_id": "W-A", "store_id": "S1", "from": "2026-09-28", "to": "2026-09-30"}, "store_id"),
    ({"worker_ids": [], "from": "2026-09-28", "to": "2026-09-30"}, "worker_ids"),
    ({"worker_ids": [f"W-{n}" for n in range(101)], "from": "2026-09-28", "to": "2026-09-30"}, "worker_ids"),
    ({"worker_ids": ["W-A", "W-A"], "from": "2026-09-28", "to": "2026-09-30"}, "worker_ids[1]"),
    ({"worker_ids": ["W-A", "W-NOBODY"], "from": "2026-09-28", "to": "2026-09-30"}, "worker_ids[1]"),
    ({"store_id": "S1", "from": "2026-07-31", "to": "2026-10-01"}, "to"),  # 63 days: 62 at most
    ({"store_id": "S1", "from": "2026-10-01", "to": "2026-09-30"}, "to"),
    ({"store_id": "S1", "from": "yesterday", "to": "2026-09-30"}, "from"),
    ({"store_id": "S1", "from": "2026-09-28", "to": "2026-09-30", "status": "x"}, "status"),
])
def test_a_bad_approval_request_is_refused_naming_the_field_and_writes_nothing(setup, operator, body, field):
    response = approve(setup, operator, **body)
    assert response.status_code == 400, response.body
    assert field in [d["field"] for d in response.json_body["error"]["details"]]
    assert set(statuses(setup, operator, store_id="S1", **{"from": "2026-09-28", "to": "2026-10-04"}).values()) \
        == {"pending"}


def test_an_unknown_store_is_not_found(setup, operator):
    response = approve(setup, operator, store_id="S-NOWHERE", **{"from": "2026-09-28", "to": "2026-09-30"})
    assert response.status_code == 404


def test_a_store_token_may_neither_approve_nor_list(setup):
    headers = store_headers("S1")
    assert approve(setup, headers, store_id="S1", **{"from": "2026-09-28", "to": "2026-09-30"}).status_code == 403
    assert listing(setup, headers, store_id="S1", **{"from": "2026-09-28", "to": "2026-09-30"}).status_code == 403


# --- conditions and idempotency -------------------------------------------------------------------

def test_a_registration_changed_after_it_was_read_is_not_approved_and_keeps_its_new_times(setup, operator,
                                                                                           monkeypatch):
    from chalicelib.storage import pay

    read = pay.store_registrations

    def read_then_the_store_resends(store_id, start, end):
        found = read(store_id, start, end)
        moved = {**shift("W-A", DAYS[0], 8), "clock_out": "2026-09-28T18:00:00Z"}  # 10 h now
        pay.save_registrations("S1", [moved], {"W-A": "weekly"}, UTC)  # a store without a zone
        return found

    monkeypatch.setattr(pay, "store_registrations", read_then_the_store_resends)
    response = approve(setup, operator, store_id="S1", **{"from": "2026-09-28", "to": "2026-10-04"})

    assert response.status_code == 200, response.body
    assert response.json_body["approved"] == 20
    assert response.json_body["not_approved"] == [
        {"registration_id": reg_id("W-A", DAYS[0]), "worker_id": "W-A", "reason": pay.CHANGED}]
    stored = pay.TimeRegistration.get("W-A", reg_id("W-A", DAYS[0]))
    assert (stored.approved, stored.clock_out) == (False, "2026-09-28T18:00:00Z")


def test_a_registration_approved_by_a_concurrent_request_counts_as_already_approved(setup, operator, monkeypatch):
    from chalicelib.storage import pay

    read = pay.store_registrations

    def read_then_another_operator_approves(store_id, start, end):
        found = read(store_id, start, end)
        mine = [r for r in found if r.worker_id == "W-A"]
        assert pay.approve(mine, {"W-A": "weekly"}).approved == 7
        return found

    monkeypatch.setattr(pay, "store_registrations", read_then_another_operator_approves)
    response = approve(setup, operator, store_id="S1", **{"from": "2026-09-28", "to": "2026-10-04"})

    assert (response.json_body["approved"], response.json_body["already_approved"]) == (14, 7)
    assert response.json_body["not_approved"] == []


def test_approving_twice_changes_and_writes_nothing_the_second_time(setup, operator):
    from chalicelib.storage.metering import metered

    body = {"store_id": "S1", "from": "2026-09-28", "to": "2026-10-04"}
    assert approve(setup, operator, **body).json_body["approved"] == 21
    before = listing(setup, operator, limit=500, **{k: v for k, v in body.items()}).json_body
    with metered(Counter()) as requests:
        again = approve(setup, operator, **body).json_body
    assert (again["approved"], again["already_approved"], again["not_approved"]) == (0, 21, [])
    assert [op for op in WRITES if requests[op]] == []
    assert listing(setup, operator, limit=500, **body).json_body == before


# --- the request floor (issue 16) -----------------------------------------------------------------

@pytest.fixture
def big_store(setup, operator, local_moto):
    """20 workers x 14 daily shifts in S9: 280 registrations."""
    response = upload(setup, [shift(w, day, 9) for w in BIG for day in DAYS], "S9")
    assert response.json_body["accepted"] == 280, response.body
    return setup


def test_a_stores_two_weeks_are_approved_at_under_0_05_requests_per_registration(big_store, operator):
    from chalicelib.storage.metering import metered

    approve(big_store, operator, worker_id="W-A", **{"from": "2026-09-28", "to": "2026-09-28"})  # token in use
    with metered(Counter()) as requests:
        response = approve(big_store, operator, store_id="S9", **{"from": "2026-09-28", "to": "2026-10-11"})

    assert response.json_body["approved"] == 280, response.body
    assert sum(requests.values()) / 280 <= 0.05, dict(requests)
    # The token, the store's query (registrations carry their worker's period type); 280 approvals
    # and their 40 backlog entries (a week per weekly worker, two periods per biweekly one), 100 actions
    # a transaction.
    assert requests == {"dynamodb.GetItem": 1, "dynamodb.Query": 1, "dynamodb.TransactWriteItems": 4}
    assert set(statuses(big_store, operator, store_id="S9", **{"from": "2026-09-28", "to": "2026-10-11"}).values()) \
        == {"approved"}


def test_twenty_named_workers_are_approved_with_one_query_each(big_store, operator):
    from chalicelib.storage.metering import metered

    with metered(Counter()) as requests:
        response = approve(big_store, operator, worker_ids=BIG, **{"from": "2026-09-28", "to": "2026-10-11"})

    assert response.json_body["approved"] == 280, response.body
    assert requests["dynamodb.Query"] == 20 and requests["dynamodb.TransactWriteItems"] == 4, dict(requests)
    assert sum(requests.values()) / 280 <= 0.1


# --- the list ---------------------------------------------------------------------------------------

def test_the_list_is_ordered_by_worker_then_clock_in_and_pages(setup, operator):
    client = setup
    approve(client, operator, worker_id="W-B", **{"from": "2026-09-28", "to": "2026-10-04"})
    window = {"from": "2026-09-28", "to": "2026-10-04"}
    seen, cursor, pages = [], None, 0
    while True:
        response = listing(client, operator, store_id="S1", limit=4, **window,
                           **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.body
        seen += response.json_body["items"]
        cursor, pages = response.json_body["cursor"], pages + 1
        if cursor is None:
            break
    assert pages == 6  # 21 registrations, 4 a page
    assert [(i["worker_id"], i["clock_in"]) for i in seen] == sorted((i["worker_id"], i["clock_in"]) for i in seen)
    assert len({i["registration_id"] for i in seen}) == 21
    assert seen[0] == {"registration_id": reg_id("W-A", DAYS[0]), "worker_id": "W-A", "store_id": "S1",
                       "clock_in": "2026-09-28T08:00:00.000Z", "clock_out": "2026-09-28T16:00:00.000Z",
                       "work_date": "2026-09-28", "hours": "8.00", "status": "pending", "approved_at": None,
                       "transfer_key": None}
    pending = listing(client, operator, store_id="S1", status="pending", limit=500, **window).json_body
    assert {i["worker_id"] for i in pending["items"]} == {"W-A", "W-C"} and pending["cursor"] is None
    approved = listing(client, operator, store_id="S1", status="approved", limit=3, **window).json_body
    assert [i["registration_id"] for i in approved["items"]] == [reg_id("W-B", d) for d in DAYS[:3]]
    assert approved["cursor"] is not None


def test_the_list_filters_by_worker_and_days(setup, operator):
    found = statuses(setup, operator, worker_id="W-C", **{"from": "2026-09-30", "to": "2026-10-01"})
    assert set(found) == {reg_id("W-C", DAYS[2]), reg_id("W-C", DAYS[3])}
    assert statuses(setup, operator, worker_id="W-C", store_id="S2", **{"from": "2026-09-28", "to": "2026-10-04"}) \
        == {}


def test_a_transferred_registration_shows_its_payroll_file(setup, operator):
    client = setup
    approve(client, operator, worker_id="W-A", **{"from": "2026-09-28", "to": "2026-10-04"})
    run = transfer(client, operator, pay_date="2026-10-04", period_type="weekly", accept_errors=True)
    assert run["status"] == "Ended", run

    items = listing(client, operator, worker_id="W-A", status="transferred",
                    **{"from": "2026-09-28", "to": "2026-10-04"}).json_body["items"]
    assert len(items) == 7
    assert {i["transfer_key"] for i in items} == {run["outputs"][0]["key"]}


@pytest.mark.parametrize("params, field", [
    ({"store_id": "S1", "status": "Bogus", "from": "2026-09-28", "to": "2026-10-04"}, "status"),
    ({"status": "pending", "from": "2026-09-28", "to": "2026-10-04"}, "store_id"),
    ({"store_id": "S1", "to": "2026-10-04"}, "from"),
    ({"store_id": "S1", "from": "2026-01-01", "to": "2026-10-04"}, "to"),
    ({"store_id": "S1", "from": "2026-09-28", "to": "2026-10-04", "limit": "0"}, "limit"),
    ({"store_id": "S1", "from": "2026-09-28", "to": "2026-10-04", "cursor": "bm9wZQ"}, "cursor"),
    ({"store_id": "S1", "from": "2026-09-28", "to": "2026-10-04", "shop": "S1"}, "shop"),
])
def test_a_bad_list_request_is_refused_naming_the_parameter(setup, operator, params, field):
    response = listing(setup, operator, **params)
    assert response.status_code == 400, response.body
    assert field in [d["field"] for d in response.json_body["error"]["details"]]
