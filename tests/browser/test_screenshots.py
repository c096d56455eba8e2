"""One screenshot per view in ``build/screenshots/`` (for a person to look at), each view rendered
without an error, and the page's weight and time to first render on the local stack
(``build/screenshots/metrics.json``)."""
from __future__ import annotations

import gzip
import json

from playwright.sync_api import expect

from chalicelib.console_files import ASSETS, FOLDER
from tests.browser.conftest import SCREENSHOTS, sign_in

VIEWS = ["jobs", "runs", "sessions", "assortments", "stock", "finance", "time-registrations", "migration", "uploads"]


def _settled(page) -> None:
    expect(page.locator("main")).not_to_contain_text("Loading…")


def test_every_view_renders_and_is_photographed(page, stack):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(stack.console)
    page.screenshot(path=str(SCREENSHOTS / "00-sign-in.png"))
    stack.call("POST", "/jobs/purge-run-history/runs", {"params": {}, "dry_run": True})
    sign_in(page, stack)
    for number, view in enumerate(VIEWS, start=1):
        page.locator(f"#nav a[href='#/{view}']").click()
        _settled(page)
        expect(page.locator("main .error")).to_have_count(0)
        page.screenshot(path=str(SCREENSHOTS / f"{number:02d}-{view}.png"), full_page=True)
        if view == "runs":
            page.locator("tbody tr a").first.click()
            expect(page.get_by_role("heading", name="AWS requests")).to_be_visible()
            page.screenshot(path=str(SCREENSHOTS / f"{number:02d}-run-detail.png"), full_page=True)
        if view == "jobs":
            page.get_by_role("row", name="Post inventory").get_by_role("button", name="Run now…").click()
            page.screenshot(path=str(SCREENSHOTS / f"{number:02d}-run-now.png"))


def test_page_weight_and_time_to_first_render(page, stack):
    files = {name: (FOLDER / name).read_bytes() for name in ASSETS}
    weight = sum(map(len, files.values()))
    gzipped = sum(len(gzip.compress(body)) for body in files.values())
    page.goto(stack.console)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    paint = page.evaluate("""() => {
        const fcp = performance.getEntriesByName('first-contentful-paint')[0];
        const nav = performance.getEntriesByType('navigation')[0];
        return {first_contentful_paint_ms: fcp ? fcp.startTime : null,
                dom_content_loaded_ms: nav.domContentLoadedEventEnd,
                transferred_bytes: performance.getEntriesByType('resource').reduce((n, r) => n + r.transferSize, 0)
                                   + nav.transferSize};
    }""")
    sign_in(page, stack)
    page.reload()  # signed in: the first render of a view with data
    expect(page.locator("tbody tr").first).to_be_visible()
    jobs_ms = page.evaluate("performance.now()")
    metrics = {"files": len(files), "bytes": weight, "bytes_gzipped": gzipped, **paint,
               "jobs_view_rendered_ms": round(jobs_ms)}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "metrics.json").write_text(json.dumps(metrics, indent=2))
    assert weight < 100_000, metrics  # light: no framework, no build
    assert paint["first_contentful_paint_ms"] is not None and paint["first_contentful_paint_ms"] < 5000, metrics
