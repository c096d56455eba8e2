"""The ``/data/{entity}`` records (DOMAIN §2, §3, §5, §11, §12), one model each.

Each model holds every field of its record, the defaults and the rules within one record (not its
own parent, the root category, product line refs, validity). Whether a referenced record exists
is the storage layer's business. ``ENTITY_MODELS`` maps each entity of the contract to its model,
in the contract's order; ``models/parsing.py`` turns a model into the cleaned record that storage
keeps.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, create_model, model_validator

from chalicelib.domain.explosion import LineType, ProductLineKind
from chalicelib.domain.parameters import DEFAULT_PARAMETERS
from chalicelib.domain.pay import PayPeriodType
from chalicelib.domain.receipts import ReceiptOption
from chalicelib.models.base import (
    BOOLEAN,
    COUNTRY,
    CURRENCY,
    DATE,
    EMAIL,
    ID,
    ID_DESCRIPTION,
    ID_PATTERN,
    LANGUAGE,
    TIME_ZONE,
    StrictModel,
    choice,
    integer,
    matching,
    text,
)
from chalicelib.models.common import DAYS, NAME, PRICE, Record, RuleError, listing

__all__ = ["ENTITY_MODELS"]

LINE_TYPE = choice(*LineType)
_ID = re.compile(ID_PATTERN)


class OrgNode(Record):
    """An organization node (§2); a root has ``parent_id`` null."""

    id: ID
    name: NAME
    parent_id: ID | None

    def rules(self) -> list[RuleError]:
        return _not_own_parent(self)


def _not_own_parent(record: OrgNode | Category) -> list[RuleError]:
    if record.parent_id == record.id:
        return [(("parent_id",), "must not be the record's own id")]
    return []


class Address(Record):
    """A store's postal address, printed on receipts."""

    lines: listing(text(200), min_items=1, max_items=4)
    city: text(100)
    postal_code: text(20)
    country: COUNTRY


class Store(Record):
    """A store (§2): its legal entity, organization node, warehouse, zone and currency."""

    id: ID
    name: NAME
    legal_entity: ID
    org_node_id: ID
    warehouse_id: ID | None = Field(None, description="defaults to the store's id")
    email: EMAIL | None = None
    time_zone: TIME_ZONE | None = "UTC"
    currency: CURRENCY | None = "USD"
    address: Address | None = None

    @model_validator(mode="after")
    def _own_warehouse(self) -> Store:
        if self.warehouse_id is None:
            object.__setattr__(self, "warehouse_id", self.id)  # frozen: set once, while validating
        return self


class Category(Record):
    """A product category (§12); ``ALL`` is the one root."""

    id: ID
    name: NAME
    parent_id: ID | None
    revenue_account: ID | None = None

    def rules(self) -> list[RuleError]:
        errors = _not_own_parent(self)
        if self.id == "ALL" and self.parent_id is not None:
            errors.append((("parent_id",), "must be null for the root category ALL"))
        if self.id != "ALL" and self.parent_id is None:
            errors.append((("parent_id",), "is required for every category but the root ALL"))
        return errors


class Variant(Record):
    """A variant of a product (size, color)."""

    id: ID
    size: text(64) | None = None
    color: text(64) | None = None


class Product(Record):
    """A product (§12): price, category, the legal entities it is released to, its variants."""

    id: ID
    name: NAME
    category_id: ID
    price: PRICE
    released_to: listing(ID, max_items=200, distinct=True)
    stopped: BOOLEAN | None = False
    allow_negative_inventory: BOOLEAN | None = True
    variants: listing(Variant, unique="id") | None = []


class Customer(Record):
    """A customer and how they want their receipts."""

    id: ID
    name: NAME
    email: EMAIL | None = None
    language: LANGUAGE
    receipt_option: choice(*ReceiptOption)


class Worker(Record):
    """A worker of a store, paid per period at ``base_rate`` an hour."""

    id: ID
    name: NAME
    export_id: ID
    store_id: ID
    pay_period_type: choice(*PayPeriodType)
    base_rate: PRICE


class PayType(Record):
    """A pay type (``REG``, ``OT``) and its id in the payroll export."""

    id: ID
    description: NAME | None = None
    export_id: ID
    include_in_export: BOOLEAN


class ChannelLine(Record):
    """A channel of a delivery mode or assortment: exactly one of an organization node or a store."""

    org_node_id: ID | None = None
    store_id: ID | None = None

    def rules(self) -> list[RuleError]:
        if (self.org_node_id is None) == (self.store_id is None):
            return [((), "must have exactly one of org_node_id, store_id")]
        return []


