"""Fresh demo data for one scenario run: a customer with an order in each state, and a stranger.

Every run gets new customers and orders (random numbers, so runs and repeats never meet), built
with the tools service's own seed helpers so they look exactly like the demo data. The values a
scenario can name are :attr:`Fixture.values` (``{shipped}``, ``{zip}`` …); they are removed again
after the run unless asked to keep them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

from callcenter.tools.seed import SeedBatch, find_variant, shipment
from callcenter.tools.verification import issue_code

#: tables the tools service fills for a customer, children first (for clean-up)
_OWNED_BY_ORDER = ("returns", "exchanges", "shipments", "payments", "order_items")
_OWNED_BY_CUSTOMER = ("callbacks", "verification_codes")


@dataclass(slots=True)
class Fixture:
    """The customers and orders one scenario run works on."""

    values: dict[str, str]
    customer_ids: list[str]
    order_ids: dict[str, str] = field(default_factory=dict)  # placeholder -> order id

    def fill(self, text: str) -> str:
        """``text`` with every ``{placeholder}`` replaced.

        Raises:
            KeyError: ``text`` names a placeholder the fixture does not have.

        """
        return text.format_map(_Strict(self.values))


class _Strict(dict[str, str]):
    def __missing__(self, key: str) -> str:
        raise KeyError(f"unknown placeholder {{{key}}}")


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour, 0), tzinfo=UTC)


async def _free_number(conn: asyncpg.Connection, rng: random.Random) -> int:
    while True:
        number = rng.randrange(100_000, 999_999)
        taken = await conn.fetchval(
            "SELECT 1 FROM customers WHERE customer_id = $1", f"CUS-E{number}"
        )
        if not taken:
            return number


async def create(conn: asyncpg.Connection, *, rng: random.Random | None = None) -> Fixture:
    """Insert a fresh customer (with one order per state) and a stranger with one order."""
    rng = rng or random.Random()
    number = await _free_number(conn, rng)
    today = datetime.now(UTC).date()
    batch = SeedBatch()
    me, other = f"CUS-E{number}", f"CUS-F{number}"
    home = {
        "line1": "500 Howard St", "line2": "Apt 4B", "city": "San Francisco", "state": "CA",
        "zip": "94105", "country": "US",
    }  # fmt: skip
    away = {
        "line1": "221 W 29th St", "line2": None, "city": "New York", "state": "NY",
        "zip": "10001", "country": "US",
    }  # fmt: skip
    phone = f"+1555{number:06d}1"
    batch.add_customer(
        customer_id=me, first_name="Maya", last_name="Patel",
        email=f"maya.{number}@example.com", phone=phone, address=home,
    )  # fmt: skip
    batch.add_customer(
        customer_id=other, first_name="Daniel", last_name="Kim",
        email=f"daniel.{number}@example.com", phone=f"+1556{number:06d}1", address=away,
    )  # fmt: skip
    card = ("card", "Visa", "4242")
    tracking = "1Z" + "".join(rng.choices("0123456789ABCDEFGHJKLMNPRSTUVWXYZ", k=16))

    def days(n: int) -> date:
        return today - timedelta(days=n)

    orders: dict[str, tuple[str, str, int, list[Any], dict[str, Any] | None]] = {
        # placeholder: (owner, status, placed days ago, items, shipment)
        "shipped": (me, "shipped", 3,
                    [(find_variant("PRD-001", size="9", color="blue"), 1),
                     (find_variant("PRD-006", size="M"), 1)],
                    shipment(carrier="UPS", tracking_number=tracking, shipped=days(2),
                             eta=days(-2), last_event="Departed UPS facility in Oakland, CA")),
        "pending": (me, "pending", 0, [(find_variant("PRD-010", size="M", color="grey"), 1)], None),
        "processing": (me, "processing", 1,
                       [(find_variant("PRD-005", capacity="750 ml", color="teal"), 2)], None),
        "delivered": (me, "delivered", 8,
                      [(find_variant("PRD-002", size="M", color="navy"), 1),
                       (find_variant("PRD-007", size="L", color="black"), 1)],
                      shipment(carrier="FedEx", tracking_number="77" + tracking[2:12],
                               shipped=days(7), eta=days(4), delivered=days(5),
                               last_event="Delivered, left at front door")),
        "old": (me, "delivered", 70, [(find_variant("PRD-004", color="olive"), 1)],
                shipment(carrier="USPS", tracking_number="9400" + tracking[2:14], shipped=days(69),
                         eta=days(65), delivered=days(66), last_event="Delivered to mailbox")),
        "other_order": (other, "pending", 0,
                        [(find_variant("PRD-003", size="L", color="green"), 1)], None),
    }  # fmt: skip
    fixture = Fixture(values={}, customer_ids=[me, other])
    for index, (name, (owner, status, age, items, ship)) in enumerate(orders.items(), start=1):
        order_id = f"ORD-{number}{index}"
        fixture.order_ids[name] = order_id
        batch.add_order(
            order_id=order_id, customer_id=owner, address=home if owner == me else away,
            status=status, placed_at=_at(days(age), 17 if age else 0), items=items,
            payment=card, shipment=ship,
        )  # fmt: skip
    await batch.write(conn)
    code = await issue_code(conn, me)
    fixture.values = {
        **fixture.order_ids,
        "customer_id": me,
        "first_name": "Maya",
        "last_name": "Patel",
        "email": f"maya.{number}@example.com",
        "phone": phone,
        "zip": "94105",
        "wrong_zip": "60601",
        "street": "500 Howard St",
        "tracking": tracking,
        "code": code,
        "wrong_code": f"{(int(code) + 1) % 1_000_000:06d}",
        "other_name": "Daniel",
        "other_zip": "10001",
        "other_email": f"daniel.{number}@example.com",
    }
    return fixture


async def remove(conn: asyncpg.Connection, fixture: Fixture) -> None:
    """Delete what :func:`create` inserted and what the run added to it."""
    orders = list(fixture.order_ids.values())
    async with conn.transaction():
        for table in _OWNED_BY_ORDER:
            await conn.execute(f"DELETE FROM {table} WHERE order_id = ANY($1::text[])", orders)
        for table in _OWNED_BY_CUSTOMER:
            await conn.execute(
                f"DELETE FROM {table} WHERE customer_id = ANY($1::text[])", fixture.customer_ids
            )
        await conn.execute("DELETE FROM orders WHERE order_id = ANY($1::text[])", orders)
        await conn.execute(
            "DELETE FROM customers WHERE customer_id = ANY($1::text[])", fixture.customer_ids
        )
