"""Email receipts: choose the language, render the receipt (HTML, text, PDF) and build the MIME message.

One layout per format serves every language: ``chalicelib/templates/receipts/receipt.html`` and
``receipt.txt`` (Jinja2 with the ``jinja2.ext.i18n`` extension) and the PDF layout in
:mod:`chalicelib.domain.receipt_pdf`. Their words come from the gettext catalogs
``chalicelib/locales/<ll_CC>/LC_MESSAGES/receipts.po`` (sources; ``make catalogs`` compiles them to
``.mo`` for tests, the demo and the Lambda package). The words are written in English (``en-us``), so
English needs no catalog; adding a language is adding a catalog. Money, numbers and dates are
formatted by Babel for the language's locale, in the store's currency and time zone.

``parameters.receipt_templates[<language>] = {"html": ..., "text": ...}`` overrides either part for
one language (a part it lacks is the shipped one); an override also makes its language available.
Templates come from operator data, so they run in Jinja's sandbox and HTML output is autoescaped.
Subject and file name default to ``parameters.DEFAULT_PARAMETERS``.

Template context (every amount, quantity and date is a string already formatted for the locale):

- ``language`` (``de-de``), ``locale`` (``de_DE``), ``title`` (translated "Receipt" or "Return receipt")
- ``store``: ``{id, name, address_lines, time_zone}``; ``currency``: ``{code, name, symbol}``
- ``customer``: ``{id, name}`` or None
- ``receipt``: ``{receipt_id, transaction_id, terminal_id, sold_at, date, business_date, is_return}``
  (``sold_at``: the time of sale in the store's time zone; ``date``: the business date)
- ``lines``: ``[{name, qty, unit_price, amount, tax}]`` (``amount`` excludes tax)
- ``subtotal``, ``tax``, ``total``; ``tenders``: ``[{tender, label, amount}]``
- ``format_money(value)``, ``format_number(value)``, ``format_datetime(iso_or_datetime)``: the same
  formatting for the customer's locale, store currency and store time zone
- ``_``, ``gettext``, ``ngettext``: the catalog of the language (``{{ _("Total") }}``)

Example::

    rendered = render_receipt(transaction, store, customer, products, parameters)
    raw = build_mime("receipts@example.com", receipt_address(transaction, customer), rendered)
    ses.send_email(Content={"Raw": {"Data": raw}})
"""
from __future__ import annotations

import gettext
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from email import policy
from email.message import EmailMessage
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfoNotFoundError

from chalicelib.domain.days import store_zone
from chalicelib.domain.errors import DomainError
from chalicelib.domain.inventory import NO_VARIANT
from chalicelib.domain.parameters import DEFAULT_PARAMETERS
from chalicelib.domain.receipt_pdf import render_pdf
from chalicelib.domain.statements import Tender, TransactionKind

if TYPE_CHECKING:
    from babel import Locale
    from jinja2.sandbox import SandboxedEnvironment


class ReceiptOption(StrEnum):
    """How a customer wants receipts: printed at the till, by email, or both."""

    POS = "POS"
    EMAIL = "Email"
    BOTH = "Both"


DEFAULT_LANGUAGE = "en-us"  # the language the layouts are written in: it needs no catalog
EMAIL_RECEIPT_OPTIONS = frozenset({ReceiptOption.EMAIL.value, ReceiptOption.BOTH.value})
DEFAULT_CURRENCY = "USD"

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = PACKAGE_DIR / "templates" / "receipts"
LOCALE_DIR = PACKAGE_DIR / "locales"
CATALOG_DOMAIN = "receipts"
PARTS = {"html": "receipt.html", "text": "receipt.txt"}

CENT = Decimal("0.01")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
_UNSAFE_FILE_CHARS = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]')
# Countries whose addresses put the postal code after the city ("Toronto ON M5V 2T6").
_POSTAL_CODE_AFTER_CITY = frozenset({"US", "USA", "CA", "CAN", "GB", "GBR", "AU", "AUS", "NZ", "NZL"})


def N_(message: str) -> str:
    """Marks a word for the catalogs (``pybabel extract``) that is translated later, where it is used."""
    return message


