"""Schemathesis hooks of our own, loaded through ``SCHEMATHESIS_HOOKS`` by ``make fuzz``: the
error-document check, and a line per request (operation, status, seconds) appended to ``$FUZZ_TALLY``."""
from __future__ import annotations

import json
import os

import schemathesis


def error_problems(status: int, content_type: str, text: str) -> list[str]:
    """What keeps an answer with ``status`` from being the contract's error document
    ``{"error": {"code", "message", "details": [{"field", "message"}]}}`` (nothing below 400)."""
    if status < 400:
        return []
    if not content_type.startswith("application/json"):
        return [f"content type {content_type or 'none'}, not application/json"]
    try:
        body = json.loads(text)
    except ValueError:
        return ["body is not JSON"]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or set(body) != {"error"}:
        return [f"body is not {{\"error\": {{...}}}}: {text[:200]}"]
    problems = [f"error.{key} is not a non-empty string" for key in ("code", "message")
                if not isinstance(error.get(key), str) or not error[key]]
    details = error.get("details")
    if not isinstance(details, list):
        problems.append("error.details is not a list")
    else:
        problems += [f"error.details[{i}] is not {{\"field\", \"message\"}} strings"
                     for i, detail in enumerate(details)
                     if not isinstance(detail, dict) or set(detail) != {"field", "message"}
                     or not all(isinstance(v, str) for v in detail.values())]
    extra = set(error) - {"code", "message", "details"}
    if extra:
        problems.append(f"error has keys the contract lacks: {', '.join(sorted(extra))}")
    return problems


def own_format(text: str) -> str | None:
    """Whose error format a non-contract error body is in, where it is a framework's own."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    keys = set(body) if isinstance(body, dict) else set()
    if keys in ({"message"}, {"Message"}):
        return "gateway"  # API Gateway's, as Chalice's local gateway imitates it
    return "chalice" if keys == {"Code", "Message"} else None


@schemathesis.check
def error_document(ctx, response, case) -> bool | None:
    """Every 4xx and 5xx answer is the contract's error document."""
    content_type = (response.headers.get("content-type") or [""])[0]  # lower-case keys, list values
    problems = error_problems(response.status_code, content_type, response.text)
    if not problems:
        return None
    summary = f"{response.status_code} is not the contract's error document: " + "; ".join(problems)
    origin = own_format(response.text)
    # One raise per origin: Schemathesis tells failures apart by the line that raises, so a
    # gateway-format finding is reported apart from one of our own routes.
    if origin == "gateway":
        raise AssertionError(f"{summary} (the local gateway's own format)")
    if origin == "chalice":
        raise AssertionError(f"{summary} (Chalice's own format)")
    raise AssertionError(summary)


@schemathesis.hook
def after_call(context, case, response) -> None:
    tally = os.environ.get("FUZZ_TALLY")
    if tally:
        with open(tally, "a") as out:
            out.write(f"{case.operation.label} {response.status_code} {response.elapsed:.3f}\n")
