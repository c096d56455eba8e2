"""The console's page and files as the app serves them: public, only the allow-listed files, the
right content types and security headers, nothing inline, no HTML built from data, and nothing of
it loaded before a console route is called."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.console_files import ASSETS, CONTENT_SECURITY_POLICY, FOLDER

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(name for name in ASSETS if name.endswith(".js"))


def test_the_page_is_public_with_strict_security_headers(client):
    page = client.http.get("/console")
    assert page.status_code == 200
    headers = page.headers
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY and "unsafe" not in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-cache"
    assert '<script type="module" src="console/app.js"></script>' in page.body.decode()


@pytest.mark.parametrize("name", [*SCRIPTS, "console.css"])
def test_each_file_of_the_allow_list_is_served_with_its_content_type(client, name):
    answer = client.http.get(f"/console/{name}")
    assert answer.status_code == 200, name
    expected = "text/css; charset=utf-8" if name.endswith(".css") else "text/javascript; charset=utf-8"
    assert answer.headers["Content-Type"] == expected
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.body == (FOLDER / name).read_bytes()


def test_a_repeated_load_answers_304_with_the_etag(client):
    first = client.http.get("/console/app.js")
    again = client.http.get("/console/app.js", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.body == b""
    assert client.http.get("/console/app.js", headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize("name", ["index.html", "secret.py", "app.py", "..", "%2e%2e%2fapp.py", "APP.JS", "app.js.map"])
def test_any_other_name_is_404_in_the_error_format(client, name):
    answer = client.http.get(f"/console/{name}")
    assert answer.status_code == 404, name
    assert answer.json_body["error"]["code"] == "not_found"


def test_the_allow_list_is_exactly_the_console_folder():
    assert set(ASSETS) == {path.name for path in FOLDER.iterdir()}


def test_nothing_inline_and_no_html_from_data():
    page = (FOLDER / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "inline script"
    assert "<style" not in page and " style=" not in page and not re.search(r"\son\w+=", page)
    for name in SCRIPTS:
        code = (FOLDER / name).read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                     "localStorage", ".style."):
            assert sink not in code, f"{name} uses {sink}"
        imports = re.findall(r"from '\./([\w.]+)'", code)
        assert set(imports) <= set(ASSETS), f"{name} imports a file not served: {imports}"


def test_the_token_is_kept_in_session_storage_only():
    code = "".join((FOLDER / name).read_text() for name in SCRIPTS)
    assert "sessionStorage" in code
    assert "console.log" not in code and "localStorage" not in code
    assert not re.search(r"location\.(hash|href|search)\s*=.*token", code)


def test_no_console_file_is_loaded_by_other_routes():
    """``import app`` and another route load neither the serving module nor any console file."""
    script = """
import builtins, sys
opened = []
real_open = builtins.open
builtins.open = lambda file, *a, **k: (opened.append(str(file)), real_open(file, *a, **k))[1]
from chalice.test import Client
import app
with Client(app.app, stage_name="local") as client:
    assert client.http.get("/health").status_code == 200
    print(sorted(m for m in sys.modules if "console_files" in m), [f for f in opened if "/console" in f])
    assert client.http.get("/console").status_code == 200
    print(sorted(m for m in sys.modules if "console_files" in m))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    before, after = done.stdout.strip().splitlines()
    assert before == "[] []"
    assert after == "['chalicelib.console_files']"
