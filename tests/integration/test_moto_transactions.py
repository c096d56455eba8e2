"""The local stack's faster moto transactions behave as moto's own: all or nothing."""
from decimal import Decimal

import pytest

from devstack import moto_transactions


def test_a_cancelled_transaction_leaves_every_item_as_it_was(aws):

    from chalicelib.storage.inventory import OnHand
    from chalicelib.storage.transact import Put, Update, write_transaction

    moto_transactions.install()
    OnHand("W", "A/*", product_id="A", qty=Decimal(5)).save()

    failed = write_transaction(
        puts=[Put(OnHand("W", "B/*", product_id="B", qty=Decimal(1)))],
        updates=[Update(OnHand("W", "A/*"), [OnHand.qty.add(-2)]),
                 Update(OnHand("W", "C/*"), [OnHand.qty.add(-1)], OnHand.qty >= 1)])

    assert failed == [None, None, "ConditionalCheckFailed"]
    assert {(i.item_key, i.qty) for i in OnHand.query("W")} == {("A/*", Decimal(5))}
    assert write_transaction(updates=[Update(OnHand("W", "A/*"), [OnHand.qty.add(-2)])]) == []
    assert OnHand.get("W", "A/*").qty == Decimal(3)


def test_a_key_query_reads_its_partition_and_answers_as_moto_does(aws, monkeypatch):
    from moto.dynamodb.models.table import Table

    from chalicelib.storage.inventory import OnHand

    for warehouse in ("W1", "W2", "W3"):
        for n in range(30):
            OnHand(warehouse, f"P{n:02d}/*", product_id=f"P{n:02d}", qty=Decimal(n)).save()
    before = [i.item_key for i in OnHand.query("W2", OnHand.item_key.between("P05", "P20"), page_size=4)]
    moto_transactions.install()
    walked = []
    monkeypatch.setattr(Table, "all_items", _counting(Table.all_items, walked))

    after = [i.item_key for i in OnHand.query("W2", OnHand.item_key.between("P05", "P20"), page_size=4)]

    assert after == before and len(after) == 15
    assert [i.item_key for i in OnHand.query("W9")] == []
    assert walked and max(walked) == 30  # each page walked W2's 30 items, not the table's 90
    assert sum(1 for _ in OnHand.scan()) == 90  # a scan still sees every item


