"""Least-privilege IAM: every AWS call each Lambda function makes — replaying the demo (every job
there is) and the platform's routes in the deployed topology on moto — is allowed by that
function's generated policy, and nothing in the policies is a wildcard an ARN does not need."""
import pytest

from chalicelib.jobs.registry import JOBS, Job, Resources, get_job
from chalicelib.storage.records import MasterRecord
from deploy import audit, iam
from deploy.appmodel import functions
from deploy.audit import Audit, Call
from deploy.stage import Stage

SHARDED = "iam-fan-out"


def _per_store(ctx):
    from chalicelib.storage import records

    ctx.count(read=1 if records.get("stores", ctx.params["store_ids"][0]) else 0)


# A job that fans out per store: its parent runs in run_job, its shards in run_shard via SQS.
JOBS.setdefault(SHARDED, Job(SHARDED, "IAM fan-out", "reads each store's record in its own shard", "rate(1 day)",
                             _per_store, params="StoreTargeting", resources=Resources(tables={MasterRecord: "read"}),
                             shards=lambda ctx: None if ctx.params.get("store_ids") else ["S001", "S002", "S003"]))


def _fan_out(demo):
    run = demo.run_job(SHARDED)
    assert run["status"] == "Ended" and "3 shards: 3 Ended" in run["message"], run


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    return audit.replay_demo(tmp_path_factory.mktemp("demo"), extra_steps=[_fan_out])


def test_every_call_of_every_function_is_allowed_by_its_policy(replay):
    recorded, app_functions = replay
    invoked = set(recorded.invocations)
    # The replay reached every kind of function: schedules, the API and its authorizer, run_job, run_shard.
    assert {"api_handler", "token_authorizer", "run_job", "run_shard", "purge_run_history"} <= invoked
    assert {f.name for f in app_functions if f.trigger == "schedule"} <= invoked
    assert len(recorded.calls) > 50
    assert audit.check(recorded, app_functions) == []


def test_shards_execute_in_run_shard_and_manual_runs_in_run_job(replay):
    recorded, _ = replay
    shards = [r for r in recorded.runs if r["job"] == SHARDED and r.get("parent_run_id")]
    parent = next(r for r in recorded.runs if r["job"] == SHARDED and not r.get("parent_run_id"))
    assert len(shards) == 3
    assert all(recorded.executed[r["run_id"]] == {"run_shard"} for r in shards)
    assert recorded.executed[parent["run_id"]] == {"run_job"}


def test_a_call_the_policy_lacks_is_reported(replay):
    _, app_functions = replay
    stray = Audit(calls=[
        Call("purge_run_history", "s3", "PutObject", {"Bucket": "retail-sync-local-data", "Key": "exports/x.csv"},
             job="purge-run-history"),
        Call("token_authorizer", "dynamodb", "Scan", {"TableName": "retail-sync-local-tokens"}),
        Call("run_job", "dynamodb", "DeleteTable", {"TableName": "retail-sync-local-runs"}),
    ])
    problems = audit.check(stray, app_functions)
    assert len(problems) == 3, problems
    assert any("purge_run_history running purge-run-history: s3.PutObject needs s3:PutObject on "
               "arn:aws:s3:::retail-sync-local-data/exports/x.csv" in p for p in problems)
    assert any("token_authorizer: dynamodb.Scan needs dynamodb:Scan" in p for p in problems)
    assert any("dynamodb.DeleteTable has no IAM rule" in p for p in problems)


def test_an_operation_counted_in_a_run_record_but_not_allowed_is_reported(replay):
    _, app_functions = replay
    run = {"run_id": "r1", "job": "purge-run-history", "aws_requests": {"sesv2.SendEmail": 1, "dynamodb.Query": 2}}
    stray = Audit(runs=[run])
    stray.executed["r1"] = {"purge_run_history"}
    assert audit.check(stray, app_functions) == [
        "purge_run_history running purge-run-history (run r1): sesv2.SendEmail counted in the run record, "
        "no action for it in the policy"]


def test_a_job_that_starts_calling_something_new_fails_the_check(tmp_path, monkeypatch):
    """End to end: the purge job's code also writes an export and hands out a presigned link to a
    package; the policies of the functions that run it (its schedule function, run_job for the
    tour's manual run) allow neither."""
    from chalicelib import settings
    from chalicelib.storage import aws

    job = get_job("purge-run-history")
    original = job.run

    def run_and_export(ctx):
        s3 = aws.client("s3")
        s3.put_object(Bucket=settings.data_bucket(), Key="exports/purged.csv", Body=b"run_id\n")
        s3.generate_presigned_url("get_object", Params={"Bucket": settings.data_bucket(), "Key": "packages/p.zip"})
        return original(ctx)

    monkeypatch.setattr(job, "run", run_and_export)
    recorded, app_functions = audit.replay_demo(tmp_path)
    problems = audit.check(recorded, app_functions)
    assert problems and all("s3.PutObject" in p or "s3.GetObject" in p for p in problems), problems
    # Caught from the call itself (with its resource), from the run record's counts, and the
    # presigned link (no request at all) as the GetObject its follower will make.
    assert any("needs s3:PutObject on arn:aws:s3:::retail-sync-local-data/exports/purged.csv" in p for p in problems)
    assert any("counted in the run record" in p for p in problems)
    assert any("needs s3:GetObject on arn:aws:s3:::retail-sync-local-data/packages/p.zip" in p for p in problems)
    assert {p.split(" ")[0] for p in problems} == {"purge_run_history", "run_job"}


def test_policies_name_resources_and_actions_without_wildcards():
    app_functions = functions()
    for arns in (iam.TerraformArns(), iam.StageArns(Stage("dev"), "eu-west-1", "111122223333")):
        for name, document in iam.policies(app_functions, arns).items():
            assert iam.wildcard_problems(document) == [], name
            assert all(s["Effect"] == "Allow" and s["Resource"] for s in document["Statement"])


def test_the_wildcard_check_rejects_broad_grants():
    document = {"Statement": [{"Sid": "Broad", "Action": ["dynamodb:*", "s3:GetObject"],
                               "Resource": ["*", "arn:aws:dynamodb:*:*:table/*", "arn:aws:s3:::*",
                                            "arn:aws:dynamodb:us-east-1:1:table/t/index/*",
                                            "arn:aws:s3:::bucket/exports/*"]}]}
    assert iam.wildcard_problems(document) == [
        "Broad: wildcard action dynamodb:*", "Broad: wildcard resource *",
        "Broad: wildcard resource arn:aws:dynamodb:*:*:table/*", "Broad: wildcard resource arn:aws:s3:::*"]


def test_functions_only_get_what_they_run():
    app_functions = {f.name: f for f in functions()}
    everything = list(app_functions.values())
    purge = iam.access_for(app_functions["purge_run_history"], everything)
    authorizer = iam.access_for(app_functions["token_authorizer"], everything)
    assert authorizer.tables == {"tokens": {"GetItem", "UpdateItem"}} and not authorizer.invokes
    assert "tokens" not in purge.tables and purge.sends == {"failures"} and purge.invokes == {"run_job"}
    shard = iam.access_for(app_functions["run_shard"], everything)
    assert shard.consumes == {"shards"} and "failures" not in shard.sends  # SQS retries, then its DLQ


def test_an_undeclared_route_family_is_an_error(monkeypatch):
    monkeypatch.setattr(iam, "ROUTES", {})
    api = next(f for f in functions() if f.name == "api_handler")
    with pytest.raises(iam.PolicyError, match="chalicelib.http.platform"):
        iam.access_for(api, functions())