class ProductLine(Record):
    """Products of a delivery mode or assortment: a category, product or ``product_id/variant_id``."""

    kind: choice(*ProductLineKind)
    ref: text(129)
    line_type: LINE_TYPE

    def rules(self) -> list[RuleError]:
        variant = self.kind == ProductLineKind.VARIANT
        parts = self.ref.split("/") if variant else [self.ref]
        if len(parts) == (2 if variant else 1) and all(_ID.fullmatch(part) for part in parts):
            return []
        if variant:
            return [(("ref",), f"must be product_id/variant_id for kind variant, each {ID_DESCRIPTION}")]
        return [(("ref",), f"must be a {self.kind} id: {ID_DESCRIPTION}")]


class AddressLine(Record):
    """A country, or a state of it, a delivery mode ships to or not."""

    country: COUNTRY
    state: text(64) | None = None
    line_type: LINE_TYPE


CHANNEL_LINES = listing(ChannelLine, max_items=2000)
PRODUCT_LINES = listing(ProductLine, max_items=2000)


class DeliveryMode(Record):
    """A delivery mode (§3) and where it applies: channels, products, addresses."""

    id: ID
    name: NAME
    channel_lines: CHANNEL_LINES
    product_lines: PRODUCT_LINES
    address_lines: listing(AddressLine, max_items=2000)


class Assortment(Record):
    """An assortment (§5): which products which channels carry from ``valid_from``."""

    read_only: ClassVar[dict[str, str]] = {
        "status": "is read-only: the system manages an assortment's status "
                  "(POST /assortments/{id}/publish to publish it)"}

    id: ID
    name: NAME
    valid_from: DATE
    valid_to: DATE | None = None
    channel_lines: CHANNEL_LINES
    product_lines: PRODUCT_LINES

    def rules(self) -> list[RuleError]:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            return [(("valid_to",), "must not be before valid_from")]
        return []


class ExportLine(Record):
    """A main account and the name it is exported under."""

    exported_account_name: NAME
    main_account: ID


class AccountExportProfile(Record):
    """How account activity is exported (§3): accounts, format, file prefix, from when."""

    id: ID
    name: NAME
    lines: listing(ExportLine, min_items=1, unique="main_account")
    file_format: choice("xml", "csv")
    file_prefix: matching(f"(?:{ID_PATTERN})?", f"empty or {ID_DESCRIPTION}")
    start_date: DATE
    legal_entity: ID | None = None
    time_zone: TIME_ZONE | None = "UTC"


Accounts = create_model(
    "Accounts", __base__=Record, __doc__="The main account of revenue by default, tax and each tender.",
    **{name: (ID | None, account) for name, account in DEFAULT_PARAMETERS["accounts"].items()},
)


class ReceiptTemplate(Record):
    """An operator's receipt layout for one language (HTML and text)."""

    html: text(100_000)
    text: text(100_000)


def _at_most_100_entries(value: Any) -> Any:
    if isinstance(value, dict) and len(value) > 100:
        raise ValueError("must have at most 100 entries")
    return value


_DEFAULT = DEFAULT_PARAMETERS


class Parameters(Record):
    """The retail parameters (§11), one record with id ``default``; unset values take their defaults."""

    id: ID
    receipt_subject: text(200) | None = _DEFAULT["receipt_subject"]
    receipt_file_name: ID | None = _DEFAULT["receipt_file_name"]
    company_language: LANGUAGE | None = _DEFAULT["company_language"]
    receipt_templates: Annotated[dict[LANGUAGE, ReceiptTemplate], Field(max_length=100),
                                 BeforeValidator(_at_most_100_entries)] | None = _DEFAULT["receipt_templates"]
    accounts: Accounts | None = Accounts()
    try_count: integer(0, 100) | None = _DEFAULT["try_count"]
    stale_after_hours: integer(1, 24 * 365) | None = _DEFAULT["stale_after_hours"]
    download_session_retention_days: DAYS | None = _DEFAULT["download_session_retention_days"]
    run_history_retention_days: DAYS | None = _DEFAULT["run_history_retention_days"]
    email_max_attempts: integer(1, 100) | None = _DEFAULT["email_max_attempts"]
    email_expiry_days: DAYS | None = _DEFAULT["email_expiry_days"]
    max_backdated_days: DAYS | None = _DEFAULT["max_backdated_days"]

    def rules(self) -> list[RuleError]:
        if self.id != "default":
            return [(("id",), "must be default (there is one parameters record)")]
        return []


ENTITY_MODELS: dict[str, type[StrictModel]] = {
    "org-nodes": OrgNode,
    "stores": Store,
    "categories": Category,
    "products": Product,
    "customers": Customer,
    "workers": Worker,
    "pay-types": PayType,
    "delivery-modes": DeliveryMode,
    "assortments": Assortment,
    "account-export-profiles": AccountExportProfile,
    "parameters": Parameters,
}
"""Entity name → model, in the order of the contract."""
