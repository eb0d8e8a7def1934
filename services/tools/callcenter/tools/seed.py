"""Demo data for the retail domain: deterministic (seeded random) and idempotent.

Three hundred customers, about three thousand orders with items, payments and shipments, a
catalogue with variants and the knowledge base. Dates are relative to the day the seed first
runs, so there is always something pending, in transit and inside the return window. Rows are
inserted with ``ON CONFLICT DO NOTHING``: a second run changes nothing, and changes made by the
tools (a cancelled order, a return) survive a re-seed.

The demo customer ``CUS-0001`` (Maya Patel, +15555550101, ZIP 94105) has one order in each
interesting state; ``ORD-1001`` is shipped (UPS, tracking, ETA in two days), the order the web-chat
demo asks about.
"""

from __future__ import annotations

import functools
import itertools
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

from callcenter.tools.seed_data import (
    CARD_BRANDS,
    CARRIERS,
    CITIES,
    FIRST_NAMES,
    KB_ARTICLES,
    LAST_NAMES,
    PRODUCTS,
    STREETS,
)

CUSTOMERS = 300
RANDOM_ORDERS = 3000
SEED = 20261123

COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "first_name", "last_name", "email", "phone", "address", "zip"),
    "products": ("product_id", "name", "category", "description"),
    "product_variants": ("variant_id", "product_id", "options", "price_cents", "available"),
    "orders": (
        "order_id", "customer_id", "status", "placed_at", "updated_at", "shipping_address",
        "total_cents", "cancel_reason", "cancelled_at",
    ),
    "order_items": (
        "item_id", "order_id", "variant_id", "product_name", "options", "quantity",
        "unit_price_cents", "status",
    ),
    "payments": (
        "payment_id", "order_id", "method", "card_brand", "card_last4", "amount_cents", "status",
        "created_at",
    ),
    "shipments": (
        "shipment_id", "order_id", "carrier", "tracking_number", "status", "shipped_at",
        "estimated_delivery", "delivered_at", "last_event", "last_update_at",
    ),
    "kb_articles": ("article_id", "title", "category", "body"),
}  # fmt: skip
"""Insert order: parents before children."""


@dataclass(frozen=True, slots=True)
class Variant:
    """One buyable variant of a product."""

    variant_id: str
    product_id: str
    product_name: str
    options: dict[str, str]
    price_cents: int
    available: bool


@functools.cache
def catalogue() -> tuple[Variant, ...]:
    """Every variant of every product, with stable ids (``VAR-0001`` …)."""
    rng = random.Random(SEED)
    variants: list[Variant] = []
    for product_id, name, _, _, price, axes in PRODUCTS:
        keys = list(axes)
        for combo in itertools.product(*(axes[k] for k in keys)):
            variants.append(
                Variant(
                    variant_id=f"VAR-{len(variants) + 1:04d}",
                    product_id=product_id,
                    product_name=name,
                    options=dict(zip(keys, combo, strict=True)),
                    price_cents=price,
                    available=rng.random() > 0.1,
                )
            )
    return tuple(variants)


def _tracking_number(rng: random.Random, carrier: str) -> str:
    if carrier == "UPS":
        return "1Z" + "".join(rng.choices("0123456789ABCDEFGHJKLMNPRSTUVWXYZ", k=16))
    if carrier == "FedEx":
        return "".join(rng.choices("0123456789", k=12))
    return "9400" + "".join(rng.choices("0123456789", k=18))


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour, 0), tzinfo=UTC)


@dataclass
class SeedBatch:
    """Rows to insert, per table (see :data:`COLUMNS`)."""

    rows: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {table: [] for table in COLUMNS}
    )

    def add_customer(
        self,
        *,
        customer_id: str,
        first_name: str,
        last_name: str,
        email: str,
        phone: str,
        address: dict[str, Any],
    ) -> None:
        """One customer (``address`` holds line1, line2, city, state, zip, country)."""
        self.rows["customers"].append(
            (customer_id, first_name, last_name, email, phone, address, address["zip"])
        )

    def add_order(
        self,
        *,
        order_id: str,
        customer_id: str,
        address: dict[str, Any],
        status: str,
        placed_at: datetime,
        items: list[tuple[Variant, int]],
        payment: tuple[str, str | None, str | None],
        shipment: dict[str, Any] | None = None,
    ) -> None:
        """One order with its items, its payment and (once shipped) its shipment.

        Args:
            order_id: ``ORD-<digits>``.
            customer_id: The owner.
            address: Shipping address.
            status: pending, processing, shipped, delivered or cancelled.
            placed_at: When it was placed.
            items: (variant, quantity) pairs.
            payment: (method, card brand, card last four).
            shipment: carrier, tracking_number, status, shipped_at, estimated_delivery,
                delivered_at, last_event (when the order has shipped).

        """
        number = order_id.removeprefix("ORD-")
        total = 0
        for k, (variant, quantity) in enumerate(items, start=1):
            total += variant.price_cents * quantity
            self.rows["order_items"].append(
                (
                    f"ITM-{number}-{k}",
                    order_id,
                    variant.variant_id,
                    variant.product_name,
                    variant.options,
                    quantity,
                    variant.price_cents,
                    "ordered",
                )
            )
        cancelled = status == "cancelled"
        updated_at = placed_at
        if shipment is not None:
            updated_at = shipment.get("delivered_at") or shipment["shipped_at"]
        elif cancelled:
            updated_at = placed_at + timedelta(hours=1)
        self.rows["orders"].append(
            (
                order_id,
                customer_id,
                status,
                placed_at,
                updated_at,
                address,
                total,
                "no longer needed" if cancelled else None,
                updated_at if cancelled else None,
            )
        )
        method, brand, last4 = payment
        self.rows["payments"].append(
            (
                f"PAY-{number}",
                order_id,
                method,
                brand,
                last4,
                total,
                "refunded" if cancelled else ("authorized" if status == "pending" else "captured"),
                placed_at,
            )
        )
        if shipment is not None:
            self.rows["shipments"].append(
                (
                    f"SHP-{number}",
                    order_id,
                    shipment["carrier"],
                    shipment["tracking_number"],
                    shipment["status"],
                    shipment["shipped_at"],
                    shipment["estimated_delivery"],
                    shipment.get("delivered_at"),
                    shipment["last_event"],
                    updated_at,
                )
            )

    async def write(self, conn: asyncpg.Connection) -> None:
        """Insert every row that is not there yet (a repeat run inserts nothing)."""
        for table, columns in COLUMNS.items():
            rows = self.rows[table]
            if not rows:
                continue
            placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
            await conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) "
                "ON CONFLICT DO NOTHING",
                rows,
            )


