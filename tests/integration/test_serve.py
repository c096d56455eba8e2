"""`make serve` driven as a newcomer drives it: the banner's and the README's examples pasted into a
shell, the gateway's own errors, the tokens CLI — against one running local stack (a fresh
process, its own moto server, a free port, real tokens)."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from tests.serving import PROJECT, served

README_PORT = "127.0.0.1:8000"


@dataclass
class Serve:
    base: str
    banner: str
    operator: str
    store: str
    store_id: str
    env: dict
    state: Path

    def request(self, method: str, path: str, token: str | None = None, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        all_headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def shell(self, command: str, *, cwd: Path | None = None) -> subprocess.CompletedProcess:
        env = {**self.env, "OPERATOR": self.operator, "STORE": self.store}
        return subprocess.run(["bash", "-c", command], cwd=cwd or self.state.parent, env=env,
                              capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    with served(tmp_path_factory.mktemp("serve")) as it:
        yield Serve(it.base, it.banner, it.operator, it.store, it.store_id, it.env, it.folder / "local-stack.json")


def _curl(serve: Serve, command: str) -> tuple[int, str]:
    """Run a pasted curl command; its status code and body."""
    result = serve.shell(command.replace("curl ", "curl -s -w '\\n%{http_code}' ", 1))
    assert result.returncode == 0, (command, result.stderr)
    body, _, status = result.stdout.rpartition("\n")
    return int(status), body


def _commands(text: str) -> list[str]:
    """The shell commands of a text (backslash continuations joined, comments dropped)."""
    joined = re.sub(r"\\\n\s*", "", text)
    return [line.split("  # ")[0].strip() for line in joined.splitlines() if line.strip()]


def test_the_banner_names_the_console_and_it_is_served(serve):
    assert f"console        {serve.base}/console   (sign in with the operator token)" in serve.banner
    status, headers, body = serve.request("GET", "/console")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"console/app.js" in body


def test_the_banner_examples_work_as_printed(serve, tmp_path):
    commands = _commands(serve.banner.split("\n\n")[1])
    export = next(c for c in commands if c.startswith("export "))
    curls = [c for c in commands if c.startswith("curl ")]
    assert len(curls) == 4
    for command in curls:
        status, body = _curl(serve, f"{export}; {command}")
        assert 200 <= status < 300, (command, status, body)

    aws = next(c for c in commands if " aws " in c)
    words = shlex.split(aws)
    settings = dict(word.split("=", 1) for word in words if "=" in word and not word.startswith("-"))
    endpoint = words[words.index("--endpoint-url") + 1]
    source, target = words[-2], words[-1]
    assert Path(source).is_file()  # the sample the banner names exists
    bucket, _, prefix = target.removeprefix("s3://").partition("/")
    # what the printed line gives the aws CLI, through boto3: the local stack accepts it
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=settings["AWS_DEFAULT_REGION"],
                      aws_access_key_id=settings["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=settings["AWS_SECRET_ACCESS_KEY"])
    s3.head_bucket(Bucket=bucket)
    if subprocess.run(["bash", "-c", "command -v aws"], capture_output=True).returncode == 0:
        result = serve.shell(aws, cwd=tmp_path)  # the line itself, with no AWS_* variable around it
        assert result.returncode == 0, result.stderr
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
        assert keys == [prefix + Path(source).name]


def _make_conflict(serve: Serve) -> str:
    """A transaction sent twice with other content: the upload issue an operator accepts."""
    from tests.integration.retail import sale

    status, _, raw = serve.request("GET", "/data/products?limit=1", serve.operator)
    product = json.loads(raw)["items"][0]
    variant = (product.get("variants") or [{}])[0].get("id")
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    for qty in (1, 2):
        body = {"transactions": [sale("T-README", [(product["id"], variant, qty, str(product["price"]))],
                                      store_id=serve.store_id, business_date=yesterday)]}
        status, _, raw = serve.request("POST", f"/stores/{serve.store_id}/transactions", serve.store,
                                       json.dumps(body).encode(), {"Content-Type": "application/json"})
        assert status == 200, raw
    status, _, raw = serve.request("GET", f"/stores/{serve.store_id}/upload-issues?kind=conflict", serve.operator)
    return json.loads(raw)["issues"][0]["issue_id"]


def test_the_readme_examples_work_when_pasted(serve):
    readme = (PROJECT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.S)
    commands = [c for block in blocks for c in _commands(block) if c.startswith("curl ") and README_PORT in c]
    assert len(commands) >= 10
    assert serve.store_id == "S001"  # the store the README's examples name
    filled = {"UC-…": _make_conflict(serve)}
    sending = 0
    for command in commands:
        for placeholder, value in filled.items():
            command = command.replace(placeholder, value)
        status, body = _curl(serve, command.replace(README_PORT, serve.base.removeprefix("http://")))
        assert 200 <= status < 300, (command, status, body)
        sending += " -d " in command
        run_id = re.search(r'"run_id":"([^"]+)"', body)
        if run_id:
            filled["<run_id>"] = run_id.group(1)
    assert sending >= 4


def test_the_gateways_own_answers_are_in_the_contracts_format(serve):
    from chalicelib.http.common import GATEWAY_ERRORS

    cases = [
        ("no token", "GET", "/jobs", None, "UNAUTHORIZED"),
        ("an unknown token", "GET", "/jobs", "rs_not-a-token", "UNAUTHORIZED"),
        ("a store token on an operator route", "GET", "/jobs", serve.store, "ACCESS_DENIED"),
        ("a store token on another store", "GET", "/stores/S002", serve.store, "ACCESS_DENIED"),
        ("no such route", "GET", "/no/such/route", serve.operator, "MISSING_AUTHENTICATION_TOKEN"),
        ("no such route, no token", "POST", "/nothing", None, "MISSING_AUTHENTICATION_TOKEN"),
    ]
    for name, method, path, token, kind in cases:
        status, headers, body = serve.request(method, path, token)
        assert (status, json.loads(body)) == GATEWAY_ERRORS[kind], name
        assert headers["Content-Type"] == "application/json", name
        if token:
            assert token not in body.decode() + json.dumps(headers), name
    assert GATEWAY_ERRORS["MISSING_AUTHENTICATION_TOKEN"][0] == 404

    status, _, body = serve.request("POST", "/jobs/purge-run-history/runs", serve.operator, b'{"params": {}}',
                                    {"Content-Type": "application/x-www-form-urlencoded"})  # `curl -d`
    assert status == 415 and json.loads(body)["error"]["code"] == "unsupported_media_type"


def test_the_tokens_cli_works_on_the_local_stack(serve):
    make = "make -s --no-print-directory -o .venv/.installed -C " + shlex.quote(str(PROJECT))
    minted = serve.shell(f"{make} token ROLE=operator LABEL=cli-test")
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    assert serve.request("GET", "/jobs", token)[0] == 200
    store = serve.shell(f"{make} token ROLE=store STORE={serve.store_id}")
    assert store.returncode == 0, store.stderr
    assert serve.request("GET", f"/stores/{serve.store_id}", store.stdout.strip())[0] == 200

    tokens = f"{sys.executable} -m devstack tokens"
    unknown = serve.shell(f"{make} token ROLE=store STORE=NOPE")
    assert unknown.returncode != 0 and "unknown store NOPE" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    direct = serve.shell(f"{tokens} create --role store --store-id NOPE")
    assert direct.returncode == 2 and direct.stderr.strip() == "error: store_id: unknown store NOPE"

    listed = json.loads(serve.shell(f"{tokens} list").stdout)
    token_id = next(t["token_id"] for t in listed if t["label"] == "cli-test")
    revoked = serve.shell(f"{tokens} revoke {token_id}")
    assert revoked.returncode == 0 and revoked.stdout.startswith(f"revoked {token_id} (operator, cli-test) at ")
    assert serve.request("GET", "/jobs", token)[0] == 401
    missing = serve.shell(f"{tokens} revoke no-such-id")
    assert (missing.returncode, missing.stderr.strip()) == (2, "error: no token no-such-id")

    for_a_person = serve.shell(f"{make} token ROLE=operator LABEL=ana EXPIRES_IN=12h")
    assert for_a_person.returncode == 0, for_a_person.stderr
    assert serve.request("GET", "/jobs", for_a_person.stdout.strip())[0] == 200
    expires = next(t["expires_at"] for t in json.loads(serve.shell(f"{tokens} list").stdout) if t["label"] == "ana")
    lifetime = datetime.fromisoformat(expires.replace("Z", "+00:00")) - datetime.now(UTC)
    assert timedelta(hours=11, minutes=55) < lifetime <= timedelta(hours=12)
    bad = serve.shell(f"{tokens} create --role operator --expires-in '12 hours'")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --expires-in: must be minutes, hours or days")

    stopped = serve.shell(f"LOCAL_STACK_FILE=/nonexistent/stack.json {tokens} list")
    assert stopped.returncode == 2 and "make serve" in stopped.stderr and "Traceback" not in stopped.stderr
