"""The Terraform package: chalice's output made applicable for a stage, and the project's own
resources generated from the models. The chalice side runs the real ``chalice package`` on a
small app with every trigger the contract uses (no dependencies, so it takes a second)."""
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pynamodb.attributes import TTLAttribute, UnicodeAttribute
from pynamodb.indexes import IncludeProjection, KeysOnlyProjection, LocalSecondaryIndex
from pynamodb.models import Model

from chalicelib.storage.base import meta
from chalicelib.storage.tables import ALL_MODELS
from deploy import appmodel, chalice_tf, iam, stack
from deploy.package import VARIABLES_DIR, deployable_stages
from deploy.stage import Stage, table_base, tf_key
from deploy.terraform import mirror_root

APP = '''
from chalice import Chalice
app = Chalice(app_name="retail-sync")

@app.authorizer()
def token_authorizer(auth_request):
    pass

@app.route("/jobs", authorizer=token_authorizer)
def jobs():
    return {}

@app.schedule("cron(30 4 * * ? *)", name="purge_run_history")
def purge_run_history(event):
    pass

@app.lambda_function(name="run_job")
def run_job(event, context):
    pass

@app.on_sqs_message(queue="retail-sync-shards", batch_size=1, name="run_shard")
def run_shard(event):
    pass

@app.on_s3_event(bucket="retail-sync-migration", prefix="migration/", events=["s3:ObjectCreated:*"],
                 name="on_migration_drop")
def on_migration_drop(event):
    pass
'''
FUNCTION_SETTINGS = {name: {"lambda_timeout": 900, "lambda_memory_size": 1024}
                     for name in ("run_job", "run_shard", "on_migration_drop")}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """(chalice.tf.json per stage, the scratch app) from the real chalice package."""
    root = tmp_path_factory.mktemp("app")
    (root / "app.py").write_text(textwrap.dedent(APP))
    (root / "requirements.txt").write_text("")
    (root / ".chalice").mkdir()
    (root / ".chalice" / "config.json").write_text(json.dumps({
        "version": "2.0", "app_name": "retail-sync", "autogen_policy": False,
        "lambda_functions": {**FUNCTION_SETTINGS, "purge_run_history": {"lambda_timeout": 300}},
        "stages": {"dev": {"api_gateway_stage": "api"}, "prod": {"api_gateway_stage": "api"}}}))
    docs = {}
    for stage in ("dev", "prod"):
        (root / ".chalice" / f"policy-{stage}.json").write_text('{"Version": "2012-10-17", "Statement": []}')
        out = root / f"out-{stage}"
        subprocess.run([str(Path(sys.executable).with_name("chalice")), "package", "--stage", stage,
                        "--pkg-format", "terraform", str(out)], cwd=root, check=True, capture_output=True,
                       env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"})
        docs[stage] = json.loads((out / "chalice.tf.json").read_text())
    spec = importlib.util.spec_from_file_location("scratch_app", root / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return docs, module.app


@pytest.fixture
def packaged(scratch, monkeypatch):
    docs, application = scratch
    monkeypatch.setitem(iam.ROUTES, "scratch_app", iam.ROUTES["chalicelib.http.platform"])
    functions = appmodel.functions(application)
    return {stage: chalice_tf.postprocess(doc, Stage(stage), functions, application)
            for stage, doc in docs.items()}, functions


def test_the_output_needs_no_null_provider_and_accepts_current_terraform(packaged):
    docs, _ = packaged
    text = json.dumps(docs["dev"])
    assert "null_data_source" not in text
    assert docs["dev"]["terraform"] == {"required_version": ">= 1.0", "required_providers": {
        "aws": {"source": "hashicorp/aws", "version": ">= 5.0, < 6.0"}}}


def test_rule_names_carry_the_stage_so_two_stages_share_an_account(packaged):
    docs, _ = packaged
    names = {stage: [r["name"] for r in doc["resource"]["aws_cloudwatch_event_rule"].values()]
             for stage, doc in docs.items()}
    assert names == {"dev": ["retail-sync-dev-purge_run_history-event"],
                     "prod": ["retail-sync-prod-purge_run_history-event"]}
    target = docs["dev"]["resource"]["aws_cloudwatch_event_target"]["purge_run_history-event"]
    assert target["dead_letter_config"] == {"arn": "${aws_sqs_queue.failures.arn}"}


def test_triggers_point_at_the_stage_queue_and_bucket(packaged):
    resources = packaged[0]["dev"]["resource"]
    mapping = resources["aws_lambda_event_source_mapping"]["run_shard-sqs-event-source"]
    assert mapping["event_source_arn"] == "${aws_sqs_queue.shards.arn}"
    notification = resources["aws_s3_bucket_notification"]["retail-sync-migration_notify"]
    assert notification["bucket"] == "${aws_s3_bucket.migration.id}"
    assert notification["lambda_function"][0]["filter_prefix"] == "migration/"
    assert notification["depends_on"] == ["aws_lambda_permission.on_migration_drop-s3event"]
    assert resources["aws_lambda_permission"]["on_migration_drop-s3event"]["source_arn"] == \
        "${aws_s3_bucket.migration.arn}"


def test_every_function_gets_its_log_group_policy_and_failure_routing(packaged):
    docs, functions = packaged
    resources = docs["dev"]["resource"]
    for function in functions:
        definition = resources["aws_lambda_function"][function.name]
        group = resources["aws_cloudwatch_log_group"][f"{function.name}-log-group"]
        assert group == {"name": f"/aws/lambda/{definition['function_name']}",
                         "retention_in_days": "${var.log_retention_days}"}
        assert definition["depends_on"] == [f"aws_cloudwatch_log_group.{function.name}-log-group"]
        assert definition["environment"]["variables"]["SHARD_QUEUE_URL"] == "${aws_sqs_queue.shards.url}"
        policy = json.loads(resources["aws_iam_role_policy"][f"{function.name}_role"]["policy"])
        assert policy["Statement"][0]["Resource"] == [f"${{aws_cloudwatch_log_group.{function.name}-log-group.arn}}:*"]
    invoke_configs = resources["aws_lambda_function_event_invoke_config"]
    assert set(invoke_configs) == {"purge_run_history", "run_job", "on_migration_drop"}
    assert invoke_configs["run_job"]["destination_config"] == {
        "on_failure": {"destination": "${aws_sqs_queue.failures.arn}"}}
    assert invoke_configs["run_job"]["maximum_retry_attempts"] == "${var.async_retry_attempts}"
    functions_tf = resources["aws_lambda_function"]
    assert functions_tf["purge_run_history"]["reserved_concurrent_executions"] == 1
    assert "reserved_concurrent_executions" not in functions_tf["run_job"]


def test_the_migration_trigger_reads_only_its_prefix(packaged):
    docs, _ = packaged
    policy = json.loads(docs["dev"]["resource"]["aws_iam_role_policy"]["on_migration_drop_role"]["policy"])
    objects = [s for s in policy["Statement"] if s["Sid"].startswith("Objects")]
    # No job is listed for it in EVENT_JOBS, so it gets no job's rights: only the dropped files.
    assert objects == [{"Sid": "ObjectsMigrationMigration", "Effect": "Allow", "Action": ["s3:GetObject"],
                        "Resource": ["${aws_s3_bucket.migration.arn}/migration/*"]}]


def test_an_event_function_gets_the_jobs_listed_for_it(scratch, monkeypatch):
    _, application = scratch
    drop = next(f for f in appmodel.functions(application) if f.name == "on_migration_drop")
    monkeypatch.setattr(iam, "EVENT_JOBS", {"on_migration_drop": ("purge-run-history",)})
    assert [job.name for job in iam.jobs_run_by(drop)] == ["purge-run-history"]
    monkeypatch.setattr(iam, "EVENT_JOBS", {"on_migration_drop": ("no-such-job",)})
    with pytest.raises(iam.PolicyError, match="unknown jobs: no-such-job"):
        iam.jobs_run_by(drop)


def test_the_api_gets_a_stage_resource_instead_of_the_deprecated_stage_name(packaged):
    docs, _ = packaged
    resources = docs["prod"]["resource"]
    assert "stage_name" not in resources["aws_api_gateway_deployment"]["rest_api"]
    assert resources["aws_api_gateway_stage"]["rest_api"]["stage_name"] == "api"
    assert resources["aws_api_gateway_rest_api"]["rest_api"]["name"] == "retail-sync-prod"
    assert docs["prod"]["output"]["EndpointURL"]["value"] == "${aws_api_gateway_stage.rest_api.invoke_url}"


def test_a_job_function_without_working_time_is_refused(scratch, monkeypatch):
    docs, application = scratch
    monkeypatch.setitem(iam.ROUTES, "scratch_app", iam.ROUTES["chalicelib.http.platform"])
    doc = json.loads(json.dumps(docs["dev"]))
    doc["resource"]["aws_lambda_function"]["run_job"]["timeout"] = 60  # chalice's default
    with pytest.raises(chalice_tf.PackageError, match="run_job runs jobs but times out after 60 s"):
        chalice_tf.postprocess(doc, Stage("dev"), appmodel.functions(application), application)


def test_a_trigger_on_an_unmanaged_bucket_is_refused():
    with pytest.raises(ValueError, match="names no resource the deployment manages"):
        appmodel.managed_key("someone-elses-bucket", {"data": 1, "migration": 1})


def test_every_model_becomes_a_table_with_its_keys_indexes_and_ttl():
    tables = stack.configuration(Stage("dev"), 900)["resource"]["aws_dynamodb_table"]
    assert set(tables) == {tf_key(table_base(m)) for m in ALL_MODELS}
    runs = tables["runs"]
    assert runs["name"] == "retail-sync-dev-runs" and runs["hash_key"] == "run_id" and "range_key" not in runs
    assert runs["global_secondary_index"] == [
        {"name": "by_day", "hash_key": "created_day", "range_key": "created_at", "projection_type": "ALL"},
        {"name": "by_job", "hash_key": "job", "range_key": "created_at", "projection_type": "ALL"},
        {"name": "open_fanouts", "hash_key": "open_fanout", "range_key": "created_at",
         "projection_type": "KEYS_ONLY"}]
    assert runs["attribute"] == [{"name": "created_at", "type": "S"}, {"name": "created_day", "type": "S"},
                                 {"name": "job", "type": "S"},
                                 {"name": "open_fanout", "type": "S"}, {"name": "run_id", "type": "S"}]
    assert tables["coordination"]["ttl"] == {"attribute_name": "expires", "enabled": True}
    assert tables["ledger"]["range_key"] == "line_no"
    assert {"name": "line_no", "type": "N"} in tables["ledger"]["attribute"]
    for table in tables.values():
        assert table["billing_mode"] == "PAY_PER_REQUEST"
        assert table["server_side_encryption"] == {"enabled": True}
        assert table["point_in_time_recovery"] == {"enabled": "${var.point_in_time_recovery}"}


class Thing(Model):
    Meta = meta("things")
    store_id = UnicodeAttribute(hash_key=True)
    thing_id = UnicodeAttribute(range_key=True)
    status = UnicodeAttribute()
    expires_at = TTLAttribute(null=True, attr_name="ttl")


class ThingsByStatus(LocalSecondaryIndex):
    class Meta:
        index_name = "by_status"
        projection = KeysOnlyProjection()

    store_id = UnicodeAttribute(hash_key=True)
    status = UnicodeAttribute(range_key=True)


def test_projections_local_indexes_and_renamed_ttl_attributes_are_kept():
    from pynamodb.indexes import GlobalSecondaryIndex

    class ThingsByName(GlobalSecondaryIndex):
        class Meta:
            index_name = "by_name"
            projection = IncludeProjection(["status", "label"])

        thing_id = UnicodeAttribute(hash_key=True)

    class Named(Thing):
        Meta = meta("named-things")
        by_status = ThingsByStatus()
        by_name = ThingsByName()

    table = stack.table(Named, Stage("prod"))
    assert table["name"] == "retail-sync-prod-named-things"
    assert table["local_secondary_index"] == [{"name": "by_status", "range_key": "status",
                                               "projection_type": "KEYS_ONLY"}]
    assert table["global_secondary_index"] == [{"name": "by_name", "hash_key": "thing_id", "projection_type": "INCLUDE",
                                                "non_key_attributes": ["label", "status"]}]
    assert table["ttl"] == {"attribute_name": "ttl", "enabled": True}


def test_buckets_are_private_encrypted_and_expire_old_packages():
    resources = stack.configuration(Stage("prod"), 900)["resource"]
    assert {k: v["bucket"] for k, v in resources["aws_s3_bucket"].items()} == {
        "data": "retail-sync-prod-data", "migration": "retail-sync-prod-migration"}
    for block in resources["aws_s3_bucket_public_access_block"].values():
        assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                              "restrict_public_buckets"))
    assert set(resources["aws_s3_bucket_server_side_encryption_configuration"]) == {"data", "migration"}
    assert set(resources["aws_s3_bucket_versioning"]) == {"migration"}
    packages = resources["aws_s3_bucket_lifecycle_configuration"]["data"]["rule"][0]
    assert packages["filter"] == {"prefix": "${var.package_prefix}"}
    assert packages["expiration"] == {"days": "${var.package_retention_days}"}


