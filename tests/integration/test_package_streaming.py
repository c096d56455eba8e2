"""Packages streamed to S3 (issue 16): rows generated while the gzip is written, a large package
sent in parts, the checksum recorded once the package is whole, and a package that cannot be
built leaving no object and a ``CreateFailed`` session."""
import hashlib
import os

from tests.integration.distribution_data import STORES, available, download, load, pairs, publish, run_job


def test_a_package_larger_than_a_part_is_uploaded_in_parts_and_reads_back_whole(aws, monkeypatch):
    from chalicelib.domain.sessions import build_package_lines, read_package
    from chalicelib.storage import aws as clients
    from chalicelib.storage import exports
    from chalicelib.storage.download_sessions import get_package, package_key, package_location, put_package

    monkeypatch.setattr(exports, "PART_BYTES", 5 * 2**20)  # S3's (and moto's) smallest part
    rows = [{"op": "upsert", "entity": "blob", "key": f"B{i}", "data": os.urandom(600).hex()} for i in range(12000)]
    header = {"session_id": "AS-big", "store_id": "S1", "data_group": "assortments", "seq": 1,
              "created_at": "2026-01-01T00:00:00Z", "rows": len(rows), "full": True}
    package = package_location(package_key("S1", 1, "AS-big"))

    checksum = put_package(package, build_package_lines(header, iter(rows)))

    body = get_package(package)
    assert len(body) > exports.PART_BYTES and checksum == hashlib.sha256(body).hexdigest()
    etag = clients.client("s3").head_object(Bucket=package["bucket"], Key=package["key"])["ETag"]
    assert etag.strip('"').endswith("-2")  # a multipart upload of two parts
    assert read_package(body, checksum) == (header, rows)


def test_a_package_that_cannot_be_built_leaves_no_object_and_the_next_run_sends_it(client, operator, monkeypatch):
    from chalicelib import settings
    from chalicelib.jobs import process_assortments
    from chalicelib.storage import aws as clients

    load(client, operator)
    real = process_assortments.assortment_rows

    def broken(*args, **kwargs):
        rows = real(*args, **kwargs)
        yield next(rows)
        yield {"op": "merge"}  # a row the package format refuses, found while the package streams

    monkeypatch.setattr(process_assortments, "assortment_rows", broken)
    response = client.http.post("/assortments/CORE/publish", headers=operator)
    assert response.status_code in (200, 202), response.body
    run = client.http.get(f"/runs/{response.json_body['run']['run_id']}", headers=operator).json_body
    assert {e["key"] for e in run["errors"]} == {s["id"] for s in STORES}
    assert all("package not created: bad package row" in e["message"] for e in run["errors"])
    s3 = clients.client("s3")
    bucket = settings.data_bucket()
    assert s3.list_objects_v2(Bucket=bucket, Prefix="packages/").get("KeyCount") == 0
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    listed = client.http.get("/download-sessions?status=CreateFailed", headers=operator).json_body["sessions"]
    assert sorted(s["store_id"] for s in listed) == [s["id"] for s in STORES]
    assert all(s["checksum"] is None and s["message"].startswith("package not created") for s in listed)

    monkeypatch.undo()
    run_job(client, operator, "process-assortments")
    for store in STORES:
        [session] = available(client, store["id"])
        assert session["seq"] == 2 and pairs(download(session)[1])  # checked against its checksum


def test_the_checksum_is_recorded_when_the_session_becomes_available(client, operator):
    from chalicelib.storage import aws as clients

    load(client, operator)
    publish(client, operator, "CORE")
    for store in STORES:
        [session] = available(client, store["id"])
        body = clients.client("s3").get_object(Bucket=session["package"]["bucket"],
                                               Key=session["package"]["key"])["Body"].read()
        assert session["checksum"] == hashlib.sha256(body).hexdigest()
        header, rows = download(session)
        assert header["rows"] == len(rows) == session["rows"] and header["full"] is True
