"""Email receipts: language, catalogs, Babel formats, templates, subject, escaping, PDF and MIME."""
from __future__ import annotations

import email
import io
import time
from decimal import Decimal
from email import policy

import pytest
from pypdf import PdfReader

from chalicelib.domain.receipts import (
    ReceiptTemplateError,
    RenderedReceipt,
    build_mime,
    choose_language,
    receipt_address,
    render_receipt,
    sold_products,
)

D = Decimal
NNBSP = "\u202f"  # narrow no-break space: CLDR's French grouping and English "9:42 AM"
NBSP = "\u00a0"

STORE = {"id": "HOUSTON", "name": "Houston Galleria", "legal_entity": "USRT", "currency": "USD",
         "time_zone": "America/Chicago",
         "address": {"lines": ["5085 Westheimer Rd"], "city": "Houston", "postal_code": "77056", "country": "US"}}
PRODUCTS = {
    "SHIRT": {"id": "SHIRT", "name": "Oxford shirt", "variants": [{"id": "M-RED", "size": "M", "color": "Red"}]},
    "MUG": {"id": "MUG", "name": "Mug <b>& Co</b>", "variants": []},
}
CUSTOMER = {"id": "C1", "name": "Ann Lee", "email": "ann@example.com", "language": "en-us", "receipt_option": "Email"}


@pytest.fixture
def transaction():
    return {
        "transaction_id": "HOUSTON-1-1002",
        "store_id": "HOUSTON",
        "terminal_id": "1",
        "receipt_id": "R-1002",
        "business_date": "2026-11-03",
        "created_at": "2026-11-03T15:42:00Z",
        "customer_id": "C1",
        "kind": "Sale",
        "status": "Posted",
        "lines": [
            {"line_no": 1, "product_id": "SHIRT", "variant_id": "M-RED", "qty": D("2"),
             "unit_price": D("19.99"), "net_amount": D("39.98"), "tax_amount": D("3.30")},
            {"line_no": 2, "product_id": "MUG", "qty": D("1"),
             "unit_price": D("1234.50"), "net_amount": D("1234.50"), "tax_amount": D("101.85")},
        ],
        "payments": [{"tender": "cash", "amount": D("20.00")}, {"tender": "card", "amount": D("1359.63")}],
    }


def test_customer_language_when_a_template_exists():
    assert choose_language({"language": "de-de"}, {"company_language": "fr-fr"}) == "de-de"
    assert choose_language({"language": "fr_FR"}, {}) == "fr-fr"


def test_a_language_without_region_or_with_another_takes_the_catalog_of_its_base_language():
    assert choose_language({"language": "de"}, {"company_language": "fr-fr"}) == "de-de"
    assert choose_language({"language": "fr-ca"}, {}) == "fr-fr"
    assert choose_language({"language": "en-gb"}, {"company_language": "de-de"}) == "en-us"
    assert choose_language({"language": "ja-jp"}, {"company_language": "pl"}) == "pl-pl"


def test_company_language_when_the_customer_language_has_no_template():
    assert choose_language({"language": "ja-jp"}, {"company_language": "fr-fr"}) == "fr-fr"
    assert choose_language(None, {"company_language": "de-de"}) == "de-de"


def test_english_when_neither_has_a_template():
    assert choose_language({"language": "ja-jp"}, {"company_language": "pt-br"}) == "en-us"
    assert choose_language(None, None) == "en-us"
    assert choose_language({"language": "../../etc"}, {}) == "en-us"


def test_an_override_makes_a_language_available():
    parameters = {"receipt_templates": {"es-es": {"html": "<p>Hola</p>", "text": "Hola"}}}

    assert choose_language({"language": "es-es"}, parameters) == "es-es"


def test_sold_products_keep_each_name_and_only_the_variants_sold():
    products = {"SHIRT": {"id": "SHIRT", "name": "Oxford shirt", "price": "20.00", "category_id": "SHIRTS",
                          "variants": [{"id": "M-RED", "size": "M", "color": "Red", "barcode": "1"},
                                       {"id": "L-RED", "size": "L", "color": "Red"}]},
                "MUG": {"id": "MUG", "name": "Mug", "variants": []}}
    shirt = {"product_id": "SHIRT", "variant_id": "M-RED"}
    transaction = {"lines": [shirt, shirt, {"product_id": "MUG", "variant_id": None},
                             {"product_id": "GONE", "variant_id": None}]}

    sold = sold_products(transaction, {**products, "GONE": None})

    assert sold == {"SHIRT": {"id": "SHIRT", "name": "Oxford shirt",
                              "variants": [{"id": "M-RED", "size": "M", "color": "Red"}]},
                    "MUG": {"id": "MUG", "name": "Mug", "variants": []}}


