"""Returns and exchanges: delivered orders only, inside the window, each item once, idempotent."""

from __future__ import annotations

import asyncpg
import pytest


async def _item_statuses(db_pool: asyncpg.Pool, order_id: str) -> dict[str, str]:
    rows = await db_pool.fetch(
        "SELECT item_id, status FROM order_items WHERE order_id = $1", order_id
    )
    return {r["item_id"]: r["status"] for r in rows}


async def test_start_return_inside_the_window(call, make_shop, db_pool) -> None:
    shop = await make_shop("delivered")
    order_id = shop.order("delivered")
    item = f"ITM-{order_id[4:]}-2"
    result = await call(
        "start_return",
        {
            "order_id": order_id,
            "item_ids": [item.lower()],
            "reason": "does not fit",
            "refund_method": "gift_card",
        },
        verified=shop.customer_id,
    )
    assert result["success"] is True, result
    data = result["data"]
    assert data["refund_amount"] == "58.00"  # two T-shirts at 29.00
    assert data["refund_method"] == "gift_card"
    row = await db_pool.fetchrow("SELECT * FROM returns WHERE return_id = $1", data["return_id"])
    assert row["item_ids"] == [item]
    assert row["customer_id"] == shop.customer_id
    statuses = await _item_statuses(db_pool, order_id)
    assert statuses[item] == "return_requested"
    assert statuses[f"ITM-{order_id[4:]}-1"] == "ordered"
    twice = await call(
        "start_return",
        {"order_id": order_id, "item_ids": [item], "reason": "other"},
        verified=shop.customer_id,
    )
    assert twice["error"] == "item_not_eligible"


@pytest.mark.parametrize(
    ("state", "error"),
    [
        ("delivered_old", "outside_return_window"),
        ("shipped", "not_delivered"),
        ("pending", "not_delivered"),
        ("cancelled", "not_delivered"),
    ],
)
async def test_return_and_exchange_rules(call, make_shop, db_pool, state, error) -> None:
    shop = await make_shop(state)
    order_id = shop.order(state)
    item = f"ITM-{order_id[4:]}-1"
    ret = await call(
        "start_return",
        {"order_id": order_id, "item_ids": [item], "reason": "changed my mind"},
        verified=shop.customer_id,
    )
    assert ret["error"] == error
    exc = await call(
        "exchange_items",
        {"order_id": order_id, "items": [{"item_id": item, "new_options": {"size": "L"}}]},
        verified=shop.customer_id,
    )
    assert exc["error"] == error
    assert set((await _item_statuses(db_pool, order_id)).values()) == {"ordered"}
    assert await db_pool.fetchval("SELECT count(*) FROM returns WHERE order_id = $1", order_id) == 0


async def test_items_must_belong_to_the_order(call, make_shop) -> None:
    shop = await make_shop("delivered", "delivered")
    first, second = shop.order("delivered"), shop.order("delivered1")
    result = await call(
        "start_return",
        {"order_id": first, "item_ids": [f"ITM-{second[4:]}-1"], "reason": "other"},
        verified=shop.customer_id,
    )
    assert result["error"] == "item_not_found"


async def test_exchange_for_another_size(call, make_shop, db_pool) -> None:
    shop = await make_shop("delivered")
    order_id = shop.order("delivered")
    item = f"ITM-{order_id[4:]}-1"  # sweater M / navy
    result = await call(
        "exchange_items",
        {"order_id": order_id, "items": [{"item_id": item, "new_options": {"size": "L"}}]},
        verified=shop.customer_id,
    )
    assert result["success"] is True, result
    swap = result["data"]["items"][0]
    assert swap["from_options"] == {"size": "M", "color": "navy"}
    assert swap["to_options"] == {"size": "L", "color": "navy"}
    assert result["data"]["price_difference"] == "0.00"
    assert (await _item_statuses(db_pool, order_id))[item] == "exchange_requested"
    stored = await db_pool.fetchval(
        "SELECT items FROM exchanges WHERE exchange_id = $1", result["data"]["exchange_id"]
    )
    assert stored[0]["to_variant_id"] == swap["to_variant_id"]