TENDER_LABELS = {Tender.CASH: N_("Cash"), Tender.CARD: N_("Card"), Tender.GIFT_CARD: N_("Gift card")}


class ReceiptTemplateError(DomainError):
    """A receipt template (usually an operator override) does not compile or render."""


class ReceiptCatalogError(RuntimeError):
    """A shipped catalog was not compiled (``make catalogs``): a build fault, not the receipt's."""


@dataclass(frozen=True)
class RenderedReceipt:
    """Everything an email receipt needs; ``attachment_name`` ends in ``.pdf``.

    ``missing_glyphs``: characters the PDF font cannot draw (CJK, most emoji), printed in the PDF
    as U+FFFD; the HTML and text parts carry them as written.
    """

    subject: str
    html: str
    text: str
    pdf: bytes
    attachment_name: str
    language: str = DEFAULT_LANGUAGE
    missing_glyphs: str = ""


def normalize_language(language: Any) -> str | None:
    """``de_DE`` → ``de-de``; None for anything that is not a language tag (so never a path)."""
    if not isinstance(language, str):
        return None
    tag = language.strip().lower().replace("_", "-")
    return tag if _LANGUAGE.match(tag) else None


def catalog_name(language: str) -> str:
    """The catalog folder of a language tag: ``de-de`` → ``de_DE``, ``pl`` → ``pl``."""
    base, _, region = language.partition("-")
    return f"{base}_{region.upper()}" if region else base


@lru_cache(maxsize=1)
def shipped_languages() -> frozenset[str]:
    """English (the layouts' own words) and every language with a catalog in the package."""
    catalogs = (path.parent.parent.name for path in LOCALE_DIR.glob(f"*/LC_MESSAGES/{CATALOG_DOMAIN}.po"))
    return frozenset({DEFAULT_LANGUAGE, *filter(None, map(normalize_language, catalogs))})


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
    """The customer's language if it has a catalog or an override (``de`` or ``de-at`` take ``de-de``),
    else the company language the same way, else en-us."""
    available = shipped_languages() | template_overrides(parameters).keys()
    for candidate in ((customer or {}).get("language"), (parameters or {}).get("company_language")):
        tag = normalize_language(candidate)
        if tag in available:
            return tag
        same_base = sorted(language for language in available if tag and language.split("-")[0] == tag.split("-")[0])
        if same_base:
            return same_base[0]
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
    translations = catalog(language)
    formats = ReceiptFormats.of(language, parameters.get("company_language"), store)
    context = _context(transaction, store, customer, products, language, formats, translations)

    environment = _environment(language, _override_sources(template_overrides(parameters).get(language, {})))
    html = _render(environment, language, "html", context)
    text = _render(environment, language, "text", context)
    pdf, missing = render_pdf(context, translations.gettext, _creation_date(transaction))

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
        pdf=pdf,
        attachment_name=_attachment_name(parameters.get("receipt_file_name")),
        language=language,
        missing_glyphs=missing,
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


# -- words and formats --------------------------------------------------------------------------


@lru_cache(maxsize=32)
def catalog(language: str) -> gettext.NullTranslations:
    """The compiled catalog of a shipped language; the identity for English and override-only languages."""
    if language not in shipped_languages() or language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    compiled = LOCALE_DIR / catalog_name(language) / "LC_MESSAGES" / f"{CATALOG_DOMAIN}.mo"
    try:
        with compiled.open("rb") as stream:
            return gettext.GNUTranslations(stream)
    except FileNotFoundError:
        raise ReceiptCatalogError(f"{compiled} is missing: the catalogs are compiled by `make catalogs`") from None


def _babel_locale(language: Any) -> Locale | None:
    from babel import Locale, UnknownLocaleError  # on first render only (see _environment)

    tag = normalize_language(language)
    try:
        return Locale.parse(catalog_name(tag)) if tag else None
    except (UnknownLocaleError, ValueError):
        return None


