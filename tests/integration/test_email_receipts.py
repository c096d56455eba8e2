"""Send email receipts on moto: one raw SES email per eligible transaction, never twice; throttling,
rejected addresses, transient failures, expiry and stale claims."""
import email
import io
import json
import logging
from datetime import timedelta

import botocore.client
import pytest
from botocore.exceptions import ClientError
from pypdf import PdfReader

from tests.integration.retail import (
    TODAY,
    YESTERDAY,
    load_master_data,
    run_job,
    sale,
    sent_messages,
    transaction,
    upload,
)


@pytest.fixture
def retailer(client):
    load_master_data()
    return client


@pytest.fixture
def ses_faults(retailer):
    """``faults[recipient or "*"] = [error codes...]``: SendEmail raises them in turn (then works).
    A botocore ``before-call`` hook on the job's SES client, as the crash harness injects faults:
    the run still counts the failing attempt."""
    from chalicelib.storage import aws

    faults: dict[str, list[str]] = {}

    def send(params=None, **_):
        recipient = json.loads(params["body"])["Destination"]["ToAddresses"][0]
        queue = faults.get(recipient) or faults.get("*")
        if queue:
            code = queue.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": f"{code} for {recipient}"}}, "SendEmail")

    events = aws.client("sesv2").meta.events
    events.register("before-call.sesv2.SendEmail", send, unique_id="ses-faults")
    yield faults
    events.unregister("before-call.sesv2.SendEmail", unique_id="ses-faults")


def post(client, operator, store_id, transactions):
    response = upload(client, store_id, transactions)
    assert response.status_code == 200, response.body
    run = run_job(client, operator, "post-statements", {"store_ids": [store_id]})
    assert run["status"] == "Ended", run


def messages_to(address):
    return [m for m in sent_messages() if address in m.destinations]


def parsed(message):
    return email.message_from_string(message.raw_data)


def parts(mime):
    found = {}
    for part in mime.walk():
        if part.get_content_maintype() == "multipart":
            continue
        found[part.get_filename() or part.get_content_type()] = part.get_payload(decode=True)
    return found


