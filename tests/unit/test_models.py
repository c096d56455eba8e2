"""The record models: one valid example per record type, then the rules, one at a time."""
from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from chalicelib.domain.errors import FieldError, ValidationError
from chalicelib.domain.parameters import DEFAULT_PARAMETERS, parameters_with_defaults
from chalicelib.models.parsing import parse_record, parse_records
from chalicelib.models.records import ENTITY_MODELS
from chalicelib.models.uploads import UPLOAD_MODELS

VALID: dict[str, dict] = {
    "org-nodes": {"id": "US-WEST", "name": "West", "parent_id": "US"},
    "stores": {"id": "S001", "name": "Seattle", "legal_entity": "USRT", "org_node_id": "US-WEST"},
    "categories": {"id": "SHOES", "name": "Shoes", "parent_id": "ALL"},
    "products": {
        "id": "P-100", "name": "Runner", "category_id": "SHOES", "price": "59.90", "released_to": ["USRT"],
    },
    "customers": {"id": "C1", "name": "Ann", "email": "ann@example.com", "language": "en-us",
                  "receipt_option": "Email"},
    "workers": {"id": "W1", "name": "Bob", "export_id": "E-1", "store_id": "S001",
                "pay_period_type": "weekly", "base_rate": "18.50"},
    "pay-types": {"id": "REG", "export_id": "100", "include_in_export": True},
    "delivery-modes": {
        "id": "GROUND", "name": "Ground",
        "channel_lines": [{"org_node_id": "US"}, {"store_id": "S001"}],
        "product_lines": [
            {"kind": "category", "ref": "ALL", "line_type": "Include"},
            {"kind": "variant", "ref": "P-100/42-BLK", "line_type": "Exclude"},
        ],
        "address_lines": [
            {"country": "USA", "line_type": "Include"},
            {"country": "USA", "state": "AK", "line_type": "Exclude"},
        ],
    },
    "assortments": {
        "id": "A1", "name": "Summer", "valid_from": "2026-06-01", "valid_to": "2026-08-31",
        "channel_lines": [{"store_id": "S001"}],
        "product_lines": [{"kind": "product", "ref": "P-100", "line_type": "Include"}],
    },
    "account-export-profiles": {
        "id": "RE-DEFAULT", "name": "Default", "file_format": "xml", "file_prefix": "acct-",
        "start_date": "2026-11-01",
        "lines": [{"exported_account_name": "4000-Sales", "main_account": "401100"}],
    },
    "parameters": {"id": "default"},
    "transactions": {
        "transaction_id": "S001-T1-0001", "store_id": "S001", "terminal_id": "T1", "receipt_id": "R0001",
        "business_date": "2026-11-03", "created_at": "2026-11-03T10:15:00+01:00",
        "kind": "Sale", "status": "Completed",
        "lines": [
            {"line_no": 1, "product_id": "P-100", "qty": "2", "unit_price": "10.00",
             "net_amount": "20.00", "tax_amount": "1.60"},
            {"line_no": 2, "product_id": "P-200", "variant_id": "M", "qty": "1", "unit_price": "5.00",
             "net_amount": "5.00", "tax_amount": "0.40"},
        ],
        "payments": [{"tender": "card", "amount": "20.00"}, {"tender": "cash", "amount": "7.00"}],
    },
    "time-registrations": {"registration_id": "R1", "worker_id": "W1",
                           "clock_in": "2026-11-03T08:00:00Z", "clock_out": "2026-11-03T16:30:00Z"},
    "status-messages": {"session_id": "SES-1", "status": "Applied", "at": "2026-11-03T09:00:00Z"},
    "inventory": {"store_id": "S001", "product_id": "P-100", "qty": "12"},
}