def test_an_index_query_reads_the_items_of_its_key_only_and_answers_as_moto_does(aws, monkeypatch):
    from moto.dynamodb.models.table import Table

    from chalicelib.storage.ledger import LedgerLine, make_line

    for n in range(60):  # three legal entities' lines, interleaved; one line without a number
        make_line(f"ST{n:03d}", 1, posting_date="2026-11-01", main_account="4000", debit=Decimal(n),
                  credit=Decimal(0), store_id="S1", legal_entity=("US", "CA", "MX")[n % 3],
                  seq=None if n == 4 else n // 3 + 1).save()

    def pages():
        return ([(i.statement_id, i.seq) for i in LedgerLine.by_seq.query("CA", LedgerLine.seq >= 5, page_size=3)],
                [i.statement_id for i in LedgerLine.by_seq.query("MX", scan_index_forward=False, limit=4)],
                [i.statement_id for i in LedgerLine.by_date.query("2026-11-01", page_size=7)])

    before = pages()
    moto_transactions.install()
    walked = []
    monkeypatch.setattr(Table, "all_items", _counting(Table.all_items, walked))

    after = pages()

    assert after == before and len(after[0]) == 16 and len(after[1]) == 4 and len(after[2]) == 60
    assert [i.statement_id for i in LedgerLine.by_seq.query("BR")] == []
    # CA's and MX's pages walked their 20 lines, by_date's its 60 (every line has that date), BR's none
    assert set(walked) == {0, 20, 60}, walked


@pytest.fixture(autouse=True)
def _uninstalled_after():
    """Each test installs the patches part-way (after reading what moto answers on its own); moto
    is put back as it was after it."""
    yield
    moto_transactions.uninstall()


def test_item_answers_written_as_json_read_back_as_moto_serializes_them(aws):
    from chalicelib.storage.distribution import StoreState
    from chalicelib.storage.inventory import OnHand

    OnHand("W", "A/*", product_id="A", qty=Decimal("2.5")).save()
    StoreState("S1", "assortment#01#x", chunk=b"\x00\x01zlib", pairs=3, digests=["a", ""]).save()
    before = (OnHand.get("W", "A/*").attribute_values, StoreState.get("S1", "assortment#01#x").attribute_values,
              [i.attribute_values for i in OnHand.query("W")], [i.attribute_values for i in OnHand.scan()])
    moto_transactions.install()
    after = (OnHand.get("W", "A/*").attribute_values, StoreState.get("S1", "assortment#01#x").attribute_values,
             [i.attribute_values for i in OnHand.query("W")], [i.attribute_values for i in OnHand.scan()])
    assert after == before and after[1]["chunk"] == b"\x00\x01zlib"
    assert OnHand.count("W") == 1 and list(OnHand.batch_get([("W", "A/*"), ("W", "B/*")]))[0].qty == Decimal("2.5")


def test_one_update_expression_parsed_once_updates_each_item_with_its_own_values(aws):
    from pynamodb.exceptions import UpdateError

    from chalicelib.storage.inventory import OnHand
    from chalicelib.storage.transact import Update, write_transaction

    moto_transactions.install()
    for n in range(3):
        OnHand("W", f"P{n}/*", product_id=f"P{n}", qty=Decimal(10)).save()

    for _ in range(2):  # the second time from the kept parse
        updates = [Update(OnHand("W", f"P{n}/*"), [OnHand.qty.add(-n), OnHand.product_id.set(f"Q{n}")])
                   for n in range(3)]
        assert write_transaction(updates=updates) == []

    assert {(i.item_key, i.product_id, i.qty) for i in OnHand.query("W")} == {
        ("P0/*", "Q0", Decimal(10)), ("P1/*", "Q1", Decimal(8)), ("P2/*", "Q2", Decimal(6))}
    with pytest.raises(UpdateError, match="Two document paths overlap"):  # moto's validation still runs
        OnHand("W", "P0/*").update(actions=[OnHand.qty.set(1), OnHand.qty.add(1)])


UPDATES = [  # (update expression, its values): each processor of moto's validator has work in one
    ("SET n = if_not_exists(n, :zero) + :one, tags = list_append(if_not_exists(tags, :none), :tag)",
     {":zero": {"N": "0"}, ":one": {"N": "1"}, ":none": {"L": []}, ":tag": {"L": [{"S": "a"}]}}),
    ("SET n = n - :one, m.deep = :one REMOVE gone ADD ids :ids", {":one": {"N": "1"}, ":ids": {"SS": ["x"]}}),
    ("SET n = missing + :one", {":one": {"N": "1"}}),  # a path the item lacks
    ("ADD n :text", {":text": {"S": "not a number"}}),  # a type mismatch
    ("SET n = :one, n = :one", {":one": {"N": "1"}}),  # overlapping paths
    ("SET pk = :key", {":key": {"S": "other"}}),  # the key
    ("SET s = :empty", {":empty": {"S": ""}}),
]


def _outcomes(table: str) -> list:
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client("dynamodb")
    client.put_item(TableName=table, Item={"pk": {"S": "k"}, "m": {"M": {}}, "gone": {"S": "here"}})
    outcomes = []
    for expression, values in UPDATES:
        try:
            client.update_item(TableName=table, Key={"pk": {"S": "k"}}, UpdateExpression=expression,
                               ExpressionAttributeValues=values)
            outcomes.append(client.get_item(TableName=table, Key={"pk": {"S": "k"}})["Item"])
        except ClientError as error:
            outcomes.append(error.response["Error"])
    return outcomes


def test_updates_are_applied_and_refused_as_moto_does(aws):
    import boto3

    client = boto3.client("dynamodb")
    for table in ("plain", "patched"):
        client.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")

    plain = _outcomes("plain")
    with moto_transactions.installed():
        patched = _outcomes("patched")

    assert patched == plain
    assert plain[1] == {"pk": {"S": "k"}, "n": {"N": "0"}, "tags": {"L": [{"S": "a"}]},
                        "m": {"M": {"deep": {"N": "1"}}}, "ids": {"SS": ["x"]}}
    assert all(outcome.get("Code") == "ValidationException" for outcome in plain[2:6]), plain


def _counting(all_items, walked):
    def counted(self):
        items = all_items(self)
        walked.append(len(items))
        return items
    return counted


def test_uninstall_puts_moto_back_as_it_was(aws):
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.parsing import expressions, validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser
    from moto.dynamodb.responses import DynamoHandler

    def state():
        return (DynamoDBBackend.transact_write_items, Table.query, Table.all_items, DynamoHandler.serialized,
                expressions.UpdateExpressionParser.make, validators.deepcopy,
                validators.UpdateExpressionValidator.__init__, validators.UpdateExpressionValidator.validate,
                DepthFirstTraverser.traverse_node_recursively)

    before = state()
    with moto_transactions.installed():
        assert all(now != then for now, then in zip(state(), before, strict=True))
    assert state() == before