def test_one_email_per_eligible_transaction_in_the_customers_language(retailer, operator):
    post(retailer, operator, "S1", [
        sale("T1", [("SHIRT", "M-RED", 1, "20.00")], customer_id="C1"),  # de-de, Email
        sale("T2", [("BALL", None, 1, "5.00")], customer_id="C2"),  # POS only: no email
        sale("T3", [("BALL", None, 2, "5.00")], receipt_email="guest@example.com"),  # no customer: en-us
        sale("T4", [("BALL", None, -1, "5.00")], kind="Return", customer_id="C3"),  # fr-fr, Both
        sale("T5", [("BALL", None, 1, "5.00")], status="Voided", customer_id="C1"),
        sale("T6", [("BALL", None, 1, "5.00")], status="Training", receipt_email="trainee@example.com"),
    ])

    run = run_job(retailer, operator, "send-email-receipts")

    assert run["status"] == "Ended", run
    assert "sent 3 receipt(s)" in run["message"]
    assert run["aws_requests"]["sesv2.SendEmail"] == 3
    assert sorted(address for m in sent_messages() for address in set(m.destinations)) == [
        "guest@example.com", "juergen@example.com", "lea@example.com"]
    german = parsed(messages_to("juergen@example.com")[0])
    assert german["Subject"] == "Your receipt R-T1 from Contoso Houston"
    body = parts(german)
    assert "Kassenbeleg" in body["text/plain"].decode() and "Summe: 21,60\u00a0$" in body["text/plain"].decode()
    assert "Oxford Shirt (M / Red)" in body["text/html"].decode()
    assert "Kassenbeleg" in pdf_text(body["Kassenbon.pdf"])
    assert "ticket de retour" in parts(parsed(messages_to("lea@example.com")[0]))["text/plain"].decode()
    assert "Thank you" in parts(parsed(messages_to("guest@example.com")[0]))["text/plain"].decode()
    sent = transaction(retailer, "S1", "T1")
    assert sent["email_status"] == "Sent" and sent["email_message_id"] == messages_to("juergen@example.com")[0].id
    assert {o["transaction_id"] for o in run["outputs"] if o["kind"] == "email"} == {"T1", "T3", "T4"}

    second = run_job(retailer, operator, "send-email-receipts")

    assert "sent 0 receipt(s)" in second["message"]
    assert len(sent_messages()) == 3


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_the_receipt_shows_names_in_every_script_the_store_its_local_time_and_currency(retailer, operator):
    from chalicelib.models.parsing import parse_records
    from chalicelib.storage import records
    from tests.integration.retail import CUSTOMERS, PRODUCTS, STORES

    names = {"BALL": "Piłka plażowa „Łódź”", "SHIRT": "Größe Hemd", "LAMP": "Lampe « Crème »"}  # SHIRT: (M / Red)
    greek, russian = "Ελληνικό φλιτζάνι", "Русская кружка"
    added = [{"id": product_id, "name": name, "category_id": "TOYS", "price": "1.00", "released_to": ["USRT"]}
             for product_id, name in (("CUP", greek), ("MUG", russian), ("TOKYO", "東京 mug"))]
    krakow = {"name": "Contoso Kraków", "time_zone": "Europe/Warsaw", "currency": "PLN",
              "address": {"lines": ["ul. Floriańska 12"], "city": "Kraków", "postal_code": "31-019", "country": "PL"}}
    for entity, items in (
            ("products", [{**p, "name": names.get(p["id"], p["name"])} for p in PRODUCTS] + added),
            ("stores", [{**STORES[0], **krakow}]),
            ("customers", [*CUSTOMERS, {"id": "C9", "name": "Zofia Wójcik", "email": "zofia@example.com",
                                        "language": "pl-pl", "receipt_option": "Email"}])):
        records.upsert(entity, parse_records(entity, items))
    post(retailer, operator, "S1", [
        sale("T1", [("BALL", None, 1, "5.00"), ("SHIRT", "M-RED", 1, "20.00"), ("LAMP", None, 1, "40.00"),
                    ("CUP", None, 2, "3.00"), ("MUG", None, 1, "1234.50")], customer_id="C9"),
        sale("T2", [("TOKYO", None, 1, "2.00")], receipt_email="guest@example.com"),
    ])

    run = run_job(retailer, operator, "send-email-receipts")

    assert "sent 2 receipt(s)" in run["message"], run
    assert "PDFs show \ufffd for 2 character(s) their font lacks (the email text has them): 京東" in run["message"]
    body = parts(parsed(messages_to("zofia@example.com")[0]))
    text, pdf = body["text/plain"].decode(), body["Kassenbon.pdf"]
    printed = pdf_text(pdf)
    for name in [*names.values(), greek, russian]:
        assert name in text and name in body["text/html"].decode() and name in printed, name
    sold_at = f"{YESTERDAY}T10:00:00Z"  # 11:00 in Kraków in winter, 12:00 in summer
    from chalicelib.domain.receipts import ReceiptFormats

    local = ReceiptFormats.of("pl-pl", None, {"time_zone": "Europe/Warsaw", "currency": "PLN"}).datetime(sold_at)
    for expected in ("Contoso Kraków", "ul. Floriańska 12", "31-019 Kraków", "Polska", "Nr paragonu: R-T1",
                     f"Data: {local}", "Waluta: złoty polski (PLN)", "Razem", "Karta"):
        assert expected in text and expected in printed, expected
    assert " 11:00" in local or " 12:00" in local
    assert "Razem: 1\u00a0409,94\u00a0zł" in text  # 1305.50 + 8 % tax, grouped as the Polish locale data says
    assert "1\u00a0234,50\u00a0zł" in text
    fonts = [font.get_object()["/BaseFont"] for page in PdfReader(io.BytesIO(pdf)).pages
             for font in page["/Resources"]["/Font"].values()]
    assert fonts and all("DejaVuSans" in font for font in fonts)
    tokyo = parts(parsed(messages_to("guest@example.com")[0]))
    assert "東京 mug" in tokyo["text/plain"].decode() and "\ufffd\ufffd mug" in pdf_text(tokyo["Kassenbon.pdf"])


