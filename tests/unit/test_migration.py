"""Migration from RMS: decoding, CSV reading, mapping and staging rows (DOMAIN §7)."""
from __future__ import annotations

import codecs
import tracemalloc
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

import pytest

from chalicelib.domain.errors import FieldError, ValidationError
from chalicelib.domain.migration import (
    COMPLETED,
    COMPLETED_WITH_ERRORS,
    DEFAULT_MAPPINGS,
    EXTRA_CELLS_COLUMN,
    MIGRATION_ENTITIES,
    SNIFF_BYTES,
    STAGED,
    STAGED_WITH_ERRORS,
    MigrationContext,
    UnreadableFile,
    copy_status,
    decode_stream,
    job_status,
    map_row,
    parse_drop_key,
    parse_rms_boolean,
    parse_rms_decimal,
    read_rows,
    required_columns,
    stage_file,
    stage_row,
    validate_mapping,
)
from chalicelib.models.parsing import has_field, parse_record

CONTEXT = MigrationContext(
    legal_entities=("USRT", "DEMF"),
    company_language="en-us",
    default_legal_entity="USRT",
    default_org_node_id="US",
    default_store_id="1",
    store_warehouses={"2": "WH-HOUSTON"},
)
PRODUCTS = DEFAULT_MAPPINGS["products"]


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def decode(data: bytes, size: int = 7) -> str:
    return "".join(decode_stream(chunked(data, size)))


def rows_of(text: str, required: tuple[str, ...] = (), size: int = 5) -> list[tuple[int, dict[str, str]]]:
    return list(read_rows([text[i:i + size] for i in range(0, len(text), size)], required))


def unreadable(action) -> str:
    with pytest.raises(UnreadableFile) as caught:
        action()
    return caught.value.reason


# ---------------------------------------------------------------------------
# Mappings
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("entity", MIGRATION_ENTITIES)
def test_default_mappings_are_valid(entity):
    assert validate_mapping(entity, DEFAULT_MAPPINGS[entity]) == []


MAPPABLE_FIELDS = {  # every scalar field of DOMAIN §12; lists (released_to, variants) are not mappable
    "stores": ("id", "name", "legal_entity", "org_node_id", "warehouse_id", "email"),
    "customers": ("id", "name", "email", "language", "receipt_option"),
    "workers": ("id", "name", "export_id", "store_id", "pay_period_type", "base_rate"),
    "categories": ("id", "name", "parent_id", "revenue_account"),
    "products": ("id", "name", "category_id", "price", "stopped", "allow_negative_inventory"),
    "inventory": ("store_id", "product_id", "variant_id", "qty"),
}


@pytest.mark.parametrize("entity", MIGRATION_ENTITIES)
def test_every_scalar_field_of_the_schema_can_be_mapped(entity):
    assert validate_mapping(entity, dict.fromkeys(MAPPABLE_FIELDS[entity], "Column")) == []
    for name in MAPPABLE_FIELDS[entity]:
        assert has_field(entity, name)
    with pytest.raises(ValidationError) as raised:
        parse_record(entity, {})
    required = {e.path for e in raised.value.errors if e.message.startswith("is required")}
    assert required <= set(MAPPABLE_FIELDS[entity]) | {"released_to"}


def test_default_product_mapping_follows_domain():
    assert PRODUCTS == {
        "id": "ItemLookupCode",
        "name": "Description",
        "category_id": "CategoryID",
        "price": "Price",
        "stopped": "Inactive",
    }


def test_validate_mapping_reports_each_problem_by_target_field():
    errors = validate_mapping("products", {
        "id": "ItemLookupCode",
        "name": [],
        "price": ["Price", 3],
        "released_to": "Company",
        "colour": "Color",
    })
    assert {(e.path, e.message) for e in errors} == {
        ("name", "must be a column name or a non-empty list of column names"),
        ("price", "must be a column name or a non-empty list of column names"),
        ("released_to", "is set by the migration and cannot be mapped from a column"),
        ("colour", "is not a field of products"),
        ("category_id", "is required and not mapped to any column"),
    }


def test_validate_mapping_rejects_unknown_entity_and_non_object():
    assert validate_mapping("vendors", {}) == [
        FieldError("entity", "unknown entity 'vendors'; expected one of: "
                             "stores, customers, workers, categories, products, inventory"),
    ]
    assert [e.path for e in validate_mapping("products", ["ItemLookupCode"])] == [""]


