"""AWS list prices and what a count of requests costs: the price table ``make cost`` prices a
month with (``deploy/cost.py``) and each run's ``estimated_cost_usd`` (its ``aws_requests``).

Pure: no AWS client. Prices are ``Decimal`` USD; a request's capacity units are stated upper
bounds, since moto does not report consumed capacity.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from decimal import Decimal

PRICES_AS_OF = "us-east-1 list prices as published on aws.amazon.com/pricing (2025; unchanged to our knowledge)"
_MILLION, _THOUSAND = Decimal(1_000_000), Decimal(1000)
PRICES = {
    "dynamodb_wru": Decimal("0.625") / _MILLION,  # on-demand, per write request unit (since 2024-11-01)
    "dynamodb_rru": Decimal("0.125") / _MILLION,  # on-demand, per read request unit
    "lambda_gb_second": Decimal("0.0000166667"),  # x86
    "lambda_request": Decimal("0.20") / _MILLION,
    "apigateway_request": Decimal("3.50") / _MILLION,  # REST API, first 333 million
    "s3_put": Decimal("0.005") / _THOUSAND,  # PUT, COPY, POST, LIST
    "s3_get": Decimal("0.0004") / _THOUSAND,  # GET and all other requests
    "ses_email": Decimal("0.10") / _THOUSAND,
    "sqs_request": Decimal("0.40") / _MILLION,  # standard queue, after the free million
    "cloudwatch_alarm": Decimal("0.10"),  # per standard alarm and month
}
FULL_TRANSACTION = 100  # items
# Capacity units one request consumes (moto does not report capacity): stated upper bounds.
UNITS = {
    "dynamodb.PutItem": ("wru", 1), "dynamodb.UpdateItem": ("wru", 1), "dynamodb.DeleteItem": ("wru", 1),
    "dynamodb.BatchWriteItem": ("wru", 25),  # a full batch of items up to 1 KB
    "dynamodb.TransactWriteItems": ("wru", 2 * FULL_TRANSACTION),  # 100 items; transactional writes count twice
    "dynamodb.GetItem": ("rru", 1),  # strongly consistent, up to 4 KB
    "dynamodb.BatchGetItem": ("rru", 50),  # 100 items up to 4 KB, eventually consistent
    "dynamodb.Query": ("rru", 32), "dynamodb.Scan": ("rru", 32),  # a 256 KB page, eventually consistent
}
S3_PUT_CLASS = {"PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
                "ListObjectsV2", "ListObjects"}
ESTIMATE_PLACES = Decimal("0.00000001")


def usage(requests: Mapping[str, float]) -> Counter:
    """Usage by billing dimension (``PRICES``' keys) of requests by ``"service.Operation"``."""
    used: Counter = Counter()
    for operation, count in requests.items():
        service, _, name = operation.partition(".")
        if operation in UNITS:
            kind, units = UNITS[operation]
            used[f"dynamodb_{kind}"] += count * units
        elif service == "s3":
            used["s3_put" if name in S3_PUT_CLASS else "s3_get"] += count
        elif service in ("ses", "sesv2"):
            used["ses_email"] += count
        elif service == "sqs":
            used["sqs_request"] += count
        elif service == "lambda":
            used["lambda_request"] += count
    return used


def estimate_usd(requests: Mapping[str, int]) -> Decimal:
    """What ``requests`` (whole counts by ``"service.Operation"``) cost at list prices, to 8 places:
    the requests alone (a run's Lambda compute is not measured per run)."""
    total = sum((PRICES[kind] * count for kind, count in usage(requests).items()), Decimal(0))
    return total.quantize(ESTIMATE_PLACES)