def test_unposted_receipts_wait_unless_include_unposted(retailer, operator):
    upload(retailer, "S1", [sale("T1", [("BALL", None, 1, "5.00")], customer_id="C1")])

    assert "sent 0 receipt(s)" in run_job(retailer, operator, "send-email-receipts")["message"]
    early = run_job(retailer, operator, "send-email-receipts", {"include_unposted": True})
    run_job(retailer, operator, "post-statements", {"store_ids": ["S1"]})
    after_posting = run_job(retailer, operator, "send-email-receipts")

    assert "sent 1 receipt(s)" in early["message"]
    assert "sent 0 receipt(s)" in after_posting["message"]
    assert len(sent_messages()) == 1
    assert (transaction(retailer, "S1", "T1")["status"], transaction(retailer, "S1", "T1")["email_status"]) == (
        "Posted", "Sent")


def test_ses_throttling_ends_the_run_and_the_next_run_sends_the_rest(retailer, operator, ses_faults):
    post(retailer, operator, "S1", [sale(f"T{n}", [("BALL", None, 1, "5.00")], receipt_email=f"c{n}@example.com")
                                    for n in range(5)])
    ses_faults["c2@example.com"] = ["TooManyRequestsException"]

    throttled = run_job(retailer, operator, "send-email-receipts")

    assert throttled["status"] == "Ended", throttled
    assert "sent 2 receipt(s)" in throttled["message"] and "SES throttled" in throttled["message"]
    assert throttled["aws_requests"]["sesv2.SendEmail"] == 3  # the refused attempt counts too
    assert [transaction(retailer, "S1", f"T{n}")["email_status"] for n in range(5)] == [
        "Sent", "Sent", "Pending", "Pending", "Pending"]

    resumed = run_job(retailer, operator, "send-email-receipts")

    assert "sent 3 receipt(s)" in resumed["message"]
    assert sorted(m.destinations[0] for m in sent_messages()) == [f"c{n}@example.com" for n in range(5)]


def test_a_rejected_address_ends_failed_without_the_address_in_errors_or_logs(retailer, operator, ses_faults,
                                                                               caplog):
    post(retailer, operator, "S1", [sale("T1", [("BALL", None, 1, "5.00")], receipt_email="bounce@example.com"),
                                    sale("T2", [("BALL", None, 1, "5.00")], receipt_email="ok@example.com")])
    ses_faults["bounce@example.com"] = ["MessageRejected"]

    with caplog.at_level(logging.DEBUG, logger="retail-sync"):
        run = run_job(retailer, operator, "send-email-receipts")

    assert run["status"] == "Ended" and "sent 1 receipt(s); 1 failed" in run["message"], run
    assert [e["key"] for e in run["errors"]] == ["T1"]
    failed = transaction(retailer, "S1", "T1")
    assert failed["email_status"] == "Failed"
    assert "MessageRejected" in failed["email_error"]
    assert "@" not in json.dumps(run["errors"]) + failed["email_error"] + run["message"]
    assert "bounce@example.com" not in caplog.text
    assert "sent 0 receipt(s)" in run_job(retailer, operator, "send-email-receipts")["message"]


def test_transient_failures_retry_then_fail_after_max_attempts(retailer, operator, ses_faults):
    post(retailer, operator, "S1", [sale("T1", [("BALL", None, 1, "5.00")], receipt_email="flaky@example.com")])
    ses_faults["flaky@example.com"] = ["InternalFailure"] * 3

    statuses = []
    for _ in range(3):
        run_job(retailer, operator, "send-email-receipts")
        read = transaction(retailer, "S1", "T1")
        statuses.append((read["email_status"], read["email_attempts"]))

    assert statuses == [("Pending", 1), ("Pending", 2), ("Failed", 3)]
    assert sent_messages() == []


