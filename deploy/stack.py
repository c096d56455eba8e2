"""The project's own Terraform, beside what ``chalice package`` emits: every DynamoDB table of
``ALL_MODELS`` (keys, indexes with their projections, TTL, point-in-time recovery, encryption,
on-demand billing), the data and migration buckets, the shard queue with its dead-letter queue,
the failure queue, the SES sender identity, the alerts topic with its email subscriptions, alarms
(per failure queue, and per job on its run metrics), variables and outputs. Generated as
``stack.tf.json`` so a new model or bucket needs no hand-written HCL."""
from __future__ import annotations

import json

from chalicelib.jobs.registry import all_jobs
from chalicelib.observability import METRICS_NAMESPACE
from chalicelib.settings import APP_NAME
from chalicelib.storage.tables import ALL_MODELS
from deploy.stage import BUCKETS, Stage, table_base, tf_key
from devstack.localenv import PROJECT_DIR

STATE_DIR = PROJECT_DIR / ".terraform-state"
# SQS visibility must outlast the consumer's run with retries (AWS: at least 6 x the timeout).
VISIBILITY_FACTOR = 6
MAX_VISIBILITY_SECONDS = 12 * 3600
DLQ_RETENTION_SECONDS = 14 * 24 * 3600

VARIABLES = {
    "region": {"type": "string", "description": "AWS region of the stage"},
    "log_retention_days": {"type": "number", "default": 30,
                           "description": "CloudWatch Logs retention of every function's log group"},
    "point_in_time_recovery": {"type": "bool", "default": True,
                               "description": "DynamoDB continuous backups (35 days of restore points)"},
    "deletion_protection": {"type": "bool", "default": False,
                            "description": "refuse to delete the DynamoDB tables (turn on for prod)"},
    "package_prefix": {"type": "string", "default": "packages/",
                       "description": "key prefix of the store packages in the data bucket"},
    "package_retention_days": {"type": "number", "default": 30,
                               "description": "store packages older than this are deleted"},
    "migration_version_retention_days": {"type": "number", "default": 30,
                                         "description": "replaced or deleted migration files are kept this long"},
    "async_retry_attempts": {"type": "number", "default": 2,
                             "description": "Lambda retries of a failed asynchronous invocation (0-2)",
                             "validation": [{"condition": "${var.async_retry_attempts >= 0 && "
                                                          "var.async_retry_attempts <= 2}",
                                             "error_message": "Lambda allows 0 to 2 retries."}]},
    "async_max_event_age_seconds": {"type": "number", "default": 3600,
                                    "description": "an asynchronous event older than this goes to the failure queue",
                                    "validation": [{"condition": "${var.async_max_event_age_seconds >= 60 && "
                                                                 "var.async_max_event_age_seconds <= 21600}",
                                                    "error_message": "Lambda allows 60 to 21600 seconds."}]},
    "shard_max_receive_count": {"type": "number", "default": 3,
                                "description": "deliveries of a shard message before it goes to the dead-letter queue"},
    "alarm_actions": {"type": "list(string)", "default": [],
                      "description": "ARNs (e.g. an SNS topic) notified when a failure queue is not empty"},
    "alert_emails": {"type": "list(string)", "default": [],
                     "description": "email addresses subscribed to the alerts topic (each confirms by email)"},
}


def _stage_variable(stage: Stage) -> dict:
    # The package is built for one stage (names and environment are baked into the functions);
    # applying another stage's variables to it is refused.
    return {"type": "string", "description": "the stage this package was built for",
            "validation": [{"condition": f'${{var.stage == "{stage.name}"}}',
                            "error_message": f"This package was built for stage {stage.name}; "
                                             f"run make package for the other stage."}]}


def _attributes(definitions: list[dict]) -> list[dict]:
    unique = {d["AttributeName"]: d["AttributeType"] for d in definitions}
    return [{"name": name, "type": kind} for name, kind in sorted(unique.items())]


