"""``python -m deploy package [--stage S] | check | audit | smoke | cost``."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy")
    sub = parser.add_subparsers(dest="command", required=True)
    package = sub.add_parser("package", help="chalice package + post-processing + the stack, per stage")
    package.add_argument("--stage", action="append", help="only this stage (repeatable); default every tfvars")
    check = sub.add_parser("check", help="terraform init (offline mirror) and validate every packaged stage")
    check.add_argument("--stage", action="append")
    smoke = sub.add_parser("smoke", help="terraform apply a packaged stage to a local moto server")
    smoke.add_argument("--stage", default="dev")
    cost = sub.add_parser("cost", help="monthly cost at a benchmarked scale, from BENCHMARKS.md and public prices")
    cost.add_argument("--scale", default="M", choices=["S", "M", "L"])
    audit = sub.add_parser("audit", help="replay the demo as deployed: requests per function and route, IAM denials")
    audit.add_argument("--scale", default="S", choices=["S", "M", "L"])
    args = parser.parse_args(argv)
    from deploy.catalogs import CatalogError
    from deploy.chalice_tf import PackageError
    from deploy.iam import PolicyError
    from deploy.terraform import ToolchainError

    try:
        return _run(args)
    except (CatalogError, PackageError, PolicyError, ToolchainError) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1


def _run(args) -> int:
    if args.command == "package":
        from deploy.package import main as run

        return run(args.stage)
    if args.command == "check":
        from deploy.package import deployable_stages
        from deploy.terraform import check as run

        return run(args.stage or deployable_stages())
    if args.command == "smoke":
        from deploy.smoke import main as run

        return run(args.stage)
    if args.command == "cost":
        from deploy.cost import main as run

        return run(scale=args.scale)
    if args.command == "audit":
        from deploy.audit import main as run

        return run(args.scale)
    return 2


if __name__ == "__main__":
    sys.exit(main())
