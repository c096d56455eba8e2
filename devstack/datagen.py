"""A deterministic generator of a realistic retailer: master data, POS transactions and time
registrations, shaped exactly as the ``/data`` records (DOMAIN §12) and store uploads (§10, §2).

Everything comes from ``random.Random`` instances seeded from ``seed`` (never the global random
state) and every date is relative to ``end_date`` (never the wall clock, except that
``generate()`` without ``end_date`` uses ``date.today()``). Same arguments, same output.

Example::

    retailer = generate("S", seed=42, end_date=date.today())
    for entity, items in retailer.master_data().items():
        put(f"/data/{entity}", {"items": items})
    for tx in transactions(retailer):           # business dates end the day before end_date
        upload(tx["store_id"], tx)
    registrations = list(time_registrations(retailer))

Each section (stores, products, ...) and each store × business date draws from its own
``Random`` seeded with a string derived from ``seed``, so one store's day can be regenerated
alone and changing one count does not reshuffle unrelated data.

Sign convention (as the schema module): Sale lines carry positive quantities and amounts;
Return lines negative quantities and amounts with a positive ``unit_price``, and their refund
payments are negative. Money is a decimal string with 2 places; tax is 8 % of the line's net
amount, rounded half-up.
"""
from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

__all__ = [
    "LEGAL_ENTITIES",
    "SCALES",
    "TAX_RATE",
    "Retailer",
    "Scale",
    "generate",
    "time_registrations",
    "transactions",
]

TAX_RATE = Decimal("0.08")
_CENT = Decimal("0.01")

ROOT_NODE = "HQ"
ROOT_CATEGORY = "ALL"
US, CA = "USRT", "CART"
LEGAL_ENTITIES = (US, CA)

ACCOUNTS = {
    "revenue_default": "401000",
    "tax": "222000",
    "cash": "110100",
    "card": "110200",
    "gift_card": "220500",
}


@dataclass(frozen=True)
class Scale:
    """How big a generated retailer is; ``days`` and ``per_store_per_day`` are the defaults of
    ``transactions()`` and ``time_registrations()``."""

    stores: int
    products: int
    days: int
    per_store_per_day: int
    workers: int
    customers: int
    regions: int  # the last region is always the Canadian one (legal entity CART)
    districts_per_region: int


SCALES: dict[str, Scale] = {
    "S": Scale(stores=6, products=200, days=7, per_store_per_day=15, workers=20,
               customers=180, regions=3, districts_per_region=1),
    "M": Scale(stores=50, products=5_000, days=30, per_store_per_day=40, workers=200,
               customers=1_500, regions=5, districts_per_region=2),
    "L": Scale(stores=300, products=100_000, days=7, per_store_per_day=40, workers=1_500,
               customers=5_000, regions=6, districts_per_region=5),
}


@dataclass
class Retailer:
    """A generated retailer: plain dicts shaped exactly as the ``/data`` records (DOMAIN §12).

    Assortments carry no ``status`` (the system manages it); ``published_assortment_ids`` are
    the ones a demo should publish (the rest stay Draft). ``end_date`` is the "today" the data
    was generated for; ``transactions()`` and ``time_registrations()`` default to it.
    """

    org_nodes: list[dict]
    stores: list[dict]
    categories: list[dict]
    products: list[dict]
    customers: list[dict]
    workers: list[dict]
    pay_types: list[dict]
    delivery_modes: list[dict]
    assortments: list[dict]
    account_export_profiles: list[dict]
    parameters: dict
    published_assortment_ids: list[str] = field(default_factory=list)
    scale: str = "S"
    seed: int = 42
    end_date: date = field(default_factory=date.today)

    def master_data(self) -> dict[str, list[dict]]:
        """Every ``/data`` entity's records keyed by entity name, referenced entities first."""
        return {
            "org-nodes": self.org_nodes,
            "stores": self.stores,
            "categories": self.categories,
            "products": self.products,
            "customers": self.customers,
            "workers": self.workers,
            "pay-types": self.pay_types,
            "delivery-modes": self.delivery_modes,
            "assortments": self.assortments,
            "account-export-profiles": self.account_export_profiles,
            "parameters": [self.parameters],
        }

    @property
    def first_business_date(self) -> date:
        """The first business date of the default transaction window."""
        return self.end_date - timedelta(days=SCALES[self.scale].days)


# --------------------------------------------------------------------------- reference data

# (id suffix, name, legal entity, cities)
_REGIONS = [
    ("NORTH", "North", US, ["Seattle", "Portland", "Minneapolis", "Chicago", "Detroit",
                            "Milwaukee", "Spokane", "Fargo"]),
    ("SOUTH", "South", US, ["Atlanta", "Dallas", "Houston", "Miami", "Nashville", "Orlando",
                            "Austin", "Charlotte"]),
    ("WEST", "West", US, ["San Francisco", "Los Angeles", "San Diego", "Phoenix", "Denver",
                          "Las Vegas", "Sacramento", "Salt Lake City"]),
    ("EAST", "East", US, ["Boston", "New York", "Philadelphia", "Baltimore", "Pittsburgh",
                          "Hartford", "Providence", "Buffalo"]),
    ("CENTRAL", "Central", US, ["Kansas City", "St. Louis", "Omaha", "Des Moines", "Tulsa",
                                "Wichita", "Little Rock", "Springfield"]),
]
_CANADA = ("CANADA", "Canada", CA, ["Toronto", "Montréal", "Vancouver", "Calgary", "Ottawa",
                                    "Québec City", "Winnipeg", "Halifax"])