def test_the_shard_queue_outlasts_its_consumer_and_dead_letters_after_retries():
    queues = stack.configuration(Stage("dev"), 900)["resource"]["aws_sqs_queue"]
    assert queues["shards"]["visibility_timeout_seconds"] == 5400
    assert "aws_sqs_queue.shards_dlq.arn" in queues["shards"]["redrive_policy"]
    assert {q["name"] for q in queues.values()} == {"retail-sync-dev-shards", "retail-sync-dev-shards-dlq",
                                                    "retail-sync-dev-failures"}
    assert stack.configuration(Stage("dev"), 9000)["resource"]["aws_sqs_queue"]["shards"][
        "visibility_timeout_seconds"] == 43200  # SQS maximum


def test_each_deployable_stage_has_variables_naming_itself():
    assert deployable_stages() == ["dev", "prod"]
    for stage in deployable_stages():
        text = (VARIABLES_DIR / f"{stage}.tfvars").read_text()
        assert f'stage = "{stage}"' in " ".join(text.split())
        validation = stack.configuration(Stage(stage), 900)["variable"]["stage"]["validation"][0]
        assert validation["condition"] == f'${{var.stage == "{stage}"}}'


def test_the_mirror_root_holds_the_registry_folder():
    path = "/opt/x/registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64/terraform-provider-aws_v5.100.0_x5"
    assert mirror_root(path) == Path("/opt/x")


