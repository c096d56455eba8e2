"""Terraform without network: the binary on PATH and the AWS provider from the local filesystem
mirror, found the way the Makefile finds it (``find / -name 'terraform-provider-aws*'``; the
mirror root is the folder holding ``registry.terraform.io/``), through a generated CLI config.

``check``: ``terraform init`` (no backend) and ``terraform validate`` for every packaged stage.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from deploy.package import BUILD_DIR

MIRROR_VARIABLE = "TF_PROVIDER_MIRROR"
CLI_CONFIG = BUILD_DIR / "terraform.rc"


class ToolchainError(Exception):
    pass


def find_terraform() -> str:
    found = shutil.which("terraform")
    if not found:
        raise ToolchainError("terraform is not on PATH (Terraform >= 1.0 is needed)")
    return found


def mirror_root(provider_path: str) -> Path:
    path = Path(provider_path)
    for parent in path.parents:
        if parent.name == "registry.terraform.io":
            return parent.parent
    raise ToolchainError(f"{provider_path} is not inside a provider mirror (no registry.terraform.io folder)")


def find_mirror() -> Path:
    given = os.environ.get(MIRROR_VARIABLE)
    if given:
        return Path(given)
    found = subprocess.run("find / -path /proc -prune -o -name 'terraform-provider-aws*' -print 2>/dev/null",
                           shell=True, capture_output=True, text=True).stdout.split()
    found = [p for p in found if "registry.terraform.io" in p]
    if not found:
        raise ToolchainError("no terraform-provider-aws mirror found on this machine; set TF_PROVIDER_MIRROR")
    return mirror_root(found[0])


def cli_config(mirror: Path) -> Path:
    """A CLI config that installs providers only from ``mirror`` (never the registry)."""
    CLI_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    CLI_CONFIG.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n  }}\n'
                          f'  direct {{\n    exclude = ["*/*"]\n  }}\n}}\n')
    return CLI_CONFIG


def environment(mirror: Path) -> dict[str, str]:
    return {**os.environ, "TF_CLI_CONFIG_FILE": str(cli_config(mirror)), "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1"}


def terraform(directory: Path, *args: str, env: dict[str, str]) -> None:
    subprocess.run([find_terraform(), f"-chdir={directory}", *args], env=env, check=True)


def check(stages: list[str]) -> int:
    env = environment(find_mirror())
    for stage in stages:
        directory = BUILD_DIR / stage
        if not (directory / "chalice.tf.json").exists():
            raise ToolchainError(f"{directory} has no package; run make package first")
        terraform(directory, "init", "-backend=false", "-input=false", "-no-color", env=env)
        terraform(directory, "validate", "-no-color", env=env)
        print(f"stage {stage}: terraform validate passed", flush=True)
    return 0
