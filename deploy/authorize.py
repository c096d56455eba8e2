"""What IAM authorises for an AWS call, and whether a policy allows it.

``required(call)`` turns one botocore call (service, operation, parameters) into the IAM actions
and resource ARNs AWS checks for it — e.g. ``dynamodb.TransactWriteItems`` into a
``dynamodb:PutItem``/``ConditionCheckItem`` per item and table, ``sesv2.SendEmail`` with raw MIME
into ``ses:SendRawEmail`` on the sender identity. An operation without a rule here is reported,
never waved through. ``allowed(policy, permission)`` evaluates Allow statements the way IAM does
for identity policies without Deny: action and resource globs, ``StringLike`` conditions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote, urlparse


@dataclass(frozen=True)
class Permission:
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()  # condition keys known for the request

    def __str__(self) -> str:
        extra = "".join(f" [{k}={v!r}]" for k, v in self.context)
        return f"{self.action} on {self.resource}{extra}"


class Unmapped(Exception):
    """No rule says which IAM actions an operation needs; add one to ``deploy/authorize.py``."""


@dataclass(frozen=True)
class Account:
    region: str
    account: str
    partition: str = "aws"

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"


_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
_TABLE_OPERATIONS = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "DescribeTable", "DescribeTimeToLive",
                     "UpdateTimeToLive"}
_S3_OBJECT = {"GetObject": "s3:GetObject", "HeadObject": "s3:GetObject", "PutObject": "s3:PutObject",
              "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject",
              "CompleteMultipartUpload": "s3:PutObject", "AbortMultipartUpload": "s3:AbortMultipartUpload",
              "DeleteObject": "s3:DeleteObject"}
_SQS = {"SendMessage": "sqs:SendMessage", "SendMessageBatch": "sqs:SendMessage",
        "ReceiveMessage": "sqs:ReceiveMessage", "DeleteMessage": "sqs:DeleteMessage",
        "DeleteMessageBatch": "sqs:DeleteMessage", "GetQueueAttributes": "sqs:GetQueueAttributes",
        "ChangeMessageVisibility": "sqs:ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility"}


def _dynamodb(operation: str, params: dict, where: Account) -> list[Permission]:
    def table(name: str, index: str | None = None) -> str:
        return where.arn("dynamodb", f"table/{name}" + (f"/index/{index}" if index else ""))

    if operation in _TABLE_OPERATIONS:
        return [Permission(f"dynamodb:{operation}", table(params["TableName"]))]
    if operation in ("Query", "Scan"):
        return [Permission(f"dynamodb:{operation}", table(params["TableName"], params.get("IndexName")))]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [Permission(f"dynamodb:{operation}", table(name)) for name in sorted(params["RequestItems"])]
    if operation == "TransactWriteItems":
        found = []
        for item in params["TransactItems"]:
            ((kind, body),) = item.items()
            found.append(Permission(f"dynamodb:{_TRANSACT[kind]}", table(body["TableName"])))
        return found
    if operation == "TransactGetItems":
        return [Permission("dynamodb:GetItem", table(item["Get"]["TableName"])) for item in params["TransactItems"]]
    raise Unmapped(f"dynamodb.{operation}")


def _s3(operation: str, params: dict, where: Account) -> list[Permission]:
    def obj(bucket: str, key: str) -> str:
        return f"arn:{where.partition}:s3:::{bucket}/{key}"

    bucket_arn = f"arn:{where.partition}:s3:::{params.get('Bucket')}"
    if operation in _S3_OBJECT:
        return [Permission(_S3_OBJECT[operation], obj(params["Bucket"], params["Key"]))]
    if operation == "DeleteObjects":
        return [Permission("s3:DeleteObject", obj(params["Bucket"], o["Key"])) for o in params["Delete"]["Objects"]]
    if operation == "CopyObject":
        source = params["CopySource"]
        if isinstance(source, str):
            source_bucket, _, source_key = unquote(source.lstrip("/")).partition("/")
        else:
            source_bucket, source_key = source["Bucket"], source["Key"]
        return [Permission("s3:GetObject", obj(source_bucket, source_key.split("?versionId=")[0])),
                Permission("s3:PutObject", obj(params["Bucket"], params["Key"]))]
    if operation in ("ListObjectsV2", "ListObjects"):
        return [Permission("s3:ListBucket", bucket_arn, (("s3:prefix", params.get("Prefix", "")),))]
    if operation == "HeadBucket":
        return [Permission("s3:ListBucket", bucket_arn)]
    raise Unmapped(f"s3.{operation}")


def _identity(address: str) -> str:
    match = re.search(r"<([^>]+)>", address)
    return (match.group(1) if match else address).strip()


def _ses(service: str, operation: str, params: dict, where: Account) -> list[Permission]:
    if service == "sesv2" and operation == "SendEmail":
        raw = "Raw" in params.get("Content", {})
        sender = params.get("FromEmailAddress") or _raw_from(params["Content"]["Raw"]["Data"])
        return [Permission("ses:SendRawEmail" if raw else "ses:SendEmail",
                           where.arn("ses", f"identity/{_identity(sender)}"))]
    if service == "ses" and operation in ("SendEmail", "SendRawEmail"):
        sender = params.get("Source") or _raw_from(params["RawMessage"]["Data"])
        return [Permission(f"ses:{operation}", where.arn("ses", f"identity/{_identity(sender)}"))]
    raise Unmapped(f"{service}.{operation}")


def _raw_from(data: bytes | str) -> str:
    from email import message_from_bytes, message_from_string

    message = message_from_bytes(data) if isinstance(data, bytes) else message_from_string(data)
    return message["From"] or ""


def _sqs(operation: str, params: dict, where: Account) -> list[Permission]:
    if operation == "GetQueueUrl":
        return [Permission("sqs:GetQueueUrl", where.arn("sqs", params["QueueName"]))]
    if operation in _SQS:
        name = urlparse(params["QueueUrl"]).path.rstrip("/").split("/")[-1]
        return [Permission(_SQS[operation], where.arn("sqs", name))]
    raise Unmapped(f"sqs.{operation}")


def _sns(operation: str, params: dict) -> list[Permission]:
    if operation == "Publish":
        return [Permission("sns:Publish", params["TopicArn"])]
    raise Unmapped(f"sns.{operation}")


def _lambda(operation: str, params: dict, where: Account) -> list[Permission]:
    if operation == "Invoke":
        name = params["FunctionName"]
        arn = name if name.startswith("arn:") else where.arn("lambda", f"function:{name}")
        return [Permission("lambda:InvokeFunction", arn)]
    raise Unmapped(f"lambda.{operation}")


def required(service: str, operation: str, params: dict, where: Account) -> list[Permission]:
    """The permissions AWS checks for one call; raises ``Unmapped`` for an unknown operation."""
    if service == "dynamodb":
        return _dynamodb(operation, params, where)
    if service == "s3":
        return _s3(operation, params, where)
    if service in ("ses", "sesv2"):
        return _ses(service, operation, params, where)
    if service == "sqs":
        return _sqs(operation, params, where)
    if service == "lambda":
        return _lambda(operation, params, where)
    if service == "sns":
        return _sns(operation, params)
    raise Unmapped(f"{service}.{operation}")


# Without the parameters (a run record's aws_requests), the actions an operation may need.
CANDIDATE_ACTIONS = {
    "dynamodb.TransactWriteItems": set(f"dynamodb:{a}" for a in _TRANSACT.values()),
    "dynamodb.TransactGetItems": {"dynamodb:GetItem"},
    "sesv2.SendEmail": {"ses:SendEmail", "ses:SendRawEmail"},
    **{f"s3.{op}": {action} for op, action in _S3_OBJECT.items()},
    "s3.DeleteObjects": {"s3:DeleteObject"}, "s3.CopyObject": {"s3:PutObject"},
    "s3.ListObjectsV2": {"s3:ListBucket"}, "s3.ListObjects": {"s3:ListBucket"},
    **{f"sqs.{op}": {action} for op, action in _SQS.items()},
    "lambda.Invoke": {"lambda:InvokeFunction"},
}


def candidate_actions(operation: str) -> set[str]:
    """``dynamodb.Query`` -> {``dynamodb:Query``}: the IAM actions one of which must be allowed."""
    if operation in CANDIDATE_ACTIONS:
        return CANDIDATE_ACTIONS[operation]
    service, _, name = operation.partition(".")
    return {f"{'ses' if service == 'sesv2' else service}:{name}"}


@lru_cache(maxsize=1024)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern:
    text = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(text, re.IGNORECASE if ignore_case else 0)


def _matches(patterns, value: str, ignore_case: bool = False) -> bool:
    if isinstance(patterns, str):
        patterns = [patterns]
    return any(_glob(p, ignore_case).fullmatch(value) for p in patterns)


def _conditions_hold(condition: dict, context: dict) -> bool:
    for operator, keys in condition.items():
        if operator != "StringLike":
            return False  # an operator this evaluator does not know never grants
        for key, patterns in keys.items():
            if key not in context or not _matches(patterns, context[key]):
                return False
    return True


def allowed(policy: dict, permission: Permission) -> bool:
    context = dict(permission.context)
    return any(
        statement["Effect"] == "Allow"
        and _matches(statement["Action"], permission.action, ignore_case=True)
        and _matches(statement["Resource"], permission.resource)
        and _conditions_hold(statement.get("Condition", {}), context)
        for statement in policy["Statement"])


def action_allowed(policy: dict, actions: set[str]) -> bool:
    """Some statement allows one of ``actions`` on some resource (an action-level check)."""
    return any(statement["Effect"] == "Allow" and _matches(statement["Action"], action, ignore_case=True)
               for statement in policy["Statement"] for action in actions)

