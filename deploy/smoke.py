"""``make deploy-smoke``: apply a stage's whole package to a moto server on loopback with
Terraform, then list what exists there — the real ``terraform apply`` path, offline.

The AWS provider accepts custom endpoints: an override file points every service at moto, with
dummy credentials and no account lookups; the state goes to a scratch folder.

Everything is applied except the REST API: chalice emits its definition as Swagger 2.0, and moto
5.2.5 imports only OpenAPI 3 (``PutRestApi``: "Only OpenAPI 3.x.x are currently supported"), so
the API, its deployment and stage, the two API invoke permissions and the API outputs are left
out of the moto copy. AWS itself accepts Swagger 2.0; ``terraform validate`` covers them.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

import boto3

from deploy import terraform
from deploy.package import BUILD_DIR

# Every service the configuration touches (provider endpoint names).
SERVICES = ("cloudwatch", "cloudwatchlogs", "dynamodb", "events", "iam", "lambda", "s3", "sesv2",
            "sqs", "sts")


def moto_override(endpoint: str, state: Path) -> dict:
    return {
        "terraform": {"backend": {"local": {"path": str(state)}}},
        "provider": {"aws": {
            "access_key": "testing", "secret_key": "testing",
            "skip_credentials_validation": True, "skip_metadata_api_check": True,
            "skip_requesting_account_id": True, "s3_use_path_style": True,
            "endpoints": {service: endpoint for service in SERVICES}}},
    }


def without_rest_api(chalice_doc: dict) -> dict:
    """The configuration minus what moto cannot import (see the module docstring)."""
    resources = {kind: dict(items) for kind, items in chalice_doc["resource"].items()
                 if not kind.startswith("aws_api_gateway_")}
    resources["aws_lambda_permission"] = {
        name: p for name, p in resources.get("aws_lambda_permission", {}).items()
        if "aws_api_gateway_rest_api" not in p.get("source_arn", "")}
    outputs = {name: o for name, o in chalice_doc.get("output", {}).items() if "aws_api_gateway" not in o["value"]}
    locals_ = {k: v for k, v in chalice_doc.get("locals", {}).items() if k != "chalice_api_swagger"}
    doc = {key: value for key, value in chalice_doc.items() if key not in ("output", "locals")}
    # Terraform rejects an empty output or locals block.
    return {**doc, "resource": resources, **({"output": outputs} if outputs else {}),
            **({"locals": locals_} if locals_ else {})}


def inventory(endpoint: str, region: str) -> dict:
    """What exists on the endpoint, by kind."""
    def client(service):
        return boto3.client(service, endpoint_url=endpoint, region_name=region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    dynamodb = client("dynamodb")
    tables = {}
    for name in dynamodb.list_tables()["TableNames"]:
        table = dynamodb.describe_table(TableName=name)["Table"]
        tables[name] = {
            "keys": {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]},
            "indexes": {i["IndexName"]: i["Projection"]["ProjectionType"]
                        for i in table.get("GlobalSecondaryIndexes", [])},
            "billing": table.get("BillingModeSummary", {}).get("BillingMode"),
            "ttl": dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"].get("AttributeName"),
        }
    s3 = client("s3")
    buckets = {b["Name"]: {"versioning": s3.get_bucket_versioning(Bucket=b["Name"]).get("Status")}
               for b in s3.list_buckets()["Buckets"]}
    sqs = client("sqs")
    queues = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        queues[url.rsplit("/", 1)[-1]] = {"visibility": int(attributes["VisibilityTimeout"]),
                                          "redrive": json.loads(attributes.get("RedrivePolicy", "{}"))}
    events = client("events")
    rules = {r["Name"]: r.get("ScheduleExpression") for r in events.list_rules()["Rules"]}
    functions = {f["FunctionName"]: {"timeout": f["Timeout"], "memory": f["MemorySize"]}
                 for f in client("lambda").list_functions()["Functions"]}
    identities = [i["IdentityName"] for i in client("sesv2").list_email_identities()["EmailIdentities"]]
    return {"tables": tables, "buckets": buckets, "queues": queues, "rules": rules, "functions": functions,
            "identities": identities}


def apply_to_moto(stage: str) -> dict:
    """Apply ``build/terraform/<stage>`` to a fresh moto server; returns its ``inventory``."""
    from moto.server import ThreadedMotoServer

    package = BUILD_DIR / stage
    if not (package / "chalice.tf.json").exists():
        raise terraform.ToolchainError(f"{package} has no package; run make package first")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        with tempfile.TemporaryDirectory() as scratch:
            work = Path(scratch) / stage
            shutil.copytree(package, work, ignore=shutil.ignore_patterns(".terraform", "backend_override.tf.json"))
            chalice_doc = json.loads((work / "chalice.tf.json").read_text())
            (work / "chalice.tf.json").write_text(json.dumps(without_rest_api(chalice_doc)))
            (work / "moto_override.tf.json").write_text(json.dumps(moto_override(endpoint, Path(scratch) / "state")))
            env = terraform.environment(terraform.find_mirror())
            terraform.terraform(work, "init", "-input=false", "-no-color", env=env)
            terraform.terraform(work, "apply", "-auto-approve", "-input=false", "-no-color", env=env)
        region = _variables(package).get("region", "us-east-1")
        return inventory(endpoint, region)
    finally:
        server.stop()


def _variables(package: Path) -> dict:
    found = {}
    for line in (package / "terraform.tfvars").read_text().splitlines():
        name, _, value = line.partition("=")
        if value and not line.lstrip().startswith("#"):
            found[name.strip()] = value.strip().strip('"')
    return found


def main(stage: str = "dev") -> int:
    print(json.dumps(apply_to_moto(stage), indent=2, sort_keys=True))
    return 0