def test_cost_inputs_come_from_the_bench_table_and_the_schedules(tmp_path):
    from deploy import cost

    bench = tmp_path / "BENCHMARKS.md"
    bench.write_text("# Benchmarks\n\nintro\n\n## Scale M\n\n`make bench SCALE=M WORKERS=2`\n\n"
                     "| step | status | records | seconds | AWS requests | requests/record | peak MB | shards | "
                     "shard s mean / max | shard peak RSS MB | requests by operation |\n"
                     "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
                     "| purge-run-history | Ended | 0 runs | 0.2 | 4 | 0.000 | 10 |  |  |  | dynamodb.GetItem 1, "
                     "dynamodb.Query 1, dynamodb.UpdateItem 2 |\n"
                     "| post-inventory | Ended | 9 journal lines | 3.0 | 2 | 0.222 | 50 | 4 | 1.5 / 2.0 | 60 | "
                     "dynamodb.Query 2 |\n\n"
                     "## Scale L\n\n| purge-run-history | Ended | 0 runs | 9.0 | 1 | 0.000 | 10 |  |  |  | "
                     "dynamodb.Query 1 |\n")
    scale, rows = cost.read_benchmarks(bench)
    assert scale == "M" and rows == [
        cost.Row("purge-run-history", 0.2, {"dynamodb.GetItem": 1, "dynamodb.Query": 1, "dynamodb.UpdateItem": 2}),
        cost.Row("post-inventory", 3.0 + 4 * 1.5, {"dynamodb.Query": 2})]  # the parent's time and its shards'
    assert cost.read_benchmarks(bench, "L")[1] == [cost.Row("purge-run-history", 9.0, {"dynamodb.Query": 1})]
    assert cost.runs_per_month("cron(30 4 * * ? *)") == 30
    assert cost.runs_per_month("rate(1 hour)") == 720
    usage = cost.monthly({"dynamodb.BatchWriteItem": 2, "dynamodb.GetItem": 3, "s3.PutObject": 5, "s3.GetObject": 7,
                          "sesv2.SendEmail": 11, "sqs.SendMessageBatch": 13, "dynamodb.TransactWriteItems": 1})
    assert usage == {"dynamodb_wru": 250, "dynamodb_rru": 3, "s3_put": 5, "s3_get": 7, "ses_email": 11,
                     "sqs_request": 13}


