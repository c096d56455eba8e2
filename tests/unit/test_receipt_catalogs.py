"""The receipt catalogs: every shipped language translates every word the layouts use.

Adding a language is adding ``chalicelib/locales/<ll_CC>/LC_MESSAGES/receipts.po``; these tests then
hold it to the same standard as the others.
"""
from __future__ import annotations

import os
import shutil
import zipfile

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from chalicelib.domain.receipts import LOCALE_DIR, catalog_name, shipped_languages
from deploy.catalogs import compile_catalogs, sources
from deploy.chalice_tf import PackageError
from deploy.package import bundled_files, check_bundled
from devstack.localenv import PROJECT_DIR

LANGUAGES = sorted(shipped_languages() - {"en-us"})


def layout_words() -> set[str]:
    """What ``make catalogs-update`` extracts from the HTML, text and PDF layouts (babel.cfg)."""
    with (PROJECT_DIR / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    return {message for _, _, message, *_ in extract_from_dir(str(PROJECT_DIR), method_map, options_map)}


def read(path):
    with path.open("rb") as stream:
        return read_po(stream)


def test_shipped_languages_are_the_catalogs_and_english():
    assert {"de-de", "fr-fr", "pl-pl"} <= set(LANGUAGES)
    assert len(LANGUAGES) == len(sources())


def test_the_template_catalog_has_every_word_of_the_layouts():
    words = layout_words()

    assert {"Subtotal", "Thank you for your purchase.", "Cash", "Gift card"} <= words  # HTML/text and PDF
    assert {message.id for message in read(LOCALE_DIR / "receipts.pot") if message.id} == words


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_word_is_translated(language):
    catalog = read(LOCALE_DIR / catalog_name(language) / "LC_MESSAGES" / "receipts.po")
    translated = {message.id: message for message in catalog if message.id}

    assert set(translated) == layout_words()
    for message in translated.values():
        assert message.string and not message.fuzzy, f"{language}: {message.id!r} is not translated"
        assert not list(message.check(catalog)), f"{language}: {message.id!r} placeholders differ"


def test_a_catalog_compiles_once_and_again_when_its_source_changes(tmp_path):
    source = LOCALE_DIR / "pl_PL" / "LC_MESSAGES" / "receipts.po"
    copy = tmp_path / "pl_PL" / "LC_MESSAGES" / "receipts.po"
    copy.parent.mkdir(parents=True)
    shutil.copy(source, copy)

    assert compile_catalogs(tmp_path) == [copy.with_suffix(".mo")]
    assert compile_catalogs(tmp_path) == []
    os.utime(copy, (copy.stat().st_mtime + 10,) * 2)
    assert compile_catalogs(tmp_path) == [copy.with_suffix(".mo")]


def test_the_package_is_refused_without_compiled_catalogs_or_the_font(tmp_path):
    bundled = bundled_files()
    assert {"chalicelib/locales/pl_PL/LC_MESSAGES/receipts.mo", "chalicelib/fonts/DejaVuSans.ttf",
            "chalicelib/fonts/LICENSE", "chalicelib/templates/receipts/receipt.html"} <= set(bundled)
    complete, partial = tmp_path / "complete.zip", tmp_path / "partial.zip"
    for path, names in ((complete, bundled), (partial, [n for n in bundled if not n.endswith(".mo")])):
        with zipfile.ZipFile(path, "w") as archive:
            for name in names:
                archive.writestr(name, b"")

    check_bundled(complete)
    with pytest.raises(PackageError, match="receipts.mo"):
        check_bundled(partial)
