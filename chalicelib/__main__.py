"""Operations CLI against the configured endpoint (AWS, or the local stack via AWS_ENDPOINT_URL).

    python -m chalicelib provision
    python -m chalicelib tokens create --role operator --label "Ana (HQ ops)" --expires-in 12h
    python -m chalicelib tokens create --role store --store-id S001
    python -m chalicelib tokens list
    python -m chalicelib tokens revoke TOKEN_ID

It uses the standard AWS settings (credentials, ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``) and
``STAGE``; on the local stack, ``make token ROLE=...`` (``python -m devstack tokens ...``) sets them.
A refused request (an unknown store or token) or an unreachable AWS is a message and exit 2.
"""
from __future__ import annotations

import argparse
import json
import sys

from botocore.exceptions import BotoCoreError
from pynamodb.exceptions import PynamoDBException

from chalicelib.domain.errors import DomainError, FieldError, ValidationError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("provision", help="create tables, buckets, queue and SES identity (idempotent)")
    tokens = sub.add_parser("tokens", help="API tokens").add_subparsers(dest="action", required=True)
    create = tokens.add_parser("create")
    create.add_argument("--role", required=True, choices=["operator", "store"])
    create.add_argument("--store-id")
    create.add_argument("--label", default="")
    create.add_argument("--expires-in", help="refuse the token after 30m, 12h, 7d... (advised for people)")
    tokens.add_parser("list")
    revoke = tokens.add_parser("revoke")
    revoke.add_argument("token_id")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except DomainError as exc:
        details = "; ".join(f"{e.path}: {e.message}" for e in getattr(exc, "errors", []))
        print(f"error: {details or exc}", file=sys.stderr)
    except (BotoCoreError, PynamoDBException) as exc:
        print(f"error: AWS request failed: {exc}", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "provision":
        from chalicelib.provision import provision

        print(json.dumps(provision(), indent=2))
        return 0
    from chalicelib import auth
    from chalicelib.storage import records

    if args.action == "create":
        expires_in = auth.parse_duration(args.expires_in, "--expires-in") if args.expires_in else None
        if args.role == "store" and args.store_id and records.get("stores", args.store_id) is None:
            raise ValidationError([FieldError("store_id", f"unknown store {args.store_id}")])
        print(auth.issue_token(args.role, store_id=args.store_id, label=args.label, expires_in=expires_in))
    elif args.action == "list":
        print(json.dumps(auth.list_tokens(), indent=2))
    else:
        revoked = auth.revoke(args.token_id)
        if revoked is None:
            raise DomainError(f"no token {args.token_id}")
        print(f"revoked {revoked['token_id']} ({revoked['role']}"
              f"{' ' + revoked['store_id'] if revoked['store_id'] else ''}, {revoked['label'] or 'no label'})"
              f" at {revoked['revoked_at']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