def test_required_columns_leave_out_columns_of_defaulted_fields():
    assert required_columns("products", PRODUCTS) == ["ItemLookupCode", "Description", "CategoryID", "Price"]
    assert required_columns("customers", DEFAULT_MAPPINGS["customers"]) == ["AccountNumber", "FirstName", "LastName"]
    assert required_columns("workers", DEFAULT_MAPPINGS["workers"]) == ["Number", "Name"]


# ---------------------------------------------------------------------------
# Mapping rows
# ---------------------------------------------------------------------------


def test_product_row_gets_conversions_and_defaults():
    row = {"ItemLookupCode": " 100-RED ", "Description": "Red shirt", "CategoryID": "12", "Price": "12.5",
           "Inactive": "True"}
    assert map_row("products", PRODUCTS, row, CONTEXT) == {
        "id": "100-RED",
        "name": "Red shirt",
        "category_id": "12",
        "price": Decimal("12.5"),
        "stopped": True,
        "released_to": ["DEMF", "USRT"],
        "allow_negative_inventory": True,
        "variants": [],
    }


def test_product_without_inactive_or_category_defaults_to_active_under_root():
    row = {"ItemLookupCode": "200", "Description": "Socks", "CategoryID": "0", "Price": "3"}
    record = map_row("products", PRODUCTS, row, CONTEXT)
    assert record["stopped"] is False
    assert record["category_id"] == "ALL"  # RMS CategoryID 0 = no category


def test_combined_columns_are_joined_by_a_space_skipping_empty_ones():
    mapping = DEFAULT_MAPPINGS["customers"]
    assert map_row("customers", mapping, {"AccountNumber": "C1", "FirstName": " Zoë ", "LastName": "Müller"},
                   CONTEXT)["name"] == "Zoë Müller"
    assert map_row("customers", mapping, {"AccountNumber": "C2", "FirstName": "", "LastName": "Cher"},
                   CONTEXT)["name"] == "Cher"
    custom = {**PRODUCTS, "name": ["Description", "ExtendedDescription"]}
    row = {"ItemLookupCode": "1", "Description": "Shirt", "ExtendedDescription": "long sleeves", "CategoryID": "1",
           "Price": "1"}
    assert map_row("products", custom, row, CONTEXT)["name"] == "Shirt long sleeves"


def test_customer_receipt_option_depends_on_email_and_language_is_the_company_one():
    mapping = DEFAULT_MAPPINGS["customers"]
    with_email = map_row("customers", mapping, {"AccountNumber": "C1", "FirstName": "A", "LastName": "B",
                                                "EmailAddress": "a@example.com"}, CONTEXT)
    without = map_row("customers", mapping, {"AccountNumber": "C2", "FirstName": "A", "LastName": "B",
                                             "EmailAddress": "  "}, replace(CONTEXT, company_language="fr"))
    assert (with_email["receipt_option"], with_email["language"]) == ("Email", "en-us")
    assert (without["receipt_option"], without["language"], "email" in without) == ("POS", "fr", False)


def test_worker_defaults_and_store_from_context_when_rms_has_none():
    mapping = DEFAULT_MAPPINGS["workers"]
    assert map_row("workers", mapping, {"Number": "0042", "Name": "Ann"}, CONTEXT) == {
        "id": "0042", "name": "Ann", "export_id": "0042", "store_id": "1",
        "pay_period_type": "monthly", "base_rate": Decimal("0"),
    }
    assert map_row("workers", mapping, {"Number": "7", "Name": "Bo", "StoreID": "2"}, CONTEXT)["store_id"] == "2"
    assert map_row("workers", mapping, {"Number": "7", "Name": "Bo", "StoreID": "0"}, CONTEXT)["store_id"] == "1"


def test_mapped_value_wins_over_default_and_choices_ignore_case():
    mapping = {**DEFAULT_MAPPINGS["workers"], "pay_period_type": "PayPeriod"}
    record = map_row("workers", mapping, {"Number": "7", "Name": "Bo", "PayPeriod": "Weekly"}, CONTEXT)
    assert record["pay_period_type"] == "weekly"