def _keys(key_schema: list[dict]) -> dict:
    keys = {k["KeyType"]: k["AttributeName"] for k in key_schema}
    return {"hash_key": keys["HASH"], **({"range_key": keys["RANGE"]} if "RANGE" in keys else {})}


def _projection(projection: dict) -> dict:
    found = {"projection_type": projection["ProjectionType"]}
    if projection.get("NonKeyAttributes"):
        found["non_key_attributes"] = sorted(projection["NonKeyAttributes"])
    return found


def _ttl_attribute(model) -> str | None:
    for attribute in model.get_attributes().values():
        if type(attribute).__name__ == "TTLAttribute":
            return attribute.attr_name
    return None


def table(model, stage: Stage) -> dict:
    """One ``aws_dynamodb_table`` from a PynamoDB model's own create-table schema."""
    schema = model._get_schema()
    definitions = list(schema["attribute_definitions"])
    gsis, lsis = [], []
    for index in schema["global_secondary_indexes"]:
        definitions += index["attribute_definitions"]
        gsis.append({"name": index["index_name"], **_keys(index["key_schema"]), **_projection(index["projection"])})
    for index in schema["local_secondary_indexes"]:
        definitions += index["attribute_definitions"]
        keys = _keys(index["key_schema"])
        lsis.append({"name": index["index_name"], "range_key": keys["range_key"], **_projection(index["projection"])})
    resource = {
        "name": stage.table(table_base(model)),
        "billing_mode": "PAY_PER_REQUEST",
        **_keys(schema["key_schema"]),
        "attribute": _attributes(definitions),
        "point_in_time_recovery": {"enabled": "${var.point_in_time_recovery}"},
        "server_side_encryption": {"enabled": True},
        "deletion_protection_enabled": "${var.deletion_protection}",
    }
    if gsis:
        resource["global_secondary_index"] = gsis
    if lsis:
        resource["local_secondary_index"] = lsis
    ttl = _ttl_attribute(model)
    if ttl:
        resource["ttl"] = {"attribute_name": ttl, "enabled": True}
    return resource