# IANA zone of each city's stores (DOMAIN §13: business days are the store's local days).
_CITY_ZONES = {
    **dict.fromkeys(["Seattle", "Portland", "Spokane", "San Francisco", "Los Angeles", "San Diego",
                     "Las Vegas", "Sacramento", "Vancouver"], "America/Los_Angeles"),
    **dict.fromkeys(["Minneapolis", "Chicago", "Milwaukee", "Fargo", "Dallas", "Houston", "Nashville",
                     "Austin", "Kansas City", "St. Louis", "Omaha", "Des Moines", "Tulsa", "Wichita",
                     "Little Rock", "Springfield", "Winnipeg"], "America/Chicago"),
    **dict.fromkeys(["Atlanta", "Miami", "Orlando", "Charlotte", "Boston", "New York", "Philadelphia",
                     "Baltimore", "Pittsburgh", "Hartford", "Providence", "Buffalo"], "America/New_York"),
    **dict.fromkeys(["Toronto", "Montréal", "Ottawa", "Québec City"], "America/Toronto"),
    "Detroit": "America/Detroit",
    "Phoenix": "America/Phoenix", "Denver": "America/Denver", "Salt Lake City": "America/Denver",
    "Calgary": "America/Edmonton", "Halifax": "America/Halifax",
}
_CURRENCY = {US: "USD", CA: "CAD"}
_COUNTRY = {US: "US", CA: "CA"}
_STORE_SITES = ["Downtown", "Mall", "Outlet", "Airport", "Riverside", "Uptown", "Harbour",
                "Station"]

_APPAREL_SIZES = [(s, s) for s in ("XS", "S", "M", "L", "XL", "XXL")]
_KIDS_SIZES = [(s, s) for s in ("4", "6", "8", "10", "12", "14")]
_SHOE_SIZES = [(s, s) for s in ("6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5",
                                "11", "12")]
_HAT_SIZES = [("SM", "S/M"), ("LXL", "L/XL")]
_BELT_SIZES = [(s, s) for s in ("30", "32", "34", "36", "38", "40")]
_BED_SIZES = [("TWIN", "Twin"), ("FULL", "Full"), ("QUEEN", "Queen"), ("KING", "King")]
_COLORS = [("BLK", "Black"), ("WHT", "White"), ("NVY", "Navy"), ("RED", "Red"),
           ("GRY", "Grey"), ("GRN", "Green"), ("BLU", "Blue"), ("BRN", "Brown"),
           ("BEI", "Beige"), ("PNK", "Pink")]

# department id, name, revenue account or None, sub-categories:
#   (id, name, revenue account or None, weight, price range in dollars, sizes or None, nouns)
_DEPARTMENTS = [
    ("APPAREL", "Apparel", "401100", [
        ("APPAREL-MEN", "Men's Clothing", None, 14, (15, 90), _APPAREL_SIZES,
         ["Oxford Shirt", "Crew T-Shirt", "Chinos", "Polo Shirt", "Hoodie", "Denim Jeans",
          "Sweater"]),
        ("APPAREL-WOMEN", "Women's Clothing", None, 16, (15, 120), _APPAREL_SIZES,
         ["Blouse", "Wrap Dress", "Cardigan", "Skinny Jeans", "Tank Top", "Midi Skirt",
          "Tunic"]),
        ("APPAREL-KIDS", "Kids' Clothing", None, 8, (8, 45), _KIDS_SIZES,
         ["Graphic Tee", "Joggers", "Pyjama Set", "Rain Jacket", "Leggings"]),
        ("APPAREL-OUTER", "Outerwear", "401150", 6, (60, 260), _APPAREL_SIZES,
         ["Parka", "Trench Coat", "Puffer Vest", "Fleece Jacket", "Wool Coat"]),
    ]),
    ("FOOTWEAR", "Footwear", "401200", [
        ("FOOTWEAR-SNEAKERS", "Sneakers", None, 8, (40, 160), _SHOE_SIZES,
         ["Running Shoe", "Court Sneaker", "Trail Runner", "Slip-On"]),
        ("FOOTWEAR-BOOTS", "Boots", None, 5, (70, 240), _SHOE_SIZES,
         ["Chelsea Boot", "Hiking Boot", "Winter Boot", "Ankle Boot"]),
        ("FOOTWEAR-SANDALS", "Sandals", None, 4, (20, 80), _SHOE_SIZES,
         ["Slide Sandal", "Flip Flop", "Strappy Sandal"]),
    ]),
    ("ACCESSORIES", "Accessories", None, [
        ("ACC-BAGS", "Bags", None, 6, (25, 180), None,
         ["Tote Bag", "Backpack", "Crossbody Bag", "Weekender", "Wallet"]),
        ("ACC-HATS", "Hats & Scarves", None, 4, (12, 50), _HAT_SIZES,
         ["Beanie", "Baseball Cap", "Sun Hat", "Knit Scarf"]),
        ("ACC-BELTS", "Belts", None, 3, (20, 70), _BELT_SIZES,
         ["Leather Belt", "Canvas Belt", "Braided Belt"]),
        ("ACC-JEWELRY", "Jewelry", "401350", 4, (10, 300), None,
         ["Pendant Necklace", "Hoop Earrings", "Charm Bracelet", "Signet Ring"]),
    ]),
    ("HOME", "Home", None, [
        ("HOME-KITCHEN", "Kitchen & Dining", "401400", 8, (5, 150), None,
         ["Salt & Pepper Mill", "Café Espresso Cups", "Chef's Knife", "Dinner Plate Set",
          "Cast Iron Skillet", "Tea Towel Set"]),
        ("HOME-BEDDING", "Bedding", None, 6, (25, 250), _BED_SIZES,
         ["Duvet Cover", "Sheet Set", "Quilt", "Pillowcase Pair"]),
        ("HOME-DECOR", "Décor", None, 5, (10, 200), None,
         ["Scented Candle", "Throw Pillow", "Picture Frame", "Table Lamp", "Ceramic Vase"]),
    ]),
]
_ADJECTIVES = ["Classic", "Essential", "Heritage", "Urban", "Slim", "Relaxed", "Premium",
               "Everyday", "Coastal", "Alpine", "Studio", "Vintage", "Organic", "Nordic"]

