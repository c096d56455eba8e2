"""The local stack's faster moto transactions behave as moto's own: all or nothing."""
from decimal import Decimal

from devstack import moto_transactions


def test_a_cancelled_transaction_leaves_every_item_as_it_was(aws, monkeypatch):

    from chalicelib.storage.inventory import OnHand
    from chalicelib.storage.transact import Put, Update, write_transaction

    _installed_for_this_test(monkeypatch)
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
    _installed_for_this_test(monkeypatch)
    walked = []
    monkeypatch.setattr(Table, "all_items", _counting(Table.all_items, walked))

    after = [i.item_key for i in OnHand.query("W2", OnHand.item_key.between("P05", "P20"), page_size=4)]

    assert after == before and len(after) == 15
    assert [i.item_key for i in OnHand.query("W9")] == []
    assert walked and max(walked) == 30  # each page walked W2's 30 items, not the table's 90
    assert sum(1 for _ in OnHand.scan()) == 90  # a scan still sees every item


def _installed_for_this_test(monkeypatch):
    """moto patched for this test only: monkeypatch puts moto back as it was afterwards."""
    import moto.dynamodb.models as backend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    for name in ("query", "all_items"):
        monkeypatch.setattr(Table, name, getattr(Table, name))
    monkeypatch.setattr(backend.DynamoDBBackend, "transact_write_items", backend.DynamoDBBackend.transact_write_items)
    monkeypatch.setattr(backend, "copy", backend.copy)
    monkeypatch.setattr(DynamoHandler, "serialized", DynamoHandler.serialized)
    moto_transactions.install()


def test_item_answers_written_as_json_read_back_as_moto_serializes_them(aws, monkeypatch):
    from chalicelib.storage.distribution import StoreState
    from chalicelib.storage.inventory import OnHand

    OnHand("W", "A/*", product_id="A", qty=Decimal("2.5")).save()
    StoreState("S1", "assortment#01#x", chunk=b"\x00\x01zlib", pairs=3, digests=["a", ""]).save()
    before = (OnHand.get("W", "A/*").attribute_values, StoreState.get("S1", "assortment#01#x").attribute_values,
              [i.attribute_values for i in OnHand.query("W")], [i.attribute_values for i in OnHand.scan()])
    _installed_for_this_test(monkeypatch)
    after = (OnHand.get("W", "A/*").attribute_values, StoreState.get("S1", "assortment#01#x").attribute_values,
             [i.attribute_values for i in OnHand.query("W")], [i.attribute_values for i in OnHand.scan()])
    assert after == before and after[1]["chunk"] == b"\x00\x01zlib"
    assert OnHand.count("W") == 1 and list(OnHand.batch_get([("W", "A/*"), ("W", "B/*")]))[0].qty == Decimal("2.5")


def _counting(all_items, walked):
    def counted(self):
        items = all_items(self)
        walked.append(len(items))
        return items
    return counted