def test_receipts_unsent_after_the_expiry_days_expire_together(retailer, operator):
    old = (TODAY - timedelta(days=40)).isoformat()
    post(retailer, operator, "S1", [
        *(sale(f"OLD{n}", [("BALL", None, 1, "5.00")], business_date=old, customer_id="C1") for n in range(3)),
        sale("NEW", [("BALL", None, 1, "5.00")], customer_id="C1")])

    run = run_job(retailer, operator, "send-email-receipts")

    assert "sent 1 receipt(s)" in run["message"] and "3 expired" in run["message"]
    assert (run["counters"]["written"], run["counters"]["skipped"]) == (1, 3)
    assert [transaction(retailer, "S1", f"OLD{n}")["email_status"] for n in range(3)] == ["Expired"] * 3
    assert len(sent_messages()) == 1
    # The three expire in one transaction, beside the claim of the one sent; its Sent record is
    # the one UpdateItem of a receipt (the others are the run's own record).
    assert run["aws_requests"]["dynamodb.TransactWriteItems"] == 2, run["aws_requests"]
    idle = run_job(retailer, operator, "send-email-receipts")
    assert run["aws_requests"]["dynamodb.UpdateItem"] == idle["aws_requests"]["dynamodb.UpdateItem"] + 1


def test_customers_and_stores_are_read_once_a_run_across_pages(retailer, operator, monkeypatch):
    from chalicelib.jobs import send_email_receipts

    monkeypatch.setattr(send_email_receipts, "PAGE", 2)
    post(retailer, operator, "S1", [sale(f"T{n}", [("BALL", None, 1, "5.00")], customer_id="C1") for n in range(5)])

    run = run_job(retailer, operator, "send-email-receipts")

    assert run["counters"]["written"] == 5 == len(sent_messages())
    assert [m.destinations[0] for m in sent_messages()] == ["juergen@example.com"] * 5
    # three pages; the customer and the store read on the first only; the product came with the receipts
    assert run["aws_requests"]["dynamodb.BatchGetItem"] == 2, run["aws_requests"]


def test_the_receipt_names_products_as_sold_even_when_renamed_before_it_is_sent(retailer, operator):
    from chalicelib.models.parsing import parse_records
    from chalicelib.storage import records
    from tests.integration.retail import PRODUCTS

    post(retailer, operator, "S1", [sale("T1", [("SHIRT", "M-RED", 1, "20.00")], customer_id="C3")])
    renamed = [{**p, "name": "Renamed shirt", "variants": [{**v, "color": "Crimson"} for v in p["variants"]]}
               for p in PRODUCTS if p["id"] == "SHIRT"]
    records.upsert("products", parse_records("products", renamed))

    run = run_job(retailer, operator, "send-email-receipts")

    body = parts(parsed(messages_to("lea@example.com")[0]))
    assert "Oxford Shirt (M / Red)" in body["text/plain"].decode()
    pdf = next(content for name, content in body.items() if name.endswith(".pdf"))
    assert "Oxford Shirt (M / Red)" in pdf_text(pdf)
    assert "Renamed" not in body["text/html"].decode()
    assert run["aws_requests"]["dynamodb.BatchGetItem"] == 2, run["aws_requests"]  # customer, store: no product