# A required field and a field of the wrong type for every record type.
REQUIRED = {entity: next(iter(item)) for entity, item in VALID.items()}
WRONG_TYPE = {
    "org-nodes": ("name", 5, "must be a string"),
    "stores": ("org_node_id", ["US"], "must be a string"),
    "categories": ("revenue_account", 401100, "must be a string"),
    "products": ("stopped", "false", "must be a boolean (true or false)"),
    "customers": ("email", True, "must be a string"),
    "workers": ("base_rate", True, "must be a number"),
    "pay-types": ("include_in_export", 1, "must be a boolean (true or false)"),
    "delivery-modes": ("channel_lines", {"store_id": "S1"}, "must be a list"),
    "assortments": ("valid_from", 20260601, "must be a date YYYY-MM-DD"),
    "account-export-profiles": ("lines", "401100", "must be a list"),
    "parameters": ("try_count", "3", "must be an integer"),
    "transactions": ("lines", None, "must not be null"),
    "time-registrations": ("clock_in", 1762156800, (
        "must be an ISO 8601 date-time with zone, e.g. 2026-11-03T09:15:00Z or 2026-11-03T10:15:00+01:00")),
    "status-messages": ("rows_affected", "10", "must be an integer"),
    "inventory": ("qty", [], "must be a number"),
}


def valid(entity: str, **changes) -> dict:
    item = copy.deepcopy(VALID[entity])
    item.update(changes)
    return item


def errors_of(entity: str, item, path: str = "") -> dict[str, str]:
    with pytest.raises(ValidationError) as raised:
        parse_record(entity, item, path)
    assert raised.value.errors
    return {e.path: e.message for e in raised.value.errors}


def clean(entity: str, item) -> dict:
    return parse_record(entity, item)


# ---------------------------------------------------------------------------
# Every record type
# ---------------------------------------------------------------------------


def test_every_record_type_has_an_example():
    assert set(VALID) == set(ENTITY_MODELS) | set(UPLOAD_MODELS)
    assert tuple(ENTITY_MODELS) == (
        "org-nodes", "stores", "categories", "products", "customers", "workers", "pay-types",
        "delivery-modes", "assortments", "account-export-profiles", "parameters",
    )


@pytest.mark.parametrize("entity", list(VALID))
def test_valid_example_passes_and_does_not_change_the_input(entity):
    item = valid(entity)
    before = copy.deepcopy(item)
    cleaned = clean(entity, item)
    assert item == before
    assert set(item) <= set(cleaned)


@pytest.mark.parametrize("entity", list(VALID))
def test_unknown_field(entity):
    assert errors_of(entity, valid(entity, colour="red"), "items[0]") == {"items[0].colour": "unknown field"}


@pytest.mark.parametrize("entity", list(VALID))
def test_missing_required(entity):
    item = valid(entity)
    del item[REQUIRED[entity]]
    assert errors_of(entity, item) == {REQUIRED[entity]: "is required"}


@pytest.mark.parametrize("entity", list(VALID))
def test_wrong_type(entity):
    name, value, message = WRONG_TYPE[entity]
    assert errors_of(entity, valid(entity, **{name: value})) == {name: message}


@pytest.mark.parametrize("entity", list(VALID))
def test_record_must_be_an_object(entity):
    assert errors_of(entity, ["not", "an", "object"], "items[2]") == {"items[2]": "must be an object"}


def test_unknown_entity_is_a_value_error():
    with pytest.raises(ValueError, match="unknown entity 'widgets'"):
        parse_record("widgets", {})
    with pytest.raises(ValueError):
        parse_records("widgets", [])


def test_every_error_is_reported_at_once():
    item = valid("products", price=1.5, stopped="no", extra=1)
    del item["name"]
    assert set(errors_of("products", item)) == {"name", "price", "stopped", "extra"}


# ---------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------


def test_store_warehouse_defaults_to_store_id():
    assert clean("stores", valid("stores"))["warehouse_id"] == "S001"
    assert clean("stores", valid("stores", warehouse_id="WH-1"))["warehouse_id"] == "WH-1"
    assert clean("stores", valid("stores", warehouse_id=None))["warehouse_id"] == "S001"


def test_product_defaults():
    product = clean("products", valid("products"))
    assert product["stopped"] is False
    assert product["allow_negative_inventory"] is True
    assert product["variants"] == []
    assert product["price"] == Decimal("59.90")


def test_optional_fields_without_default_are_none():
    assert clean("stores", valid("stores"))["email"] is None
    assert clean("assortments", valid("assortments", valid_to=None))["valid_to"] is None
    assert clean("pay-types", valid("pay-types"))["description"] is None


