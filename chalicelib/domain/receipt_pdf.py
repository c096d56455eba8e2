"""The receipt PDF: one layout for every language, drawn with fpdf2 in DejaVu Sans.

The PDF core fonts are Latin-1 only, so the package ships DejaVu Sans (regular and bold, with its
licence, in ``chalicelib/fonts/``): every European Latin script, Greek and Cyrillic. fpdf2 embeds the
subset of glyphs a receipt uses. Characters the font lacks (CJK, most emoji) are drawn as U+FFFD
and returned, so the caller can say so; the HTML and text parts of the email carry them as written.

Speed: fpdf2 parses a face (cmap, widths) in ``add_font`` and subsets it in place when it writes the
PDF; subsetting costs in proportion to the glyphs the face holds. Here each face is parsed once per
process, cut down to one of three tiers (``TIERS``: Latin; Latin, Greek and Cyrillic; the whole
face), and each PDF opens its own copy of the smallest tier that draws all its characters. The
tiers carry no hinting programs (PDF viewers do not run them), and fontTools does not recompute
bounding boxes a tier's glyphs already have. A Latin receipt takes ~21 ms instead of ~130 ms, in
a PDF half the size (~13 KB); the pages look the same.

The words come from the receipt catalog through ``gettext``, the values from the receipt's template
context (``chalicelib.domain.receipts``), already formatted for the customer's locale.
"""
from __future__ import annotations

import copy
import io
import unicodedata
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fpdf import FPDF  # on the first PDF only
    from fpdf.fonts import TTFFont

FONT_DIR = Path(__file__).resolve().parent.parent / "fonts"
FONT_FAMILY = "DejaVuSans"
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
MISSING_GLYPH = "\ufffd"
# The tiers a receipt is drawn from, smallest first: the first whose ranges hold all its characters.
# Latin (Western, Central European and Turkish letters, punctuation, currency signs) is nearly every
# receipt; then Latin, Greek, Cyrillic, letterlike signs and arrows; then (``None``) every glyph.
_PUNCTUATION = ((0x2000, 0x206F), (0x20A0, 0x20CF), (0xFFFD, 0xFFFD))
TIERS: tuple[tuple[tuple[int, int], ...] | None, ...] = (
    ((0x20, 0x17F), *_PUNCTUATION),
    ((0x20, 0x24F), (0x370, 0x3FF), (0x400, 0x52F), (0x2100, 0x215F), (0x2190, 0x21FF), *_PUNCTUATION),
    None,
)
# Tables fpdf2 drops when it embeds a subset (no shaping here): never read, so dropped up front.
UNUSED_TABLES = ["GDEF", "GPOS", "GSUB", "MATH", "FFTM", "hdmx", "meta", "kern"]


@lru_cache(maxsize=1)
def drawable() -> frozenset[int]:
    """Code points both shipped faces have a glyph for."""
    from fontTools.ttLib import TTFont  # fontTools and fpdf2 load on the first PDF only

    faces = [set(TTFont(FONT_DIR / name, lazy=True).getBestCmap()) for name in FONT_FILES.values()]
    return frozenset(set.intersection(*faces))


@cache
def tier_codes(tier: int) -> frozenset[int]:
    """The code points tier ``tier`` draws."""
    ranges = TIERS[tier]
    if ranges is None:
        return drawable()
    return frozenset(code for low, high in ranges for code in range(low, high + 1)) & drawable()