def shipment(
    *,
    carrier: str,
    tracking_number: str,
    shipped: date,
    eta: date,
    delivered: date | None = None,
    last_event: str,
) -> dict[str, Any]:
    """A shipment as :meth:`SeedBatch.add_order` takes it (delivered when ``delivered`` is set)."""
    data: dict[str, Any] = {
        "carrier": carrier,
        "tracking_number": tracking_number,
        "status": "delivered" if delivered else "in_transit",
        "shipped_at": _at(shipped, 18),
        "estimated_delivery": eta,
        "last_event": last_event,
    }
    if delivered:
        data["delivered_at"] = _at(delivered, 15)
    return data


def shipment_for(
    rng: random.Random, *, status: str, placed: date, today: date
) -> dict[str, Any] | None:
    """A plausible shipment for an order in ``status`` placed on ``placed``."""
    if status not in ("shipped", "delivered"):
        return None
    carrier = rng.choice(CARRIERS)
    shipped = placed + timedelta(days=1)
    eta = shipped + timedelta(days=4)
    tracking = _tracking_number(rng, carrier)
    if status == "shipped":
        return shipment(
            carrier=carrier,
            tracking_number=tracking,
            shipped=shipped,
            eta=max(eta, today + timedelta(days=1)),
            last_event="In transit to the destination facility",
        )
    return shipment(
        carrier=carrier,
        tracking_number=tracking,
        shipped=shipped,
        eta=eta,
        delivered=min(shipped + timedelta(days=rng.randint(2, 5)), today),
        last_event="Delivered, left at front door",
    )


def find_variant(product_id: str, **options: str) -> Variant:
    """The catalogue variant of ``product_id`` with ``options`` (e.g. ``size="M"``).

    Raises:
        KeyError: no such variant.

    """
    for v in catalogue():
        if v.product_id == product_id and all(v.options.get(k) == o for k, o in options.items()):
            return v
    raise KeyError(f"{product_id} {options}")


# (order, customer, status, placed days ago, items, payment,
#  shipment: (carrier, tracking, shipped days ago, eta days from today, delivered days ago, event))
_VISA = ("card", "Visa", "4242")
_MASTERCARD = ("card", "Mastercard", "5454")
DEMO_ORDERS: list[tuple[str, str, str, int, list[tuple[Variant, int]], tuple[str, str | None, str | None], tuple[str, str, int, int, int | None, str] | None]] = [
    ("ORD-1001", "CUS-0001", "shipped", 3,
     [(find_variant("PRD-001", size="9", color="blue"), 1), (find_variant("PRD-006", size="M"), 1)],
     _VISA, ("UPS", "1Z999AA10123456784", 2, 2, None, "Departed UPS facility in Oakland, CA")),
    ("ORD-1002", "CUS-0001", "pending", 0, [(find_variant("PRD-010", size="M", color="grey"), 1)],
     _VISA, None),
    ("ORD-1003", "CUS-0001", "delivered", 8,
     [(find_variant("PRD-002", size="M", color="navy"), 1),
      (find_variant("PRD-011", size="L", color="white"), 2)],
     _VISA, ("FedEx", "771234567890", 7, -4, 5, "Delivered, left at front door")),
    ("ORD-1004", "CUS-0001", "delivered", 70, [(find_variant("PRD-004", color="olive"), 1)],
     ("paypal", None, None), ("USPS", "9400111899223344556677", 69, -65, 66, "Delivered to mailbox")),
    ("ORD-1005", "CUS-0001", "processing", 1,
     [(find_variant("PRD-005", capacity="750 ml", color="teal"), 2)], _VISA, None),
    ("ORD-1006", "CUS-0002", "pending", 0, [(find_variant("PRD-003", size="L", color="green"), 1)],
     _MASTERCARD, None),
    ("ORD-1007", "CUS-0002", "delivered", 9, [(find_variant("PRD-007", size="L", color="black"), 1)],
     _MASTERCARD, ("UPS", "1Z999AA10987654321", 8, -4, 4, "Delivered, signed by DKIM")),
]  # fmt: skip
"""The demo customers' orders: one in each interesting state (the demo and the docs use them)."""