def test_cost_counts_a_month_of_store_data_once_and_idle_runs_per_schedule():
    from deploy import cost

    # The bench posts 30 business days (scale M) in one run: a month's work, whatever the schedule.
    assert cost.frequency("post-inventory", "M") == ("post-inventory (30 business days of data)", 1, 1440,
                                                     "post_inventory")
    # Scale S generates 7 business days: a month holds 30/7 of them.
    label, times, invocations, _ = cost.frequency("post-statements", "S")
    assert (times, invocations) == (30 / 7, 30)
    # Every other run of the schedule finds nothing new.
    assert cost.frequency("send-email-receipts, rerun with no change", "M")[1:3] == (2880, 2880)
    assert cost.frequency("load master data (PUT /data path)", "M") == (
        "load master data (PUT /data path) (assumed daily)", 30, 30, "api_handler")
    assert cost.frequency("stage-migration-file (200000 products, Windows-1252)", "M")[1:3] == (1, 1)
    # A day's status messages, processed by one of the 96 runs a day.
    assert cost.frequency("process-status-messages", "M") == (
        "process-status-messages (assumed daily)", 30, 2880, "process_status_messages")


def test_api_gateway_answers_its_own_errors_in_the_contract_format(packaged):
    docs, _ = packaged
    resources = docs["prod"]["resource"]
    responses = resources["aws_api_gateway_gateway_response"]
    assert {r["response_type"]: r["status_code"] for r in responses.values()} == {
        "UNAUTHORIZED": "401", "ACCESS_DENIED": "403", "MISSING_AUTHENTICATION_TOKEN": "404",
        "REQUEST_TOO_LARGE": "413"}
    body = json.loads(responses["unauthorized"]["response_templates"]["application/json"])
    assert body == {"error": {"code": "unauthorized", "message": "missing, unknown or revoked token", "details": []}}
    deployment = resources["aws_api_gateway_deployment"]["rest_api"]
    assert "aws_api_gateway_gateway_response.unauthorized" in deployment["depends_on"]
    assert set(deployment["triggers"]) == {"redeployment", "gateway_responses"}
