"""The job table: app.py's literal schedules match it, ``import app`` loads no job, domain module or
pydantic, the scheduled tick cleans no parameters through the models, and the models agree with
the table's defaults."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.domain.errors import ValidationError
from chalicelib.jobs.registry import JOBS, all_jobs, get_job
from chalicelib.models import params

ROOT = Path(__file__).resolve().parents[2]
APPLICATION = [job for job in all_jobs() if job.implementation.startswith("chalicelib.jobs.")]


def fresh(code: str) -> list[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT), "AWS_DEFAULT_REGION": "us-east-1",
                                        "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def test_app_spells_out_every_schedule_of_the_job_table():
    import app

    declared = {source.name: source.schedule_expression for source in app.app.event_sources
                if hasattr(source, "schedule_expression")}
    expected = {job.name.replace("-", "_"): job.schedule for job in APPLICATION if job.schedule}
    assert declared == expected


def test_import_app_loads_no_job_no_domain_module_and_no_pydantic():
    loaded = fresh("import app")
    jobs = {job.implementation for job in APPLICATION} | {"chalicelib.jobs.registry", "chalicelib.jobs.runtime"}
    assert not jobs & set(loaded)
    # The HTTP layer's error types and storage's JSON of exact values are the only part of the
    # domain every route needs.
    assert sorted(m for m in loaded if m.startswith("chalicelib.domain.")) == [
        "chalicelib.domain.errors", "chalicelib.domain.jsonvalues"]
    assert not [m for m in loaded if m.startswith(("chalicelib.models", "pydantic", "jinja2", "babel",
                                                   "aws_lambda_powertools"))]


def test_the_scheduled_tick_and_run_job_load_no_parameter_models():
    loaded = fresh("from chalicelib.jobs import runtime, triggers\n"
                   "from chalicelib.jobs.registry import all_jobs\n"
                   "[job.clean_params(None) for job in all_jobs() if job.schedule]")
    assert "chalicelib.jobs.runtime" in loaded
    assert not [m for m in loaded if m.startswith(("chalicelib.models", "pydantic"))]


@pytest.mark.parametrize("job", [job.name for job in APPLICATION])
def test_the_tables_defaults_are_what_the_model_makes_of_no_parameters(job):
    job = get_job(job)
    model = job.params_model()
    required = {name for name, field in model.model_fields.items() if field.is_required()}
    assert set(job.defaults) <= set(model.model_fields) - required
    model.model_validate({**dict.fromkeys(required, "x"), **job.defaults})  # every default is a valid value
    if job.schedule:
        assert job.clean_params(None) == params.clean(model, {}, job.defaults, "") == job.defaults


def test_parameters_keep_their_words():
    with pytest.raises(ValidationError) as refused:
        get_job("transfer-to-pay").clean_params(
            {"pay_date": "2026-02-30", "period_type": "daily", "accept_errors": "yes", "colour": "red"})
    assert refused.value.message == "invalid parameters for job transfer-to-pay"
    assert {(e.path, e.message) for e in refused.value.errors} == {
        ("params.pay_date", "must be a date YYYY-MM-DD"),
        ("params.period_type", "must be one of weekly, biweekly, monthly"),
        ("params.accept_errors", "must be true or false"),
        ("params.colour", "unknown parameter"),
    }
    with pytest.raises(ValidationError) as refused:
        get_job("purge-run-history").clean_params({"older_than_days": 0})
    assert [(e.path, e.message) for e in refused.value.errors] == [("params.older_than_days", "must be at least 1")]
    with pytest.raises(ValidationError) as refused:
        get_job("stage-migration-file").clean_params({"bucket": ""})
    assert {(e.path, e.message) for e in refused.value.errors} == {
        ("params.key", "is required"), ("params.bucket", "must be a non-empty string")}
    with pytest.raises(ValidationError) as refused:
        get_job("post-inventory").clean_params({"store_ids": ["S1", "not an id"]})
    assert [(e.path, e.message) for e in refused.value.errors] == [("params.store_ids", "must be a list of ids")]


def test_parameters_come_out_in_normal_form_with_defaults_and_null_left_out():
    assert get_job("process-assortments").clean_params({"store_ids": ["S2", "S1", "S2"], "rerun_of": None}) == {
        "store_ids": ["S1", "S2"], "full_sync": False}
    assert get_job("copy-migration-to-target").clean_params({"staging_job_id": "J1"}) == {
        "staging_job_id": "J1", "rows": "all"}


def test_clean_up_describes_its_scheduled_age_from_the_table():
    from chalicelib.jobs.registry import SCHEDULED_CLEAN_UP_DAYS

    help_text = get_job("clean-up-staging").describe()["params"]["older_than_days"]["help"]
    assert f"(the weekly schedule: {SCHEDULED_CLEAN_UP_DAYS})" in help_text


def test_every_job_name_is_listed_once_and_resolves():
    for job in APPLICATION:
        assert JOBS[job.name] is job
        assert callable(job.run.resolve())
        if job.shards is not None:
            assert callable(job.shards.resolve())