def test_an_accepted_changed_version_is_named_as_that_version_sold(retailer, operator):
    from chalicelib.models.parsing import parse_records
    from chalicelib.storage import records
    from tests.integration.retail import PRODUCTS

    original = sale("T1", [("BALL", None, 1, "5.00")], customer_id="C3")
    assert upload(retailer, "S1", [original]).json_body["accepted"] == 1
    changed = sale("T1", [("SHIRT", "M-RED", 1, "20.00")], customer_id="C3")  # the store corrects the line
    [conflict] = upload(retailer, "S1", [changed]).json_body["conflicts"]
    accepted = retailer.http.post(f"/stores/S1/upload-issues/{conflict['issue_id']}/accept", headers=operator)
    assert accepted.status_code == 200, accepted.body
    records.upsert("products", parse_records("products", [{**p, "name": "Renamed shirt"}
                                                          for p in PRODUCTS if p["id"] == "SHIRT"]))
    run_job(retailer, operator, "post-statements", {"store_ids": ["S1"]})

    run = run_job(retailer, operator, "send-email-receipts")

    text = parts(parsed(messages_to("lea@example.com")[0]))["text/plain"].decode()
    assert "Oxford Shirt (M / Red)" in text and "Renamed" not in text
    assert len(sent_messages()) == 1
    assert run["aws_requests"]["dynamodb.BatchGetItem"] == 2, run["aws_requests"]  # customer, store: no product


def test_a_receipt_queued_without_its_products_reads_them_when_sent(retailer, operator):
    from chalicelib.storage.transactions import PosTransaction

    post(retailer, operator, "S1", [sale("T1", [("SHIRT", "M-RED", 1, "20.00")], customer_id="C3")])
    PosTransaction("S1", "T1").update(actions=[PosTransaction.receipt_products.remove()])  # as rows older than it

    run = run_job(retailer, operator, "send-email-receipts")

    text = parts(parsed(messages_to("lea@example.com")[0]))["text/plain"].decode()
    assert "Oxford Shirt (M / Red)" in text
    assert run["aws_requests"]["dynamodb.BatchGetItem"] == 3, run["aws_requests"]  # customer, store, product


def test_a_claim_older_than_the_lease_is_taken_over_and_a_live_one_left_alone(retailer, operator):
    from chalicelib import settings
    from chalicelib.storage.base import iso, utcnow
    from chalicelib.storage.transactions import PosTransaction

    post(retailer, operator, "S1", [sale("STALE", [("BALL", None, 1, "5.00")], customer_id="C1"),
                                    sale("LIVE", [("BALL", None, 1, "5.00")], customer_id="C3")])
    lease = settings.lock_lease_seconds()
    for transaction_id, age in (("STALE", lease + 1), ("LIVE", lease - 10)):
        PosTransaction("S1", transaction_id).update(actions=[
            PosTransaction.email_status.set("Sending"), PosTransaction.email_claim.set("run-that-died"),
            PosTransaction.email_claimed_at.set(iso(utcnow() - timedelta(seconds=age)))])

    run = run_job(retailer, operator, "send-email-receipts")

    assert "sent 1 receipt(s)" in run["message"]
    assert [m.destinations[0] for m in sent_messages()] == ["juergen@example.com"]
    stale = PosTransaction.get("S1", "STALE")
    assert (stale.email_status, stale.email_attempts, stale.email_takeovers, stale.email_claim) == ("Sent", 0, None,
                                                                                                   None)
    assert transaction(retailer, "S1", "LIVE")["email_status"] == "Sending"


def test_a_receipt_that_kills_every_run_fails_after_max_attempts(retailer, operator):
    from chalicelib.storage.base import iso, utcnow
    from chalicelib.storage.transactions import PosTransaction

    post(retailer, operator, "S1", [sale("T1", [("BALL", None, 1, "5.00")], customer_id="C1")])
    PosTransaction("S1", "T1").update(actions=[
        PosTransaction.email_status.set("Sending"), PosTransaction.email_claim.set("run-that-died"),
        PosTransaction.email_takeovers.set(3), PosTransaction.email_claimed_at.set(iso(utcnow() - timedelta(hours=1)))])

    run = run_job(retailer, operator, "send-email-receipts")

    assert "0 receipt(s); 1 failed" in run["message"] and sent_messages() == []
    assert "gave up" in transaction(retailer, "S1", "T1")["email_error"]