def test_parameters_defaults():
    cleaned = clean("parameters", {"id": "default", "try_count": 0, "accounts": {"tax": "222100"}})
    assert cleaned["try_count"] == 0
    assert cleaned["receipt_file_name"] == "receipt"
    assert cleaned["company_language"] == "en-us"
    assert cleaned["receipt_templates"] == {}
    assert cleaned["accounts"] == {**DEFAULT_PARAMETERS["accounts"], "tax": "222100"}
    assert set(cleaned) == set(DEFAULT_PARAMETERS)
    assert "{store_name}" in cleaned["receipt_subject"]


def test_parameters_defaults_are_not_shared():
    cleaned = clean("parameters", {"id": "default"})
    cleaned["accounts"]["cash"] = "999"
    cleaned["receipt_templates"]["en-us"] = {"html": "x", "text": "x"}
    assert DEFAULT_PARAMETERS["accounts"]["cash"] == "110100"
    assert DEFAULT_PARAMETERS["receipt_templates"] == {}


def test_parameters_with_defaults():
    assert parameters_with_defaults(None) == DEFAULT_PARAMETERS
    merged = parameters_with_defaults({"id": "default", "email_expiry_days": 7, "accounts": {"card": "110250"},
                                       "try_count": None})
    assert merged["email_expiry_days"] == 7
    assert merged["try_count"] == 3
    assert merged["accounts"]["card"] == "110250"
    assert merged["accounts"]["cash"] == "110100"
    merged["accounts"]["cash"] = "x"
    assert DEFAULT_PARAMETERS["accounts"]["cash"] == "110100"
    assert {"revenue_default", "tax", "cash", "card", "gift_card"} == set(DEFAULT_PARAMETERS["accounts"])
    for name, value in {"receipt_file_name": "receipt", "company_language": "en-us", "try_count": 3,
                        "stale_after_hours": 24, "download_session_retention_days": 30,
                        "run_history_retention_days": 90, "email_max_attempts": 3,
                        "email_expiry_days": 30}.items():
        assert DEFAULT_PARAMETERS[name] == value


def test_parameters_rules():
    assert errors_of("parameters", {"id": "main"}) == {"id": "must be default (there is one parameters record)"}
    assert errors_of("parameters", {"id": "default", "try_count": -1}) == {"try_count": "must be between 0 and 100"}
    assert errors_of("parameters", {"id": "default", "accounts": {"bank": "1"}}) == {
        "accounts.bank": "unknown field"}
    templates = {"en-us": {"html": "<p>{store_name}</p>", "text": "{store_name}"}, "DE": {"html": "x"}}
    assert errors_of("parameters", {"id": "default", "receipt_templates": templates}) == {
        "receipt_templates.DE": "must be a lowercase language code such as en or en-us",
        "receipt_templates.DE.text": "is required",
    }


# ---------------------------------------------------------------------------
# Ids, text, enums
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "a b", "x" * 65, "P/1", "ÄÖ", "*"])
def test_bad_ids(bad):
    assert errors_of("stores", valid("stores", id=bad)) == {
        "id": "must be 1-64 characters of letters, digits, '-', '_', '.'"}


def test_good_ids():
    clean("stores", valid("stores", id="a.B-c_9", warehouse_id="x" * 64))


def test_blank_name():
    assert errors_of("stores", valid("stores", name="   ")) == {"name": "must not be blank"}


@pytest.mark.parametrize(("entity", "name", "message"), [
    ("customers", "receipt_option", "must be one of: POS, Email, Both"),
    ("workers", "pay_period_type", "must be one of: weekly, biweekly, monthly"),
    ("account-export-profiles", "file_format", "must be one of: xml, csv"),
    ("transactions", "kind", "must be one of: Sale, Return"),
    ("transactions", "status", "must be one of: Completed, Voided, Training"),
])
def test_enum_messages_list_allowed_values(entity, name, message):
    assert errors_of(entity, valid(entity, **{name: "Other"})) == {name: message}


def test_status_message_statuses():
    for status in ("Requested", "Downloaded", "DownloadFailed", "ApplyFailed"):
        clean("status-messages", valid("status-messages", status=status))
    message = errors_of("status-messages", valid("status-messages", status="applied"))["status"]
    assert message.startswith("must be one of: Started, Available, Requested")


