"""On-hand stock per warehouse and item (DOMAIN §8), kept as exact decimals."""
from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from chalicelib.storage.base import DecimalAttribute, meta

NO_VARIANT = "*"


def item_key(product_id: str, variant_id: str | None) -> str:
    return f"{product_id}/{variant_id or NO_VARIANT}"


class OnHand(Model):
    Meta = meta("on-hand")
    warehouse_id = UnicodeAttribute(hash_key=True)
    item_key = UnicodeAttribute(range_key=True)  # "<product_id>/<variant_id or *>"
    product_id = UnicodeAttribute()
    variant_id = UnicodeAttribute(default=NO_VARIANT)
    qty = DecimalAttribute()
    updated_at = UnicodeAttribute(null=True)

    def to_api(self) -> dict:
        return {"warehouse_id": self.warehouse_id, "product_id": self.product_id,
                "variant_id": self.variant_id, "qty": self.qty}
