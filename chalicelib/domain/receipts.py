"""Email receipts: choose the language, render the receipt (HTML, text, PDF) and build the MIME message.

Templates are Jinja2 files shipped under ``chalicelib/templates/receipts/<language>/receipt.html``
and ``receipt.txt``; ``parameters.receipt_templates[<language>] = {"html": ..., "text": ...}``
overrides either of them. A part missing for a language falls back to the shipped one of that
language, then to ``en-us``. Templates come from operator data, so they run in Jinja's sandbox
and HTML output is autoescaped. Subject and file name default to ``schemas.DEFAULT_PARAMETERS``.

Template context (all amounts and quantities are strings already formatted for the language):

- ``language``; ``store``: ``{id, name}``; ``customer``: ``{id, name}`` or None
- ``receipt``: ``{receipt_id, transaction_id, terminal_id, date, business_date, is_return}``
- ``lines``: ``[{name, qty, unit_price, amount, tax}]`` (``amount`` excludes tax)
- ``subtotal``, ``tax``, ``total``; ``tenders``: ``[{tender, label, amount}]``

Example::

    rendered = render_receipt(transaction, store, customer, products, parameters)
    raw = build_mime("receipts@example.com", receipt_address(transaction, customer), rendered)
    ses.send_email(Content={"Raw": {"Data": raw}})
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from email import policy
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.domain.errors import DomainError
from chalicelib.domain.inventory import NO_VARIANT, format_qty
from chalicelib.domain.schemas import DEFAULT_PARAMETERS

if TYPE_CHECKING:
    from fpdf import FPDF
    from jinja2.sandbox import SandboxedEnvironment

DEFAULT_LANGUAGE = "en-us"
EMAIL_RECEIPT_OPTIONS = frozenset({"Email", "Both"})

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "receipts"
PARTS = {"html": "receipt.html", "text": "receipt.txt"}

CENT = Decimal("0.01")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
_UNSAFE_FILE_CHARS = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]')
# Typographic characters POS data often carries that the PDF core fonts (Latin-1) lack.
_PDF_REPLACEMENTS = str.maketrans({
    "\u2013": "-", "\u2014": "-",  # en and em dash
    "\u2018": "'", "\u2019": "'", "\u201a": ",",  # single quotes
    "\u201c": '"', "\u201d": '"', "\u201e": '"',  # double quotes
    "\u2026": "...", "\u20ac": "EUR", "\u2022": "*", "\u2122": "TM",
    "\u202f": " ", "\u2009": " ",  # narrow and thin spaces
})


class ReceiptTemplateError(DomainError):
    """A receipt template (usually an operator override) does not compile or render."""


@dataclass(frozen=True)
class RenderedReceipt:
    """Everything an email receipt needs; ``attachment_name`` ends in ``.pdf``."""

    subject: str
    html: str
    text: str
    pdf: bytes
    attachment_name: str
    language: str = DEFAULT_LANGUAGE


@dataclass(frozen=True)
class _Locale:
    decimal: str
    thousands: str
    date_format: str
    labels: Mapping[str, str]


_LOCALES: dict[str, _Locale] = {
    "en-us": _Locale(".", ",", "%m/%d/%Y", {
        "title": "Receipt", "return_title": "Return receipt", "store": "Store", "date": "Date",
        "receipt": "Receipt", "item": "Item", "qty": "Qty", "price": "Price", "amount": "Amount",
        "subtotal": "Subtotal", "tax": "Tax", "total": "Total", "paid": "Paid with",
        "cash": "Cash", "card": "Card", "gift_card": "Gift card", "thanks": "Thank you for your purchase.",
    }),
    "de-de": _Locale(",", ".", "%d.%m.%Y", {
        "title": "Kassenbeleg", "return_title": "Rückgabebeleg", "store": "Filiale", "date": "Datum",
        "receipt": "Beleg", "item": "Artikel", "qty": "Menge", "price": "Preis", "amount": "Betrag",
        "subtotal": "Zwischensumme", "tax": "MwSt.", "total": "Summe", "paid": "Bezahlt mit",
        "cash": "Bar", "card": "Karte", "gift_card": "Geschenkkarte", "thanks": "Vielen Dank für Ihren Einkauf.",
    }),
    "fr-fr": _Locale(",", " ", "%d/%m/%Y", {
        "title": "Ticket de caisse", "return_title": "Ticket de retour", "store": "Magasin", "date": "Date",
        "receipt": "Ticket", "item": "Article", "qty": "Qté", "price": "Prix", "amount": "Montant",
        "subtotal": "Sous-total", "tax": "TVA", "total": "Total", "paid": "Payé par",
        "cash": "Espèces", "card": "Carte", "gift_card": "Carte cadeau", "thanks": "Merci pour votre achat.",
    }),
}


def normalize_language(language: Any) -> str | None:
    """``de_DE`` → ``de-de``; None for anything that is not a language tag (so never a path)."""
    if not isinstance(language, str):
        return None
    tag = language.strip().lower().replace("_", "-")
    return tag if _LANGUAGE.match(tag) else None


@lru_cache(maxsize=1)
def shipped_languages() -> frozenset[str]:
    """Languages that have a default template in the package."""
    return frozenset(
        path.name for path in TEMPLATE_DIR.iterdir() if path.is_dir() and normalize_language(path.name) == path.name
    )


def template_overrides(parameters: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """``parameters.receipt_templates`` with language tags normalised and empty parts dropped."""
    overrides: dict[str, dict[str, str]] = {}
    for language, parts in ((parameters or {}).get("receipt_templates") or {}).items():
        tag = normalize_language(language)
        if tag and isinstance(parts, Mapping):
            kept = {part: parts[part] for part in PARTS if isinstance(parts.get(part), str) and parts[part]}
            if kept:
                overrides[tag] = kept
    return overrides


def choose_language(customer: Mapping[str, Any] | None, parameters: Mapping[str, Any] | None) -> str:
    """The customer's language if a template exists for it, else the company language, else en-us."""
    available = shipped_languages() | template_overrides(parameters).keys()
    for candidate in ((customer or {}).get("language"), (parameters or {}).get("company_language")):
        tag = normalize_language(candidate)
        if tag in available:
            return tag
    return DEFAULT_LANGUAGE