_FIRST_NAMES = {
    "en-us": ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
              "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph",
              "Jessica", "Thomas", "Sarah", "Daniel", "Karen", "Aisha", "Carlos", "Mei",
              "Priya", "Kenji", "Olivia", "Noah", "Emma", "Liam", "Sofia"],
    "de-de": ["Jürgen", "Anna", "Lukas", "Sophie", "Maximilian", "Marie", "Jonas", "Lena",
              "Felix", "Hannah", "Stefan", "Katrin"],
    "fr-fr": ["François", "Camille", "Étienne", "Chloé", "Hugo", "Léa", "Louis", "Manon",
              "Mathéo", "Inès", "Benoît", "Amélie"],
}
_LAST_NAMES = {
    "en-us": ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
              "Rodriguez", "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Taylor",
              "Thomas", "Moore", "Jackson", "Martin", "Lee", "O'Brien", "Nguyen", "Patel",
              "Kim", "Walker", "Young"],
    "de-de": ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner",
              "Becker", "Schulz", "Hoffmann", "Schäfer", "Koch"],
    "fr-fr": ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit",
              "Durand", "Leroy", "Moreau", "Lefèvre", "Girard"],
}


# --------------------------------------------------------------------------- helpers

def _rng(seed: int, *parts: object) -> random.Random:
    """An independent generator for one section; str seeds hash with SHA-512, stable across runs."""
    return random.Random("/".join([str(seed), *map(str, parts)]))


def _money(value: Decimal) -> str:
    return str(value.quantize(_CENT, rounding=ROUND_HALF_UP))


def _tax(net: Decimal) -> Decimal:
    # ROUND_HALF_UP rounds ties away from zero, so a return's tax is exactly minus a sale's.
    return (net * TAX_RATE).quantize(_CENT, rounding=ROUND_HALF_UP)


def _pick_count(n: int, share: float, minimum: int = 1) -> int:
    return min(n, max(minimum, round(n * share)))


def _ascii_slug(text: str) -> str:
    table = str.maketrans("éèêëàâäôöûüùçîïÉ", "eeeeaaaoouuuciiE")
    return "".join(c for c in text.translate(table).lower() if c.isalnum())


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- master data