class Killed(BaseException):
    """The Lambda dies: no ``except`` of the job or the runtime sees it."""


@pytest.mark.parametrize("moment,emails", [("before-call", 1), ("after-call", 2)])
def test_a_run_killed_around_the_ses_send_leaves_the_receipt_to_the_next_tick_after_the_lease(
        retailer, operator, moment, emails):
    """Killed after the claim, before SES: the next tick after the lease sends it once. Killed after
    SES accepted it, before the record: the one repeat allowed (README), and it is recorded Sent."""
    from chalicelib import clock, settings
    from chalicelib.jobs.triggers import on_schedule
    from chalicelib.storage import aws
    from tests.integration.test_runtime import Event

    post(retailer, operator, "S1", [sale("T1", [("BALL", None, 1, "5.00")], customer_id="C1")])

    def kill(**kwargs):
        raise Killed()

    events = aws.client("sesv2").meta.events
    events.register(f"{moment}.sesv2.SendEmail", kill, unique_id="kill-ses")
    clock.reset()
    try:
        with pytest.raises(Killed):
            on_schedule("send-email-receipts", Event("tick-1"))
    finally:
        events.unregister(f"{moment}.sesv2.SendEmail", unique_id="kill-ses")
    assert transaction(retailer, "S1", "T1")["email_status"] == "Sending"
    sent_before = len(sent_messages())

    try:
        on_schedule("send-email-receipts", Event("tick-2"))  # within the lease: the dead run's lock holds
        assert transaction(retailer, "S1", "T1")["email_status"] == "Sending"
        clock.advance(settings.lock_lease_seconds() + 1)
        run = on_schedule("send-email-receipts", Event("tick-3"))
        on_schedule("send-email-receipts", Event("tick-4"))
    finally:
        clock.reset()

    assert run["status"] == "Ended" and "sent 1 receipt(s)" in run["message"], run
    assert sent_before == emails - 1 and len(messages_to("juergen@example.com")) == emails
    read = transaction(retailer, "S1", "T1")
    assert (read["email_status"], read["email_attempts"], bool(read["email_message_id"])) == ("Sent", 0, True)


