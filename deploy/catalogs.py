"""The receipt catalogs at build time: ``.po`` sources in git, ``.mo`` compiled for tests, the demo
and the Lambda package (``make catalogs``; ``make package`` and the test session call it too).

Only a catalog whose ``.mo`` is missing or older than its ``.po`` is compiled; a fuzzy catalog (a
translator's unchecked guesses) is refused. The ``.mo`` files are not committed.

    python -m deploy.catalogs          # compile what changed
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from chalicelib.domain.receipts import CATALOG_DOMAIN, LOCALE_DIR


class CatalogError(Exception):
    """A catalog cannot be compiled."""


def sources(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    return sorted(locale_dir.glob(f"*/LC_MESSAGES/{CATALOG_DOMAIN}.po"))


def compile_catalogs(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    """Compiles every stale catalog; returns the ``.mo`` files written."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for source in sources(locale_dir):
        compiled = source.with_suffix(".mo")
        if compiled.exists() and compiled.stat().st_mtime >= source.stat().st_mtime:
            continue
        with source.open("rb") as stream:
            catalog = read_po(stream, locale=source.parent.parent.name)
        if catalog.fuzzy:
            raise CatalogError(f"{source} is marked fuzzy: review it and remove the flag")
        # Several test workers may compile at once: each writes its own file and renames it over.
        handle, scratch = tempfile.mkstemp(dir=compiled.parent, suffix=".mo.tmp")
        with os.fdopen(handle, "wb") as stream:
            write_mo(stream, catalog)
        os.replace(scratch, compiled)
        written.append(compiled)
    return written


def main() -> int:
    try:
        for compiled in compile_catalogs():
            print(f"compiled {compiled.relative_to(LOCALE_DIR.parent.parent)}")
    except CatalogError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
