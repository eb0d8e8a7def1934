"""Order skills: disclosure, ownership whatever the arguments, and the cancel/address rules."""

from __future__ import annotations

import asyncpg
import pytest

PUBLIC_KEYS = {
    "order_id",
    "status",
    "carrier",
    "tracking_number",
    "shipment_status",
    "estimated_delivery",
    "delivered_at",
    "last_update",
    "last_event",
    "verified",
}

ACCOUNT_TOOLS = [
    ("list_recent_orders", {}),
    ("cancel_order", {"order_id": "ORD-1002"}),
    (
        "update_shipping_address",
        {
            "order_id": "ORD-1002",
            "address": {"line1": "1 A St", "city": "X", "state": "CA", "zip": "94000"},
        },
    ),
    (
        "start_return",
        {"order_id": "ORD-1003", "item_ids": ["ITM-1003-1"], "reason": "does not fit"},
    ),
    (
        "exchange_items",
        {
            "order_id": "ORD-1003",
            "items": [{"item_id": "ITM-1003-1", "new_options": {"size": "L"}}],
        },
    ),
]


async def test_demo_order_1001_public_status(call) -> None:
    result = await call("check_order_status", {"order_id": "ORD-1001"})
    assert result["success"] is True
    data = result["data"]
    assert set(data) == PUBLIC_KEYS
    assert data["status"] == "shipped"
    assert data["carrier"] == "UPS"
    assert data["tracking_number"] == "1Z999AA10123456784"
    assert data["estimated_delivery"]
    assert data["verified"] is False


async def test_order_details_only_for_the_verified_owner(call) -> None:
    own = await call("check_order_status", {"order_id": "ORD-1001"}, verified="CUS-0001")
    data = own["data"]
    assert data["verified"] is True
    assert data["shipping_address"]["zip"] == "94105"
    assert [i["item_id"] for i in data["items"]] == ["ITM-1001-1", "ITM-1001-2"]
    assert data["payments"][0]["card_last4"] == "4242"
    other = await call("check_order_status", {"order_id": "ORD-1001"}, verified="CUS-0002")
    assert other["success"] is False
    assert other["error"] == "not_your_order"
    assert "94105" not in other["message"] and "Maya" not in other["message"]


async def test_unknown_order(call) -> None:
    result = await call("check_order_status", {"order_id": "ORD-99999999"})
    assert result["error"] == "order_not_found"


@pytest.mark.parametrize(("name", "arguments"), ACCOUNT_TOOLS)
async def test_account_tools_refuse_until_verified(call, name, arguments) -> None:
    result = await call(name, arguments)
    assert result["success"] is False
    assert result["error"] == "not_verified"
    assert "verify" in result["message"]


@pytest.mark.parametrize(("name", "arguments"), ACCOUNT_TOOLS[1:])
async def test_another_customers_orders_are_refused_whatever_the_arguments(
    call, name, arguments, db_pool: asyncpg.Pool
) -> None:
    before = await db_pool.fetch(
        "SELECT * FROM orders WHERE customer_id = 'CUS-0001' ORDER BY order_id"
    )
    # Daniel (CUS-0002) is verified; the model asks about Maya's orders.
    result = await call(name, arguments, verified="CUS-0002")
    assert result["success"] is False
    assert result["error"] == "not_your_order"
    after = await db_pool.fetch(
        "SELECT * FROM orders WHERE customer_id = 'CUS-0001' ORDER BY order_id"
    )
    assert before == after
    # Smuggling a customer id into the arguments is not accepted either.
    smuggled = await call(name, {**arguments, "customer_id": "CUS-0001"}, verified="CUS-0002")
    assert smuggled["success"] is False