async def test_exchange_refusals(call, make_shop, db_pool) -> None:
    shop = await make_shop("delivered")
    order_id = shop.order("delivered")
    item = f"ITM-{order_id[4:]}-1"  # sweater M / navy
    cases = [
        ({"new_options": {"size": "M"}}, "same_variant"),
        ({"new_options": {"size": "XXXL"}}, "variant_not_found"),
        ({"new_variant_id": "VAR-0001"}, "variant_not_found"),  # a shoe, not a sweater
    ]
    unavailable = await db_pool.fetchval(
        "SELECT variant_id FROM product_variants WHERE product_id = 'PRD-002' AND NOT available LIMIT 1"
    )
    if unavailable is None:
        unavailable = await db_pool.fetchval(
            "INSERT INTO product_variants (variant_id, product_id, options, price_cents, available) "
            'VALUES (\'VAR-T9999\', \'PRD-002\', \'{"size": "XS", "color": "navy"}\', 8900, false) '
            "ON CONFLICT (variant_id) DO UPDATE SET available = false RETURNING variant_id"
        )
    cases.append(({"new_variant_id": unavailable}, "variant_unavailable"))
    for target, error in cases:
        result = await call(
            "exchange_items",
            {"order_id": order_id, "items": [{"item_id": item, **target}]},
            verified=shop.customer_id,
        )
        assert result["error"] == error, (target, result)
    nothing = await call(
        "exchange_items",
        {"order_id": order_id, "items": [{"item_id": item}]},
        verified=shop.customer_id,
    )
    assert nothing["error"] == "invalid_arguments"
    assert "new_variant_id or new_options" in nothing["message"]
    assert set((await _item_statuses(db_pool, order_id)).values()) == {"ordered"}
    assert (
        await db_pool.fetchval("SELECT count(*) FROM exchanges WHERE order_id = $1", order_id) == 0
    )


async def test_an_item_in_a_return_cannot_be_exchanged(call, make_shop) -> None:
    shop = await make_shop("delivered")
    order_id = shop.order("delivered")
    item = f"ITM-{order_id[4:]}-1"
    ok = await call(
        "start_return",
        {"order_id": order_id, "item_ids": [item], "reason": "other"},
        verified=shop.customer_id,
    )
    assert ok["success"] is True
    result = await call(
        "exchange_items",
        {"order_id": order_id, "items": [{"item_id": item, "new_options": {"size": "L"}}]},
        verified=shop.customer_id,
    )
    assert result["error"] == "item_not_eligible"


async def test_idempotent_return_repeat_changes_nothing(call, make_shop, db_pool) -> None:
    shop = await make_shop("delivered")
    order_id = shop.order("delivered")
    args = {
        "order_id": order_id,
        "item_ids": [f"ITM-{order_id[4:]}-1"],
        "reason": "damaged or defective",
    }
    ids = {"call_id": f"call-{order_id}", "tool_call_id": "call_7"}
    first = await call("start_return", args, verified=shop.customer_id, **ids)
    second = await call("start_return", args, verified=shop.customer_id, **ids)
    assert first["success"] is True
    assert second == first
    assert await db_pool.fetchval("SELECT count(*) FROM returns WHERE order_id = $1", order_id) == 1
    # a new tool call id is a new request, refused because the item already has a return
    third = await call(
        "start_return",
        args,
        verified=shop.customer_id,
        call_id=ids["call_id"],
        tool_call_id="call_8",
    )
    assert third["error"] == "item_not_eligible"


async def test_idempotent_exchange_repeat_changes_nothing(call, make_shop, db_pool) -> None:
    shop = await make_shop("delivered")
    order_id = shop.order("delivered")
    args = {
        "order_id": order_id,
        "items": [{"item_id": f"ITM-{order_id[4:]}-2", "new_options": {"color": "black"}}],
    }
    ids = {"call_id": f"call-{order_id}", "tool_call_id": "call_9"}
    first = await call("exchange_items", args, verified=shop.customer_id, **ids)
    second = await call("exchange_items", args, verified=shop.customer_id, **ids)
    assert first["success"] is True, first
    assert second == first
    assert (
        await db_pool.fetchval("SELECT count(*) FROM exchanges WHERE order_id = $1", order_id) == 1
    )
