"""Money is exact end to end: a POS or an operator sends ``12.50`` as a JSON number or as the string
``"12.50"`` and reads back exactly ``12.50`` (never through a binary float, which would give 12.5)."""
import json

from tests.integration.retail import load_master_data, sale, transaction


def test_a_price_sent_as_a_json_number_or_string_reads_back_exactly(client, operator):
    category = {"items": [{"id": "ALL", "name": "All", "parent_id": None}]}
    assert client.http.put("/data/categories", headers=operator, body=json.dumps(category)).status_code == 200
    product = {"name": "Scarf", "category_id": "ALL", "released_to": ["USRT"]}
    items = [{"id": "AS-NUMBER", **product, "price": "NUMBER"}, {"id": "AS-STRING", **product, "price": "12.50"}]
    body = json.dumps({"items": items}).replace('"NUMBER"', "12.50")
    assert '"price": 12.50' in body

    response = client.http.put("/data/products", headers=operator, body=body)

    assert response.status_code == 200, response.body
    for product_id in ("AS-NUMBER", "AS-STRING"):
        assert client.http.get(f"/data/products/{product_id}", headers=operator).json_body["price"] == "12.50"


def test_transaction_amounts_sent_as_json_numbers_read_back_exactly(client):
    from tests.conftest import store_headers

    load_master_data()
    record = sale("T1", [("BALL", None, 1, "12.50")])  # 12.50 net, 1.00 tax, 13.50 paid
    body = json.dumps({"transactions": [record]})
    for name, amount in (("unit_price", "12.50"), ("net_amount", "12.50"), ("tax_amount", "1.00"),
                         ("amount", "13.50")):
        assert f'"{name}": "{amount}"' in body
        body = body.replace(f'"{name}": "{amount}"', f'"{name}": {amount}')

    response = client.http.post("/stores/S1/transactions", headers=store_headers("S1"), body=body)

    assert response.json_body["accepted"] == 1, response.body
    read = transaction(client, "S1", "T1")
    line = read["lines"][0]
    assert (line["unit_price"], line["net_amount"], line["tax_amount"]) == ("12.50", "12.50", "1.00")
    assert read["payments"][0]["amount"] == "13.50"
