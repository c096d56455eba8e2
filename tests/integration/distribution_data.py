"""A small retailer for the distribution tests, and the calls a user would make (routes, packages)."""
from __future__ import annotations

import json
from datetime import date, timedelta

from chalicelib.domain.sessions import read_package
from tests.conftest import store_headers

TODAY = date.today()

ORG_NODES = [
    {"id": "HQ", "name": "Contoso", "parent_id": None},
    {"id": "WEST", "name": "West", "parent_id": "HQ"},
    {"id": "SEATTLE", "name": "Seattle district", "parent_id": "WEST"},
    {"id": "CANADA", "name": "Canada", "parent_id": "HQ"},
]
STORES = [
    {"id": "S1", "name": "Seattle 1", "legal_entity": "USRT", "org_node_id": "SEATTLE"},
    {"id": "S2", "name": "Portland", "legal_entity": "USRT", "org_node_id": "WEST"},
    {"id": "S3", "name": "Toronto", "legal_entity": "CART", "org_node_id": "CANADA"},
]
CATEGORIES = [
    {"id": "ALL", "name": "All", "parent_id": None},
    {"id": "APPAREL", "name": "Apparel", "parent_id": "ALL"},
    {"id": "TSHIRTS", "name": "T-shirts", "parent_id": "APPAREL"},
    {"id": "FOOD", "name": "Food", "parent_id": "ALL"},
]


def product(pid, category, variants=(), released=("USRT", "CART"), stopped=False):
    return {"id": pid, "name": pid.title(), "category_id": category, "price": "9.99", "released_to": list(released),
            "stopped": stopped, "variants": [{"id": v} for v in variants]}


PRODUCTS = [
    product("TEE", "TSHIRTS", ["RED-M", "RED-L", "BLUE-M"]),
    product("JACKET", "APPAREL"),
    product("APPLE", "FOOD"),
    product("MAPLE", "FOOD", released=["CART"]),
    product("OLDCOLA", "FOOD", stopped=True),
]


def assortment(aid, channel_lines, product_lines, valid_from=None, valid_to=None):
    return {"id": aid, "name": aid.title(), "valid_from": (valid_from or TODAY - timedelta(days=30)).isoformat(),
            "valid_to": valid_to.isoformat() if valid_to else None, "channel_lines": channel_lines,
            "product_lines": product_lines}


def line(kind, ref, line_type="Include"):
    return {"kind": kind, "ref": ref, "line_type": line_type}


CORE = assortment("CORE", [{"org_node_id": "HQ"}], [line("category", "ALL")])
NO_RED_M_IN_SEATTLE = assortment("SEA", [{"org_node_id": "SEATTLE"}], [line("variant", "TEE/RED-M", "Exclude")])

DELIVERY_MODES = [
    {"id": "STD", "name": "Standard", "channel_lines": [{"org_node_id": "HQ"}],
     "product_lines": [line("category", "ALL"), line("product", "JACKET", "Exclude")],
     "address_lines": [{"country": "USA", "line_type": "Include"},
                       {"country": "USA", "state": "AK", "line_type": "Exclude"},
                       {"country": "USA", "state": "HI", "line_type": "Exclude"}]},
    {"id": "PICKUP", "name": "Pick up", "channel_lines": [{"store_id": "S1"}], "product_lines": [],
     "address_lines": [{"country": "USA", "line_type": "Include"}]},
]

EVERY_US_PAIR = {"TEE/RED-M", "TEE/RED-L", "TEE/BLUE-M", "JACKET/*", "APPLE/*"}


def put(client, operator, entity, items):
    response = client.http.put(f"/data/{entity}", headers=operator, body=json.dumps({"items": items}))
    assert response.status_code == 200, response.body
    return response.json_body


def load(client, operator, assortments=(CORE,), delivery_modes=()):
    for entity, items in [("org-nodes", ORG_NODES), ("stores", STORES), ("categories", CATEGORIES),
                          ("products", PRODUCTS), ("assortments", list(assortments)),
                          ("delivery-modes", list(delivery_modes))]:
        if items:
            put(client, operator, entity, items)


def publish(client, operator, assortment_id):
    response = client.http.post(f"/assortments/{assortment_id}/publish", headers=operator)
    assert response.status_code in (200, 202), response.body
    return response.json_body["run"]


def run_job(client, operator, job, params=None, dry_run=False):
    response = client.http.post(f"/jobs/{job}/runs", headers=operator,
                                body=json.dumps({"params": params or {}, "dry_run": dry_run}))
    assert response.status_code == 202, response.body
    run = response.json_body["run"]
    assert run["status"] == "Ended", run
    return run


def shard_of(run_id, store_id):
    """The run id of the shard of run ``run_id`` that worked for ``store_id``."""
    from chalicelib.storage.runs import RunRecord

    [shard] = [r.run_id for r in RunRecord.scan() if r.parent_run_id == run_id and r.params["store_ids"] == [store_id]]
    return shard


def sessions_of(run):
    return [o["id"] for o in run["outputs"] if o["kind"] == "session"]


def available(client, store_id, headers=None):
    response = client.http.get(f"/stores/{store_id}/download-sessions?status=Available",
                               headers=headers or store_headers(store_id))
    assert response.status_code == 200, response.body
    return response.json_body["sessions"]


def download(session):
    """What the store gets from its package URL (read from moto's S3 by key: in-process moto
    cannot serve a presigned URL over the network), checked against the session's checksum."""
    from chalicelib.storage import aws

    body = aws.client("s3").get_object(Bucket=session["package"]["bucket"], Key=session["package"]["key"])["Body"]
    return read_package(body.read(), session["checksum"])


def pairs(rows, op="upsert"):
    return {r["key"] for r in rows if r["op"] == op}