def test_status_message_optional_fields():
    cleaned = clean("status-messages", valid("status-messages", message="ok", rows_affected=0))
    assert cleaned["rows_affected"] == 0
    assert errors_of("status-messages", valid("status-messages", rows_affected=-1)) == {
        "rows_affected": "must be between 0 and 1000000000000"}


def test_language_and_email():
    assert errors_of("customers", valid("customers", language="en-US")) == {
        "language": "must be a lowercase language code such as en or en-us"}
    clean("customers", valid("customers", language="fr"))
    for bad in ("ann", "ann@example", "a@b@example.com", "ann @example.com", "ann@.com"):
        assert "email" in errors_of("customers", valid("customers", email=bad)), bad
    clean("customers", valid("customers", email="a.b+c@mail.example.co.uk"))
    clean("customers", valid("customers", email=None, receipt_option="POS"))


def test_booleans_must_be_real_booleans():
    assert errors_of("products", valid("products", allow_negative_inventory=0)) == {
        "allow_negative_inventory": "must be a boolean (true or false)"}
    assert clean("products", valid("products", stopped=True))["stopped"] is True


def test_required_field_sent_as_null():
    assert errors_of("stores", valid("stores", name=None)) == {"name": "must not be null"}


# ---------------------------------------------------------------------------
# Decimals
# ---------------------------------------------------------------------------


def test_decimal_string_is_kept_exact():
    product = clean("products", valid("products", price="12.30"))
    assert product["price"] == Decimal("12.30")
    assert str(product["price"]) == "12.30"


def test_decimal_from_json_parsed_with_decimal():
    body = json.loads('{"price": 12.30, "base_rate": 20}', parse_float=Decimal)
    assert str(clean("products", valid("products", price=body["price"]))["price"]) == "12.30"
    assert clean("workers", valid("workers", base_rate=body["base_rate"]))["base_rate"] == Decimal(20)
    assert str(clean("products", valid("products", price=Decimal("1E+2")))["price"]) == "100"


def test_float_is_rejected():
    assert errors_of("products", valid("products", price=0.1 + 0.2)) == {
        "price": 'must not be a float; send a decimal string such as "12.30"'}
    assert "price" in errors_of("products", valid("products", price=12.5))


@pytest.mark.parametrize("bad", ["NaN", "Infinity", Decimal("NaN"), Decimal("-Infinity"), float("nan")])
def test_nan_and_infinity_are_rejected(bad):
    assert "price" in errors_of("products", valid("products", price=bad))


@pytest.mark.parametrize("bad", ["12,30", "1e3", " 12", "12.", ".5", "", "twelve"])
def test_malformed_decimal_strings(bad):
    assert errors_of("products", valid("products", price=bad)) == {
        "price": 'must be a decimal number such as "12.30"'}


def test_decimal_places():
    assert errors_of("products", valid("products", price="12.345")) == {
        "price": "must have at most 2 decimal places"}
    assert str(clean("products", valid("products", price="12.300"))["price"]) == "12.30"
    assert str(clean("inventory", valid("inventory", qty="1.2345"))["qty"]) == "1.2345"
    assert errors_of("inventory", valid("inventory", qty="1.23456")) == {"qty": "must have at most 4 decimal places"}


def test_decimal_bounds():
    assert errors_of("products", valid("products", price="-0.01")) == {"price": "must be at least 0"}
    assert errors_of("workers", valid("workers", base_rate="-1")) == {"base_rate": "must be at least 0"}
    assert errors_of("products", valid("products", price="1" + "0" * 18)) == {"price": "is too large"}
    assert str(clean("inventory", valid("inventory", qty="-0.00"))["qty"]) == "0.00"
    assert clean("inventory", valid("inventory", qty=-3))["qty"] == Decimal(-3)


# ---------------------------------------------------------------------------
# Dates and date-times
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["2026-02-30", "2026-13-01", "2025-02-29"])
def test_unreal_dates(bad):
    assert errors_of("assortments", valid("assortments", valid_from=bad, valid_to=None)) == {
        "valid_from": "is not a real calendar date"}


