from decimal import Decimal

from chalicelib.prices import PRICES, estimate_usd


def test_a_runs_requests_are_priced_by_the_price_table():
    requests = {"dynamodb.Query": 2, "dynamodb.PutItem": 3, "s3.PutObject": 1, "s3.GetObject": 4, "sqs.SendMessage": 5}
    expected = (2 * 32 * PRICES["dynamodb_rru"] + 3 * PRICES["dynamodb_wru"] + PRICES["s3_put"]
                + 4 * PRICES["s3_get"] + 5 * PRICES["sqs_request"])
    assert estimate_usd(requests) == expected.quantize(Decimal("0.00000001"))
    assert str(estimate_usd(requests)) == "0.00001848"


def test_no_requests_cost_nothing_and_unknown_services_are_not_priced():
    assert f"{estimate_usd({}):f}" == "0.00000000"
    assert estimate_usd({"sts.GetCallerIdentity": 3}) == 0