def _buckets(stage: Stage) -> dict:
    resources: dict[str, dict] = {
        "aws_s3_bucket": {}, "aws_s3_bucket_public_access_block": {}, "aws_s3_bucket_ownership_controls": {},
        "aws_s3_bucket_server_side_encryption_configuration": {}, "aws_s3_bucket_policy": {},
        "aws_s3_bucket_versioning": {}, "aws_s3_bucket_lifecycle_configuration": {}}
    for key in BUCKETS:
        ref = f"${{aws_s3_bucket.{key}.id}}"
        arn = f"${{aws_s3_bucket.{key}.arn}}"
        resources["aws_s3_bucket"][key] = {"bucket": stage.bucket(key)}
        resources["aws_s3_bucket_public_access_block"][key] = {
            "bucket": ref, "block_public_acls": True, "block_public_policy": True,
            "ignore_public_acls": True, "restrict_public_buckets": True}
        resources["aws_s3_bucket_ownership_controls"][key] = {
            "bucket": ref, "rule": {"object_ownership": "BucketOwnerEnforced"}}
        resources["aws_s3_bucket_server_side_encryption_configuration"][key] = {
            "bucket": ref, "rule": {"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}}
        resources["aws_s3_bucket_policy"][key] = {
            "bucket": ref,
            "policy": ('{"Version": "2012-10-17", "Statement": [{"Sid": "TlsOnly", "Effect": "Deny", '
                       '"Principal": "*", "Action": "s3:*", "Resource": ["' + arn + '", "' + arn + '/*"], '
                       '"Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}'),
            "depends_on": [f"aws_s3_bucket_public_access_block.{key}"]}
    abort_uploads = {"id": "abort-incomplete-uploads", "status": "Enabled", "filter": {"prefix": ""},
                     "abort_incomplete_multipart_upload": {"days_after_initiation": 7}}
    resources["aws_s3_bucket_lifecycle_configuration"]["data"] = {
        "bucket": "${aws_s3_bucket.data.id}",
        "rule": [{"id": "expire-old-packages", "status": "Enabled", "filter": {"prefix": "${var.package_prefix}"},
                  "expiration": {"days": "${var.package_retention_days}"}},
                 # what a distribution fan-out's parent hands its shards; its close deletes them
                 {"id": "expire-fanout-plans", "status": "Enabled", "filter": {"prefix": "fanout-plans/"},
                  "expiration": {"days": 7}}, abort_uploads]}
    # Versioning keeps every migration file that was replaced or deleted, for a while.
    resources["aws_s3_bucket_versioning"]["migration"] = {
        "bucket": "${aws_s3_bucket.migration.id}", "versioning_configuration": {"status": "Enabled"}}
    resources["aws_s3_bucket_lifecycle_configuration"]["migration"] = {
        "bucket": "${aws_s3_bucket.migration.id}",
        "rule": [{"id": "expire-old-versions", "status": "Enabled", "filter": {"prefix": ""},
                  "noncurrent_version_expiration": {"noncurrent_days": "${var.migration_version_retention_days}"}},
                 abort_uploads],
        "depends_on": ["aws_s3_bucket_versioning.migration"]}
    return resources


def _queues(stage: Stage, shard_consumer_timeout: int) -> dict:
    visibility = min(MAX_VISIBILITY_SECONDS, VISIBILITY_FACTOR * shard_consumer_timeout)
    return {
        "aws_sqs_queue": {
            "shards_dlq": {"name": stage.queue("shards_dlq"), "message_retention_seconds": DLQ_RETENTION_SECONDS,
                           "sqs_managed_sse_enabled": True},
            "shards": {"name": stage.queue("shards"), "visibility_timeout_seconds": visibility,
                       "message_retention_seconds": 4 * 24 * 3600, "sqs_managed_sse_enabled": True,
                       "redrive_policy": "${jsonencode({deadLetterTargetArn = aws_sqs_queue.shards_dlq.arn, "
                                         "maxReceiveCount = var.shard_max_receive_count})}"},
            "failures": {"name": stage.queue("failures"), "message_retention_seconds": DLQ_RETENTION_SECONDS,
                         "sqs_managed_sse_enabled": True},
        },
        # EventBridge delivers what it could not hand to a function to the failure queue.
        "aws_sqs_queue_policy": {"failures": {
            "queue_url": "${aws_sqs_queue.failures.id}",
            "policy": ('{"Version": "2012-10-17", "Statement": [{"Sid": "RuleDeadLetters", "Effect": "Allow", '
                       '"Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage", '
                       '"Resource": "${aws_sqs_queue.failures.arn}", "Condition": {"ArnLike": {"aws:SourceArn": '
                       '"arn:${data.aws_partition.stack.partition}:events:${var.region}:'
                       '${data.aws_caller_identity.stack.account_id}:rule/' + stage.prefix() + '*"}}}]}')}},
        "aws_cloudwatch_metric_alarm": {
            key: {"alarm_name": f"{stage.queue(key)}-not-empty",
                  "alarm_description": description, "namespace": "AWS/SQS",
                  "metric_name": "ApproximateNumberOfMessagesVisible", "dimensions": {"QueueName": stage.queue(key)},
                  "statistic": "Maximum", "period": 300, "evaluation_periods": 1, "threshold": 0,
                  "comparison_operator": "GreaterThanThreshold", "treat_missing_data": "notBreaching",
                  "alarm_actions": "${var.alarm_actions}"}
            for key, description in (("shards_dlq", "store shards that failed every delivery"),
                                     ("failures", "asynchronous invocations that failed every retry"))},
    }


def _alerts(stage: Stage) -> dict:
    """The alerts topic (the hourly digest of ``publish_alerts`` and the alarms below publish to
    it), its email subscriptions, and per job an alarm on runs ending Error and one on failed
    records, from the run metrics every run emits (``chalicelib/observability.emit_run_metrics``)."""
    topic = "${aws_sns_topic.alerts.arn}"
    account = "${data.aws_caller_identity.stack.account_id}"
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "AccountPublishes", "Effect": "Allow",
         "Principal": {"AWS": f"arn:${{data.aws_partition.stack.partition}}:iam::{account}:root"},
         "Action": ["sns:Publish", "sns:Subscribe", "sns:GetTopicAttributes"], "Resource": topic},
        {"Sid": "AlarmsPublish", "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
         "Action": "sns:Publish", "Resource": topic,
         "Condition": {"StringEquals": {"aws:SourceAccount": account}}}]}
    alarms = {}
    for job in all_jobs():
        for suffix, metric, status, statistic, what in (
                ("run-error", "RunDuration", "Error", "SampleCount", "a run ended Error"),
                ("failed-records", "RecordsFailed", "Ended", "Sum", "a run ended with failed records")):
            alarms[tf_key(f"{job.name}-{suffix}")] = {
                "alarm_name": f"{stage.prefix()}{job.name}-{suffix}",
                "alarm_description": f"{job.name}: {what} (see GET /alerts and the hourly digest)",
                "namespace": METRICS_NAMESPACE, "metric_name": metric,
                "dimensions": {"service": APP_NAME, "stage": stage.name, "job": job.name, "status": status},
                "statistic": statistic, "period": 3600, "evaluation_periods": 1, "threshold": 0,
                "comparison_operator": "GreaterThanThreshold", "treat_missing_data": "notBreaching",
                "alarm_actions": [topic]}
    return {
        "aws_sns_topic": {"alerts": {"name": stage.alerts_topic}},
        "aws_sns_topic_policy": {"alerts": {"arn": topic, "policy": json.dumps(policy)}},
        "aws_sns_topic_subscription": {"alert_emails": {
            "for_each": "${toset(var.alert_emails)}", "topic_arn": topic, "protocol": "email",
            "endpoint": "${each.value}"}},
        "aws_cloudwatch_metric_alarm": alarms,
    }


