"""Operations CLI against the configured endpoint (AWS, or the local stack via AWS_ENDPOINT_URL).

    python -m chalicelib provision
    python -m chalicelib tokens create --role operator --label "HQ ops"
    python -m chalicelib tokens create --role store --store-id S001
    python -m chalicelib tokens list
    python -m chalicelib tokens revoke TOKEN_ID
"""
from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("provision", help="create tables, buckets, queue and SES identity (idempotent)")
    tokens = sub.add_parser("tokens", help="API tokens").add_subparsers(dest="action", required=True)
    create = tokens.add_parser("create")
    create.add_argument("--role", required=True, choices=["operator", "store"])
    create.add_argument("--store-id")
    create.add_argument("--label", default="")
    tokens.add_parser("list")
    revoke = tokens.add_parser("revoke")
    revoke.add_argument("token_id")
    args = parser.parse_args(argv)

    if args.command == "provision":
        from chalicelib.provision import provision

        print(json.dumps(provision(), indent=2))
        return 0
    from chalicelib import auth

    if args.action == "create":
        print(auth.issue_token(args.role, store_id=args.store_id, label=args.label))
    elif args.action == "list":
        print(json.dumps(auth.list_tokens(), indent=2))
    elif not auth.revoke(args.token_id):
        print(f"no token {args.token_id}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