@dataclass(frozen=True)
class ReceiptFormats:
    """Babel formatting for one receipt: the customer's locale, the store's currency and time zone."""

    locale: Locale
    currency: str
    zone: tzinfo

    @classmethod
    def of(cls, language: str, company_language: Any, store: Mapping[str, Any]) -> ReceiptFormats:
        """The language's locale, else the company language's, else en_US (an override may name a
        language Babel does not know)."""
        from babel import Locale  # on first render only (see _environment)

        locale = _babel_locale(language) or _babel_locale(company_language) or Locale.parse("en_US")
        try:
            zone = store_zone(store)
        except (ZoneInfoNotFoundError, ValueError):  # an override's store may carry anything
            zone = store_zone(None)
        return cls(locale, store.get("currency") or DEFAULT_CURRENCY, zone)

    def money(self, value: Any) -> str:
        from babel.numbers import format_currency  # on first render only (see _environment)

        amount = _cents(value)
        return format_currency(amount if amount else abs(amount), self.currency, locale=self.locale)  # never "-0"

    def number(self, value: Any) -> str:
        """A quantity as entered, without trailing zeros: ``2.000`` → ``2``, ``1.50`` → ``1,5`` (de)."""
        from babel.numbers import format_decimal  # on first render only (see _environment)

        return format_decimal(Decimal(value).normalize(), locale=self.locale, decimal_quantization=False)

    def date(self, value: date | str) -> str:
        from babel.dates import format_date  # on first render only (see _environment)

        try:
            return format_date(date.fromisoformat(str(value)), "medium", locale=self.locale)
        except ValueError:
            return str(value)

    def datetime(self, value: datetime | str) -> str:
        """An instant (aware, or UTC when naive or ``...Z``) as the store's local date and time."""
        from babel.dates import format_date, format_time, get_datetime_format  # on first render only (see _environment)

        try:
            moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
        local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(self.zone)
        pattern = str(get_datetime_format("medium", locale=self.locale)).replace("'", "")
        return pattern.replace("{1}", format_date(local, "medium", locale=self.locale)).replace(
            "{0}", format_time(local, "short", locale=self.locale))

    def currency_name(self) -> str:
        from babel.numbers import get_currency_name  # on first render only (see _environment)

        return get_currency_name(self.currency, locale=self.locale)

    def currency_symbol(self) -> str:
        from babel.numbers import get_currency_symbol  # on first render only (see _environment)

        return get_currency_symbol(self.currency, locale=self.locale)

    def address_lines(self, address: Mapping[str, Any] | None) -> list[str]:
        """Street lines, the postal code and city in the country's order, the country's name."""
        if not address:
            return []
        country = address.get("country") or ""
        city, postal_code = address.get("city") or "", address.get("postal_code") or ""
        town = f"{city} {postal_code}" if country in _POSTAL_CODE_AFTER_CITY else f"{postal_code} {city}"
        lines = [*address.get("lines", ()), town.strip(), self.locale.territories.get(country, country)]
        return [line for line in lines if line]


# -- templates ----------------------------------------------------------------------------------


