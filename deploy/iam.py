"""Least-privilege IAM: one policy per Lambda function, generated from declarations.

Where each function's grants come from:
- a function that executes job runs gets ``RUNTIME`` (run records, locks and idempotency keys,
  the parameters record), may hand a continuation to ``run_job``, may fan shards out to the
  shard queue when one of its jobs does, and gets what its jobs declare in
  ``Job(resources=Resources(...))``: a scheduled function its own job, ``run_shard`` the jobs
  that fan out, ``run_job`` every job, an S3- or EventBridge-triggered function the jobs
  ``EVENT_JOBS`` lists for it (none by default: handing a run to ``run_job`` needs no job's rights);
- the API handler gets ``STARTS_RUNS`` plus what each route family (blueprint module) declares in
  ``ROUTES`` — a family missing there is an error, not a silent grant;
- ``FUNCTIONS`` holds what no job or route declares (the token authorizer's two calls);
- every function writes its own log group; asynchronously invoked ones may send to the failure
  queue (their on-failure destination); an SQS consumer reads its queue.

``tests/integration/test_iam.py`` replays the demo in the deployed topology and fails when any
function makes a call its policy does not allow.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from chalicelib.jobs.registry import Job, Resources, all_jobs, get_job
from chalicelib.storage.account_activity import AccountActivityResult
from chalicelib.storage.alerts import Alert
from chalicelib.storage.distribution import StoreState
from chalicelib.storage.download_sessions import DownloadSession, StatusMessageRecord
from chalicelib.storage.exports import EXPORT_PREFIXES
from chalicelib.storage.inventory import OnHand
from chalicelib.storage.migration import EntityMapping, StagingJob
from chalicelib.storage.pay import PayBacklog, PayItem, TimeRegistration
from chalicelib.storage.records import MasterRecord
from chalicelib.storage.runs import Coordination, RunRecord
from chalicelib.storage.statements import StatementRecord
from chalicelib.storage.tokens import ApiToken
from chalicelib.storage.transactions import PosTransaction
from chalicelib.storage.upload_issues import UploadIssue
from deploy.appmodel import Function, managed_key, route_modules
from deploy.stage import BUCKETS, QUEUES, Stage, model_by_base, table_base, tf_key

RUN_JOB = "run_job"

# Recording an alert (storage/alerts.record, a run's end): a conditional put, never a read.
RECORDS_ALERTS = ("PutItem",)

# What the job runtime itself touches while executing any run (a run's end may record an alert,
# and so may a job: a refused pay period, a suspended or stale session).
RUNTIME = Resources(tables={RunRecord: "write", Coordination: "write", MasterRecord: "read", Alert: RECORDS_ALERTS})

# Submitting runs (and cancelling them, which may end one): the API records them and hands them to run_job.
STARTS_RUNS = Resources(tables={RunRecord: "write", Coordination: "write", Alert: RECORDS_ALERTS})

# Route families served by api_handler (blueprint module -> what its routes touch).
ROUTES: dict[str, Resources] = {
    # /health, /jobs, /runs, /data, /stores/{id}: master data and run history; links to the
    # export files of runs' outputs (signed with the function's role).
    "chalicelib.http.platform": Resources(tables={MasterRecord: "write", RunRecord: "read"},
                                          objects={f"data/{prefix}": "read" for prefix in EXPORT_PREFIXES}),
    "chalicelib.http.distribution": Resources(
        tables={DownloadSession: "write", StoreState: "write", StatusMessageRecord: "write"},
        objects={"data/packages/": "write"}),
    "chalicelib.http.finance": Resources(tables={AccountActivityResult: "write", TimeRegistration: "write",
                                                 PayBacklog: "write", PayItem: "read"}),
    "chalicelib.http.migration": Resources(tables={StagingJob: "read"}),
    "chalicelib.http.store_ops": Resources(tables={PosTransaction: "write", StatementRecord: "read", OnHand: "read",
                                                   UploadIssue: "write", Alert: RECORDS_ALERTS}),
    # /alerts: the list (an index query) and acknowledging one.
    "chalicelib.http.alerts": Resources(tables={Alert: ("GetItem", "Query", "UpdateItem")}),
    # /console and its files: read from the package, no AWS resource.
    "chalicelib.http.console": Resources(),
}

# Functions whose needs no job or route declares.
FUNCTIONS: dict[str, Resources] = {
    # Looks the token's hash up and refreshes its last_used_at (chalicelib.auth.verify).
    "token_authorizer": Resources(tables={ApiToken: ("GetItem", "UpdateItem")}),
    # Stores dropped mappings and records a Failed staging job for a file it cannot take.
    "on_migration_drop": Resources(tables={EntityMapping: "write", StagingJob: "write"},
                                   objects={"migration/migration/": "read"}),
}

# Jobs that S3- or EventBridge-triggered functions execute themselves (default: none).
EVENT_JOBS: dict[str, tuple[str, ...]] = {"on_migration_drop": ("stage-migration-file", "clean-up-staging")}

_TABLE_READ = frozenset({"GetItem", "BatchGetItem", "Query", "ConditionCheckItem"})
TABLE_LEVELS = {
    "read": _TABLE_READ,
    "write": _TABLE_READ | {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"},
    "scan": frozenset({"Scan"}),
}
OBJECT_LEVELS = {
    "read": frozenset({"s3:GetObject"}),
    "write": frozenset({"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"}),
    "delete": frozenset({"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"}),
}
# Lambda's SQS event source mapping polls with the function's own role.
QUEUE_CONSUMER = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")


class PolicyError(Exception):
    """A declaration is missing or names something the deployment does not manage."""


@dataclass
class Access:
    """What one function may do, by logical resource (rendered to ARNs by an ``Arns``)."""

    tables: dict[str, set[str]] = field(default_factory=dict)  # table base -> DynamoDB actions
    objects: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (bucket, prefix) -> S3 actions
    email: bool = False
    publishes_alerts: bool = False  # sns:Publish on the stage's alerts topic
    sends: set[str] = field(default_factory=set)  # queue keys
    consumes: set[str] = field(default_factory=set)
    invokes: set[str] = field(default_factory=set)  # Chalice function names

    def add(self, other: Access) -> Access:
        for base, actions in other.tables.items():
            self.tables.setdefault(base, set()).update(actions)
        for key, actions in other.objects.items():
            self.objects.setdefault(key, set()).update(actions)
        self.email |= other.email
        self.publishes_alerts |= other.publishes_alerts
        self.sends |= other.sends
        self.consumes |= other.consumes
        self.invokes |= other.invokes
        return self


def table_actions(level: str | tuple[str, ...]) -> set[str]:
    if isinstance(level, tuple):
        return set(level)
    actions: set[str] = set()
    for part in level.split("+"):
        if part not in TABLE_LEVELS:
            raise PolicyError(f"table access {level!r}: use read, write, +scan or a tuple of operations")
        actions |= TABLE_LEVELS[part]
    return actions


def from_resources(resources: Resources) -> Access:
    access = Access(email=resources.email, publishes_alerts=resources.alerts_topic)
    known = model_by_base()
    for model, level in resources.tables.items():
        base = table_base(model)
        if base not in known:
            raise PolicyError(f"{model.__name__} is not in chalicelib.storage.tables.ALL_MODELS")
        access.tables.setdefault(base, set()).update(table_actions(level))
    for location, level in resources.objects.items():
        bucket, _, prefix = location.partition("/")
        if bucket not in BUCKETS or level not in OBJECT_LEVELS:
            raise PolicyError(f"objects {location!r}: {level!r} — bucket one of {', '.join(BUCKETS)}, "
                              f"level one of {', '.join(OBJECT_LEVELS)}")
        access.objects.setdefault((bucket, prefix), set()).update(OBJECT_LEVELS[level])
    return access


def jobs_run_by(function: Function) -> list[Job]:
    if function.trigger == "schedule":
        job = get_job(function.job_name)
        if job is None:
            raise PolicyError(f"scheduled function {function.name} has no job {function.job_name}")
        return [job]
    if function.trigger == "sqs":
        return [job for job in all_jobs() if job.shards]
    if function.trigger == "invoke":
        return all_jobs()
    names = EVENT_JOBS.get(function.name, ())
    unknown = sorted(set(names) - {job.name for job in all_jobs()})
    if unknown:
        raise PolicyError(f"EVENT_JOBS[{function.name!r}] names unknown jobs: {', '.join(unknown)}")
    return [job for job in all_jobs() if job.name in names]


def runner_access(jobs: list[Job], function_names: set[str], fans_out: bool) -> Access:
    access = from_resources(RUNTIME)
    for job in jobs:
        access.add(from_resources(job.resources))
    if RUN_JOB in function_names:
        access.invokes.add(RUN_JOB)  # continuations (and shards without a queue) go to run_job
    if fans_out and any(job.shards for job in jobs):
        access.sends.add("shards")
    return access


def access_for(function: Function, functions: list[Function], application=None) -> Access:
    names = {f.name for f in functions}
    access = Access()
    if function.name in FUNCTIONS:
        access.add(from_resources(FUNCTIONS[function.name]))
    if function.trigger == "api":
        modules = route_modules(application)
        missing = sorted(modules - ROUTES.keys())
        if missing:
            raise PolicyError(f"route families without an entry in deploy/iam.py ROUTES: {', '.join(missing)}")
        for module in sorted(modules):
            access.add(from_resources(ROUTES[module]))
        access.add(from_resources(STARTS_RUNS))
        if RUN_JOB in names:
            access.invokes.add(RUN_JOB)
    elif function.trigger == "authorizer":
        if function.name not in FUNCTIONS:
            raise PolicyError(f"authorizer {function.name} needs an entry in deploy/iam.py FUNCTIONS")
    else:
        # A shard never fans out again; every other runner may start a fan-out.
        access.add(runner_access(jobs_run_by(function), names, fans_out=function.trigger != "sqs"))
        if function.trigger == "sqs":
            access.consumes.add(managed_key(function.queue, QUEUES))
        if function.trigger == "s3":
            bucket = managed_key(function.bucket, BUCKETS)
            access.objects.setdefault((bucket, function.prefix or ""), set()).update(OBJECT_LEVELS["read"])
    if function.asynchronous:
        access.sends.add("failures")
    return access


class Arns(Protocol):
    def table(self, base: str) -> str: ...
    def bucket(self, key: str) -> str: ...
    def queue(self, key: str) -> str: ...
    def function(self, name: str) -> str: ...
    def email_identity(self) -> str: ...
    def alerts_topic(self) -> str: ...
    def log_streams(self, function: str) -> str: ...


class TerraformArns:
    """References to the resources of the generated Terraform configuration."""

    def table(self, base: str) -> str:
        return f"${{aws_dynamodb_table.{tf_key(base)}.arn}}"

    def bucket(self, key: str) -> str:
        return f"${{aws_s3_bucket.{key}.arn}}"

    def queue(self, key: str) -> str:
        return f"${{aws_sqs_queue.{key}.arn}}"

    def function(self, name: str) -> str:
        return f"${{aws_lambda_function.{name}.arn}}"

    def email_identity(self) -> str:
        return "${aws_sesv2_email_identity.mail_from.arn}"

    def alerts_topic(self) -> str:
        return "${aws_sns_topic.alerts.arn}"

    def log_streams(self, function: str) -> str:
        return f"${{aws_cloudwatch_log_group.{log_group_key(function)}.arn}}:*"


def log_group_key(function: str) -> str:
    return f"{function}-log-group"  # the resource name chalice package gives a function's log group


@dataclass(frozen=True)
class StageArns:
    """Concrete ARNs of a stage in one account and region (what AWS evaluates; the IAM test)."""

    stage: Stage
    region: str
    account: str
    partition: str = "aws"

    def _arn(self, service: str, resource: str, region: bool = True, account: bool = True) -> str:
        return (f"arn:{self.partition}:{service}:{self.region if region else ''}:"
                f"{self.account if account else ''}:{resource}")

    def table(self, base: str) -> str:
        return self._arn("dynamodb", f"table/{self.stage.table(base)}")

    def bucket(self, key: str) -> str:
        return self._arn("s3", self.stage.bucket(key), region=False, account=False)

    def queue(self, key: str) -> str:
        return self._arn("sqs", self.stage.queue(key))

    def function(self, name: str) -> str:
        return self._arn("lambda", f"function:{self.stage.function(name)}")

    def email_identity(self) -> str:
        return self._arn("ses", f"identity/{self.stage.mail_from}")

    def alerts_topic(self) -> str:
        return self._arn("sns", self.stage.alerts_topic)

    def log_streams(self, function: str) -> str:
        return self._arn("logs", f"log-group:/aws/lambda/{self.stage.function(function)}") + ":*"


def _sid(*parts: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", "-".join(parts)) if p)


def render(function: str, access: Access, arns: Arns) -> dict:
    """The IAM policy document of one function."""
    statements = [{"Sid": "OwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                   "Resource": [arns.log_streams(function)]}]
    indexed = {base for base, model in model_by_base().items() if model._indexes}
    for base, actions in sorted(access.tables.items()):
        statements.append({"Sid": _sid("Table", base), "Effect": "Allow",
                           "Action": sorted(f"dynamodb:{a}" for a in actions), "Resource": [arns.table(base)]})
        index_actions = sorted(f"dynamodb:{a}" for a in actions & {"Query", "Scan"})
        if base in indexed and index_actions:
            statements.append({"Sid": _sid("Indexes", base), "Effect": "Allow", "Action": index_actions,
                               "Resource": [arns.table(base) + "/index/*"]})
    listed: dict[str, list[str]] = {}
    for (bucket, prefix), actions in sorted(access.objects.items()):
        statements.append({"Sid": _sid("Objects", bucket, prefix), "Effect": "Allow", "Action": sorted(actions),
                           "Resource": [f"{arns.bucket(bucket)}/{prefix}*"]})
        listed.setdefault(bucket, []).append(f"{prefix}*")
    for bucket, prefixes in sorted(listed.items()):
        statements.append({"Sid": _sid("List", bucket), "Effect": "Allow", "Action": ["s3:ListBucket"],
                           "Resource": [arns.bucket(bucket)],
                           "Condition": {"StringLike": {"s3:prefix": sorted(set(prefixes))}}})
    if access.email:
        # SESv2 SendEmail is authorised as ses:SendEmail, or as ses:SendRawEmail for raw MIME.
        statements.append({"Sid": "SendMail", "Effect": "Allow", "Action": ["ses:SendEmail", "ses:SendRawEmail"],
                           "Resource": [arns.email_identity()]})
    if access.publishes_alerts:
        statements.append({"Sid": "PublishAlerts", "Effect": "Allow", "Action": ["sns:Publish"],
                           "Resource": [arns.alerts_topic()]})
    if access.sends:
        statements.append({"Sid": "SendToQueues", "Effect": "Allow", "Action": ["sqs:SendMessage"],
                           "Resource": [arns.queue(q) for q in sorted(access.sends)]})
    if access.consumes:
        statements.append({"Sid": "ConsumeQueues", "Effect": "Allow", "Action": list(QUEUE_CONSUMER),
                           "Resource": [arns.queue(q) for q in sorted(access.consumes)]})
    if access.invokes:
        statements.append({"Sid": "InvokeFunctions", "Effect": "Allow", "Action": ["lambda:InvokeFunction"],
                           "Resource": [arns.function(f) for f in sorted(access.invokes)]})
    return {"Version": "2012-10-17", "Statement": statements}


def policies(functions: list[Function], arns: Arns, application=None) -> dict[str, dict]:
    return {f.name: render(f.name, access_for(f, functions, application), arns) for f in functions}


# The only wildcards a policy may hold: every index of a named table, every stream of a named log
# group, and the objects under a prefix of a named bucket (concrete ARNs or Terraform references).
_PATTERNS = re.compile(r"""(
      [^*?]+/index/\*
    | arn:[^:*?]+:logs:[^*?]+:log-group:[^*?]+:\*
    | \$\{aws_cloudwatch_log_group\.[^*?}]+\.arn\}:\*
    | arn:[^:*?]+:s3:::[^/*?]+/[^*?]*\*
    | \$\{aws_s3_bucket\.[^*?}]+\.arn\}/[^*?]*\*
)""", re.VERBOSE)


def wildcard_problems(document: dict) -> list[str]:
    """Wildcards beyond what an ARN pattern needs (``*`` or ``?`` in an action or elsewhere)."""
    problems = []
    for statement in document["Statement"]:
        for action in statement["Action"]:
            if "*" in action or "?" in action:
                problems.append(f"{statement['Sid']}: wildcard action {action}")
        for resource in statement["Resource"]:
            if ("*" in resource or "?" in resource) and not _PATTERNS.fullmatch(resource):
                problems.append(f"{statement['Sid']}: wildcard resource {resource}")
    return problems