def test_receipt_address():
    assert receipt_address({"receipt_email": " tx@example.com "}, CUSTOMER) == "tx@example.com"
    assert receipt_address({}, CUSTOMER) == "ann@example.com"
    assert receipt_address({}, {**CUSTOMER, "receipt_option": "Both"}) == "ann@example.com"
    assert receipt_address({}, {**CUSTOMER, "receipt_option": "POS"}) is None
    assert receipt_address({"receipt_email": ""}, {**CUSTOMER, "email": None}) is None
    assert receipt_address({}, None) is None


def test_default_template_shows_the_receipt(transaction):
    rendered = render_receipt(transaction, STORE, CUSTOMER, PRODUCTS, {})

    assert rendered.language == "en-us"
    for part in (rendered.html, rendered.text):
        assert "Houston Galleria" in part
        assert "5085 Westheimer Rd" in part and "Houston 77056" in part and "United States" in part
        assert "R-1002" in part
        assert f"Nov 3, 2026, 9:42{NNBSP}AM" in part  # 15:42 UTC in Houston
        assert "US Dollar (USD)" in part
        assert "Oxford shirt (M / Red)" in part
        assert "$19.99" in part and "$39.98" in part
        assert "$1,234.50" in part
        assert "$105.15" in part  # tax
        assert "$1,379.63" in part  # total
        assert "Cash" in part and "$20.00" in part and "Card" in part and "$1,359.63" in part


def test_german_receipt_has_german_words_decimal_comma_and_store_time(transaction):
    rendered = render_receipt(transaction, STORE, {**CUSTOMER, "language": "de-de"}, PRODUCTS, {})

    assert rendered.language == "de-de"
    assert "Zwischensumme" in rendered.text and "Bar" in rendered.text and "Geschenkkarte" not in rendered.text
    assert f"Summe: 1.379,63{NBSP}$" in rendered.text
    assert f"2 × 19,99{NBSP}$ = 39,98{NBSP}$" in rendered.text
    assert "03.11.2026, 09:42" in rendered.html
    assert "Vereinigte Staaten" in rendered.html


def test_french_grouping_is_the_narrow_no_break_space_of_the_locale_data(transaction):
    rendered = render_receipt(transaction, STORE, {**CUSTOMER, "language": "fr-fr"}, PRODUCTS, {})

    assert f"1{NNBSP}379,63{NBSP}$US" in rendered.text
    assert f"Total{NBSP}: 1{NNBSP}379,63{NBSP}$US" in rendered.text
    assert "1 379" not in rendered.text


def test_currency_symbols_follow_the_store_currency(transaction):
    canadian = {**STORE, "currency": "CAD", "time_zone": "America/Toronto"}

    assert "Total: $1,379.63" in render_receipt(transaction, STORE, CUSTOMER, PRODUCTS, {}).text
    assert "Total: CA$1,379.63" in render_receipt(transaction, canadian, CUSTOMER, PRODUCTS, {}).text
    assert "Canadian Dollar (CAD)" in render_receipt(transaction, canadian, CUSTOMER, PRODUCTS, {}).text
    french = render_receipt(transaction, canadian, {**CUSTOMER, "language": "fr-fr"}, PRODUCTS, {})
    assert f"1{NNBSP}379,63{NBSP}$CA" in french.text


def test_a_store_without_currency_or_time_zone_prints_dollars_in_utc(transaction):
    bare = {"id": "HOUSTON", "name": "Houston Galleria"}

    rendered = render_receipt(transaction, bare, CUSTOMER, PRODUCTS, {})

    assert "Total: $1,379.63" in rendered.text and "US Dollar (USD)" in rendered.text
    assert f"Nov 3, 2026, 3:42{NNBSP}PM" in rendered.text


