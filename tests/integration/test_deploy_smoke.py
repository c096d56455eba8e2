"""``make deploy-smoke``: the packaged dev stage applied with Terraform to a moto server; every
table, bucket, queue, rule and function the app and its models call for exists there.

Slow (about two minutes: the AWS provider polls SQS queues and lifecycle rules) and it needs
``make package`` first, so it runs only with DEPLOY_SMOKE=1 (``make deploy-smoke`` sets it)."""
import os

import pytest
from pynamodb.indexes import GlobalSecondaryIndex

from chalicelib.storage.tables import ALL_MODELS
from deploy import appmodel
from deploy.stage import Stage, table_base

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.environ.get("DEPLOY_SMOKE"), reason="make deploy-smoke runs this")]


@pytest.fixture(scope="module")
def applied():
    from deploy.smoke import apply_to_moto

    return apply_to_moto("dev")


def test_every_model_has_its_table_with_indexes_and_ttl(applied):
    dev = Stage("dev")
    for model in ALL_MODELS:
        table = applied["tables"][dev.table(table_base(model))]
        assert table["billing"] == "PAY_PER_REQUEST"
        assert table["keys"]["HASH"] == model._hash_keyname
        assert table["indexes"] == {i.Meta.index_name: i.Meta.projection.projection_type
                                    for i in model._indexes.values() if isinstance(i, GlobalSecondaryIndex)}
    assert applied["tables"]["retail-sync-dev-coordination"]["ttl"] == "expires"


def test_buckets_queues_identity_rules_and_functions_exist(applied):
    assert applied["buckets"] == {"retail-sync-dev-data": {"versioning": None},
                                  "retail-sync-dev-migration": {"versioning": "Enabled"}}
    shards = applied["queues"]["retail-sync-dev-shards"]
    assert shards["visibility"] == 5400
    assert shards["redrive"]["deadLetterTargetArn"].endswith(":retail-sync-dev-shards-dlq")
    assert "retail-sync-dev-failures" in applied["queues"]
    assert applied["identities"] == ["receipts@retail-sync.example.com"]
    functions = appmodel.functions()
    assert set(applied["functions"]) == {Stage("dev").function(f.name) for f in functions}
    assert applied["rules"] == {f"retail-sync-dev-{f.name}-event": f.schedule for f in functions
                                if f.trigger == "schedule"}