@pytest.mark.parametrize("bad", ["20260601", "2026-6-1", "2026-06-01T00:00:00Z", "01/06/2026"])
def test_malformed_dates(bad):
    assert errors_of("assortments", valid("assortments", valid_from=bad, valid_to=None)) == {
        "valid_from": "must be a date YYYY-MM-DD"}


def test_leap_day():
    clean("assortments", valid("assortments", valid_from="2028-02-29", valid_to="2028-02-29"))


def test_naive_datetime_is_rejected():
    message = errors_of("status-messages", valid("status-messages", at="2026-11-03T09:00:00"))["at"]
    assert message.startswith("must include a time zone")


@pytest.mark.parametrize("bad", ["2026-11-03 09:00:00Z", "2026-11-03T09:00Z", "2026-11-31T09:00:00Z",
                                 "2026-11-03T25:00:00Z", "2026-11-03T09:00:00+24:00", "yesterday"])
def test_malformed_datetimes(bad):
    assert "at" in errors_of("status-messages", valid("status-messages", at=bad))


@pytest.mark.parametrize(("given", "stored"), [
    ("2026-11-03T09:00:00Z", "2026-11-03T09:00:00.000Z"),
    ("2026-11-03T10:15:00+01:00", "2026-11-03T09:15:00.000Z"),
    ("2026-11-03T01:00:00.1234567-05:00", "2026-11-03T06:00:00.123Z"),
    ("2026-12-31T23:30:00-01:00", "2027-01-01T00:30:00.000Z"),
])
def test_datetimes_are_normalised_to_utc(given, stored):
    assert clean("status-messages", valid("status-messages", at=given))["at"] == stored


def test_normalised_datetimes_sort_in_time_order():
    given = ["2026-11-03T09:00:00.5Z", "2026-11-03T09:00:00Z", "2026-11-03T10:00:00+01:00"]
    stored = [clean("status-messages", valid("status-messages", at=at))["at"] for at in given]
    assert sorted(stored) == [stored[2], stored[1], stored[0]]


# ---------------------------------------------------------------------------
# Entity rules
# ---------------------------------------------------------------------------


def test_org_node_root_and_parent():
    assert clean("org-nodes", valid("org-nodes", parent_id=None))["parent_id"] is None
    item = valid("org-nodes")
    del item["parent_id"]
    assert errors_of("org-nodes", item) == {"parent_id": "is required (null if none)"}
    assert errors_of("org-nodes", valid("org-nodes", parent_id="US-WEST")) == {
        "parent_id": "must not be the record's own id"}


def test_category_root():
    assert clean("categories", {"id": "ALL", "name": "All", "parent_id": None})["parent_id"] is None
    assert errors_of("categories", {"id": "ALL", "name": "All", "parent_id": "X"}) == {
        "parent_id": "must be null for the root category ALL"}
    assert errors_of("categories", valid("categories", parent_id=None)) == {
        "parent_id": "is required for every category but the root ALL"}


def test_product_variants():
    product = clean("products", valid("products", variants=[{"id": "42-BLK", "size": "42", "color": "Black"},
                                                             {"id": "43"}]))
    assert product["variants"][1] == {"id": "43", "size": None, "color": None}
    assert errors_of("products", valid("products", variants=[{"id": "42"}, {"id": "43"}, {"id": "42"}])) == {
        "variants[2].id": "duplicate id '42' (also at variants[0])"}
    assert errors_of("products", valid("products", variants=[{"id": "42", "weight": 1}])) == {
        "variants[0].weight": "unknown field"}


def test_list_and_map_sizes():
    lines = [{"store_id": f"S{i}"} for i in range(2001)]
    assert errors_of("delivery-modes", valid("delivery-modes", channel_lines=lines)) == {
        "channel_lines": "must have at most 2000 items"}
    languages = [first + second for first in "abcde" for second in "abcdefghijklmnopqrstuvwxyz"][:101]
    templates = {language: {"html": "x", "text": "x"} for language in languages}
    assert errors_of("parameters", {"id": "default", "receipt_templates": templates}) == {
        "receipt_templates": "must have at most 100 entries"}
    assert errors_of("parameters", {"id": "default", "receipt_templates": []}) == {
        "receipt_templates": "must be an object"}