def test_stores_and_categories_get_their_defaults():
    store = map_row("stores", DEFAULT_MAPPINGS["stores"], {"ID": "2", "Name": "Houston", "Region": ""}, CONTEXT)
    assert (store["legal_entity"], store["org_node_id"]) == ("USRT", "US")
    category = map_row("categories", DEFAULT_MAPPINGS["categories"], {"ID": "5", "Name": "Shirts"}, CONTEXT)
    root = map_row("categories", DEFAULT_MAPPINGS["categories"], {"ID": "ALL", "Name": "All"}, CONTEXT)
    assert category["parent_id"] == "ALL"
    assert "parent_id" not in root


@pytest.mark.parametrize(("text", "expected"), [
    ("1", True), ("0", False), ("-1", True), ("True", True), ("FALSE", False), ("y", True), ("N", False),
    ("Yes", True), ("no", False),
])
def test_rms_booleans(text, expected):
    assert parse_rms_boolean(text) is expected


@pytest.mark.parametrize(("text", "decimal_comma", "expected"), [
    ("12.5", False, Decimal("12.5")),
    ("-3", False, Decimal("-3")),
    ("12.5000", False, Decimal("12.5000")),
    ("12,50", True, Decimal("12.50")),
    ("1.234,50", True, Decimal("1234.50")),
    ("12.5", True, Decimal("12.5")),
])
def test_rms_decimals(text, decimal_comma, expected):
    assert parse_rms_decimal(text, decimal_comma=decimal_comma) == expected


@pytest.mark.parametrize(("text", "decimal_comma"), [
    ("12,50", False), ("1,250", False), ("abc", True), ("NaN", False), ("1e5", False), ("12,5,0", True),
])
def test_rms_decimals_refused(text, decimal_comma):
    with pytest.raises(ValueError):
        parse_rms_decimal(text, decimal_comma=decimal_comma)


# ---------------------------------------------------------------------------
# Staging rows: errors name the source column
# ---------------------------------------------------------------------------


def test_good_row_is_staged_with_its_validated_record():
    row = {"ItemLookupCode": "100", "Description": "Shirt", "CategoryID": "12", "Price": "12.5", "Inactive": "0"}
    staged = stage_row("products", PRODUCTS, 2, row, CONTEXT)
    assert staged.valid
    assert staged.row_number == 2
    assert staged.source == row
    assert staged.record["price"] == Decimal("12.50")
    assert staged.record["released_to"] == ["DEMF", "USRT"]


def test_bad_row_errors_name_the_source_columns():
    row = {"ItemLookupCode": "BAD ID", "Description": "", "CategoryID": "12", "Price": "-1", "Inactive": "maybe"}
    staged = stage_row("products", PRODUCTS, 7, row, CONTEXT)
    assert staged.record is None
    assert {e["column"]: e["message"] for e in staged.errors} == {
        "ItemLookupCode": "must be 1-64 characters of letters, digits, '-', '_', '.'",
        "Description": "is required",
        "Price": "must be at least 0",
        "Inactive": "must be a yes/no value such as 1/0, True/False or Y/N, got 'maybe'",
    }


def test_unconvertible_number_is_reported_once_against_its_column():
    row = {"ItemLookupCode": "1", "Description": "x", "CategoryID": "1", "Price": "12,50"}
    staged = stage_row("products", PRODUCTS, 2, row, CONTEXT)
    assert [e["column"] for e in staged.errors] == ["Price"]
    assert "comma" in staged.errors[0]["message"]


def test_error_on_combined_columns_names_both():
    staged = stage_row("customers", DEFAULT_MAPPINGS["customers"], 3,
                       {"AccountNumber": "C1", "FirstName": " ", "LastName": ""}, CONTEXT)
    assert staged.errors == [{"column": "FirstName + LastName", "message": "is required"}]


def test_error_on_a_defaulted_field_names_the_target_field():
    staged = stage_row("customers", DEFAULT_MAPPINGS["customers"], 3,
                       {"AccountNumber": "C1", "FirstName": "A", "LastName": "B"},
                       replace(CONTEXT, company_language="English"))
    assert staged.errors == [{"column": "language", "message": "must be a lowercase language code such as en or en-us"}]


def test_worker_store_error_names_store_id_column_only_when_the_value_came_from_the_row():
    mapping = DEFAULT_MAPPINGS["workers"]
    no_default = replace(CONTEXT, default_store_id=None)
    missing = stage_row("workers", mapping, 2, {"Number": "7", "Name": "Bo"}, no_default)
    assert missing.errors == [{"column": "StoreID", "message": "is required"}]
    known = replace(CONTEXT, default_store_id="9", known_ids={"stores": {"1", "2"}})
    defaulted = stage_row("workers", mapping, 2, {"Number": "7", "Name": "Bo"}, known)
    assert defaulted.errors == [{"column": "store_id", "message": "unknown store '9'"}]


