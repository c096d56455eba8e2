"""Browser tests of the console: `make serve`'s stack in a fresh process (its own moto, a free
port, the demo retailer's master data, real tokens) and Debian's Chromium driven by Playwright.

Run by ``make browser`` (not by ``make test``: see pyproject's ``testpaths``). A failed test leaves
a screenshot in ``build/screenshots/``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.serving import PROJECT, served

SCREENSHOTS = PROJECT / "build" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 30_000


@dataclass
class Stack:
    base: str
    operator: str
    store: str
    store_id: str
    endpoint: str  # the stack's moto server
    folder: Path  # where make serve runs (its demo-output/ holds a sample RMS export)

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Authorization": f"Bearer {token or self.operator}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read().decode()[:500]}") from None

    def tokens(self, *argv: str) -> str:
        """``python -m devstack tokens ...`` on this stack (what ``make token`` runs)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(PYTHONPATH=str(PROJECT), LOCAL_STACK_FILE=str(self.folder / "local-stack.json"))
        done = subprocess.run([sys.executable, "-m", "devstack", "tokens", *argv], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    @property
    def console(self) -> str:
        return f"{self.base}/console"


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    with served(tmp_path_factory.mktemp("serve")) as serve:
        endpoint = json.loads((serve.folder / "local-stack.json").read_text())["endpoint"]
        yield Stack(serve.base, serve.operator, serve.store, serve.store_id, endpoint, serve.folder)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)  # a run started from the page may take seconds on a loaded machine
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (CI's .ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.failed_call = report.failed


@pytest.fixture
def page(browser, request):
    """A fresh browser tab (its own sessionStorage); a dialog is answered yes and recorded; any
    page error fails the test; a screenshot is saved when the test fails."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    tab.dialogs, tab.errors = [], []

    def answer(dialog):
        tab.dialogs.append((dialog.type, dialog.message))
        dialog.accept()

    tab.on("dialog", answer)
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))
    yield tab
    if getattr(request.node, "failed_call", False):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(SCREENSHOTS / f"failed-{request.node.name}.png"), full_page=True)
    context.close()
    assert tab.errors == [], tab.errors


def sign_in(page, stack: Stack, token: str | None = None, view: str = "jobs") -> None:
    page.goto(f"{stack.console}#/{view}")
    page.fill("#token", token or stack.operator)
    page.click("button:has-text('Sign in')")
    if token is None:
        page.wait_for_selector("#nav a[aria-current='page']")
