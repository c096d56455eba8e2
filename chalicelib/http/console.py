"""The operator console's page and its static files: ``GET /console`` and ``GET /console/{asset}``.

Public (no token): they carry no data; the page asks for an operator token and calls the JSON API
with it. Declared here only; the files are read (``chalicelib/console_files.py``) when one of these
routes is called, never when the application loads.
"""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.http.common import operation

bp = Blueprint(__name__)


@operation(bp, "GET", "/console", auth=None, files=("text/html",))
def console_page():
    """The operator console (an HTML page; no token needed to load it, an operator token to use it)."""
    from chalicelib.console_files import serve

    return serve("index.html", bp.current_request, page=True)


@operation(bp, "GET", "/console/{asset}", auth=None, files=("text/javascript", "text/css"),
           errors=(404,))
def console_asset(asset):
    """One of the console's scripts (``text/javascript``) or its style sheet (``text/css``); 404 for
    any other name."""
    from chalicelib.console_files import serve

    return serve(asset, bp.current_request, page=False)
