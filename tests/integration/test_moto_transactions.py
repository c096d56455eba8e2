"""The local stack's faster moto transactions behave as moto's own: all or nothing."""
from decimal import Decimal

from devstack import moto_transactions


def test_a_cancelled_transaction_leaves_every_item_as_it_was(aws, monkeypatch):
    import moto.dynamodb.models as backend

    from chalicelib.storage.inventory import OnHand
    from chalicelib.storage.transact import Put, Update, write_transaction

    # Installed for this test only: monkeypatch puts moto back as it was afterwards.
    monkeypatch.setattr(backend.DynamoDBBackend, "transact_write_items", backend.DynamoDBBackend.transact_write_items)
    monkeypatch.setattr(backend, "copy", backend.copy)
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
