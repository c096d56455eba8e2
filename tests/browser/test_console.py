"""The operator console in a real browser against the local stack: sign-in (operator tokens only,
back to sign-in on a 401), a dry run watched to its end and opened, an assortment published,
its download sessions previewed, rerun and canceled, registrations approved, values shown as text."""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from tests.browser.conftest import sign_in

XSS = "<script>alert(1)</script>"


def test_an_operator_signs_in_and_the_token_stays_out_of_the_address(page, stack):
    sign_in(page, stack)
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Purge run history"))).to_contain_text("daily at 04:30 UTC")
    assert page.evaluate("sessionStorage.getItem('retail-sync.operator-token')") == stack.operator
    assert page.evaluate("localStorage.length") == 0
    assert stack.operator not in page.url
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_a_store_token_is_refused_at_sign_in(page, stack):
    sign_in(page, stack, token=stack.store)
    expect(page.get_by_role("alert")).to_have_text("This is a store token: the console needs an operator token.")
    expect(page.locator("#nav")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0


def test_a_token_revoked_while_signed_in_returns_to_sign_in(page, stack):
    token = stack.tokens("create", "--role", "operator", "--label", "browser-revoked", "--expires-in", "12h")
    sign_in(page, stack, token=token)
    page.wait_for_selector("#nav a[aria-current='page']")
    token_id = next(t["token_id"] for t in json.loads(stack.tokens("list")) if t["label"] == "browser-revoked")
    stack.tokens("revoke", token_id)
    page.get_by_role("link", name="Runs").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text("Your token expired or was revoked: sign in again.")
    assert page.evaluate("sessionStorage.length") == 0


def test_a_dry_run_is_started_watched_to_its_end_and_opened(page, stack):
    sign_in(page, stack)
    page.get_by_role("row", name=re.compile("Purge run history")).get_by_role("button", name="Run now…").click()
    form = page.get_by_role("form", name="Run Purge run history")
    form.get_by_label("older_than_days").fill("30")
    form.get_by_label("Dry run").check()
    form.get_by_role("button", name="Start run").click()
    expect(page.get_by_role("heading", name=re.compile("purge-run-history"))).to_contain_text("Ended")
    expect(page.locator("h1")).to_contain_text("dry run")
    details = page.locator("dl.fields")
    expect(details).to_contain_text("make serve")  # requested by: the token's label
    expect(details).to_contain_text('{"older_than_days":30}')
    expect(page.get_by_role("heading", name="AWS requests")).to_be_visible()
    expect(page.get_by_role("heading", name="Errors (0)")).to_be_visible()
    run_id = page.locator("dl.fields dd code").first.inner_text()
    page.get_by_role("link", name=re.compile("runs of purge-run-history")).click()
    first = page.locator("tbody tr").first
    expect(first).to_contain_text("purge-run-history")
    expect(first.get_by_role("link")).to_have_attribute("title", run_id)  # newest first


def test_bad_parameters_show_the_api_message_and_field(page, stack):
    sign_in(page, stack)
    page.get_by_role("row", name=re.compile("Purge run history")).get_by_role("button", name="Run now…").click()
    form = page.get_by_role("form", name="Run Purge run history")
    form.get_by_label("older_than_days").fill("-3")
    form.get_by_role("button", name="Start run").click()
    problem = form.get_by_role("alert")
    expect(problem).to_contain_text("older_than_days")
    expect(problem.locator("li")).to_have_count(1)


def test_publish_an_assortment_then_preview_rerun_and_cancel_its_sessions(page, stack):
    sign_in(page, stack, view="assortments")
    row = page.get_by_role("row", name=re.compile("Canada core range"))
    expect(row).to_contain_text("Draft")
    row.get_by_role("button", name="Publish").click()
    assert page.dialogs and "Publish assortment Canada core range" in page.dialogs[-1][1]
    expect(page.get_by_role("status")).to_contain_text("published")
    expect(page.get_by_role("row", name=re.compile("Canada core range"))).not_to_contain_text("Draft")
    page.get_by_role("status").get_by_role("link").click()
    expect(page.locator("h1")).to_contain_text("Ended")

    page.get_by_role("link", name="Download sessions").click()
    page.get_by_label("Status").select_option("Available")
    page.get_by_role("button", name="Show").click()
    rows = page.locator("tbody tr")
    expect(rows.first).to_contain_text("assortments")
    rows.first.get_by_role("button", name="Preview").click()
    preview = page.get_by_role("region", name="Package preview")
    expect(preview.locator("th").first).to_be_visible()
    expect(preview).to_contain_text(re.compile(r"\d+ of \d+ rows"))

    session_id = rows.first.locator("code").get_attribute("title")
    rows.first.get_by_role("button", name="Cancel").click()
    assert "Cancel session" in page.dialogs[-1][1]
    expect(page.get_by_role("status")).to_contain_text(f"Session {session_id} canceled.")
    canceled = page.locator("tbody tr", has=page.locator(f"code[title='{session_id}']"))
    expect(canceled).to_contain_text("Canceled")

    canceled.get_by_role("button", name="Rerun").click()
    assert "Rerun assortments" in page.dialogs[-1][1]
    expect(page.get_by_role("status")).to_contain_text("Rerun started")
    page.get_by_role("status").get_by_role("link").click()
    expect(page.locator("h1")).to_contain_text("process-assortments")


def _registrations(stack, days_ago: tuple[int, ...]) -> list[str]:
    workers = [w for w in stack.call("GET", "/data/workers?limit=1000")["items"] if w["store_id"] == stack.store_id][:2]
    registrations = []
    for worker in workers:
        for n in days_ago:
            day = (datetime.now(UTC) - timedelta(days=n)).replace(hour=16, minute=0, second=0, microsecond=0)
            registrations.append({"registration_id": f"BT-{worker['id']}-{n}", "worker_id": worker["id"],
                                  "clock_in": day.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                  "clock_out": (day + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")})
    stack.call("POST", f"/stores/{stack.store_id}/time-registrations", {"registrations": registrations},
               token=stack.store)
    return [w["id"] for w in workers]


def test_approve_registrations_of_selected_workers_then_all_of_a_store(page, stack):
    first, second = _registrations(stack, (3, 4))
    sign_in(page, stack, view=f"time-registrations?store_id={stack.store_id}")
    expect(page.get_by_role("row", name=re.compile(second))).to_contain_text("pending")
    page.get_by_label(f"select worker {first}").check()
    page.get_by_role("button", name="Approve selected workers").click()
    expect(page.get_by_role("status")).to_contain_text("Approved 2;")
    expect(page.get_by_role("row", name=re.compile(first))).to_have_count(0)  # pending only
    page.get_by_role("button", name=f"Approve all of store {stack.store_id}").click()
    assert f"every pending registration of store {stack.store_id}" in page.dialogs[-1][1]
    expect(page.get_by_role("status")).to_contain_text("Approved 2;")
    expect(page.get_by_text("Nothing pending approval for these days.")).to_be_visible()


def test_names_are_shown_as_text_never_run(page, stack):
    assortment = stack.call("GET", "/data/assortments/AS-HOLIDAY")
    stack.call("PUT", "/data/assortments", {"items": [{**{k: v for k, v in assortment.items() if k != "status"},
                                                       "id": "AS-XSS", "name": XSS}]})
    sign_in(page, stack, view="assortments")
    cell = page.get_by_role("row", name=re.compile("AS-XSS")).locator("strong")
    expect(cell).to_have_text(XSS)
    assert page.locator("main script").count() == 0
    page.reload()
    expect(page.get_by_role("row", name=re.compile("AS-XSS"))).to_be_visible()
    assert page.dialogs == []


def test_reset_an_export_and_download_an_export_file(page, stack):
    stack.call("POST", "/jobs/generate-account-activity/runs", {"params": {}})
    export = stack.call("POST", "/jobs/export-account-activity/runs", {"params": {}})["run"]
    sign_in(page, stack, view="finance?profile_id=FIN-CSV")
    exported = page.locator("tbody tr", has_text="Exported").first
    exported.get_by_role("button", name="Reset export").click()
    assert "Reset the export of" in page.dialogs[-1][1]
    expect(page.get_by_role("status")).to_contain_text("will be exported again by the next export run")

    page.goto(f"{stack.console}#/runs/{export['run_id']}")
    outputs = page.locator("section", has=page.get_by_role("heading", name=re.compile("Outputs")))
    outputs.get_by_role("button", name="Get download link").first.click()
    link = outputs.get_by_role("link", name="Download").first
    expect(link).to_have_attribute("href", re.compile(r"^http://127\.0\.0\.1:\d+/.*account-activity"))


def test_a_dropped_rms_file_is_staged_and_copied_to_target(page, stack):
    import boto3

    s3 = boto3.client("s3", endpoint_url=stack.endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.put_object(Bucket="retail-sync-local-migration", Key="migration/data/products/browser-test.csv",
                  Body=(stack.folder / "demo-output" / "rms-items.csv").read_bytes())
    sign_in(page, stack, view="migration")
    staged = page.locator("tbody tr", has_text="browser-test.csv")
    for _ in range(30):  # make serve hands drops to their function every 2 s
        if staged.count():
            break
        page.wait_for_timeout(1000)
        page.get_by_role("button", name="Show").click()
    staged.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Mapping in use")).to_be_visible()
    page.get_by_role("button", name="Copy to target: all valid rows").click()
    assert "Copy all" in page.dialogs[-1][1]
    expect(page.get_by_role("status")).to_contain_text("Copy started")
    page.get_by_role("status").get_by_role("link").click()
    expect(page.locator("h1")).to_contain_text("copy-migration-to-target")


def _conflict(stack, transaction_id: str) -> None:
    """The store uploads a transaction, then another version of it: an upload conflict (and its alert)."""
    from devstack.datagen import generate, transactions

    sale = next(transactions(generate("S"), days=1, per_store_per_day=1, store_ids=[stack.store_id]))
    sale = {**sale, "transaction_id": transaction_id}
    path = f"/stores/{stack.store_id}/transactions"
    assert stack.call("POST", path, {"transactions": [sale]}, token=stack.store)["accepted"] == 1
    changed = {**sale, "lines": [{**sale["lines"][0], "qty": str(int(sale["lines"][0]["qty"]) + 1)},
                                 *sale["lines"][1:]]}
    assert stack.call("POST", path, {"transactions": [changed]}, token=stack.store)["conflicts"]


def test_accept_a_conflicting_version_of_an_uploaded_transaction(page, stack):
    _conflict(stack, "BT-CONFLICT")
    sign_in(page, stack, view=f"uploads?store_id={stack.store_id}")
    row = page.locator("tbody tr", has_text="BT-CONFLICT")
    expect(row).to_contain_text("Open")
    row.get_by_role("button", name="Accept this version").click()
    assert "Accept the uploaded version of transaction BT-CONFLICT" in page.dialogs[-1][1]
    expect(page.get_by_role("status")).to_contain_text("Accepted the new version of BT-CONFLICT.")
    expect(page.locator("tbody tr", has_text="BT-CONFLICT")).to_contain_text("Accepted")


def test_a_run_shown_executing_refreshes_until_it_ends(page, stack):
    run = stack.call("POST", "/jobs/purge-run-history/runs", {"params": {}, "dry_run": True})["run"]
    answers = []

    def first_executing(route):
        """The run's first two answers say Executing (as while it works); the later ones are the stack's."""
        response = route.fetch()
        body = response.json()
        if len(answers) < 2:
            body = {**body, "status": "Executing", "ended_at": None}
        answers.append(body["status"])
        route.fulfill(response=response, json=body)

    page.route(f"**/runs/{run['run_id']}", first_executing)
    sign_in(page, stack)
    page.goto(f"{stack.console}#/runs/{run['run_id']}")
    expect(page.locator("h1")).to_contain_text("Executing")
    expect(page.get_by_role("status")).to_contain_text("Refreshing while the run is waiting or executing")
    expect(page.get_by_role("button", name="Cancel run")).to_be_visible()
    expect(page.locator("h1")).to_contain_text("Ended")  # no reload: the view asked again
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    assert answers[-1] == "Ended" and len(answers) >= 3


def test_cancel_asks_first_and_shows_the_apis_refusal(page, stack):
    run = stack.call("POST", "/jobs/purge-run-history/runs", {"params": {}, "dry_run": True})["run"]

    def always_executing(route):
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), "status": "Executing", "ended_at": None})

    page.route(f"**/runs/{run['run_id']}", always_executing)
    sign_in(page, stack)
    page.goto(f"{stack.console}#/runs/{run['run_id']}")
    page.get_by_role("button", name="Cancel run").click()
    question = f"Cancel run {run['run_id']} of purge-run-history? It stops at its next page."
    assert page.dialogs[-1] == ("confirm", question)
    expect(page.get_by_role("alert")).to_have_text(f"run {run['run_id']} has already ended (Ended)")  # the 409


def test_open_alerts_show_as_a_banner_and_are_acknowledged(page, stack):
    _conflict(stack, "BT-ALERT")
    sign_in(page, stack)
    banner = page.locator("#alerts")
    expect(banner).to_contain_text(re.compile(r"\d+ open alerts?"))
    count = int(banner.get_by_role("button").first.inner_text().split()[0])
    banner.get_by_role("button", name=re.compile("open alert")).click()
    item = banner.locator("li", has_text="BT-ALERT")
    expect(item).to_contain_text("upload conflict")
    item.get_by_role("button", name="Acknowledge").click()
    expect(banner.locator("li", has_text="BT-ALERT")).to_have_count(0)
    if count > 1:
        expect(banner).to_contain_text(f"{count - 1} open alert")
        expect(banner.locator("li").first).to_be_visible()  # the list stays open
    else:
        expect(banner).to_be_hidden()


def test_statements_with_totals_and_stock_on_hand_after_posting(page, stack):
    from devstack.datagen import generate, transactions

    store_id = "S002"
    sales = list(transactions(generate("S"), days=1, per_store_per_day=3, store_ids=[store_id]))
    assert stack.call("POST", f"/stores/{store_id}/transactions", {"transactions": sales},
                      token=stack.tokens("create", "--role", "store", "--store-id", store_id))["accepted"]
    # through the sales' own date: before 06:00 UTC a US store's local yesterday is the day before it
    through = max(sale["business_date"] for sale in sales)
    posted = stack.call("POST", "/jobs/post-statements/runs", {"params": {"store_ids": [store_id],
                                                                          "through_date": through}})["run"]
    assert posted["status"] == "Ended" and "posted 1 statement(s)" in posted["message"], posted
    stack.call("POST", "/jobs/post-inventory/runs", {"params": {"store_ids": [store_id]}})
    sign_in(page, stack, view=f"stock?store_id={store_id}")
    statement = page.locator("section", has=page.get_by_role("heading", name=f"Statements of store {store_id}"))
    expect(statement.locator("tbody tr").first).to_contain_text("sales")
    expect(statement.locator("tbody tr").first).to_contain_text("tenders")
    stock = page.locator("section", has=page.get_by_role("heading", name=f"On hand at store {store_id}"))
    expect(stock.locator("tbody tr").first).to_be_visible()