@cache
def _face(style: str, tier: int) -> tuple[TTFFont, bytes]:
    """A face cut down to a tier, as fpdf2 reads it (cmap, widths, glyph ids: as long as the rest of
    a receipt when done per PDF) and its bytes, once per process."""
    from fontTools import subset
    from fontTools.ttLib import TTFont
    from fpdf import FPDF
    from fpdf.fonts import TTFFont

    face = TTFont(FONT_DIR / FONT_FILES[style], recalcTimestamp=False)
    options = subset.Options(notdef_outline=True, recommended_glyphs=True, glyph_names=True, hinting=False,
                             name_IDs=["*"], name_languages=["*"], layout_features=[])
    options.drop_tables += UNUSED_TABLES
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(tier_codes(tier)))
    subsetter.subset(face)
    data = io.BytesIO()
    face.save(data)
    key = f"{FONT_FAMILY.lower()}{style}"
    return TTFFont(FPDF(), io.BytesIO(data.getvalue()), key, style), data.getvalue()


def _add_fonts(pdf: FPDF, tier: int) -> None:
    """``pdf.add_font`` for both faces from the parsed ones: what a PDF changes is its own (the
    glyph subset it uses, and the fontTools font that writing the PDF subsets in place, opened
    afresh from the bytes); the read-only tables are shared."""
    from fontTools.ttLib import TTFont
    from fpdf.fonts import SubsetMap

    for style in FONT_FILES:
        parsed, data = _face(style, tier)
        font = copy.copy(parsed)
        font.i = len(pdf.fonts) + 1
        font.ttfont = TTFont(io.BytesIO(data), recalcTimestamp=False, recalcBBoxes=False, lazy=True)
        font.cw = copy.copy(parsed.cw)  # a defaultdict: a lookup of a missing character adds it
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        font.subset = SubsetMap(font)
        pdf.fonts[font.fontkey] = font


class _Text:
    """Makes text drawable, remembering what it could not draw and the smallest tier drawing the rest."""

    def __init__(self, tier: int = 0) -> None:
        self.missing: set[str] = set()
        self.tier = tier

    def __call__(self, value: Any) -> str:
        text = unicodedata.normalize("NFC", str(value))  # one glyph per accented letter
        codes = {ord(char) for char in text}
        if codes <= tier_codes(self.tier):
            return text
        covered = drawable()
        drawn = codes & covered
        while not drawn <= tier_codes(self.tier):
            self.tier += 1
        self.missing.update(chr(code) for code in codes - covered)
        return "".join(char if ord(char) in covered else MISSING_GLYPH for char in text)


def render_pdf(context: Mapping[str, Any], gettext: Callable[[str], str], created: datetime) -> tuple[bytes, str]:
    """The receipt as A5 PDF bytes, and the characters it had to replace (sorted, as one string)."""
    safe = _Text()
    pdf = _draw(context, gettext, created, safe, tier=0)
    if safe.tier:  # a character beyond the first tier: drawn again, from the tier that has them all
        safe = _Text(safe.tier)
        pdf = _draw(context, gettext, created, safe, tier=safe.tier)
    return bytes(pdf.output()), "".join(sorted(safe.missing))


