"""exchange_items: swap delivered items for another size or color of the same product."""

from __future__ import annotations

from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, model_validator

from callcenter.tools.domain import (
    RETURN_WINDOW_DAYS,
    OrderId,
    money,
    new_id,
    returnable_items,
)
from callcenter.tools.notifications import promise_notification, settings
from callcenter.tools.registry import SkillContext, ToolArguments, ToolError, skill


class ExchangeItem(BaseModel):
    """One item and what it becomes."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    item_id: str = Field(max_length=32, description="The item id, like ITM-1003-1.")
    new_variant_id: str | None = Field(
        default=None, max_length=32, description="The variant to receive, like VAR-0012."
    )
    new_options: dict[str, str] | None = Field(
        default=None,
        description='Or just the options that change, like {"size": "L"} or {"color": "black"}.',
    )

    @model_validator(mode="after")
    def _one_target(self) -> ExchangeItem:
        if not self.new_variant_id and not self.new_options:
            raise ValueError("give new_variant_id or new_options")
        return self


class ExchangeItemsArgs(ToolArguments):
    """The order and the items to exchange."""

    order_id: OrderId
    items: list[ExchangeItem] = Field(min_length=1, max_length=20)


async def _target_variant(
    conn: asyncpg.Connection, item: asyncpg.Record, wanted: ExchangeItem
) -> asyncpg.Record:
    current = await conn.fetchrow(
        "SELECT * FROM product_variants WHERE variant_id = $1", item["variant_id"]
    )
    if wanted.new_variant_id:
        target = await conn.fetchrow(
            "SELECT * FROM product_variants WHERE variant_id = $1", wanted.new_variant_id.upper()
        )
    else:
        wanted_options = {
            **{k: v.lower() for k, v in current["options"].items()},
            **{k.strip().lower(): v.strip().lower() for k, v in (wanted.new_options or {}).items()},
        }
        siblings = await conn.fetch(
            "SELECT * FROM product_variants WHERE product_id = $1 ORDER BY variant_id",
            current["product_id"],
        )
        target = next(
            (
                v
                for v in siblings
                if {k: o.lower() for k, o in v["options"].items()} == wanted_options
            ),
            None,
        )
    name = item["product_name"]
    if target is None or target["product_id"] != current["product_id"]:
        raise ToolError(
            "variant_not_found",
            f"The {name} doesn't come in that option. An exchange must be for another size or color of the same product.",
        )
    if target["variant_id"] == current["variant_id"]:
        raise ToolError("same_variant", f"That's the same {name} you already have.")
    if not target["available"]:
        raise ToolError(
            "variant_unavailable",
            f"That version of the {name} is out of stock right now. I can start a return instead, or you can pick another option.",
        )
    return target


@skill(
    name="exchange_items",
    description=(
        "Exchange items of a delivered order for another size or color of the same product, "
        f"within {RETURN_WINDOW_DAYS} days of delivery, for the verified customer's own order. "
        "Verify first; ask for the new size or color when the customer has not said it. The "
        "result's confirmation says what is sent and where; tell the customer only that."
    ),
    arguments=ExchangeItemsArgs,
    side_effects=True,
)
async def exchange_items(args: ExchangeItemsArgs, ctx: SkillContext) -> dict[str, Any]:
    """Record an exchange request and mark its items."""
    async with ctx.connection() as conn:
        order, items = await returnable_items(
            ctx, conn, args.order_id, [i.item_id for i in args.items], action="an exchange"
        )
        wanted = {i.item_id.upper(): i for i in args.items}
        swaps = []
        difference = 0
        for item in items:
            target = await _target_variant(conn, item, wanted[item["item_id"]])
            difference += (target["price_cents"] - item["unit_price_cents"]) * item["quantity"]
            swaps.append(
                {
                    "item_id": item["item_id"],
                    "product": item["product_name"],
                    "from_variant_id": item["variant_id"],
                    "from_options": item["options"],
                    "to_variant_id": target["variant_id"],
                    "to_options": target["options"],
                }
            )
        exchange_id = new_id("EXC")
        await conn.execute(
            """
            INSERT INTO exchanges (exchange_id, order_id, customer_id, items,
                                   price_difference_cents, call_id, idempotency_key)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            """,
            exchange_id,
            args.order_id,
            order["customer_id"],
            swaps,
            difference,
            ctx.call.call_id or None,
            ctx.idempotency_key,
        )
        await conn.execute(
            "UPDATE order_items SET status = 'exchange_requested' WHERE item_id = ANY($1::text[])",
            [s["item_id"] for s in swaps],
        )
        label_url = settings().notifications.return_label_url.format(return_id=exchange_id)
        confirmation = await promise_notification(
            conn,
            notification_id=f"exchange_confirmation-{exchange_id}",
            call_id=ctx.call.call_id,
            customer_id=order["customer_id"],
            kind="exchange_confirmation",
            details={
                "exchange_id": exchange_id,
                "order_id": args.order_id,
                "items": [s["product"] for s in swaps],
                "price_difference": money(difference),
                "label_url": label_url,
            },
        )
    return {
        "exchange_id": exchange_id,
        "order_id": args.order_id,
        "items": swaps,
        "price_difference": money(difference),
        "status": "requested",
        "label_url": label_url,
        "confirmation": confirmation,
        "next_steps": (
            f"A confirmation with the prepaid return label link is being emailed to "
            f"{confirmation['to']}; the new items ship once the originals are scanned by the "
            "carrier."
        ),
    }


TOOL_SCHEMA = exchange_items.schema