def receipt_address(transaction: Mapping[str, Any], customer: Mapping[str, Any] | None) -> str | None:
    """Where the receipt goes: the transaction's ``receipt_email``, else the customer's email when
    the customer's receipt option is Email or Both; None when no receipt was asked for."""
    address = (transaction.get("receipt_email") or "").strip()
    if address:
        return address
    if customer and customer.get("receipt_option") in EMAIL_RECEIPT_OPTIONS:
        return (customer.get("email") or "").strip() or None
    return None


def render_receipt(
    transaction: Mapping[str, Any],
    store: Mapping[str, Any],
    customer: Mapping[str, Any] | None,
    products: Mapping[str, Mapping[str, Any]],
    parameters: Mapping[str, Any] | None,
) -> RenderedReceipt:
    """Render the email receipt of a transaction in the customer's language.

    ``products`` maps product id to product record (for names). ``parameters.receipt_subject``
    may use ``{store_name}``, ``{store_id}``, ``{receipt_id}``, ``{transaction_id}``,
    ``{business_date}`` and ``{customer_name}``; other placeholders stay as written. Raises
    :class:`ReceiptTemplateError` when a template does not compile or render.
    """
    parameters = parameters or {}
    language = choose_language(customer, parameters)
    locale = _LOCALES.get(language) or _LOCALES.get(_base_locale(language)) or _LOCALES[DEFAULT_LANGUAGE]
    context = _context(transaction, store, customer, products, language, locale)

    environment = _environment(_override_sources(template_overrides(parameters)))
    html = _render(environment, language, "html", context)
    text = _render(environment, language, "text", context)

    placeholders = {
        "store_name": context["store"]["name"],
        "store_id": context["store"]["id"],
        "receipt_id": context["receipt"]["receipt_id"],
        "transaction_id": context["receipt"]["transaction_id"],
        "business_date": context["receipt"]["business_date"],
        "customer_name": (context["customer"] or {}).get("name", ""),
    }
    subject = _fill(parameters.get("receipt_subject") or DEFAULT_PARAMETERS["receipt_subject"], placeholders)
    return RenderedReceipt(
        subject=subject,
        html=html,
        text=text,
        pdf=_render_pdf(context, locale, _creation_date(transaction)),
        attachment_name=_attachment_name(parameters.get("receipt_file_name")),
        language=language,
    )


def build_mime(sender: str, recipient: str, rendered: RenderedReceipt) -> bytes:
    """A raw message for SESv2 ``send_email(Content={'Raw': {'Data': ...}})``.

    multipart/mixed of multipart/alternative (text, HTML) and the PDF attachment. SES sets Date
    and Message-ID itself.
    """
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = recipient
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    message.add_attachment(
        rendered.pdf, maintype="application", subtype="pdf", filename=rendered.attachment_name
    )
    return message.as_bytes(policy=policy.SMTP)


# -- templates ----------------------------------------------------------------------------------


def _override_sources(overrides: Mapping[str, Mapping[str, str]]) -> tuple[tuple[str, str], ...]:
    """Overrides as a hashable, ordered ``((template name, source), ...)`` cache key."""
    return tuple(
        sorted(
            (f"{language}/{PARTS[part]}", source)
            for language, parts in overrides.items()
            for part, source in parts.items()
        )
    )