def test_time_of_sale_is_the_store_local_time_even_across_midnight(transaction):
    late = {**transaction, "business_date": "2026-11-02", "created_at": "2026-11-03T02:30:00.000Z"}
    toronto = {**STORE, "time_zone": "America/Toronto"}

    english = render_receipt(late, toronto, CUSTOMER, PRODUCTS, {})
    german = render_receipt(late, {**toronto, "time_zone": "Europe/Berlin"}, {**CUSTOMER, "language": "de-de"},
                            PRODUCTS, {})

    assert f"Date: Nov 2, 2026, 9:30{NNBSP}PM" in english.text  # EST, the evening before in UTC terms
    assert "Datum: 03.11.2026, 03:30" in german.text  # CET


def test_polish_is_a_catalog_away(transaction):
    polish_store = {**STORE, "currency": "PLN", "time_zone": "Europe/Warsaw",
                    "address": {"lines": ["ul. Floriańska 12"], "city": "Kraków", "postal_code": "31-019",
                                "country": "PL"}}

    rendered = render_receipt(transaction, polish_store, {**CUSTOMER, "language": "pl-pl"}, PRODUCTS, {})

    assert rendered.language == "pl-pl"
    assert choose_language({"language": "pl-pl"}, {}) == "pl-pl"
    for word in ("Dzień dobry Ann Lee,", "Paragon", "Nr paragonu: R-1002", "Suma częściowa", "Razem",
                 "Gotówka", "Karta", "Zapraszamy ponownie.", "31-019 Kraków", "Polska", "złoty polski (PLN)"):
        assert word in rendered.text, word
    assert f"Razem: 1{NBSP}379,63{NBSP}zł" in rendered.text
    assert "Data: 3 lis 2026, 16:42" in rendered.text
    pdf_text = _pdf_text(rendered.pdf)
    assert "Nr paragonu: R-1002" in pdf_text and "Suma częściowa" in pdf_text and "Dziękujemy za zakupy." in pdf_text


def test_override_template_is_used(transaction):
    parameters = {
        "receipt_templates": {
            "en-us": {
                "html": "<h1>{{ store.name }}</h1>{% for line in lines %}<p>{{ line.name }}</p>{% endfor %}",
                "text": "CUSTOM {{ receipt.receipt_id }} {{ total }}",
            }
        }
    }

    rendered = render_receipt(transaction, STORE, CUSTOMER, PRODUCTS, parameters)

    assert rendered.text == "CUSTOM R-1002 $1,379.63"
    assert rendered.html.startswith("<h1>Houston Galleria</h1>")


def test_a_partial_override_falls_back_to_the_shipped_part(transaction):
    parameters = {"receipt_templates": {"de-de": {"text": "NUR TEXT {{ total }}"}}}

    rendered = render_receipt(transaction, STORE, {**CUSTOMER, "language": "de-de"}, PRODUCTS, parameters)

    assert rendered.text == f"NUR TEXT 1.379,63{NBSP}$"
    assert "Zwischensumme" in rendered.html


def test_an_override_gets_the_catalog_and_the_formatting_helpers(transaction):
    text = ("{{ _('Total') }}={{ total }}|{{ format_money('1234.5') }}|{{ format_number('1.50') }}|"
            "{{ format_datetime('2026-11-03T15:42:00Z') }}|{{ receipt.sold_at }}|{{ store.address_lines[0] }}|"
            "{{ currency.code }}|{{ title }}")
    html = "<p>{{ _('Dear %(name)s,', name=customer.name) }}</p>"
    parameters = {"receipt_templates": {"de-de": {"text": text, "html": html}}}

    rendered = render_receipt(transaction, STORE, {**CUSTOMER, "name": "<Jo>", "language": "de-de"}, PRODUCTS,
                              parameters)

    assert rendered.text == (f"Summe=1.379,63{NBSP}$|1.234,50{NBSP}$|1,5|03.11.2026, 09:42|03.11.2026, 09:42|"
                             "5085 Westheimer Rd|USD|Kassenbeleg")
    assert rendered.html == "<p>Guten Tag &lt;Jo&gt;,</p>"


def test_an_override_for_a_language_without_catalog_formats_in_that_locale(transaction):
    parameters = {"receipt_templates": {"es-es": {"text": "{{ _('Total') }} {{ total }} {{ receipt.sold_at }}"}}}

    rendered = render_receipt(transaction, STORE, {**CUSTOMER, "language": "es-es"}, PRODUCTS, parameters)

    assert rendered.text == f"Total 1.379,63{NBSP}US$ 3 nov 2026, 9:42"
    assert "Receipt no." in rendered.html  # the shipped layout, English words: es-es has no catalog


