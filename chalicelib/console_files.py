"""The console's files (``chalicelib/console/``) as HTTP answers: only the names in ``ASSETS``,
each with its content type, the security headers and an ETag (a repeated load answers 304).

The page is plain HTML, ES modules and one style sheet: no build step, no framework, nothing from
another origin. The Content-Security-Policy allows only this origin's scripts and styles (no inline
script or style) and API calls to this origin.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from chalice import Response

from chalicelib.http.common import NotFound

FOLDER = Path(__file__).resolve().parent / "console"
HTML, JS, CSS = "text/html; charset=utf-8", "text/javascript; charset=utf-8", "text/css; charset=utf-8"
ASSETS = {
    "index.html": HTML,
    "console.css": CSS,
    "app.js": JS,
    "api.js": JS,
    "dom.js": JS,
    "forms.js": JS,
    "jobs.js": JS,
    "runs.js": JS,
    "sessions.js": JS,
    "catalog.js": JS,
    "finance.js": JS,
    "operations.js": JS,
}
"""Every file served, by name; ``index.html`` only at ``/console`` (a name not here is 404)."""

CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # unversioned names: the browser revalidates (ETag) on every load
}


@functools.cache
def _read(name: str) -> tuple[bytes, str]:
    body = (FOLDER / name).read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def serve(name: str, request, page: bool) -> Response:
    """The file ``name`` of the allow-list (the page, ``index.html``, only at ``/console``), or 304
    when the request's ``If-None-Match`` holds its ETag."""
    if name not in ASSETS or (name == "index.html") != page:
        raise NotFound(f"no console file {name}")
    body, etag = _read(name)
    headers = {**HEADERS, "Content-Type": ASSETS[name], "ETag": etag}
    if (request.headers or {}).get("if-none-match") == etag:
        return Response(body="", status_code=304, headers=headers)
    return Response(body=body.decode("utf-8"), status_code=200, headers=headers)
