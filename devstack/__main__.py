"""``python -m devstack demo [--scale S] | serve [--port 8000] | bench [--scale M] | fuzz [--examples 20]``,
``python -m devstack importtime [--runs N] | tokens ...``.

``tokens`` is ``python -m chalicelib tokens ...`` against the running ``make serve``."""
from __future__ import annotations

import argparse
import sys

from devstack.workers import workers_wanted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run every job on the local stack")
    demo.add_argument("--scale", default="S", choices=["S", "M", "L"])
    serve = sub.add_parser("serve", help="keep the local stack running")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--scale", default="S", choices=["S", "M", "L"])
    serve.add_argument("--workers", type=int, default=None, help="shard worker processes (default: WORKERS or 1)")
    bench = sub.add_parser("bench", help="measure every job")
    bench.add_argument("--scale", default="M", choices=["S", "M", "L"])
    bench.add_argument("--workers", type=int, default=None, help="shard worker processes (default: WORKERS or 1)")
    bench.add_argument("--only", default="", help="comma-separated scenarios, e.g. 'assortments,delivery modes'")
    bench.add_argument("--out", default="BENCHMARKS.md", help="the report's file")
    fuzz = sub.add_parser("fuzz", help="Schemathesis over every operation of the contract")
    fuzz.add_argument("--examples", type=int, default=20, help="test cases per operation and phase")
    fuzz.add_argument("--seed", type=int, default=14)
    importtime = sub.add_parser("importtime", help="import app beside its unavoidable libraries: medians, ratio")
    importtime.add_argument("--runs", type=int, default=21)
    sub.add_parser("tokens", help="python -m chalicelib tokens ... against the running make serve", add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "tokens":
        from devstack.serve import tokens

        return tokens(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "demo":
        from devstack.demo import main as run

        return run(args.scale)
    if args.command == "serve":
        from devstack.serve import main as run

        return run(args.port, args.scale, workers_wanted() if args.workers is None else args.workers)
    if args.command == "importtime":
        from devstack.importtime import main as run

        return run(args.runs)
    if args.command == "fuzz":
        from devstack.fuzz import main as run

        return run(args.examples, args.seed)
    from pathlib import Path

    from devstack.bench import main as run

    return run(args.scale, workers_wanted() if args.workers is None else args.workers,
               [t.strip() for t in args.only.split(",") if t.strip()], Path(args.out))


if __name__ == "__main__":
    sys.exit(main())
