"""``python -m deploy package [--stage S] | check | audit | smoke | cost``."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy")
    sub = parser.add_subparsers(dest="command", required=True)
    audit = sub.add_parser("audit", help="replay the demo as deployed: requests per function and route, IAM denials")
    audit.add_argument("--scale", default="S", choices=["S", "M", "L"])
    args = parser.parse_args(argv)
    if args.command == "audit":
        from deploy.audit import main as run

        return run(args.scale)
    return 2


if __name__ == "__main__":
    sys.exit(main())