@lru_cache(maxsize=16)
def _environment(override_sources: tuple[tuple[str, str], ...]) -> SandboxedEnvironment:
    """One environment per distinct set of overrides, cached per process with its compiled templates."""
    # Jinja2 and fpdf2 load on first render: the upload route needs only ``receipt_address``.
    from jinja2 import ChoiceLoader, DictLoader, FileSystemLoader, select_autoescape
    from jinja2.sandbox import SandboxedEnvironment

    loader = ChoiceLoader([DictLoader(dict(override_sources)), FileSystemLoader(str(TEMPLATE_DIR))])
    return SandboxedEnvironment(
        loader=loader,
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        auto_reload=False,
    )


def _render(environment: SandboxedEnvironment, language: str, part: str, context: Mapping[str, Any]) -> str:
    from jinja2 import TemplateError

    names = [f"{language}/{PARTS[part]}", f"{DEFAULT_LANGUAGE}/{PARTS[part]}"]
    try:
        return environment.select_template(names).render(context)
    except TemplateError as exc:
        raise ReceiptTemplateError(f"Receipt template {names[0]} failed: {exc}") from exc


# -- content ------------------------------------------------------------------------------------


def _context(
    transaction: Mapping[str, Any],
    store: Mapping[str, Any],
    customer: Mapping[str, Any] | None,
    products: Mapping[str, Mapping[str, Any]],
    language: str,
    locale: _Locale,
) -> dict[str, Any]:
    subtotal = tax = Decimal(0)
    lines = []
    for line in sorted(transaction.get("lines", ()), key=lambda item: item.get("line_no", 0)):
        net = Decimal(line["net_amount"])
        line_tax = Decimal(line["tax_amount"])
        subtotal += net
        tax += line_tax
        lines.append({
            "name": _line_name(line, products.get(line["product_id"])),
            "qty": format_qty(line["qty"]).replace(".", locale.decimal),
            "unit_price": _money(line["unit_price"], locale),
            "amount": _money(net, locale),
            "tax": _money(line_tax, locale),
        })
    tenders = [
        {
            "tender": payment["tender"],
            "label": locale.labels.get(payment["tender"], payment["tender"]),
            "amount": _money(payment["amount"], locale),
        }
        for payment in transaction.get("payments", ())
    ]
    business_date = str(transaction.get("business_date", ""))
    return {
        "language": language,
        "store": {"id": store.get("id", ""), "name": store.get("name") or store.get("id", "")},
        "customer": {"id": customer.get("id"), "name": customer.get("name", "")} if customer else None,
        "receipt": {
            "receipt_id": transaction.get("receipt_id", ""),
            "transaction_id": transaction.get("transaction_id", ""),
            "terminal_id": transaction.get("terminal_id", ""),
            "business_date": business_date,
            "date": _date(business_date, locale),
            "is_return": transaction.get("kind") == "Return",
        },
        "lines": lines,
        "subtotal": _money(subtotal, locale),
        "tax": _money(tax, locale),
        "total": _money(_cents(subtotal) + _cents(tax), locale),  # adds up as printed
        "tenders": tenders,
    }


def _line_name(line: Mapping[str, Any], product: Mapping[str, Any] | None) -> str:
    name = (product or {}).get("name") or line["product_id"]
    variant_id = line.get("variant_id")
    if not variant_id or variant_id == NO_VARIANT:
        return name
    variant = next((v for v in (product or {}).get("variants", ()) if v.get("id") == variant_id), {})
    detail = " / ".join(str(variant[key]) for key in ("size", "color") if variant.get(key))
    return f"{name} ({detail or variant_id})"


def _cents(value: Any) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _money(value: Any, locale: _Locale) -> str:
    amount = _cents(value)
    if not amount:
        amount = abs(amount)  # never print "-0.00"
    return f"{amount:,.2f}".translate(str.maketrans({",": locale.thousands, ".": locale.decimal}))


def _date(business_date: str, locale: _Locale) -> str:
    try:
        return date.fromisoformat(business_date).strftime(locale.date_format)
    except ValueError:
        return business_date


def _base_locale(language: str) -> str:
    """``de-at`` formats like ``de-de``: the first shipped locale of the same base language."""
    base = language.split("-")[0]
    return next((tag for tag in _LOCALES if tag.split("-")[0] == base), DEFAULT_LANGUAGE)