def test_references_are_checked_against_known_ids():
    context = replace(CONTEXT, known_ids={"categories": {"ALL", "12"}})
    row = {"ItemLookupCode": "1", "Description": "x", "CategoryID": "13", "Price": "1"}
    staged = stage_row("products", PRODUCTS, 2, row, context)
    assert staged.errors == [{"column": "CategoryID", "message": "unknown category '13'"}]
    assert stage_row("products", PRODUCTS, 2, {**row, "CategoryID": "12"}, context).valid


def test_inventory_row_gets_the_warehouse_of_its_store():
    mapping = DEFAULT_MAPPINGS["inventory"]
    houston = stage_row("inventory", mapping, 2, {"StoreID": "2", "ItemLookupCode": "100", "Quantity": "4"}, CONTEXT)
    other = stage_row("inventory", mapping, 3, {"StoreID": "3", "ItemLookupCode": "100", "Quantity": "-1.5"}, CONTEXT)
    assert houston.record["warehouse_id"] == "WH-HOUSTON"
    assert (other.record["warehouse_id"], other.record["qty"]) == ("3", Decimal("-1.5"))


def test_row_with_extra_cells_is_an_error():
    row = {"ItemLookupCode": "1", "Description": "x", "CategoryID": "1", "Price": "1", EXTRA_CELLS_COLUMN: "50"}
    staged = stage_row("products", PRODUCTS, 2, row, CONTEXT)
    assert [e["column"] for e in staged.errors] == [EXTRA_CELLS_COLUMN]


def test_job_and_copy_statuses():
    assert job_status(10, 0) == STAGED == "Staged"
    assert job_status(10, 2) == STAGED_WITH_ERRORS == "StagedWithErrors"
    assert copy_status(10, 0) == COMPLETED == "Completed"
    assert copy_status(8, 2) == COMPLETED_WITH_ERRORS == "CompletedWithErrors"


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------

ACCENTED = "AccountNumber,FirstName,LastName\nC1,Renée,Müller\nC2,José,Gift card 50€\n"


def test_windows_1252_file_with_accented_names_decodes():
    assert decode(ACCENTED.encode("cp1252")) == ACCENTED


def test_utf8_file_with_bom_decodes_without_the_bom():
    assert decode(codecs.BOM_UTF8 + ACCENTED.encode("utf-8"), size=2) == ACCENTED


def test_utf8_multibyte_character_split_across_chunks_decodes():
    data = "€ü漢😀".encode()
    assert decode(data, size=1) == "€ü漢😀"
    beyond_detection = [b"x" * SNIFF_BYTES, b"\xe2", b"\x82", b"\xac\n"]  # "€" after the detection window
    assert "".join(decode_stream(beyond_detection)) == "x" * SNIFF_BYTES + "€\n"


def test_ascii_prefix_then_windows_1252_beyond_the_detection_window_decodes():
    data = b"Name\n" + b"x" * (SNIFF_BYTES + 10) + "\nCafé\n".encode("cp1252")
    assert decode(data, size=4096).endswith("\nCafé\n")


def test_empty_input_decodes_to_nothing():
    assert list(decode_stream([])) == []
    assert list(decode_stream([b""])) == []


@pytest.mark.parametrize(("data", "reason"), [
    (b"ItemLookupCode\x00,Price", "file is not text: NUL bytes at offset 14"),
    (b"PK\x03\x04\x14\x00\x06\x00", "file is not text: it is a ZIP archive or an Excel .xlsx workbook; "
                                    "export the table as CSV"),
    (b"\xff\xfeI\x00D\x00", "file is UTF-16 text (byte order mark at offset 0); export it as UTF-8 or Windows-1252"),
    (b"Name\n\xe9t\xe9 \x81", "file is neither UTF-8 nor Windows-1252 text: byte 0x81 at offset 9"),
    (bytes(range(1, 32)) * 10, "file is not text: 260 control characters in its first 310 characters"),
])
def test_garbage_is_unreadable_with_a_reason(data, reason):
    assert unreadable(lambda: decode(data)) == reason


