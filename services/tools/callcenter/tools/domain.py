"""The retail domain shared by the skills: id formats, policy, order reads and authorisation."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import asyncpg
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from callcenter.tools.registry import SkillContext, ToolError

RETURN_WINDOW_DAYS = 30
"""Returns and exchanges are accepted this many days after delivery."""

ADDRESS_CHANGE_STATUSES = ("pending", "processing")
"""An order's shipping address can change only before it ships."""

NOT_FOUND_MESSAGE = (
    "I couldn't find an order with that number. Could you check it and read it again?"
)
NOT_YOURS_MESSAGE = (
    "That order isn't on the account you verified, so I can't share details or make changes to it."
)

_ORDER_RE = re.compile(r"^(?:ORD(?:ER)?)?[\s#:\-]*(\d{3,10})$")


def normalize_order_id(value: str) -> str:
    """``"ORD-1001"`` from ``"ord 1001"``, ``"#1001"`` or ``"1001"``.

    Raises:
        ValueError: not an order number.

    """
    match = _ORDER_RE.match(value.strip().upper())
    if not match:
        raise ValueError("not an order number")
    return f"ORD-{match.group(1)}"


def normalize_phone(value: str) -> str:
    """E.164 for North American numbers written any common way; other digits get a ``+``."""
    digits = re.sub(r"\D", "", value)
    if len(digits) == 10:
        digits = "1" + digits
    return "+" + digits


def normalize_zip(value: str) -> str:
    """The five-digit ZIP code (``94105-1234`` -> ``94105``)."""
    return value.strip()[:5]


OrderId = Annotated[
    str,
    AfterValidator(normalize_order_id),
    Field(description="The order number, like ORD-1001.", min_length=3, max_length=20),
]


class Address(BaseModel):
    """A shipping address."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    line1: str = Field(min_length=1, max_length=120, description="Street address.")
    line2: str | None = Field(default=None, max_length=120, description="Apartment, suite, etc.")
    city: str = Field(min_length=1, max_length=80)
    state: str = Field(min_length=2, max_length=40, description="State or region, e.g. CA.")
    zip: str = Field(
        pattern=r"^\d{5}(-\d{4})?$", description="Five-digit ZIP code (ZIP+4 also accepted)."
    )
    country: str = Field(default="US", max_length=2, description="Two-letter country code.")


def money(cents: int) -> str:
    """``"49.00"`` for 4900 cents."""
    return f"{cents / 100:.2f}"


def iso(value: datetime | date | None) -> str | None:
    """ISO 8601 text, or None."""
    return value.isoformat() if value is not None else None


def now() -> datetime:
    """The current time (UTC)."""
    return datetime.now(UTC)


async def fetch_order(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record:
    """The order row, locked for update when inside a transaction.

    Raises:
        ToolError: no such order (``order_not_found``).

    """
    sql = "SELECT * FROM orders WHERE order_id = $1"
    if conn.is_in_transaction():
        sql += " FOR UPDATE"
    row = await conn.fetchrow(sql, order_id)
    if row is None:
        raise ToolError("order_not_found", NOT_FOUND_MESSAGE)
    return row


async def owned_order(ctx: SkillContext, conn: asyncpg.Connection, order_id: str) -> asyncpg.Record:
    """The order, if it belongs to the verified customer of this call.

    Raises:
        ToolError: nobody is verified (``not_verified``), there is no such order
            (``order_not_found``) or it is someone else's (``not_your_order``).

    """
    customer_id = ctx.require_verified()
    order = await fetch_order(conn, order_id)
    if order["customer_id"] != customer_id:
        raise ToolError("not_your_order", NOT_YOURS_MESSAGE)
    return order


async def latest_shipment(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record | None:
    """The order's most recent shipment, if it has one."""
    return await conn.fetchrow(
        "SELECT * FROM shipments WHERE order_id = $1 ORDER BY shipped_at DESC NULLS LAST LIMIT 1",
        order_id,
    )


def public_status(order: asyncpg.Record, shipment: asyncpg.Record | None) -> dict[str, Any]:
    """What a public "track your order" page shows: nothing personal."""
    data: dict[str, Any] = {
        "order_id": order["order_id"],
        "status": order["status"],
        "carrier": None,
        "tracking_number": None,
        "shipment_status": None,
        "estimated_delivery": None,
        "delivered_at": None,
        "last_update": iso(order["updated_at"]),
        "last_event": None,
    }
    if shipment is not None:
        data.update(
            carrier=shipment["carrier"],
            tracking_number=shipment["tracking_number"],
            shipment_status=shipment["status"],
            estimated_delivery=iso(shipment["estimated_delivery"]),
            delivered_at=iso(shipment["delivered_at"]),
            last_update=iso(shipment["last_update_at"]),
            last_event=shipment["last_event"] or None,
        )
    return data


async def order_items(conn: asyncpg.Connection, order_id: str) -> list[asyncpg.Record]:
    """The order's items, in a stable order."""
    return await conn.fetch(
        "SELECT * FROM order_items WHERE order_id = $1 ORDER BY item_id", order_id
    )


def item_view(item: asyncpg.Record) -> dict[str, Any]:
    """An order item as the model sees it."""
    return {
        "item_id": item["item_id"],
        "product": item["product_name"],
        "options": item["options"],
        "variant_id": item["variant_id"],
        "quantity": item["quantity"],
        "unit_price": money(item["unit_price_cents"]),
        "status": item["status"],
    }