def test_a_broken_override_is_a_named_error(transaction):
    parameters = {"receipt_templates": {"en-us": {"text": "{% for %}"}}}

    with pytest.raises(ReceiptTemplateError):
        render_receipt(transaction, STORE, CUSTOMER, PRODUCTS, parameters)


def test_override_templates_are_sandboxed(transaction):
    parameters = {"receipt_templates": {"en-us": {"text": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}}}

    with pytest.raises(ReceiptTemplateError):
        render_receipt(transaction, STORE, CUSTOMER, PRODUCTS, parameters)


def test_product_names_are_escaped_in_html_but_not_in_text(transaction):
    rendered = render_receipt(transaction, STORE, CUSTOMER, PRODUCTS, {})

    assert "Mug &lt;b&gt;&amp; Co&lt;/b&gt;" in rendered.html
    assert "<b>&" not in rendered.html
    assert "Mug <b>& Co</b>" in rendered.text


def test_subject_placeholders(transaction):
    parameters = {"receipt_subject": "Receipt {receipt_id} from {store_name} {unknown}"}

    rendered = render_receipt(transaction, STORE, CUSTOMER, PRODUCTS, parameters)

    assert rendered.subject == "Receipt R-1002 from Houston Galleria {unknown}"


def test_malformed_subject_is_sent_as_written(transaction):
    rendered = render_receipt(transaction, STORE, CUSTOMER, PRODUCTS, {"receipt_subject": "Receipt {0} {"})

    assert rendered.subject == "Receipt {0} {"


def test_default_subject_and_attachment_name(transaction):
    rendered = render_receipt(transaction, STORE, CUSTOMER, PRODUCTS, {})

    assert rendered.subject == "Your receipt from Houston Galleria"
    assert rendered.attachment_name == "receipt.pdf"


def test_attachment_name_comes_from_parameters(transaction):
    rendered = render_receipt(transaction, STORE, CUSTOMER, PRODUCTS, {"receipt_file_name": "Kassenbon"})

    assert rendered.attachment_name == "Kassenbon.pdf"


def _pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _pdf_fonts(pdf: bytes) -> list[tuple[str, bool]]:
    """(base font name, embedded?) of every font the PDF's pages use."""
    fonts = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descendant = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
            descriptor = descendant.get("/FontDescriptor")
            embedded = descriptor is not None and any(
                key in descriptor.get_object() for key in ("/FontFile", "/FontFile2", "/FontFile3"))
            fonts.append((str(font["/BaseFont"]), embedded))
    return fonts


EUROPEAN_NAMES = {
    "PL": "Kubek „Łódź” zażółć gęślą jaźń",
    "DE": "Größe Straßenschuh Übergröße",
    "FR": "Crème brûlée œuf à l’ancienne",
    "EL": "Ελληνικός καφές φρέντο",
    "RU": "Русский чай с лимоном",
}


def test_pdf_embeds_a_unicode_font_and_names_come_back_exactly(transaction):
    products = {key: {"id": key, "name": name, "variants": []} for key, name in EUROPEAN_NAMES.items()}
    line = transaction["lines"][1]
    lines = [{**line, "line_no": n, "product_id": key} for n, key in enumerate(EUROPEAN_NAMES, start=1)]

    rendered = render_receipt({**transaction, "lines": lines}, {**STORE, "name": "Zürich Größe €"},
                              {**CUSTOMER, "language": "fr-fr"}, products, {})

    fonts = _pdf_fonts(rendered.pdf)
    assert fonts and all(embedded for _, embedded in fonts), fonts
    assert {name.split("+")[-1] for name, _ in fonts} == {"DejaVuSansBook", "DejaVuSansBold"}
    text = _pdf_text(rendered.pdf)
    for name in EUROPEAN_NAMES.values():
        assert name in text, (name, text)
    assert "Zürich Größe €" in text
    assert f"1{NNBSP}234,50{NBSP}$US" in text  # the locale's spaces, not "?" or a plain space
    assert "?" not in text
    assert rendered.missing_glyphs == ""