def test_product_released_to():
    assert clean("products", valid("products", released_to=[]))["released_to"] == []
    assert errors_of("products", valid("products", released_to=["USRT", "bad id"])) == {
        "released_to[1]": "must be 1-64 characters of letters, digits, '-', '_', '.'"}
    assert errors_of("products", valid("products", released_to=["USRT", "USRT"])) == {
        "released_to[1]": "duplicate value 'USRT' (also at released_to[0])"}


def test_channel_lines_need_exactly_one_target():
    lines = [{"org_node_id": "US"}, {}, {"org_node_id": "US", "store_id": "S1"}, {"store_id": None}]
    assert errors_of("delivery-modes", valid("delivery-modes", channel_lines=lines)) == {
        f"channel_lines[{i}]": "must have exactly one of org_node_id, store_id" for i in (1, 2, 3)}
    cleaned = clean("assortments", valid("assortments"))
    assert cleaned["channel_lines"] == [{"org_node_id": None, "store_id": "S001"}]


def test_product_line_refs():
    lines = [
        {"kind": "variant", "ref": "P-100", "line_type": "Include"},
        {"kind": "product", "ref": "P-100/42", "line_type": "Include"},
        {"kind": "variant", "ref": "P-100/42/x", "line_type": "Include"},
        {"kind": "category", "ref": "SHOES", "line_type": "Maybe"},
        {"kind": "brand", "ref": "ACME", "line_type": "Include"},
    ]
    assert errors_of("assortments", valid("assortments", product_lines=lines)) == {
        "product_lines[0].ref": "must be product_id/variant_id for kind variant, "
                                "each 1-64 characters of letters, digits, '-', '_', '.'",
        "product_lines[1].ref": "must be a product id: 1-64 characters of letters, digits, '-', '_', '.'",
        "product_lines[2].ref": "must be product_id/variant_id for kind variant, "
                                "each 1-64 characters of letters, digits, '-', '_', '.'",
        "product_lines[3].line_type": "must be one of: Include, Exclude",
        "product_lines[4].kind": "must be one of: category, product, variant",
    }


def test_address_lines():
    lines = [{"country": "US", "line_type": "Include"}, {"country": "us", "line_type": "Include"},
             {"country": "USAA", "state": "AK", "line_type": "Exclude"}]
    assert errors_of("delivery-modes", valid("delivery-modes", address_lines=lines)) == {
        f"address_lines[{i}].country": "must be an uppercase ISO 3166-1 alpha-2 or alpha-3 country code "
                                       "such as US or USA" for i in (1, 2)}
    cleaned = clean("delivery-modes", valid("delivery-modes"))
    assert cleaned["address_lines"][0] == {"country": "USA", "state": None, "line_type": "Include"}


def test_assortment_status_is_read_only():
    assert errors_of("assortments", valid("assortments", status="Published")) == {
        "status": "is read-only: the system manages an assortment's status "
                  "(POST /assortments/{id}/publish to publish it)"}


def test_assortment_validity():
    assert errors_of("assortments", valid("assortments", valid_to="2026-05-31")) == {
        "valid_to": "must not be before valid_from"}
    clean("assortments", valid("assortments", valid_to="2026-06-01"))
    item = valid("assortments")
    del item["valid_to"]
    assert clean("assortments", item)["valid_to"] is None


def test_account_export_profile_lines():
    assert errors_of("account-export-profiles", valid("account-export-profiles", lines=[])) == {
        "lines": "must have at least 1 item"}
    lines = [{"exported_account_name": "Sales", "main_account": "401100"},
             {"exported_account_name": "Sales again", "main_account": "401100"}]
    assert errors_of("account-export-profiles", valid("account-export-profiles", lines=lines)) == {
        "lines[1].main_account": "duplicate main_account '401100' (also at lines[0])"}
    assert errors_of("account-export-profiles", valid("account-export-profiles", lines=[{"main_account": "1"}])) == {
        "lines[0].exported_account_name": "is required"}
    assert clean("account-export-profiles", valid("account-export-profiles", file_prefix=""))["file_prefix"] == ""
    assert "file_prefix" in errors_of("account-export-profiles", valid("account-export-profiles", file_prefix="a/b"))


