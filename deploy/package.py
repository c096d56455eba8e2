"""``make package``: one Terraform root module per stage in ``build/terraform/<stage>/``.

    chalice.tf.json    chalice's functions, API, triggers and roles, post-processed (chalice_tf)
    deployment.zip     the code and its dependencies, built by chalice for Lambda (manylinux wheels)
    stack.tf.json      tables, buckets, queues, sender identity, alarms, variables (stack)
    terraform.tfvars   the stage's variables, copied from deploy/terraform/<stage>.tfvars

The stages are those with a variables file. ``chalice package`` needs a region but no credentials.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from deploy import appmodel, chalice_tf, stack
from deploy.catalogs import compile_catalogs
from deploy.catalogs import sources as catalog_sources
from deploy.stage import Stage, stage_names
from devstack.localenv import PROJECT_DIR

VARIABLES_DIR = PROJECT_DIR / "deploy" / "terraform"
BUILD_DIR = PROJECT_DIR / "build" / "terraform"


def deployable_stages() -> list[str]:
    stages = sorted(p.stem for p in VARIABLES_DIR.glob("*.tfvars"))
    unknown = set(stages) - set(stage_names())
    if unknown:
        raise chalice_tf.PackageError(f"variables for stages not in .chalice/config.json: {', '.join(sorted(unknown))}")
    return stages


def _chalice() -> str:
    beside = Path(sys.executable).with_name("chalice")
    return str(beside) if beside.exists() else "chalice"


def _policy_file(stage: str) -> Path:
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    return PROJECT_DIR / ".chalice" / config["stages"][stage].get("iam_policy_file", f"policy-{stage}.json")


def run_chalice_package(stage: str, out: Path) -> dict:
    """``chalice package`` into ``out``; returns its chalice.tf.json."""
    # chalice reads the stage's policy file for every role; the generated per-function policies
    # replace it afterwards, so it only has to exist while chalice runs.
    placeholder = _policy_file(stage)
    created = not placeholder.exists()
    if created:
        placeholder.write_text(json.dumps({"Version": "2012-10-17", "Statement": []}))
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"}
    try:
        subprocess.run([_chalice(), "package", "--stage", stage, "--pkg-format", "terraform", str(out)],
                       cwd=PROJECT_DIR, env=env, check=True)
    finally:
        if created:
            placeholder.unlink()
    return json.loads((out / "chalice.tf.json").read_text())


def bundled_files() -> list[str]:
    """Files besides code the functions read at run time: compiled receipt catalogs, the PDF font and its licence."""
    package_dir = PROJECT_DIR / "chalicelib"
    files = [path.with_suffix(".mo") for path in catalog_sources()]
    files += sorted((package_dir / "fonts").iterdir()) + sorted((package_dir / "templates").rglob("*.*"))
    return [path.relative_to(PROJECT_DIR).as_posix() for path in files]


def check_bundled(deployment_zip: Path) -> None:
    with zipfile.ZipFile(deployment_zip) as archive:
        missing = sorted(set(bundled_files()) - set(archive.namelist()))
    if missing:
        raise chalice_tf.PackageError(f"{deployment_zip.name} lacks {', '.join(missing)}")


def _write_json(path: Path, document: dict) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def package(stage_name: str) -> Path:
    stage = Stage(stage_name)
    target = BUILD_DIR / stage_name
    target.mkdir(parents=True, exist_ok=True)
    functions = appmodel.functions()
    compile_catalogs()
    with tempfile.TemporaryDirectory() as scratch:
        chalice_doc = run_chalice_package(stage_name, Path(scratch))
        shutil.move(Path(scratch) / "deployment.zip", target / "deployment.zip")
    check_bundled(target / "deployment.zip")
    doc = chalice_tf.postprocess(chalice_doc, stage, functions)
    consumer = next((f.name for f in functions if f.trigger == "sqs"), None)
    timeout = doc["resource"]["aws_lambda_function"][consumer]["timeout"] if consumer else 60
    _write_json(target / "chalice.tf.json", doc)
    _write_json(target / "stack.tf.json", stack.configuration(stage, timeout))
    shutil.copy(VARIABLES_DIR / f"{stage_name}.tfvars", target / "terraform.tfvars")
    backend = VARIABLES_DIR / f"{stage_name}.backend.tf.json"
    if backend.exists():  # e.g. an S3 backend for a team; overrides the local state file
        shutil.copy(backend, target / "backend_override.tf.json")
    size = (target / "deployment.zip").stat().st_size
    print(f"packaged stage {stage_name} into {target.relative_to(PROJECT_DIR)} "
          f"({len(functions)} functions, deployment.zip {size / 2**20:.1f} MB)", flush=True)
    return target


def main(stages: list[str] | None = None) -> int:
    for stage_name in stages or deployable_stages():
        package(stage_name)
    return 0
