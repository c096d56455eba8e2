"""Post-processing of ``chalice package --pkg-format terraform`` output (chalice 1.34).

What chalice emits cannot be applied as is, and lacks what it has no settings for:
- it pins Terraform < 1.4 and the AWS provider < 5, and carries the app and stage names in a
  ``null_data_source`` (a provider not on these machines): current versions, literal names;
- EventBridge rule names lack the app and stage (aws/chalice#2135): two stages would collide;
- the SQS trigger and the S3 notification name the literal queue and bucket of the decorators,
  which cannot know the stage: pointed at the stage's own queue and bucket;
- it cannot package ``log_retention_in_days`` at all (its Terraform generator has no handler for
  log groups): each function gets its ``/aws/lambda/<function>`` log group here, with the stage's
  ``log_retention_days``, created before the function so Lambda never creates an unmanaged one;
- every role gets its generated least-privilege policy (``deploy/iam.py``);
- asynchronously invoked functions get retries, a maximum event age and the failure queue as
  on-failure destination; EventBridge targets the failure queue as their dead-letter queue;
- scheduled functions are single-flight (reserved concurrency 1) unless the config says otherwise;
- the deprecated ``stage_name`` of the API deployment becomes an ``aws_api_gateway_stage``;
- the errors API Gateway answers itself (no or unknown token, no such route, body too large) get
  the contract's error format and status instead of API Gateway's ``{"message": ...}``.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any

from chalicelib import settings
from chalicelib.http.common import GATEWAY_ERRORS
from chalicelib.settings import APP_NAME
from deploy import iam
from deploy.appmodel import Function, managed_key
from deploy.stage import BUCKETS, QUEUES, Stage, stage_environment

# A run needs working time beyond the reserve it keeps for handing over to a fresh invocation.
MIN_WORK_SECONDS = 60
REQUIRED_PROVIDERS = {"aws": {"source": "hashicorp/aws", "version": ">= 5.0, < 6.0"}}


class PackageError(Exception):
    """The app or its config cannot be deployed as it stands."""


def _replace_strings(value: Any, replacements: dict[str, str]) -> Any:
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [_replace_strings(v, replacements) for v in value]
    if isinstance(value, dict):
        return {k: _replace_strings(v, replacements) for k, v in value.items()}
    return value


def _ref(expression: str, kind: str) -> str:
    """The resource name in ``${<kind>.<name>.<attribute>}``."""
    match = re.fullmatch(r"\$\{" + re.escape(kind) + r"\.([^.}]+)\.[^}]+\}", expression)
    if not match:
        raise PackageError(f"expected a reference to {kind}, found {expression!r}")
    return match.group(1)


def _current_versions(doc: dict, stage: Stage) -> dict:
    inputs = doc["data"].pop("null_data_source")["chalice"]["inputs"]
    doc = _replace_strings(doc, {"${data.null_data_source.chalice.outputs.app}": inputs["app"],
                                 "${data.null_data_source.chalice.outputs.stage}": inputs["stage"]})
    if inputs["stage"] != stage.name:
        raise PackageError(f"chalice packaged stage {inputs['stage']}, expected {stage.name}")
    doc["terraform"] = {"required_version": ">= 1.0", "required_providers": REQUIRED_PROVIDERS}
    return doc


def _route_event_sources(doc: dict, functions: dict[str, Function]) -> None:
    resources = doc["resource"]
    for mapping in resources.get("aws_lambda_event_source_mapping", {}).values():
        function = functions[_ref(mapping["function_name"], "aws_lambda_function")]
        mapping["event_source_arn"] = f"${{aws_sqs_queue.{managed_key(function.queue, QUEUES)}.arn}}"
    permissions = resources.get("aws_lambda_permission", {})
    for notification in resources.get("aws_s3_bucket_notification", {}).values():
        literal = notification["bucket"]
        key = managed_key(literal, BUCKETS)
        notification["bucket"] = f"${{aws_s3_bucket.{key}.id}}"
        granting = [name for name, p in permissions.items() if p.get("source_arn", "").endswith(f":s3:::{literal}")]
        for name in granting:
            permissions[name]["source_arn"] = f"${{aws_s3_bucket.{key}.arn}}"
        # S3 checks that it may invoke the function when the notification is written.
        notification["depends_on"] = [f"aws_lambda_permission.{name}" for name in granting]


def _namespace_rules(doc: dict, stage: Stage) -> None:
    resources = doc["resource"]
    for name, rule in resources.get("aws_cloudwatch_event_rule", {}).items():
        rule["name"] = stage.prefix() + name
        rule["description"] = rule.get("description") or f"{APP_NAME} {stage.name}: {name}"
    for target in resources.get("aws_cloudwatch_event_target", {}).values():
        target["dead_letter_config"] = {"arn": "${aws_sqs_queue.failures.arn}"}


def _check_timeout(function: Function, definition: dict, stage: Stage) -> None:
    if function.trigger in ("api", "authorizer"):
        return
    with stage_environment(stage.name):
        reserve = settings.job_safety_margin_ms() // 1000
    if definition["timeout"] < reserve + MIN_WORK_SECONDS:
        raise PackageError(
            f"{function.name} runs jobs but times out after {definition['timeout']} s, leaving no time beyond the "
            f"{reserve} s hand-over reserve: set lambda_timeout (e.g. 900) and lambda_memory_size for it under "
            f"lambda_functions in .chalice/config.json")


def _configure_function(doc: dict, function: Function, policy: dict, stage: Stage) -> None:
    resources = doc["resource"]
    definition = resources["aws_lambda_function"][function.name]
    _check_timeout(function, definition, stage)
    variables = definition.setdefault("environment", {}).setdefault("variables", {})
    variables["SHARD_QUEUE_URL"] = "${aws_sqs_queue.shards.url}"
    variables["ALERTS_TOPIC_ARN"] = "${aws_sns_topic.alerts.arn}"
    log_key = iam.log_group_key(function.name)
    resources.setdefault("aws_cloudwatch_log_group", {})[log_key] = {
        "name": f"/aws/lambda/{definition['function_name']}", "retention_in_days": "${var.log_retention_days}"}
    definition["depends_on"] = [f"aws_cloudwatch_log_group.{log_key}"]
    role = _ref(definition["role"], "aws_iam_role")
    resources["aws_iam_role_policy"][role]["policy"] = json.dumps(policy, indent=1)
    if function.trigger == "schedule":
        definition.setdefault("reserved_concurrent_executions", 1)
    if function.asynchronous:
        resources.setdefault("aws_lambda_function_event_invoke_config", {})[function.name] = {
            "function_name": f"${{aws_lambda_function.{function.name}.function_name}}",
            "maximum_retry_attempts": "${var.async_retry_attempts}",
            "maximum_event_age_in_seconds": "${var.async_max_event_age_seconds}",
            "destination_config": {"on_failure": {"destination": "${aws_sqs_queue.failures.arn}"}},
            # Lambda checks that the role may send to the destination.
            "depends_on": [f"aws_iam_role_policy.{role}"],
        }


def _api_stage(doc: dict, stage: Stage) -> None:
    resources = doc["resource"]
    if "aws_api_gateway_rest_api" not in resources:
        return
    api = resources["aws_api_gateway_rest_api"]["rest_api"]
    api["name"] = f"{APP_NAME}-{stage.name}"
    deployment = resources["aws_api_gateway_deployment"]["rest_api"]
    stage_name = deployment.pop("stage_name")
    deployment.pop("stage_description", None)
    responses = {response_type.lower(): {
        "rest_api_id": "${aws_api_gateway_rest_api.rest_api.id}", "response_type": response_type,
        "status_code": str(status), "response_templates": {"application/json": json.dumps(body)},
        "response_parameters": {"gatewayresponse.header.Content-Type": "'application/json'"},
    } for response_type, (status, body) in GATEWAY_ERRORS.items()}
    resources["aws_api_gateway_gateway_response"] = responses
    # Gateway responses take effect with a deployment: a change to them deploys again.
    responses_digest = hashlib.sha256(json.dumps(responses, sort_keys=True).encode()).hexdigest()
    deployment["triggers"] = {"redeployment": "${md5(local.chalice_api_swagger)}",
                              "gateway_responses": responses_digest}
    deployment["depends_on"] = [*deployment.get("depends_on", []),
                                *(f"aws_api_gateway_gateway_response.{name}" for name in responses)]
    resources["aws_api_gateway_stage"] = {"rest_api": {
        "rest_api_id": "${aws_api_gateway_rest_api.rest_api.id}",
        "deployment_id": "${aws_api_gateway_deployment.rest_api.id}",
        "stage_name": stage_name}}
    doc["output"]["EndpointURL"] = {"value": "${aws_api_gateway_stage.rest_api.invoke_url}"}


def postprocess(chalice_doc: dict, stage: Stage, functions: list[Function], application=None) -> dict:
    doc = _current_versions(copy.deepcopy(chalice_doc), stage)
    by_name = {f.name: f for f in functions}
    packaged = set(doc["resource"]["aws_lambda_function"])
    if packaged != set(by_name):
        raise PackageError(f"chalice packaged {sorted(packaged)}, the app has {sorted(by_name)}")
    policies = iam.policies(functions, iam.TerraformArns(), application)
    broad = [f"{name}: {problem}" for name, doc in policies.items() for problem in iam.wildcard_problems(doc)]
    if broad:
        raise PackageError("policies broader than an ARN pattern needs: " + "; ".join(broad))
    _route_event_sources(doc, by_name)
    _namespace_rules(doc, stage)
    for function in functions:
        _configure_function(doc, function, policies[function.name], stage)
    _api_stage(doc, stage)
    return doc