def generate(scale: str = "S", seed: int = 42, end_date: date | None = None) -> Retailer:
    """Generate a retailer of ``scale`` (a key of ``SCALES``) as of ``end_date``.

    ``end_date`` is the "today" of the data set (assortment validity and the account export
    profiles' ``start_date`` are relative to it); it defaults to ``date.today()``, so pass it
    explicitly wherever output must be reproducible.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {sorted(SCALES)}")
    size = SCALES[scale]
    end = end_date if end_date is not None else date.today()

    org_nodes, stores = _org_and_stores(size, seed)
    categories, leaves = _categories()
    products = _products(size, seed, leaves)
    customers = _customers(size, seed)
    workers = _workers(size, seed, stores)
    delivery_modes = _delivery_modes(org_nodes, stores, products)
    assortments, published = _assortments(org_nodes, stores, products, end)
    first_day = end - timedelta(days=size.days)
    return Retailer(
        org_nodes=org_nodes,
        stores=stores,
        categories=categories,
        products=products,
        customers=customers,
        workers=workers,
        pay_types=_pay_types(),
        delivery_modes=delivery_modes,
        assortments=assortments,
        account_export_profiles=_account_export_profiles(first_day),
        parameters=_parameters(),
        published_assortment_ids=published,
        scale=scale,
        seed=seed,
        end_date=end,
    )


def _org_and_stores(size: Scale, seed: int) -> tuple[list[dict], list[dict]]:
    rng = _rng(seed, "stores")
    regions = [*_REGIONS[: size.regions - 1], _CANADA]
    nodes = [{"id": ROOT_NODE, "name": "Contoso Retail", "parent_id": None}]
    districts: list[tuple[str, str, list[str]]] = []  # (node id, legal entity, cities)
    for code, name, legal_entity, cities in regions:
        region_id = f"R-{code}"
        nodes.append({"id": region_id, "name": f"{name} Region", "parent_id": ROOT_NODE})
        for d in range(1, size.districts_per_region + 1):
            district_id = f"D-{code}-{d}"
            nodes.append({"id": district_id, "name": f"{name} District {d}",
                          "parent_id": region_id})
            districts.append((district_id, legal_entity, cities))

    stores = []
    per_region: dict[str, int] = {}  # store names run through the region's cities, then sites
    for i in range(size.stores):
        district_id, legal_entity, cities = districts[i * len(districts) // size.stores]
        region = district_id.rsplit("-", 1)[0]
        k = per_region.get(region, 0)
        per_region[region] = k + 1
        city = cities[k % len(cities)]
        site = _STORE_SITES[k // len(cities) % len(_STORE_SITES)]
        lap = k // (len(cities) * len(_STORE_SITES))
        name = f"Contoso {city} {site}" + (f" {lap + 1}" if lap else "")
        store_id = f"S{i + 1:03d}"
        store = {
            "id": store_id,
            "name": name,
            "legal_entity": legal_entity,
            "org_node_id": district_id,
            "warehouse_id": f"WH-{store_id}",
            "time_zone": _CITY_ZONES[city],
            "currency": _CURRENCY[legal_entity],
            "address": {
                "lines": [f"{100 + i * 7} {site} Street"],
                "city": city,
                "postal_code": f"{10000 + i * 37:05d}" if legal_entity == US else f"M{i % 10}V {i % 10}A{i % 7}",
                "country": _COUNTRY[legal_entity],
            },
        }
        if i % 3 != 2 or rng.random() < 0.2:  # most stores have a mailbox
            store["email"] = f"store.{store_id.lower()}@example.com"
        stores.append(store)
    return nodes, stores


@dataclass(frozen=True)
class _Leaf:
    id: str
    weight: int
    price_range: tuple[int, int]
    sizes: list[tuple[str, str]] | None
    nouns: list[str]


def _categories() -> tuple[list[dict], list[_Leaf]]:
    categories: list[dict] = [{"id": ROOT_CATEGORY, "name": "All products", "parent_id": None}]
    leaves = []
    for dept_id, dept_name, dept_account, subs in _DEPARTMENTS:
        dept = {"id": dept_id, "name": dept_name, "parent_id": ROOT_CATEGORY}
        if dept_account:
            dept["revenue_account"] = dept_account
        categories.append(dept)
        for sub_id, sub_name, sub_account, weight, prices, sizes, nouns in subs:
            sub = {"id": sub_id, "name": sub_name, "parent_id": dept_id}
            if sub_account:
                sub["revenue_account"] = sub_account
            categories.append(sub)
            leaves.append(_Leaf(sub_id, weight, prices, sizes, nouns))
    return categories, leaves


def _price(rng: random.Random, low: int, high: int) -> str:
    """A shelf price such as 24.99, 19.49 or 30.00 between ``low`` and ``high`` dollars."""
    dollars = rng.randint(max(low, 2), high)
    cents = rng.choice((99, 99, 99, 49, 95, 0))
    return f"{dollars - 1}.{cents:02d}" if cents else f"{dollars}.00"


def _variants(rng: random.Random, leaf: _Leaf) -> list[dict]:
    """Size × colour variants (``M-RED``), or colour only (``RED``) where sizes make no sense."""
    if leaf.sizes is None:
        colors = rng.sample(_COLORS, rng.randint(2, 4))
        return [{"id": code, "color": label} for code, label in colors]
    colors = rng.sample(_COLORS, rng.randint(1, 3))
    n_sizes = min(len(leaf.sizes), rng.randint(2, 5))
    start = rng.randint(0, len(leaf.sizes) - n_sizes)
    sizes = leaf.sizes[start: start + n_sizes]
    return [{"id": f"{s_code}-{c_code}", "size": s_label, "color": c_label}
            for s_code, s_label in sizes for c_code, c_label in colors]


def _products(size: Scale, seed: int, leaves: list[_Leaf]) -> list[dict]:
    rng = _rng(seed, "products")
    n = size.products
    # Exact shares (not coin flips) so every data set, however small, has each case.
    indexes = range(n)
    with_variants = set(rng.sample(indexes, _pick_count(n, 0.40)))
    stopped = set(rng.sample(indexes, _pick_count(n, 0.02)))
    no_negative = set(rng.sample(indexes, _pick_count(n, 0.20)))
    single_entity = rng.sample(indexes, _pick_count(n, 0.10, minimum=2))
    us_only = set(single_entity[: max(1, len(single_entity) * 2 // 3)])
    ca_only = set(single_entity[len(us_only):])

    weights = [leaf.weight for leaf in leaves]
    # Every leaf gets products first, then the rest are drawn by weight.
    assigned = [leaves[i % len(leaves)] for i in range(min(n, len(leaves)))]
    assigned += rng.choices(leaves, weights=weights, k=n - len(assigned))
    rng.shuffle(assigned)

    products = []
    for i, leaf in enumerate(assigned):
        released = [US] if i in us_only else [CA] if i in ca_only else [US, CA]
        products.append({
            "id": f"P{i + 1:06d}",
            "name": f"{rng.choice(_ADJECTIVES)} {rng.choice(leaf.nouns)}",
            "category_id": leaf.id,
            "price": _price(rng, *leaf.price_range),
            "released_to": released,
            "stopped": i in stopped,
            "allow_negative_inventory": i not in no_negative,
            "variants": _variants(rng, leaf) if i in with_variants else [],
        })
    return products


def _customers(size: Scale, seed: int) -> list[dict]:
    rng = _rng(seed, "customers")
    customers = []
    for i in range(size.customers):
        language = rng.choices(("en-us", "de-de", "fr-fr"), weights=(84, 8, 8))[0]
        first, last = rng.choice(_FIRST_NAMES[language]), rng.choice(_LAST_NAMES[language])
        option = rng.choices(("POS", "Email", "Both"), weights=(50, 30, 20))[0]
        customer = {"id": f"C{i + 1:06d}", "name": f"{first} {last}", "language": language,
                    "receipt_option": option}
        # Some POS-only customers still have an address on file: they must not get receipts.
        if option != "POS" or rng.random() < 0.15:
            customer["email"] = f"{_ascii_slug(first)}.{_ascii_slug(last)}.{i + 1}@example.com"
        customers.append(customer)
    return customers


_PAY_PERIOD_MIX = ("weekly", "biweekly", "monthly", "weekly", "biweekly")


def _workers(size: Scale, seed: int, stores: list[dict]) -> list[dict]:
    rng = _rng(seed, "workers")
    workers = []
    for i in range(size.workers):
        language = "fr-fr" if rng.random() < 0.05 else "en-us"
        first, last = rng.choice(_FIRST_NAMES[language]), rng.choice(_LAST_NAMES[language])
        workers.append({
            "id": f"WRK{i + 1:05d}",
            "name": f"{first} {last}",
            "export_id": f"E{1001 + i}",
            "store_id": stores[i % len(stores)]["id"],
            "pay_period_type": _PAY_PERIOD_MIX[i % len(_PAY_PERIOD_MIX)],
            "base_rate": _money(Decimal(rng.randint(60, 128) * 25) / 100),  # 15.00 .. 32.00
        })
    return workers


def _pay_types() -> list[dict]:
    return [
        {"id": "REG", "description": "Regular hours", "export_id": "100",
         "include_in_export": True},
        {"id": "OT", "description": "Overtime (1.5x)", "export_id": "150",
         "include_in_export": True},
        {"id": "VAC", "description": "Vacation", "export_id": "300",
         "include_in_export": False},
    ]


def _first(products: list[dict], category: str, with_variants: bool) -> dict:
    """The first sellable product of ``category`` (with variants if asked), for edge cases."""
    fallback = None
    for p in products:
        if p["category_id"] == category and not p["stopped"] and len(p["released_to"]) == 2:
            if bool(p["variants"]) == with_variants:
                return p
            fallback = fallback or p
    if fallback is None:
        raise ValueError(f"no product in category {category}")
    return fallback


def _delivery_modes(nodes: list[dict], stores: list[dict], products: list[dict]) -> list[dict]:
    first_region = next(n["id"] for n in nodes if n["parent_id"] == ROOT_NODE)
    no_express = _first(products, "FOOTWEAR-SANDALS", with_variants=False)
    boot = _first(products, "FOOTWEAR-BOOTS", with_variants=True)
    pickup_stores = [s["id"] for s in stores[:: max(1, len(stores) // 3)][:3]]
    return [
        {
            "id": "STD",
            "name": "Standard shipping",
            "channel_lines": [{"org_node_id": ROOT_NODE}],
            "product_lines": [{"kind": "category", "ref": ROOT_CATEGORY, "line_type": "Include"}],
            "address_lines": [
                {"country": "USA", "line_type": "Include"},
                {"country": "USA", "state": "AK", "line_type": "Exclude"},
                {"country": "USA", "state": "HI", "line_type": "Exclude"},
            ],
        },
        {
            "id": "EXPRESS",
            "name": "Express (next day)",
            "channel_lines": [{"org_node_id": first_region}],
            "product_lines": [
                {"kind": "category", "ref": "FOOTWEAR", "line_type": "Include"},
                {"kind": "product", "ref": no_express["id"], "line_type": "Exclude"},
                {"kind": "variant", "ref": f"{boot['id']}/{boot['variants'][0]['id']}",
                 "line_type": "Exclude"},
            ],
            "address_lines": [
                {"country": "USA", "line_type": "Include"},
                {"country": "USA", "state": "AK", "line_type": "Exclude"},
                {"country": "USA", "state": "HI", "line_type": "Exclude"},
            ],
        },
        {
            # No product lines: the job reports a warning and explodes no products (§1 rule 4).
            "id": "PICKUP",
            "name": "Pick up in store",
            "channel_lines": [{"store_id": s} for s in pickup_stores],
            "product_lines": [],
            "address_lines": [{"country": "USA", "line_type": "Include"},
                              {"country": "CAN", "line_type": "Include"}],
        },
    ]


def _assortments(nodes: list[dict], stores: list[dict], products: list[dict],
                 end: date) -> tuple[list[dict], list[str]]:
    regions = [n["id"] for n in nodes if n["parent_id"] == ROOT_NODE]
    us_regions, canada = regions[:-1], regions[-1]
    south_store = next((s["id"] for s in stores if s["org_node_id"].startswith("D-SOUTH")),
                       stores[0]["id"])
    duvet = _first(products, "HOME-BEDDING", with_variants=True)
    mill = _first(products, "HOME-KITCHEN", with_variants=False)

    def line(kind: str, ref: str, line_type: str = "Include") -> dict:
        return {"kind": kind, "ref": ref, "line_type": line_type}

    since = (end - timedelta(days=120)).isoformat()
    assortments = [
        {
            "id": "AS-USRT-CORE",
            "name": "US core range",
            "valid_from": since,
            "valid_to": None,
            "channel_lines": [{"org_node_id": r} for r in us_regions],
            "product_lines": [line("category", c) for c in ("APPAREL", "FOOTWEAR",
                                                            "ACCESSORIES")],
        },
        {
            "id": "AS-CART-CORE",
            "name": "Canada core range",
            "valid_from": since,
            "valid_to": (end + timedelta(days=245)).isoformat(),
            "channel_lines": [{"org_node_id": canada}],
            "product_lines": [
                line("category", "APPAREL"),
                line("category", "FOOTWEAR"),
                line("category", "HOME"),
                line("category", "HOME-KITCHEN", "Exclude"),
            ],
        },
        {
            "id": "AS-HOME-NORTH",
            "name": "Home collection (North and flagship)",
            "valid_from": (end - timedelta(days=60)).isoformat(),
            "valid_to": None,
            "channel_lines": [{"org_node_id": us_regions[0]}, {"store_id": south_store}],
            "product_lines": [
                line("category", "HOME"),
                line("variant", f"{duvet['id']}/{duvet['variants'][0]['id']}", "Exclude"),
            ],
        },
        {
            # Expired: its décor was sold in the last US region until 20 days ago.
            "id": "AS-SUMMER",
            "name": "Summer patio & décor",
            "valid_from": (end - timedelta(days=200)).isoformat(),
            "valid_to": (end - timedelta(days=20)).isoformat(),
            "channel_lines": [{"org_node_id": us_regions[-1]}],
            "product_lines": [line("category", "HOME-DECOR")],
        },
        {
            # Left Draft: invisible to the job until someone publishes it.
            "id": "AS-HOLIDAY",
            "name": "Holiday gifts (draft)",
            "valid_from": (end + timedelta(days=30)).isoformat(),
            "valid_to": (end + timedelta(days=75)).isoformat(),
            "channel_lines": [{"org_node_id": ROOT_NODE}],
            "product_lines": [line("category", "ACC-JEWELRY"), line("product", mill["id"])],
        },
    ]
    published = ["AS-USRT-CORE", "AS-CART-CORE", "AS-HOME-NORTH", "AS-SUMMER"]
    return assortments, published


def _account_export_profiles(start: date) -> list[dict]:
    return [
        {
            "id": "RE-DEFAULT",
            "name": "Retail ledger (XML)",
            "lines": [
                {"exported_account_name": "Sales & Returns", "main_account": ACCOUNTS["revenue_default"]},
                {"exported_account_name": "Apparel Sales", "main_account": "401100"},
                {"exported_account_name": "Outerwear Sales", "main_account": "401150"},
                {"exported_account_name": "Footwear Sales", "main_account": "401200"},
                {"exported_account_name": "Jewelry Sales", "main_account": "401350"},
                {"exported_account_name": "Kitchen & Dining Sales", "main_account": "401400"},
                {"exported_account_name": "Sales Tax Payable", "main_account": ACCOUNTS["tax"]},
                {"exported_account_name": "Cash & Checks", "main_account": ACCOUNTS["cash"]},
                {"exported_account_name": "Card Receivables", "main_account": ACCOUNTS["card"]},
                {"exported_account_name": "Gift Card Liability",
                 "main_account": ACCOUNTS["gift_card"]},
            ],
            "file_format": "xml",
            "file_prefix": "RE-",
            "start_date": start.isoformat(),
            "legal_entity": US,
            "time_zone": "America/New_York",
        },
        {
            # Maps fewer accounts: the category accounts are deliberately unmapped here.
            "id": "FIN-CSV",
            "name": "Finance summary (CSV)",
            "lines": [
                {"exported_account_name": "Sales & Returns", "main_account": ACCOUNTS["revenue_default"]},
                {"exported_account_name": "Tax", "main_account": ACCOUNTS["tax"]},
                {"exported_account_name": "Cash", "main_account": ACCOUNTS["cash"]},
                {"exported_account_name": "Cards & Gift Cards", "main_account": ACCOUNTS["card"]},
            ],
            "file_format": "csv",
            "file_prefix": "fin_",
            "start_date": start.isoformat(),
            "legal_entity": CA,
            "time_zone": "America/Toronto",
        },
    ]


def _parameters() -> dict:
    return {
        "id": "default",
        "receipt_subject": "Your receipt from {store_name}",
        "receipt_file_name": "receipt",
        "company_language": "en-us",
        "accounts": dict(ACCOUNTS),
    }


# --------------------------------------------------------------------------- transactions

class _Catalogue:
    """What each store is likely to sell on a date: the union of the published assortments
    valid that day that cover the store, minus their exclusions, released to the store's
    legal entity and not stopped (an approximation of §5 good enough for sales)."""

    def __init__(self, retailer: Retailer, seed: int):
        self._retailer = retailer
        # Best sellers are spread over the catalogue, not the lowest product ids.
        ranked = list(retailer.products)
        _rng(seed, "popularity").shuffle(ranked)
        self._ranked = ranked
        self._parent = {n["id"]: n["parent_id"] for n in retailer.org_nodes}
        children: dict[str | None, list[str]] = {}
        for c in retailer.categories:
            children.setdefault(c["parent_id"], []).append(c["id"])
        self._category_children = children
        published = set(retailer.published_assortment_ids)
        self._assortments = [a for a in retailer.assortments if a["id"] in published]
        self._cache: dict[tuple, list[tuple[dict, list[str]]]] = {}

    def _node_path(self, node_id: str | None) -> set[str]:
        path = set()
        while node_id is not None and node_id not in path:
            path.add(node_id)
            node_id = self._parent.get(node_id)
        return path

    def _category_tree(self, category_id: str) -> set[str]:
        found, todo = set(), [category_id]
        while todo:
            c = todo.pop()
            if c not in found:
                found.add(c)
                todo.extend(self._category_children.get(c, ()))
        return found

    def for_store(self, store: dict, day: date) -> list[tuple[dict, list[str]]]:
        """``[(product, sellable variant ids)]``, best sellers first; ids are empty for a
        product without variants."""
        path = self._node_path(store["org_node_id"])
        key_ids = tuple(
            a["id"] for a in self._assortments
            if a["valid_from"] <= day.isoformat()
            and (a.get("valid_to") is None or day.isoformat() <= a["valid_to"])
            and any(line.get("store_id") == store["id"] or line.get("org_node_id") in path
                    for line in a["channel_lines"])
        )
        key = (store["legal_entity"], key_ids)
        if key not in self._cache:
            self._cache[key] = self._explode(store["legal_entity"], key_ids)
        return self._cache[key]

    def _explode(self, legal_entity: str, assortment_ids: tuple[str, ...]) -> list[tuple[dict, list[str]]]:
        lines = [line for a in self._assortments if a["id"] in assortment_ids
                 for line in a["product_lines"]]
        if not lines:  # a store no assortment covers still sells something
            lines = [{"kind": "category", "ref": ROOT_CATEGORY, "line_type": "Include"}]
        cats = {"Include": set(), "Exclude": set()}
        prods = {"Include": set(), "Exclude": set()}
        variants = {"Include": set(), "Exclude": set()}
        for line in lines:
            kind, ref, line_type = line["kind"], line["ref"], line["line_type"]
            if kind == "category":
                cats[line_type] |= self._category_tree(ref)
            elif kind == "product":
                prods[line_type].add(ref)
            else:
                variants[line_type].add(tuple(ref.split("/", 1)))
        included_variants_by_product: dict[str, set[str]] = {}
        for pid, vid in variants["Include"]:
            included_variants_by_product.setdefault(pid, set()).add(vid)

        result = []
        for p in self._ranked:
            if p["stopped"] or legal_entity not in p["released_to"]:
                continue
            pid = p["id"]
            if pid in prods["Exclude"] or p["category_id"] in cats["Exclude"]:
                continue
            whole = pid in prods["Include"] or p["category_id"] in cats["Include"]
            if whole:
                vids = [v["id"] for v in p["variants"]]
            elif pid in included_variants_by_product:
                vids = [v["id"] for v in p["variants"] if v["id"] in included_variants_by_product[pid]]
            else:
                continue
            vids = [v for v in vids if (pid, v) not in variants["Exclude"]]
            if p["variants"] and not vids:
                continue
            result.append((p, vids))
        return result


_TENDERS = ("card", "cash", "gift_card")
_TENDER_WEIGHTS = (60, 30, 10)
_WEEKDAY_FACTOR = (0.85, 0.8, 0.85, 0.95, 1.15, 1.35, 1.05)  # Monday .. Sunday
# Percent of a store's nominal daily volume; spread evenly over the calendar (see _quota).
_RETURN_PCT, _VOIDED_PCT, _TRAINING_PCT = 5, 2, 1


def _quota(percent: int, per_day: int, phase: int, day: date) -> int:
    """How many of a store's transactions on ``day`` get a rare kind or status.

    ``percent`` of ``per_day`` a day, spread evenly over the calendar like Bresenham's line
    (``phase`` in 0..99 staggers the stores) rather than drawn at random: a small window, a
    single day regenerated alone, and any run date all get the same exact share, and any
    ``100 / (percent * per_day)`` consecutive days hold at least one.
    """
    o, rate = day.toordinal(), percent * per_day
    return ((o + 1) * rate + phase) // 100 - (o * rate + phase) // 100


def transactions(
    retailer: Retailer,
    days: int | None = None,
    per_store_per_day: int | None = None,
    seed: int | None = None,
    end_date: date | None = None,
    store_ids: Iterable[str] | None = None,
) -> Iterator[dict]:
    """Stream POS transactions (DOMAIN §10), store by store and within a store day by day.

    Business dates are the ``days`` (default: the scale's) days ending the day before
    ``end_date`` (default: ``retailer.end_date``); about ``per_store_per_day`` transactions per
    store and day (busier stores and weekends get more). ``seed`` defaults to the retailer's.
    ``store_ids`` limits the stream to those stores. Each store × day is seeded on its own, so
    the same (seed, store, date) always yields the same transactions.
    """
    size = SCALES[retailer.scale]
    n_days = size.days if days is None else days
    base = size.per_store_per_day if per_store_per_day is None else per_store_per_day
    seed = retailer.seed if seed is None else seed
    end = retailer.end_date if end_date is None else end_date
    wanted = None if store_ids is None else set(store_ids)
    catalogue = _Catalogue(retailer, seed)
    customers = retailer.customers
    business_dates = [end - timedelta(days=n_days - i) for i in range(n_days)]

    for store in retailer.stores:
        if wanted is not None and store["id"] not in wanted:
            continue
        store_rng = _rng(seed, "store-profile", store["id"])
        busyness = store_rng.uniform(0.6, 1.4)
        terminals = [f"{store['id']}-T{k}" for k in range(1, store_rng.randint(2, 4) + 1)]
        phases = [store_rng.randrange(100) for _ in range(3)]
        for day in business_dates:
            rng = _rng(seed, "transactions", store["id"], day.isoformat())
            count = max(1, round(base * busyness * _WEEKDAY_FACTOR[day.weekday()]
                                 * rng.uniform(0.85, 1.15)))
            stock = catalogue.for_store(store, day)
            opening = datetime.combine(day, time(9, 0), tzinfo=ZoneInfo(store["time_zone"]))
            seconds = sorted(rng.randrange(12 * 3600) for _ in range(count))
            returns = set(rng.sample(range(count), min(count, _quota(
                _RETURN_PCT, base, phases[0], day))))
            voided = _quota(_VOIDED_PCT, base, phases[1], day)
            training = _quota(_TRAINING_PCT, base, phases[2], day)
            odd = rng.sample(range(count), min(count, voided + training))
            status_of = {i: "Voided" if k < voided else "Training" for k, i in enumerate(odd)}
            receipt_seq = dict.fromkeys(terminals, 0)
            for n, offset in enumerate(seconds, start=1):
                terminal = rng.choice(terminals)
                receipt_seq[terminal] += 1
                yield _transaction(
                    rng, store, day, n, terminal, receipt_seq[terminal],
                    opening + timedelta(seconds=offset), stock, customers,
                    kind="Return" if n - 1 in returns else "Sale",
                    status=status_of.get(n - 1, "Completed"),
                )


def _transaction(rng: random.Random, store: dict, day: date, n: int, terminal: str,
                 receipt_no: int, created_at: datetime, stock: list[tuple[dict, list[str]]],
                 customers: list[dict], kind: str, status: str) -> dict:
    ymd = day.strftime("%Y%m%d")
    sign = -1 if kind == "Return" else 1

    lines = []
    n_lines = 1 if kind == "Return" else rng.choices((1, 2, 3, 4, 5), weights=(40, 28, 17, 10, 5))[0]
    for line_no in range(1, n_lines + 1):
        # Squaring skews towards the front of the catalogue: a few best sellers, a long tail.
        product, vids = stock[int(len(stock) * rng.random() ** 2)]
        qty = sign * rng.choices((1, 2, 3, 4), weights=(75, 17, 6, 2))[0]
        unit_price = Decimal(product["price"])
        net = qty * unit_price
        line = {"line_no": line_no, "product_id": product["id"]}
        if vids:
            line["variant_id"] = rng.choice(vids)
        line.update(qty=qty, unit_price=_money(unit_price), net_amount=_money(net),
                    tax_amount=_money(_tax(net)))
        lines.append(line)

    total = sum((Decimal(x["net_amount"]) + Decimal(x["tax_amount"]) for x in lines), Decimal(0))
    tx = {
        "transaction_id": f"T-{store['id']}-{ymd}-{n:04d}",
        "store_id": store["id"],
        "terminal_id": terminal,
        "receipt_id": f"{terminal}-{ymd}-{receipt_no:03d}",
        "business_date": day.isoformat(),
        "created_at": _iso_z(created_at),
        "kind": kind,
        "status": status,
        "lines": lines,
        "payments": _payments(rng, total),
    }
    if rng.random() < 0.30:
        customer = customers[int(len(customers) * rng.random())]
        tx["customer_id"] = customer["id"]
        if rng.random() < 0.05:  # asked for the receipt at another address this time
            tx["receipt_email"] = f"{customer['id'].lower()}.alt@example.com"
    elif rng.random() < 0.05:
        tx["receipt_email"] = f"guest.{store['id'].lower()}.{ymd}.{n}@example.com"
    return tx


def _payments(rng: random.Random, total: Decimal) -> list[dict]:
    if total < 0:  # refunds go back in one tender, never to a gift card
        return [{"tender": rng.choices(("card", "cash"), weights=(60, 40))[0],
                 "amount": _money(total)}]
    if total > 20 and rng.random() < 0.10:  # split tender: a gift card, the rest by card or cash
        gift = min(Decimal(rng.choice((10, 20, 25, 50))), total - Decimal(1))
        rest = rng.choices(("card", "cash"), weights=(75, 25))[0]
        return [{"tender": "gift_card", "amount": _money(gift)},
                {"tender": rest, "amount": _money(total - gift)}]
    tender = rng.choices(_TENDERS, weights=_TENDER_WEIGHTS)[0]
    return [{"tender": tender, "amount": _money(total)}]


# --------------------------------------------------------------------------- time registrations

_QUARTER = timedelta(minutes=15)


def time_registrations(
    retailer: Retailer,
    days: int | None = None,
    seed: int | None = None,
    end_date: date | None = None,
) -> Iterator[dict]:
    """Stream time registrations ``{registration_id, worker_id, clock_in, clock_out}`` (UTC, ``Z``).

    Worker by worker, over the ``days`` (default: the scale's) days ending the day before
    ``end_date`` (default: ``retailer.end_date``): about five shifts a week of 4–11 hours in
    quarter hours, some over 8 hours (overtime), now and then a split shift (two registrations
    on one day). A shift starts and ends on the same day in its store's time zone. Like transactions, each
    worker × day is seeded on its own.
    """
    size = SCALES[retailer.scale]
    n_days = size.days if days is None else days
    seed = retailer.seed if seed is None else seed
    end = retailer.end_date if end_date is None else end_date
    first = end - timedelta(days=n_days)

    zones = {s["id"]: ZoneInfo(s["time_zone"]) for s in retailer.stores}
    for worker in retailer.workers:
        # Two fixed days off a week keeps it near five shifts, with some swaps.
        days_off = set(_rng(seed, "roster", worker["id"]).sample(range(7), 2))
        for i in range(n_days):
            day = first + timedelta(days=i)
            rng = _rng(seed, "time", worker["id"], day.isoformat())
            works = (day.weekday() not in days_off) != (rng.random() < 0.08)
            if not works:
                continue
            hours = rng.choices((4, 5, 6, 7, 8, 9, 10, 11), weights=(6, 7, 9, 12, 47, 10, 6, 3))[0]
            # The standard 8-hour shift mostly ends on time; the others run to the quarter hour.
            if hours == 8:
                extra = rng.choice((1, 2)) if rng.random() < 0.15 else 0
            else:
                extra = rng.choice((0, 0, 1, 2, 3))
            length = min(timedelta(hours=hours) + extra * _QUARTER, timedelta(hours=11))
            start = datetime.combine(day, time(6, 0), tzinfo=zones[worker["store_id"]]) + rng.randint(0, 20) * _QUARTER
            ymd = day.strftime("%Y%m%d")
            if length >= timedelta(hours=8) and rng.random() < 0.06:
                # A split shift: two registrations around an hour's break, the same hours.
                first_part = timedelta(hours=4)
                shifts = [(start, start + first_part),
                          (start + first_part + timedelta(hours=1),
                           start + length + timedelta(hours=1))]
            else:
                shifts = [(start, start + length)]
            for k, (clock_in, clock_out) in enumerate(shifts, start=1):
                yield {
                    "registration_id": f"TR-{worker['id']}-{ymd}-{k}",
                    "worker_id": worker["id"],
                    "clock_in": _iso_z(clock_in),
                    "clock_out": _iso_z(clock_out),
                }