def _draw(context: Mapping[str, Any], gettext: Callable[[str], str], created: datetime, safe: _Text,
          tier: int) -> FPDF:
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    _ = gettext
    receipt = context["receipt"]
    pdf = FPDF(format=(148, 210), unit="mm")  # A5; the named format warns in fpdf2 2.8
    _add_fonts(pdf, tier)
    pdf.set_creation_date(created)
    pdf.set_title(safe(f"{context['title']} {receipt['receipt_id']}"))
    pdf.set_lang(context["language"])
    pdf.set_margins(10, 10, 10)
    pdf.set_auto_page_break(auto=True, margin=10)
    pdf.add_page()
    width = pdf.epw
    headers = (_("Item"), _("Qty"), _("Price"), _("Amount"))
    columns = _columns(pdf, context, safe, headers)
    row = {"new_x": XPos.LMARGIN, "new_y": YPos.NEXT}

    def field(label: str, value: Any) -> str:
        return safe(_("%(label)s: %(value)s") % {"label": label, "value": value})

    pdf.set_font(FONT_FAMILY, "B", 13)
    pdf.cell(width, 7, _fit(pdf, safe(context["store"]["name"]), width), **row)
    pdf.set_font(FONT_FAMILY, "", 9)
    for line in context["store"]["address_lines"]:
        pdf.cell(width, 4.5, _fit(pdf, safe(line), width), **row)
    pdf.ln(2)
    currency = context["currency"]
    for label, value in ((_("Receipt no."), receipt["receipt_id"]), (_("Date"), receipt["sold_at"]),
                         (_("Currency"), f"{currency['name']} ({currency['code']})")):
        pdf.cell(width, 5, _fit(pdf, field(label, value), width), **row)
    pdf.ln(2)
    pdf.set_font(FONT_FAMILY, "B", 11)
    pdf.cell(width, 7, safe(context["title"]), **row)

    pdf.set_font(FONT_FAMILY, "B", 9)
    for index, (header, column) in enumerate(zip(headers, columns, strict=True)):
        pdf.cell(column, 6, _fit(pdf, safe(header), column - 1), border="B", align="L" if index == 0 else "R")
    pdf.ln(6)
    pdf.set_font(FONT_FAMILY, "", 9)
    for line in context["lines"]:
        name = safe(line["name"])
        height = 5 * len(pdf.multi_cell(columns[0] - 1, 5, name, align="L", dry_run=True, output="LINES"))
        if pdf.will_page_break(height):
            pdf.add_page()
        top = pdf.get_y()
        pdf.multi_cell(columns[0] - 1, 5, name, align="L", new_x=XPos.RIGHT, new_y=YPos.TOP)  # long names wrap
        pdf.set_x(pdf.l_margin + columns[0])
        for value, column in zip((line["qty"], line["unit_price"], line["amount"]), columns[1:], strict=True):
            pdf.cell(column, 5, safe(value), align="R")
        pdf.set_xy(pdf.l_margin, top + height)

    pdf.ln(1)
    label_width = width - columns[-1]
    totals = ((_("Subtotal"), context["subtotal"], ""), (_("Tax"), context["tax"], ""),
              (_("Total"), context["total"], "B"))
    for label, value, style in totals:
        pdf.set_font(FONT_FAMILY, style, 9)
        pdf.cell(label_width, 5, safe(label), border="T" if style else 0)
        pdf.cell(columns[-1], 5, safe(value), border="T" if style else 0, align="R", **row)
    if context["tenders"]:
        pdf.ln(1)
        pdf.set_font(FONT_FAMILY, "", 9)
        pdf.cell(width, 5, safe(_("Paid with")), **row)
        for tender in context["tenders"]:
            pdf.cell(label_width, 5, _fit(pdf, safe(tender["label"]), label_width))
            pdf.cell(columns[-1], 5, safe(tender["amount"]), align="R", **row)
    pdf.ln(3)
    pdf.cell(width, 5, safe(_("Thank you for your purchase.")), align="C", **row)
    return pdf


def _columns(pdf: FPDF, context: Mapping[str, Any], safe: _Text, headers: tuple[str, ...]) -> tuple[float, ...]:
    """Item, quantity, price and amount widths: the numbers' columns as wide as their longest entry
    (in bold, as the total is), the item the rest, so no amount is cut or runs into its neighbour."""
    pdf.set_font(FONT_FAMILY, "B", 9)

    def widest(at_least: float, *values: Any) -> float:
        return max(at_least, *(pdf.get_string_width(safe(value)) + 3 for value in values))

    money = [context["subtotal"], context["tax"], context["total"], *(t["amount"] for t in context["tenders"])]
    money += [value for line in context["lines"] for value in (line["unit_price"], line["amount"])]
    qty = widest(12, headers[1], *(line["qty"] for line in context["lines"]))
    amount = widest(24, headers[2], headers[3], *money)
    return (max(pdf.epw - qty - 2 * amount, 30.0), qty, amount, amount)


def _fit(pdf: FPDF, text: str, width: float) -> str:
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "…") > width:
        text = text[:-1]
    return text + "…"