def test_a_latin_receipt_draws_every_latin_letter_in_a_small_pdf(transaction):
    # Drawn from the Latin tier of the faces: Polish, Turkish, Czech and French letters included.
    names = {"PL": EUROPEAN_NAMES["PL"], "FR": EUROPEAN_NAMES["FR"], "TR": "İstanbul çayı şeker ğ ı",
             "CZ": "Příliš žluťoučký kůň"}
    products = {key: {"id": key, "name": name, "variants": []} for key, name in names.items()}
    line = transaction["lines"][1]
    lines = [{**line, "line_no": n, "product_id": key} for n, key in enumerate(names, start=1)]

    rendered = render_receipt({**transaction, "lines": lines}, STORE, CUSTOMER, products, {})

    text = _pdf_text(rendered.pdf)
    for name in names.values():
        assert name in text, (name, text)
    assert rendered.missing_glyphs == ""
    assert len(rendered.pdf) < 20_000  # the glyphs it uses, without hinting programs


def test_pdf_marks_characters_the_font_lacks_and_says_which(transaction):
    products = {**PRODUCTS, "SHIRT": {"id": "SHIRT", "name": "Kraków mug “Łódź” 東京 ☕", "variants": []}}

    first = render_receipt(transaction, STORE, CUSTOMER, products, {})
    again = render_receipt(transaction, STORE, CUSTOMER, products, {})

    assert first.pdf == again.pdf  # deterministic: the same receipt, the same bytes
    assert "Kraków mug “Łódź” \ufffd\ufffd ☕" in _pdf_text(first.pdf).replace("\n", " ")  # the name may wrap
    assert first.missing_glyphs == "京東"
    assert "Kraków mug “Łódź” 東京 ☕" in first.text and "Kraków mug “Łódź” 東京 ☕" in first.html


def test_pdf_shows_store_address_time_of_sale_and_currency(transaction):
    text = _pdf_text(render_receipt(transaction, STORE, {**CUSTOMER, "language": "de-de"}, PRODUCTS, {}).pdf)

    for expected in ("Houston Galleria", "5085 Westheimer Rd", "Houston 77056", "Vereinigte Staaten",
                     "Beleg-Nr.: R-1002", "Datum: 03.11.2026, 09:42", "Währung: US-Dollar (USD)",
                     "Kassenbeleg", "Zwischensumme", "Summe", "Bezahlt mit", "Bar", "Karte"):
        assert expected in text, expected
    assert "1.379,63 $" in text.replace(NBSP, " ")


def test_rendering_is_fast_after_warm_up(transaction):
    # The faces are parsed once per process; embedding a receipt's glyph subset (from the Latin
    # tier) costs fpdf2/fontTools ~15 ms of CPU (HTML and text take ~3 ms; parsing the faces for
    # every PDF used to add ~90 ms). CPU time, not wall time: a shared CI machine runs other suites.
    render_receipt(transaction, STORE, CUSTOMER, PRODUCTS, {})
    runs = 10
    started = time.process_time()
    for _ in range(runs):
        render_receipt(transaction, STORE, CUSTOMER, PRODUCTS, {})
    per_receipt = (time.process_time() - started) / runs

    assert per_receipt < 0.15


def test_mime_parses_back_into_text_html_and_pdf(transaction):
    rendered = render_receipt(transaction, STORE, CUSTOMER, PRODUCTS, {"receipt_file_name": "HoustonReceipt"})

    raw = build_mime("receipts@retail.example", "ann@example.com", rendered)
    message = email.message_from_bytes(raw)

    assert isinstance(raw, bytes)
    assert message.get_content_type() == "multipart/mixed"
    assert message["Subject"] == rendered.subject
    assert message["From"] == "receipts@retail.example"
    assert message["To"] == "ann@example.com"
    alternative, attachment = message.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    text, html = alternative.get_payload()
    assert text.get_content_type() == "text/plain"
    assert "R-1002" in text.get_payload(decode=True).decode(text.get_content_charset())
    assert html.get_content_type() == "text/html"
    assert "Mug &lt;b&gt;&amp;" in html.get_payload(decode=True).decode(html.get_content_charset())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "HoustonReceipt.pdf"
    assert attachment.get_payload(decode=True).startswith(b"%PDF")
    assert attachment.get_payload(decode=True) == rendered.pdf


def test_mime_carries_non_ascii_subjects():
    rendered = RenderedReceipt("Ihr Beleg von Zürich", "<p>Grüße</p>", "Grüße", b"%PDF-1.3 x", "Beleg.pdf", "de-de")

    message = email.message_from_bytes(build_mime("a@example.com", "b@example.com", rendered),
                                       policy=policy.default)

    assert message["Subject"] == "Ihr Beleg von Zürich"
    assert message.get_body(("plain",)).get_content().strip() == "Grüße"