class _Placeholders(dict):
    """Unknown ``{name}`` placeholders stay as written instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fill(template: str, values: Mapping[str, Any]) -> str:
    try:
        text = template.format_map(_Placeholders(values))
    except (ValueError, IndexError, AttributeError, KeyError):
        text = template  # malformed braces in operator text: send it as written
    return " ".join(text.split())  # one line: a header must not carry CR/LF


def _attachment_name(file_name: Any) -> str:
    """``<receipt_file_name>.pdf``; the name is an id once validated, this only guards direct callers."""
    name = _UNSAFE_FILE_CHARS.sub("", file_name if isinstance(file_name, str) else "").strip().strip(".")
    if name.lower().endswith(".pdf"):
        name = name[:-4].rstrip()
    return f"{name or DEFAULT_PARAMETERS['receipt_file_name']}.pdf"


def _creation_date(transaction: Mapping[str, Any]) -> datetime:
    """The transaction's time, so the same receipt always renders to the same PDF bytes."""
    for value in (transaction.get("created_at"), transaction.get("business_date")):
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            continue
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime(2000, 1, 1, tzinfo=UTC)


# -- PDF ----------------------------------------------------------------------------------------


def pdf_safe(text: Any) -> str:
    """Text the PDF core fonts can draw: Latin-1, with accents stripped or ``?`` for the rest."""
    text = str(text).translate(_PDF_REPLACEMENTS)
    try:
        text.encode("latin-1")
        return text
    except UnicodeEncodeError:
        pass
    safe = []
    for char in text:
        if ord(char) < 256:
            safe.append(char)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        safe.append(base if base and all(ord(c) < 256 for c in base) else "?")
    return "".join(safe)


def _fit(pdf: FPDF, text: str, width: float) -> str:
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "...") > width:
        text = text[:-1]
    return text + "..."


def _render_pdf(context: Mapping[str, Any], locale: _Locale, created: datetime) -> bytes:
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    labels = {key: pdf_safe(value) for key, value in locale.labels.items()}
    receipt = context["receipt"]
    pdf = FPDF(format=(148, 210), unit="mm")  # A5; the named format warns in fpdf2 2.8
    pdf.set_creation_date(created)
    pdf.set_title(pdf_safe(f"{labels['title']} {receipt['receipt_id']}"))
    pdf.set_margins(10, 10, 10)
    pdf.set_auto_page_break(auto=True, margin=10)
    pdf.add_page()
    width = pdf.epw
    columns = (width - 58, 14, 22, 22)
    row = {"new_x": XPos.LMARGIN, "new_y": YPos.NEXT}

    pdf.set_font("helvetica", "B", 13)
    pdf.cell(width, 7, _fit(pdf, pdf_safe(context["store"]["name"]), width), **row)
    pdf.set_font("helvetica", "", 9)
    title = labels["return_title"] if receipt["is_return"] else labels["title"]
    for label, value in ((labels["receipt"], receipt["receipt_id"]), (labels["date"], receipt["date"])):
        pdf.cell(width, 5, _fit(pdf, pdf_safe(f"{label}: {value}"), width), **row)
    pdf.ln(2)
    pdf.set_font("helvetica", "B", 10)
    pdf.cell(width, 6, title, **row)

    pdf.set_font("helvetica", "B", 9)
    headers = (labels["item"], labels["qty"], labels["price"], labels["amount"])
    for index, (header, column) in enumerate(zip(headers, columns, strict=True)):
        pdf.cell(column, 6, header, border="B", align="L" if index == 0 else "R")
    pdf.ln(6)
    pdf.set_font("helvetica", "", 9)
    for line in context["lines"]:
        pdf.cell(columns[0], 5, _fit(pdf, pdf_safe(line["name"]), columns[0] - 1))
        for value, column in zip((line["qty"], line["unit_price"], line["amount"]), columns[1:], strict=True):
            pdf.cell(column, 5, pdf_safe(value), align="R")
        pdf.ln(5)

    pdf.ln(1)
    label_width = width - columns[-1]
    totals = ((labels["subtotal"], context["subtotal"], ""), (labels["tax"], context["tax"], ""),
              (labels["total"], context["total"], "B"))
    for label, value, style in totals:
        pdf.set_font("helvetica", style, 9)
        pdf.cell(label_width, 5, label, border="T" if style else 0)
        pdf.cell(columns[-1], 5, pdf_safe(value), border="T" if style else 0, align="R", **row)
    if context["tenders"]:
        pdf.ln(1)
        pdf.set_font("helvetica", "", 9)
        pdf.cell(width, 5, labels["paid"], **row)
        for tender in context["tenders"]:
            pdf.cell(label_width, 5, _fit(pdf, pdf_safe(tender["label"]), label_width))
            pdf.cell(columns[-1], 5, pdf_safe(tender["amount"]), align="R", **row)
    pdf.ln(3)
    pdf.cell(width, 5, labels["thanks"], align="C", **row)
    return bytes(pdf.output())
