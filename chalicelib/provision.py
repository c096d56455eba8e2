"""Create every table, bucket, queue, the alerts topic and the SES sender identity against the configured endpoint.

Idempotent: what exists is left as it is. Tests, the local stack and the benchmark use it; in AWS
the Terraform configuration creates the same resources.
"""
from __future__ import annotations

from chalicelib import settings
from chalicelib.storage import aws
from chalicelib.storage.tables import ALL_MODELS, reset_connections


def provision() -> dict:
    created: dict[str, list[str]] = {"tables": [], "buckets": [], "queues": []}
    reset_connections()
    dynamodb = aws.client("dynamodb")
    existing_tables = {name for page in dynamodb.get_paginator("list_tables").paginate()
                       for name in page["TableNames"]}
    for model in ALL_MODELS:
        name = model.Meta.table_name
        if name not in existing_tables:
            # PynamoDB's own wait sleeps 2 s per poll; the boto3 waiter checks first.
            model.create_table(wait=False, billing_mode="PAY_PER_REQUEST")
            dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
            created["tables"].append(name)
        if _ttl_attribute(model):
            description = dynamodb.describe_time_to_live(TableName=name)
            if description["TimeToLiveDescription"].get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                model.update_ttl(ignore_update_ttl_errors=False)
    s3 = aws.client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in (settings.data_bucket(), settings.migration_bucket()):
        if bucket not in existing:
            region = s3.meta.region_name
            kwargs = {} if region == "us-east-1" else {
                "CreateBucketConfiguration": {"LocationConstraint": region}}
            s3.create_bucket(Bucket=bucket, **kwargs)
            created["buckets"].append(bucket)
    sqs = aws.client("sqs")
    name = settings.shard_queue_name()
    sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "5400"})
    created["queues"].append(name)
    topic = settings.alerts_topic_arn()
    if topic:
        aws.client("sns").create_topic(Name=topic.rpartition(":")[2])  # idempotent: answers the existing one
        created["topics"] = [topic]
    if not _identity_exists(settings.mail_from()):
        aws.client("sesv2").create_email_identity(EmailIdentity=settings.mail_from())
    return created


def _ttl_attribute(model) -> str | None:
    for name, attribute in model.get_attributes().items():
        if type(attribute).__name__ == "TTLAttribute":
            return name
    return None


def _identity_exists(identity: str) -> bool:
    try:
        aws.client("sesv2").get_email_identity(EmailIdentity=identity)
        return True
    except aws.client("sesv2").exceptions.NotFoundException:
        return False