def _override_sources(parts: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """One language's overrides as a hashable, ordered ``((template name, source), ...)`` cache key."""
    return tuple(sorted((PARTS[part], source) for part, source in parts.items()))


@lru_cache(maxsize=32)
def _environment(language: str, override_sources: tuple[tuple[str, str], ...]) -> SandboxedEnvironment:
    """One environment per language and set of overrides, cached per process with its compiled templates."""
    # Jinja2, Babel and fpdf2 load on first render: the upload route needs only ``receipt_address``.
    from jinja2 import ChoiceLoader, DictLoader, FileSystemLoader, select_autoescape
    from jinja2.sandbox import SandboxedEnvironment

    loader = ChoiceLoader([DictLoader(dict(override_sources)), FileSystemLoader(str(TEMPLATE_DIR))])
    environment = SandboxedEnvironment(
        loader=loader,
        extensions=["jinja2.ext.i18n"],
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        auto_reload=False,
    )
    environment.install_gettext_translations(catalog(language), newstyle=True)  # type: ignore[attr-defined]
    return environment


def _render(environment: SandboxedEnvironment, language: str, part: str, context: Mapping[str, Any]) -> str:
    from jinja2 import TemplateError  # on first render only (see _environment)

    try:
        return environment.get_template(PARTS[part]).render(context)
    except TemplateError as exc:
        raise ReceiptTemplateError(f"Receipt template {PARTS[part]} ({language}) failed: {exc}") from exc


# -- content ------------------------------------------------------------------------------------


def _context(
    transaction: Mapping[str, Any],
    store: Mapping[str, Any],
    customer: Mapping[str, Any] | None,
    products: Mapping[str, Mapping[str, Any]],
    language: str,
    formats: ReceiptFormats,
    translations: gettext.NullTranslations,
) -> dict[str, Any]:
    _ = translations.gettext
    subtotal = tax = Decimal(0)
    lines = []
    for line in sorted(transaction.get("lines", ()), key=lambda item: item.get("line_no", 0)):
        net = Decimal(line["net_amount"])
        line_tax = Decimal(line["tax_amount"])
        subtotal += net
        tax += line_tax
        lines.append({
            "name": _line_name(line, products.get(line["product_id"])),
            "qty": formats.number(line["qty"]),
            "unit_price": formats.money(line["unit_price"]),
            "amount": formats.money(net),
            "tax": formats.money(line_tax),
        })
    tenders = [
        {
            "tender": payment["tender"],
            "label": _tender_label(payment["tender"], translations),
            "amount": formats.money(payment["amount"]),
        }
        for payment in transaction.get("payments", ())
    ]
    business_date = str(transaction.get("business_date", ""))
    is_return = transaction.get("kind") == TransactionKind.RETURN
    created_at = transaction.get("created_at")
    helpers: dict[str, Callable[[Any], str]] = {
        "format_money": formats.money, "format_number": formats.number, "format_datetime": formats.datetime}
    return {
        "language": language,
        "locale": str(formats.locale),
        "title": _("Return receipt") if is_return else _("Receipt"),
        "store": {
            "id": store.get("id", ""),
            "name": store.get("name") or store.get("id", ""),
            "address_lines": formats.address_lines(store.get("address")),
            "time_zone": formats.zone.key,
        },
        "currency": {"code": formats.currency, "name": formats.currency_name(), "symbol": formats.currency_symbol()},
        "customer": {"id": customer.get("id"), "name": customer.get("name", "")} if customer else None,
        "receipt": {
            "receipt_id": transaction.get("receipt_id", ""),
            "transaction_id": transaction.get("transaction_id", ""),
            "terminal_id": transaction.get("terminal_id", ""),
            "business_date": business_date,
            "date": formats.date(business_date),
            "sold_at": formats.datetime(created_at) if created_at else formats.date(business_date),
            "is_return": is_return,
        },
        "lines": lines,
        "subtotal": formats.money(subtotal),
        "tax": formats.money(tax),
        "total": formats.money(_cents(subtotal) + _cents(tax)),  # adds up as printed
        "tenders": tenders,
        **helpers,
    }


def _tender_label(tender: str, translations: gettext.NullTranslations) -> str:
    label = TENDER_LABELS.get(tender)
    return translations.gettext(label) if label else tender


def sold_products(transaction: Mapping[str, Any], products: Mapping[str, Mapping[str, Any] | None]) -> dict:
    """What the receipt of ``transaction`` names its lines by, from its product records as they are
    now (the sale's): each product's name and the variants sold, keyed and shaped as the records, so
    that a receipt sent later reads no product. A product without a record is left out (read then)."""
    sold: dict[str, dict] = {}
    for line in transaction.get("lines", ()):
        product = products.get(line["product_id"])
        if product is None:
            continue
        kept = sold.setdefault(line["product_id"], {"id": line["product_id"], "name": product.get("name"),
                                                    "variants": []})
        variant = next((v for v in product.get("variants") or () if v.get("id") == line.get("variant_id")), None)
        if variant is not None and all(v["id"] != variant["id"] for v in kept["variants"]):
            kept["variants"].append({key: variant[key] for key in ("id", "size", "color") if key in variant})
    return sold


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
