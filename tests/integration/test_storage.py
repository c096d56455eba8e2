"""The batch writer under throttling: DynamoDB may leave part of a batch unprocessed."""
import botocore.client
import pytest

from chalicelib.storage import base
from chalicelib.storage.records import MasterRecord


def _records(n):
    return [MasterRecord("stores", f"S{i:03d}", data={"id": f"S{i:03d}"}, updated_at="t") for i in range(n)]


@pytest.fixture
def throttled(monkeypatch):
    """BatchWriteItem leaves the last 5 items of each of the first two calls unprocessed."""
    calls = []
    original = botocore.client.BaseClient._make_api_call

    def make_api_call(self, operation, params):
        if operation != "BatchWriteItem":
            return original(self, operation, params)
        (table, requests), = params["RequestItems"].items()
        calls.append(len(requests))
        assert len(requests) <= base.BATCH_WRITE_LIMIT, "AWS rejects more than 25 writes per batch"
        if len(calls) <= 2 and len(requests) > 5:
            original(self, operation, {"RequestItems": {table: requests[:-5]}})
            return {"UnprocessedItems": {table: requests[-5:]}}
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)
    monkeypatch.setattr(base, "_backoff", lambda attempt: None)
    return calls


def test_unprocessed_items_are_resent_until_written(aws, throttled):
    written = base.write_all(MasterRecord, puts=_records(60))
    assert written == 60
    assert len(list(MasterRecord.query("stores"))) == 60
    assert throttled[:3] == [25, 5, 25]  # the leftovers went again, on their own, before the next batch


def test_persistent_throttling_reports_the_items_left(aws, monkeypatch):
    original = botocore.client.BaseClient._make_api_call

    def always_throttled(self, operation, params):
        if operation == "BatchWriteItem":
            return {"UnprocessedItems": params["RequestItems"]}
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", always_throttled)
    monkeypatch.setattr(base, "_backoff", lambda attempt: None)
    with pytest.raises(base.BatchWriteFailed) as failure:
        base.write_all(MasterRecord, puts=_records(3))
    assert len(failure.value.keys) == 3


def test_deletes_go_in_batches_too(aws):
    base.write_all(MasterRecord, puts=_records(30))
    base.write_all(MasterRecord, deletes=_records(30)[:28])
    assert [r.id for r in MasterRecord.query("stores")] == ["S028", "S029"]


def test_batch_get_reads_a_hundred_keys_per_request(aws):
    from collections import Counter

    from chalicelib.storage.metering import metered

    base.write_all(MasterRecord, puts=_records(250))
    with metered(Counter()) as requests:
        found = list(base.get_many(MasterRecord, [("stores", f"S{i:03d}") for i in range(250)] + [("stores", "nope")]))
    assert len(found) == 250
    assert requests["dynamodb.BatchGetItem"] == 3


def test_an_entity_is_read_in_1_mb_pages_not_1000_items(aws):
    from collections import Counter

    from chalicelib.storage import records
    from chalicelib.storage.metering import metered

    base.write_all(MasterRecord, puts=_records(2500))
    with metered(Counter()) as requests:
        found = list(records.scan_entity("stores"))
    assert sorted(r["id"] for r in found) == sorted(f"S{i:03d}" for i in range(2500))
    assert requests["dynamodb.Query"] == 1  # 2,500 small records are far below 1 MB