def test_time_registration_rules():
    assert errors_of("time-registrations", valid("time-registrations", clock_out="2026-11-03T08:00:00Z")) == {
        "clock_out": "must be after clock_in"}
    assert errors_of("time-registrations", valid("time-registrations", clock_out="2026-11-04T08:00:01Z")) == {
        "clock_out": "must be at most 24 hours after clock_in"}
    # 24 h exactly, across a zone change
    clean("time-registrations", valid("time-registrations", clock_in="2026-11-03T08:00:00+01:00",
                                      clock_out="2026-11-04T07:00:00Z"))
    assert errors_of("time-registrations", valid("time-registrations", approved=True)) == {
        "approved": "is read-only: an operator approves registrations (POST /time-registrations/approve)"}


def test_inventory_variant_is_optional():
    assert clean("inventory", valid("inventory"))["variant_id"] is None
    assert clean("inventory", valid("inventory", variant_id="M"))["variant_id"] == "M"


# ---------------------------------------------------------------------------
# Transactions
# ---------------------------------------------------------------------------


def test_transaction_is_cleaned():
    t = clean("transactions", valid("transactions"))
    assert t["created_at"] == "2026-11-03T09:15:00.000Z"
    assert t["lines"][0]["qty"] == Decimal(2)
    assert t["lines"][0]["variant_id"] is None
    assert t["customer_id"] is None and t["receipt_email"] is None


def test_transaction_needs_a_line():
    assert errors_of("transactions", valid("transactions", lines=[])) == {"lines": "must have at least 1 item"}


def test_transaction_nested_paths():
    t = valid("transactions")
    t["lines"][1]["qty"] = 1.0
    t["payments"][0]["tender"] = "cheque"
    assert errors_of("transactions", t, "transactions[4]") == {
        "transactions[4].lines[1].qty": 'must not be a float; send a decimal string such as "12.30"',
        "transactions[4].payments[0].tender": "must be one of: cash, card, gift_card",
    }


def test_transaction_line_numbers_are_unique():
    t = valid("transactions")
    t["lines"][1]["line_no"] = 1
    assert errors_of("transactions", t) == {"lines[1].line_no": "duplicate line_no 1 (also at lines[0])"}


def test_totals_off_by_two_cents_are_rejected():
    t = valid("transactions")
    t["payments"][1]["amount"] = "7.02"
    assert errors_of("transactions", t) == {
        "payments": "must add up to the lines total (net + tax) 27.00, got 27.02"}


def test_totals_within_a_cent_are_accepted():
    t = valid("transactions")
    t["payments"][1]["amount"] = "6.99"  # one cent short: cash rounding, booked to the rounding account
    clean("transactions", t)
    t["payments"][1]["amount"] = "7.01"
    clean("transactions", t)


def test_line_amounts_are_whole_cents():
    t = valid("transactions")
    t["lines"][0]["tax_amount"] = "1.605"
    assert errors_of("transactions", t) == {"lines[0].tax_amount": "must have at most 2 decimal places"}


def test_payments_are_whole_cents():
    t = valid("transactions")
    t["payments"][1]["amount"] = "7.005"
    assert errors_of("transactions", t) == {"payments[1].amount": "must have at most 2 decimal places"}


def test_voided_transaction_needs_no_payment():
    clean("transactions", valid("transactions", status="Voided", payments=[]))
    assert "payments" in errors_of("transactions", valid("transactions", status="Training", payments=[]))


def _return() -> dict:
    return valid(
        "transactions", kind="Return",
        lines=[{"line_no": 1, "product_id": "P-100", "qty": "-1", "unit_price": "10.00",
                "net_amount": "-10.00", "tax_amount": "-0.80"}],
        payments=[{"tender": "card", "amount": "-10.80"}],
    )


def test_return_sign_convention():
    t = clean("transactions", _return())
    assert t["lines"][0]["qty"] == Decimal(-1)
    assert t["payments"][0]["amount"] == Decimal("-10.80")