async def order_details(conn: asyncpg.Connection, order: asyncpg.Record) -> dict[str, Any]:
    """Everything about an order, for its verified owner."""
    shipment = await latest_shipment(conn, order["order_id"])
    items = await order_items(conn, order["order_id"])
    payments = await conn.fetch(
        "SELECT * FROM payments WHERE order_id = $1 ORDER BY created_at", order["order_id"]
    )
    data = public_status(order, shipment)
    data.update(
        placed_at=iso(order["placed_at"]),
        total=money(order["total_cents"]),
        currency="USD",
        shipping_address=order["shipping_address"],
        items=[item_view(i) for i in items],
        payments=[
            {
                "method": p["method"],
                "card_brand": p["card_brand"],
                "card_last4": p["card_last4"],
                "amount": money(p["amount_cents"]),
                "status": p["status"],
            }
            for p in payments
        ],
    )
    if order["status"] == "cancelled":
        data.update(cancel_reason=order["cancel_reason"], cancelled_at=iso(order["cancelled_at"]))
    return data


def return_window_check(
    order: asyncpg.Record, shipment: asyncpg.Record | None, *, action: str
) -> datetime:
    """The delivery time, if the order can still be returned or exchanged.

    Raises:
        ToolError: not delivered yet (``not_delivered``) or past the window
            (``outside_return_window``).

    """
    if order["status"] != "delivered" or shipment is None or shipment["delivered_at"] is None:
        raise ToolError(
            "not_delivered",
            f"This order hasn't been delivered yet, so I can't start {action} for it. "
            "Once it arrives, you'll have "
            f"{RETURN_WINDOW_DAYS} days.",
        )
    delivered_at: datetime = shipment["delivered_at"]
    if now() - delivered_at > timedelta(days=RETURN_WINDOW_DAYS):
        raise ToolError(
            "outside_return_window",
            f"This order was delivered on {delivered_at.date():%B %-d, %Y}, which is outside our "
            f"{RETURN_WINDOW_DAYS}-day window, so I can't start {action} for it.",
        )
    return delivered_at


def pick_items(
    items: list[asyncpg.Record], item_ids: list[str], *, action: str
) -> list[asyncpg.Record]:
    """The named items of an order, each still eligible for a return or exchange.

    Raises:
        ToolError: an id is not in the order (``item_not_found``) or the item already has a
            return or exchange (``item_not_eligible``).

    """
    by_id = {i["item_id"]: i for i in items}
    picked = []
    for item_id in dict.fromkeys(i.strip().upper() for i in item_ids):
        item = by_id.get(item_id)
        if item is None:
            raise ToolError(
                "item_not_found",
                f"I couldn't find item {item_id} in this order. Let me check the items again.",
            )
        if item["status"] != "ordered":
            raise ToolError(
                "item_not_eligible",
                f"The {item['product_name']} already has a {item['status'].split('_')[0]} in "
                f"progress, so I can't start {action} for it again.",
            )
        picked.append(item)
    return picked


def new_id(prefix: str) -> str:
    """A short unique id such as ``RET-8F3A2C91``."""
    return f"{prefix}-{secrets.token_hex(4).upper()}"


async def find_customers(
    conn: asyncpg.Connection,
    *,
    phone: str | None = None,
    email: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    zip_code: str | None = None,
) -> list[asyncpg.Record]:
    """Customers matching a phone number, an email, or a last name (and first name) with a ZIP."""
    if phone:
        return await conn.fetch(
            "SELECT * FROM customers WHERE phone = $1 ORDER BY customer_id LIMIT 5",
            normalize_phone(phone),
        )
    if email:
        return await conn.fetch(
            "SELECT * FROM customers WHERE lower(email) = lower($1) ORDER BY customer_id LIMIT 5",
            email.strip(),
        )
    if last_name and zip_code:
        return await conn.fetch(
            """
            SELECT * FROM customers
            WHERE lower(last_name) = lower($1) AND zip = $2
              AND ($3::text IS NULL OR lower(first_name) = lower($3))
            ORDER BY customer_id LIMIT 5
            """,
            last_name.strip(),
            normalize_zip(zip_code),
            first_name.strip() if first_name else None,
        )
    return []


def customer_profile(customer: asyncpg.Record) -> dict[str, Any]:
    """A customer's own account details (for that verified customer only)."""
    return {
        "customer_id": customer["customer_id"],
        "first_name": customer["first_name"],
        "last_name": customer["last_name"],
        "email": customer["email"],
        "phone": customer["phone"],
        "address": customer["address"],
        "zip": customer["zip"],
    }


async def returnable_items(
    ctx: SkillContext,
    conn: asyncpg.Connection,
    order_id: str,
    item_ids: list[str],
    *,
    action: str,
) -> tuple[asyncpg.Record, list[asyncpg.Record]]:
    """The verified customer's delivered order and the named items, if a return or exchange may start.

    Raises:
        ToolError: see :func:`owned_order`, :func:`return_window_check` and :func:`pick_items`.

    """
    order = await owned_order(ctx, conn, order_id)
    return_window_check(order, await latest_shipment(conn, order_id), action=action)
    return order, pick_items(await order_items(conn, order_id), item_ids, action=action)