def test_nul_bytes_deep_in_the_file_are_reported_with_their_offset():
    data = b"a" * (SNIFF_BYTES + 100) + b"\x00"
    assert unreadable(lambda: decode(data, size=1000)) == f"file is not text: NUL bytes at offset {SNIFF_BYTES + 100}"


def test_utf8_file_with_a_stray_windows_1252_byte_later_keeps_it_escaped_with_its_offset():
    data = "Name\nZoë\n".encode() + b"a" * SNIFF_BYTES + b"\xe9\n"
    stream = decode_stream(chunked(data, 1000))
    assert "".join(stream).endswith("a\udce9\n")  # read_rows makes its row an error
    assert list(stream.invalid_bytes) == [(len(data) - 2, 0xE9)]


# ---------------------------------------------------------------------------
# Reading CSV
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_detected(delimiter):
    text = delimiter.join(["ItemLookupCode", "Description", "Price"]) + "\n" + delimiter.join(["1", "Shirt", "9"])
    rows = read_rows([text + "\n"])
    assert rows.delimiter == delimiter
    assert list(rows) == [(2, {"ItemLookupCode": "1", "Description": "Shirt", "Price": "9"})]


def test_row_numbers_are_file_lines_across_blank_lines_and_quoted_newlines():
    text = 'ID,Name,Note\r\n1,"Smith, John","line one\r\nline two"\r\n\r\n2,Ann,\r\n,,\r\n3,Bo,x'
    assert rows_of(text, size=3) == [
        (2, {"ID": "1", "Name": "Smith, John", "Note": "line one\r\nline two"}),
        (5, {"ID": "2", "Name": "Ann", "Note": ""}),
        (7, {"ID": "3", "Name": "Bo", "Note": "x"}),
    ]


def test_bare_carriage_return_line_endings():
    assert rows_of("ID,Name\r1,A\r2,B\r") == [(2, {"ID": "1", "Name": "A"}), (3, {"ID": "2", "Name": "B"})]


def test_short_rows_miss_columns_and_extra_non_empty_cells_are_kept():
    rows = rows_of("ID,Name,Price\n1,A\n2,B,3,,\n3,C,4,x,y\n")
    assert rows == [
        (2, {"ID": "1", "Name": "A"}),
        (3, {"ID": "2", "Name": "B", "Price": "3"}),
        (4, {"ID": "3", "Name": "C", "Price": "4", EXTRA_CELLS_COLUMN: "x,y"}),
    ]


def test_header_is_trimmed_and_empty_column_names_are_ignored():
    rows = rows_of("\ufeff ID , Name ,\n1,A,junk\n")
    assert rows == [(2, {"ID": "1", "Name": "A"})]


@pytest.mark.parametrize(("text", "reason"), [
    ("", "file is empty"),
    ("\r\n  \n\n", "file is empty"),
    (" , ,\n", "file is empty"),
    ("100,Shirt,12.5\n200,Socks,3\n", "file has no header row: line 1 has '100' where a column name is expected"),
    ("ID,Name,ID\n1,A,2\n", "header has duplicate column(s): ID"),
])
def test_unreadable_csv(text, reason):
    assert unreadable(lambda: rows_of(text)) == reason


def test_missing_required_columns_are_named():
    text = "ItemLookupCode,Description,CategoryID\n1,Shirt,2\n"
    reason = unreadable(lambda: rows_of(text, required_columns("products", PRODUCTS)))
    assert reason == "missing required column(s): Price"


def test_missing_every_required_column_hints_at_a_missing_header():
    reason = unreadable(lambda: rows_of("C1,Ann,Smith\n", ("AccountNumber", "FirstName")))
    assert reason.startswith("missing required column(s): AccountNumber, FirstName (the first line has none")


# ---------------------------------------------------------------------------
# Whole files
# ---------------------------------------------------------------------------


def test_semicolon_windows_1252_export_with_decimal_commas_is_staged():
    text = (
        "ItemLookupCode;Description;CategoryID;Price;Inactive\r\n"
        "100;Crème brûlée;12;12,50;0\r\n"
        "200;Müsli;12;1.234,5;1\r\n"
        "300;Café;12;zwölf;N\r\n"
    )
    staged = list(stage_file("products", PRODUCTS, chunked(text.encode("cp1252"), 16), CONTEXT))
    assert [(s.row_number, s.valid) for s in staged] == [(2, True), (3, True), (4, False)]
    assert staged[0].record["name"] == "Crème brûlée"
    assert staged[0].record["price"] == Decimal("12.50")
    assert (staged[1].record["price"], staged[1].record["stopped"]) == (Decimal("1234.50"), True)
    assert staged[2].errors == [{"column": "Price", "message": "must be a decimal number such as \"12.50\", "
                                                              "got 'zwölf'"}]
    assert job_status(len(staged), sum(not s.valid for s in staged)) == STAGED_WITH_ERRORS