async def test_list_recent_orders_lists_only_the_verified_customers_orders(call, make_shop) -> None:
    shop, other = await make_shop("pending", "delivered", "shipped"), await make_shop("pending")
    result = await call("list_recent_orders", {"limit": 10}, verified=shop.customer_id)
    assert result["success"] is True
    ids = {o["order_id"] for o in result["data"]["orders"]}
    assert ids == set(shop.orders.values())
    same = await call(
        "list_recent_orders", {"customer_id": shop.customer_id}, verified=shop.customer_id
    )
    assert same["success"] is True
    asked_for_other = await call(
        "list_recent_orders", {"customer_id": other.customer_id}, verified=shop.customer_id
    )
    assert asked_for_other["success"] is False
    assert asked_for_other["error"] == "not_your_account"
    assert other.order("pending") not in str(asked_for_other)


async def test_cancel_pending_order(call, make_shop, db_pool: asyncpg.Pool) -> None:
    shop = await make_shop("pending")
    order_id = shop.order("pending")
    result = await call(
        "cancel_order",
        {"order_id": order_id, "reason": "ordered by mistake"},
        verified=shop.customer_id,
    )
    assert result["success"] is True
    assert result["data"]["status"] == "cancelled"
    row = await db_pool.fetchrow(
        "SELECT status, cancel_reason FROM orders WHERE order_id = $1", order_id
    )
    assert tuple(row) == ("cancelled", "ordered by mistake")
    assert (
        await db_pool.fetchval("SELECT status FROM payments WHERE order_id = $1", order_id)
        == "refunded"
    )
    again = await call("cancel_order", {"order_id": order_id}, verified=shop.customer_id)
    assert again["error"] == "already_cancelled"


@pytest.mark.parametrize("state", ["processing", "shipped", "delivered"])
async def test_only_pending_orders_can_be_cancelled(call, make_shop, db_pool, state) -> None:
    shop = await make_shop(state)
    order_id = shop.order(state)
    result = await call("cancel_order", {"order_id": order_id}, verified=shop.customer_id)
    assert result["success"] is False
    assert result["error"] == "not_cancellable"
    assert (
        await db_pool.fetchval("SELECT status FROM orders WHERE order_id = $1", order_id) == state
    )


async def test_idempotent_cancel_repeat_changes_nothing(call, make_shop, db_pool) -> None:
    shop = await make_shop("pending")
    order_id = shop.order("pending")
    ids = {"call_id": "call-idem-cancel-" + order_id, "tool_call_id": "call_1"}
    first = await call("cancel_order", {"order_id": order_id}, verified=shop.customer_id, **ids)
    updated = await db_pool.fetchval("SELECT updated_at FROM orders WHERE order_id = $1", order_id)
    second = await call("cancel_order", {"order_id": order_id}, verified=shop.customer_id, **ids)
    assert first["success"] is True
    assert second == first
    assert (
        await db_pool.fetchval("SELECT updated_at FROM orders WHERE order_id = $1", order_id)
        == updated
    )


ADDRESS = {
    "line1": "77 New Rd",
    "line2": "Unit 5",
    "city": "Berkeley",
    "state": "CA",
    "zip": "94704",
}


@pytest.mark.parametrize(
    ("state", "error"),
    [
        ("pending", None),
        ("processing", None),
        ("shipped", "already_shipped"),
        ("delivered", "already_shipped"),
        ("cancelled", "not_changeable"),
    ],
)
async def test_update_address_only_before_shipment(call, make_shop, db_pool, state, error) -> None:
    shop = await make_shop(state)
    order_id = shop.order(state)
    result = await call(
        "update_shipping_address",
        {"order_id": order_id, "address": ADDRESS},
        verified=shop.customer_id,
    )
    stored = await db_pool.fetchval(
        "SELECT shipping_address FROM orders WHERE order_id = $1", order_id
    )
    if error is None:
        assert result["success"] is True
        assert stored == {**ADDRESS, "country": "US"}
        assert result["data"]["previous_address"]["zip"] == shop.zip
    else:
        assert result["error"] == error
        assert stored["zip"] == shop.zip


async def test_update_address_validates_the_address(call, make_shop) -> None:
    shop = await make_shop("pending")
    result = await call(
        "update_shipping_address",
        {"order_id": shop.order("pending"), "address": {**ADDRESS, "zip": "ABCDE"}},
        verified=shop.customer_id,
    )
    assert result["error"] == "invalid_arguments"
    assert "address.zip" in result["message"]