def test_return_with_positive_amounts_is_rejected():
    t = _return()
    t["lines"][0].update(qty="1", net_amount="10.00", tax_amount="0.80")
    t["payments"][0]["amount"] = "10.80"
    assert errors_of("transactions", t) == {
        "lines[0].qty": "must be negative for a Return",
        "lines[0].net_amount": "must not be positive for a Return",
        "lines[0].tax_amount": "must not be positive for a Return",
        "payments[0].amount": "must not be positive for a Return",
    }


def test_return_unit_price_is_not_negative():
    t = _return()
    t["lines"][0]["unit_price"] = "-10.00"
    assert errors_of("transactions", t) == {"lines[0].unit_price": "must be at least 0"}


def test_sale_with_negative_amounts_is_rejected():
    t = valid("transactions")
    t["lines"] = [{"line_no": 1, "product_id": "P-100", "qty": "-1", "unit_price": "10.00",
                   "net_amount": "-10.00", "tax_amount": "0.00"}]
    t["payments"] = [{"tender": "cash", "amount": "-10.00"}]
    assert errors_of("transactions", t) == {
        "lines[0].qty": "must be positive for a Sale",
        "lines[0].net_amount": "must not be negative for a Sale",
        "payments[0].amount": "must not be negative for a Sale",
    }


def test_zero_quantity_is_rejected():
    t = valid("transactions")
    t["lines"][0]["qty"] = "0"
    assert errors_of("transactions", t)["lines[0].qty"] == "must be positive for a Sale"


# ---------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------


def _products(n: int) -> list[dict]:
    return [valid("products", id=f"P-{i:03d}", price=f"{i}.99") for i in range(n)]


def test_batch_returns_cleaned_records():
    cleaned = parse_records("products", _products(100))
    assert len(cleaned) == 100
    assert cleaned[57]["price"] == Decimal("57.99")
    assert cleaned[0]["variants"] == []


def test_batch_reports_the_bad_item_by_index():
    items = _products(100)
    items[57]["price"] = 57.99
    with pytest.raises(ValidationError) as raised:
        parse_records("products", items)
    assert raised.value.errors == [
        FieldError("items[57].price", 'must not be a float; send a decimal string such as "12.30"')]


def test_batch_reports_every_error():
    items = _products(10)
    items[2]["stopped"] = "yes"
    items[8] = "P-8"
    with pytest.raises(ValidationError) as raised:
        parse_records("products", items, path="body.items")
    assert [e.path for e in raised.value.errors] == ["body.items[2].stopped", "body.items[8]"]


def test_batch_rejects_duplicate_ids():
    items = _products(5)
    items[4]["id"] = "P-001"
    with pytest.raises(ValidationError) as raised:
        parse_records("products", items)
    assert raised.value.errors == [FieldError("items[4].id", "duplicate id 'P-001' (also at items[1])")]


def test_batch_rejects_duplicate_transaction_ids():
    items = [valid("transactions"), valid("transactions")]
    with pytest.raises(ValidationError) as raised:
        parse_records("transactions", items, path="transactions")
    assert raised.value.errors == [FieldError(
        "transactions[1].transaction_id", "duplicate transaction_id 'S001-T1-0001' (also at transactions[0])")]


def test_batch_rejects_duplicate_inventory_rows():
    items = [valid("inventory"), valid("inventory", variant_id="M"), valid("inventory", qty="3")]
    with pytest.raises(ValidationError) as raised:
        parse_records("inventory", items)
    assert [e.path for e in raised.value.errors] == ["items[2]"]


def test_batch_allows_repeated_status_messages():
    assert len(parse_records("status-messages", [valid("status-messages")] * 2, path="messages")) == 2


def test_batch_must_be_a_list():
    with pytest.raises(ValidationError) as raised:
        parse_records("stores", {"id": "S1"})
    assert raised.value.errors == [FieldError("items", "must be a list")]
    assert parse_records("stores", []) == []


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def test_app_and_the_authorizer_load_no_model():
    """The models (and pydantic) load when a route first needs them, never on a cold start."""
    import subprocess
    import sys

    code = ("import sys, app, chalicelib.auth, chalicelib.jobs.parameters; "
            "print(sorted(m for m in sys.modules if m.startswith(('chalicelib.models', 'pydantic'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
