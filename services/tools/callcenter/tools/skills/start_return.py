"""start_return: return delivered items inside the return window."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from callcenter.tools.domain import (
    RETURN_WINDOW_DAYS,
    OrderId,
    money,
    new_id,
    returnable_items,
)
from callcenter.tools.notifications import promise_notification, settings
from callcenter.tools.registry import SkillContext, ToolArguments, skill


class StartReturnArgs(ToolArguments):
    """What to return, why, and how to refund."""

    order_id: OrderId
    item_ids: list[str] = Field(
        min_length=1,
        max_length=20,
        description="The item ids to return (from check_order_status), like ITM-1003-1.",
    )
    reason: Literal[
        "does not fit",
        "damaged or defective",
        "not as described",
        "wrong item",
        "changed my mind",
        "other",
    ] = Field(description="Why the customer returns the items.")
    refund_method: Literal["original_payment", "gift_card"] = Field(
        default="original_payment",
        description="Refund to the original payment method, or as store credit on a gift card.",
    )


@skill(
    name="start_return",
    description=(
        f"Start a return for items of a delivered order, within {RETURN_WINDOW_DAYS} days of "
        "delivery, for the verified customer's own order (verify_identity first; item ids come "
        "from check_order_status). Return the items the customer named (all items when they "
        "named none); confirm first only when it is unclear which. The result says how the "
        "confirmation with the prepaid label link is sent (to the email on file); tell the "
        "customer only that."
    ),
    arguments=StartReturnArgs,
    side_effects=True,
)
async def start_return(args: StartReturnArgs, ctx: SkillContext) -> dict[str, Any]:
    """Record a return request and mark its items."""
    async with ctx.connection() as conn:
        order, items = await returnable_items(
            ctx, conn, args.order_id, args.item_ids, action="a return"
        )
        ids = [i["item_id"] for i in items]
        refund = sum(i["unit_price_cents"] * i["quantity"] for i in items)
        return_id = new_id("RET")
        await conn.execute(
            """
            INSERT INTO returns (return_id, order_id, customer_id, item_ids, reason, refund_method,
                                 refund_cents, call_id, idempotency_key)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """,
            return_id,
            args.order_id,
            order["customer_id"],
            ids,
            args.reason,
            args.refund_method,
            refund,
            ctx.call.call_id or None,
            ctx.idempotency_key,
        )
        await conn.execute(
            "UPDATE order_items SET status = 'return_requested' WHERE item_id = ANY($1::text[])",
            ids,
        )
        label_url = settings().notifications.return_label_url.format(return_id=return_id)
        products = [i["product_name"] for i in items]
        confirmation = await promise_notification(
            conn,
            notification_id=f"return_confirmation-{return_id}",
            call_id=ctx.call.call_id,
            customer_id=order["customer_id"],
            kind="return_confirmation",
            details={
                "return_id": return_id,
                "order_id": args.order_id,
                "items": products,
                "refund_amount": money(refund),
                "refund_method": args.refund_method,
                "label_url": label_url,
            },
        )
    return {
        "return_id": return_id,
        "order_id": args.order_id,
        "items": [{"item_id": i["item_id"], "product": i["product_name"]} for i in items],
        "refund_amount": money(refund),
        "refund_method": args.refund_method,
        "status": "requested",
        "label_url": label_url,
        "confirmation": confirmation,
        "next_steps": (
            f"A confirmation with the prepaid return label link is being emailed to "
            f"{confirmation['to']}. The refund is issued once the items arrive."
        ),
    }


TOOL_SCHEMA = start_return.schema