def test_a_throttled_record_after_the_send_is_retried_not_sent_again(retailer, operator, monkeypatch):
    from chalicelib.jobs import send_email_receipts

    post(retailer, operator, "S1", [sale("T1", [("BALL", None, 1, "5.00")], customer_id="C1")])
    monkeypatch.setattr(send_email_receipts, "RECORD_RETRY_DELAYS", (0, 0, 0))
    throttled = []
    real = botocore.client.BaseClient._make_api_call

    def throttle_the_sent_record(self, operation, params):
        if operation == "UpdateItem" and "email_message_id" in params.get("ExpressionAttributeNames", {}).values() \
                and not throttled:
            throttled.append(operation)
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "throttled"},
                               "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)
        return real(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", throttle_the_sent_record)

    run = run_job(retailer, operator, "send-email-receipts")

    assert throttled and run["status"] == "Ended" and "sent 1 receipt(s)" in run["message"], run
    assert len(sent_messages()) == 1 and transaction(retailer, "S1", "T1")["email_status"] == "Sent"


def test_dry_run_sends_nothing(retailer, operator):
    post(retailer, operator, "S1", [sale("T1", [("BALL", None, 1, "5.00")], customer_id="C1")])
    response = retailer.http.post("/jobs/send-email-receipts/runs", headers=operator,
                                  body=json.dumps({"params": {}, "dry_run": True}))

    assert "would send 1 receipt(s)" in response.json_body["run"]["message"]
    assert sent_messages() == [] and transaction(retailer, "S1", "T1")["email_status"] == "Pending"


def test_posting_leaves_requested_receipts_pending(retailer, operator):
    post(retailer, operator, "S1", [sale("T1", [("BALL", None, 1, "5.00")], customer_id="C3")])
    read = transaction(retailer, "S1", "T1")
    assert (read["status"], read["email_status"], read["business_date"]) == ("Posted", "Pending", YESTERDAY)


def test_a_backlog_fans_out_a_shard_per_queue_partition_and_each_receipt_goes_once(retailer, operator,
                                                                                     monkeypatch):
    from chalicelib.jobs import send_email_receipts
    from chalicelib.storage.transactions import queue_of

    monkeypatch.setattr(send_email_receipts, "PAGE", 2)  # two partitions holding more than a page: a backlog
    assert queue_of("S1") != queue_of("S2")  # two partitions of the queue
    post(retailer, operator, "S1", [sale(f"T{n}", [("BALL", None, 1, "5.00")], customer_id="C1") for n in range(3)])
    post(retailer, operator, "S2", [sale(f"U{n}", [("BALL", None, 1, "5.00")], store_id="S2",
                                         receipt_email="guest@example.com") for n in range(3)])

    started = run_job(retailer, operator, "send-email-receipts")
    run = retailer.http.get(f"/runs/{started['run_id']}", headers=operator).json_body

    assert run["status"] == "Ended", run
    assert sorted(s["scope"] for s in run["shards"]) == sorted([queue_of("S1"), queue_of("S2")])
    assert all(s["status"] == "Ended" for s in run["shards"]), run["shards"]
    assert run["counters"]["written"] == 6 == len(sent_messages())
    assert sorted(m.destinations[0] for m in sent_messages()) == ["guest@example.com"] * 3 + ["juergen@example.com"] * 3
    assert [transaction(retailer, "S2", f"U{n}")["email_status"] for n in range(3)] == ["Sent"] * 3
    assert run["message"] == "2 shards: 2 Ended; sent 6 receipt(s); 0 failed", run["message"]

    again = run_job(retailer, operator, "send-email-receipts")  # nothing waits: no shard, nothing sent
    again = retailer.http.get(f"/runs/{again['run_id']}", headers=operator).json_body

    assert again["status"] == "Ended" and not again.get("shards") and len(sent_messages()) == 6, again


def test_a_few_receipts_are_sent_by_the_run_itself(retailer, operator, monkeypatch):
    from chalicelib.jobs import send_email_receipts

    monkeypatch.setattr(send_email_receipts, "PAGE", 2)  # one partition holding more than a page: no backlog
    post(retailer, operator, "S1", [sale(f"T{n}", [("BALL", None, 1, "5.00")], customer_id="C1") for n in range(3)])
    post(retailer, operator, "S2", [
        sale("U1", [("BALL", None, 1, "5.00")], store_id="S2", receipt_email="guest@example.com")])

    started = run_job(retailer, operator, "send-email-receipts")
    run = retailer.http.get(f"/runs/{started['run_id']}", headers=operator).json_body

    assert run["status"] == "Ended" and not run.get("shards"), run
    assert "sent 4 receipt(s)" in run["message"] and len(sent_messages()) == 4


def test_a_run_continued_across_invocations_counts_every_receipt_it_sent(retailer, operator, monkeypatch):
    from chalicelib.jobs import runtime, send_email_receipts

    monkeypatch.setattr(send_email_receipts, "PAGE", 2)
    post(retailer, operator, "S1", [sale(f"T{n}", [("BALL", None, 1, "5.00")], customer_id="C1") for n in range(5)])
    monkeypatch.setenv("JOB_TIME_BUDGET_MS", "0")  # a page an invocation

    run, _ = runtime.submit("send-email-receipts", {}, trigger="manual")
    runtime.dispatch(run.run_id)
    run = runtime.get_run(run.run_id)

    assert run.status == "Ended" and run.hops >= 2, (run.status, run.hops)
    assert run.counters["written"] == 5 == len(sent_messages()), run.counters
    assert "sent 5 receipt(s)" in run.message