def configuration(stage: Stage, shard_consumer_timeout: int) -> dict:
    """``stack.tf.json`` for ``stage``."""
    tables = {tf_key(table_base(m)): table(m, stage) for m in ALL_MODELS}
    queues, alerts = _queues(stage, shard_consumer_timeout), _alerts(stage)
    alerts["aws_cloudwatch_metric_alarm"].update(queues.pop("aws_cloudwatch_metric_alarm"))
    resources = {"aws_dynamodb_table": tables, **_buckets(stage), **queues, **alerts,
                 "aws_sesv2_email_identity": {"mail_from": {"email_identity": stage.mail_from}}}
    outputs = {f"table_{key}": {"value": f"${{aws_dynamodb_table.{key}.name}}"} for key in tables}
    outputs.update({f"bucket_{key}": {"value": f"${{aws_s3_bucket.{key}.bucket}}"} for key in BUCKETS})
    outputs.update({f"queue_{key}": {"value": f"${{aws_sqs_queue.{key}.url}}"}
                    for key in ("shards", "shards_dlq", "failures")})
    outputs["alerts_topic"] = {"value": "${aws_sns_topic.alerts.arn}"}
    return {
        # State lives outside build/ (which make clean removes); see README for an S3 backend.
        "terraform": {"backend": {"local": {"path": str(STATE_DIR / stage.name / "terraform.tfstate")}}},
        "provider": {"aws": {"region": "${var.region}",
                             "default_tags": {"tags": {"app": APP_NAME, "stage": stage.name}}}},
        "variable": {"stage": _stage_variable(stage), **VARIABLES},
        "data": {"aws_caller_identity": {"stack": {}}, "aws_partition": {"stack": {}}},
        "resource": resources,
        "output": outputs,
    }