def test_comma_delimited_utf8_export_is_staged():
    text = 'AccountNumber,FirstName,LastName,EmailAddress\n"C-1","Zoë","O\'Brien, Jr",zoe@example.com\n'
    staged = list(stage_file("customers", DEFAULT_MAPPINGS["customers"],
                             chunked(codecs.BOM_UTF8 + text.encode(), 3), CONTEXT))
    assert staged[0].record == {"id": "C-1", "name": "Zoë O'Brien, Jr", "email": "zoe@example.com",
                                "language": "en-us", "receipt_option": "Email"}


def test_stage_file_raises_unreadable_for_a_file_missing_required_columns():
    data = b"ItemLookupCode,Description\n1,Shirt\n"
    reason = unreadable(lambda: next(stage_file("products", PRODUCTS, [data], CONTEXT)))
    assert reason == "missing required column(s): CategoryID, Price"


def _big_export(rows: int) -> Iterator[bytes]:
    yield b"ItemLookupCode;Description;CategoryID;Price;Inactive\r\n"
    batch = []
    for i in range(rows):
        batch.append(f"ITEM-{i:07d};Café au lait n°{i};{i % 50};{i % 1000},99;{i % 2}\r\n".encode("cp1252"))
        if len(batch) == 500:
            yield b"".join(batch)
            batch = []
    yield b"".join(batch)


def test_reading_200k_rows_keeps_memory_bounded():
    tracemalloc.start()
    try:
        count = 0
        for row_number, row in read_rows(decode_stream(_big_export(200_000)), required_columns("products", PRODUCTS)):
            count += 1
            last = (row_number, row["Description"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (count, last) == (200_000, (200_001, "Café au lait n°199999"))
    assert peak < 20 * 1024 * 1024


def test_staging_a_large_file_is_streamed_too():
    tracemalloc.start()
    try:
        staged = stage_file("products", PRODUCTS, _big_export(20_000), CONTEXT)
        valid = sum(s.valid for s in staged)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert valid == 20_000
    assert peak < 5 * 1024 * 1024


# ---------------------------------------------------------------------------
# Drop keys
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "kind", "entity", "name", "decoded"), [
    ("migration/mappings/products.json", "mapping", "products", "products", "migration/mappings/products.json"),
    ("migration%2Fmappings%2Fcustomers.JSON", "mapping", "customers", "customers",
     "migration/mappings/customers.JSON"),
    ("migration/data/products/spring+items.csv", "data", "products", "spring items",
     "migration/data/products/spring items.csv"),
    ("migration/data/inventory/store%2001.csv", "data", "inventory", "store 01",
     "migration/data/inventory/store 01.csv"),
    ("migration/data/stores/a%2Bb.csv", "data", "stores", "a+b", "migration/data/stores/a+b.csv"),
    ("migration/data/workers/2024%2Fjune.csv", "data", "workers", "2024/june", "migration/data/workers/2024/june.csv"),
])
def test_drop_keys_are_decoded_and_parsed(key, kind, entity, name, decoded):
    drop = parse_drop_key(key)
    assert (drop.kind, drop.entity, drop.name, drop.key, drop.reason) == (kind, entity, name, decoded, "")


@pytest.mark.parametrize(("key", "reason"), [
    ("uploads/products.csv", "not under migration/mappings/ or migration/data/"),
    ("migration/data/vendors/all.csv", "unknown entity 'vendors'; expected one of: "
                                       "stores, customers, workers, categories, products, inventory"),
    ("migration/mappings/price+lists.json", "unknown entity 'price lists'; expected one of: "
                                            "stores, customers, workers, categories, products, inventory"),
    ("migration/mappings/products.csv", "a mapping must be migration/mappings/<entity>.json"),
    ("migration/data/products/items.xlsx", "a data file must be migration/data/<entity>/<name>.csv"),
    ("migration/data/products/", "a folder, not a file"),
])
def test_unknown_drop_keys_say_why(key, reason):
    drop = parse_drop_key(key)
    assert (drop.kind, drop.reason) == ("unknown", reason)