DEMO_CUSTOMERS = {
    "CUS-0001": ("Maya", "Patel", "maya.patel@example.com", "+15555550101",
                 {"line1": "500 Howard St", "line2": "Apt 4B", "city": "San Francisco",
                  "state": "CA", "zip": "94105", "country": "US"}),
    "CUS-0002": ("Daniel", "Kim", "daniel.kim@example.com", "+15555550102",
                 {"line1": "221 W 29th St", "line2": None, "city": "New York", "state": "NY",
                  "zip": "10001", "country": "US"}),
}  # fmt: skip


def _demo_customers(batch: SeedBatch, today: date) -> None:
    for customer_id, (first, last, email, phone, address) in DEMO_CUSTOMERS.items():
        batch.add_customer(
            customer_id=customer_id,
            first_name=first,
            last_name=last,
            email=email,
            phone=phone,
            address=address,
        )

    def days(n: int) -> date:
        return today - timedelta(days=n)

    for order_id, customer_id, status, age, items, payment, ship in DEMO_ORDERS:
        batch.add_order(
            order_id=order_id,
            customer_id=customer_id,
            address=DEMO_CUSTOMERS[customer_id][4],
            status=status,
            placed_at=_at(days(age), 17 if age else 0),
            items=items,
            payment=payment,
            shipment=None
            if ship is None
            else shipment(
                carrier=ship[0],
                tracking_number=ship[1],
                shipped=days(ship[2]),
                eta=days(-ship[3]),
                delivered=days(ship[4]) if ship[4] is not None else None,
                last_event=ship[5],
            ),
        )


def status_for_age(rng: random.Random, days: int) -> str:
    """A realistic order status for an order placed ``days`` ago."""
    if rng.random() < 0.05:
        return "cancelled"
    if days < 1:
        return "pending"
    if days < 2:
        return "processing"
    if days < 6:
        return "shipped"
    return "delivered"


def build(today: date) -> SeedBatch:
    """All demo rows, the same for the same ``today``."""
    rng = random.Random(SEED)
    variants = catalogue()
    batch = SeedBatch()
    for product_id, name, category, description, _, _ in PRODUCTS:
        batch.rows["products"].append((product_id, name, category, description))
    for v in variants:
        batch.rows["product_variants"].append(
            (v.variant_id, v.product_id, v.options, v.price_cents, v.available)
        )
    for article in KB_ARTICLES:
        batch.rows["kb_articles"].append(article)
    _demo_customers(batch, today)

    addresses: dict[str, dict[str, Any]] = {}
    for n in range(3, CUSTOMERS + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        city, state, zip_code = rng.choice(CITIES)
        customer_id = f"CUS-{n:04d}"
        addresses[customer_id] = {
            "line1": f"{rng.randint(1, 9999)} {rng.choice(STREETS)}",
            "line2": None,
            "city": city,
            "state": state,
            "zip": zip_code,
            "country": "US",
        }
        batch.add_customer(
            customer_id=customer_id,
            first_name=first,
            last_name=last,
            email=f"{first}.{last}{n}@example.com".lower(),
            phone=f"+1555555{n + 100:04d}",
            address=addresses[customer_id],
        )
    customer_ids = list(addresses)
    for k in range(RANDOM_ORDERS):
        order_id = f"ORD-{1008 + k}"
        customer_id = rng.choice(customer_ids)
        days = rng.randint(0, 180)
        placed = today - timedelta(days=days)
        status = status_for_age(rng, days)
        method = rng.choices(["card", "paypal", "gift_card"], weights=[7, 2, 1])[0]
        payment = (
            (method, rng.choice(CARD_BRANDS), f"{rng.randint(0, 9999):04d}")
            if method == "card"
            else (method, None, None)
        )
        items = [(rng.choice(variants), rng.choices([1, 2], weights=[5, 1])[0])]
        items += [(rng.choice(variants), 1) for _ in range(rng.choices([0, 1, 2], [5, 3, 1])[0])]
        batch.add_order(
            order_id=order_id,
            customer_id=customer_id,
            address=addresses[customer_id],
            status=status,
            placed_at=_at(placed, rng.randint(0, 23)),
            items=items,
            payment=payment,
            shipment=shipment_for(rng, status=status, placed=placed, today=today),
        )
    return batch


async def seed(conn: asyncpg.Connection) -> None:
    """Load the demo data (the ``callcenter.seed`` entry point); idempotent."""
    if await conn.fetchval("SELECT count(*) FROM orders") >= RANDOM_ORDERS:
        return
    await build(datetime.now(UTC).date()).write(conn)
