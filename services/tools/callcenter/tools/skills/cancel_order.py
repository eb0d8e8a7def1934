"""cancel_order: cancel the verified customer's pending order and refund it in full."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from callcenter.tools.domain import OrderId, iso, money, now, owned_order
from callcenter.tools.notifications import promise_notification
from callcenter.tools.registry import SkillContext, ToolArguments, ToolError, skill


class CancelOrderArgs(ToolArguments):
    """The order to cancel and why."""

    order_id: OrderId
    reason: Literal["no longer needed", "ordered by mistake", "found a better price", "other"] = (
        Field(default="no longer needed", description="Why the customer cancels.")
    )


@skill(
    name="cancel_order",
    description=(
        "Cancel one of the verified customer's orders and refund it in full (verify_identity "
        "first). Only pending orders can be cancelled (not processing, shipped or delivered "
        "ones). Call it when the customer clearly asked to cancel that order; confirm first only "
        "when it is unclear which order. Say it is cancelled only after this succeeds. The "
        "result's confirmation says what is sent and where; tell the customer only that."
    ),
    arguments=CancelOrderArgs,
    side_effects=True,
)
async def cancel_order(args: CancelOrderArgs, ctx: SkillContext) -> dict[str, Any]:
    """Cancel a pending order; refund its payments."""
    async with ctx.connection() as conn:
        order = await owned_order(ctx, conn, args.order_id)
        if order["status"] == "cancelled":
            raise ToolError("already_cancelled", "That order is already cancelled.")
        if order["status"] != "pending":
            raise ToolError(
                "not_cancellable",
                f"That order is already {order['status']}, so it can't be cancelled any more. "
                + (
                    "Once it's delivered you can return it within 30 days."
                    if order["status"] != "delivered"
                    else "You can return it instead, within 30 days of delivery."
                ),
            )
        at = now()
        await conn.execute(
            "UPDATE orders SET status = 'cancelled', cancel_reason = $2, cancelled_at = $3, "
            "updated_at = $3 WHERE order_id = $1",
            args.order_id,
            args.reason,
            at,
        )
        await conn.execute(
            "UPDATE payments SET status = 'refunded' WHERE order_id = $1", args.order_id
        )
        confirmation = await promise_notification(
            conn,
            notification_id=f"cancellation_confirmation-{args.order_id}",
            call_id=ctx.call.call_id,
            customer_id=order["customer_id"],
            kind="cancellation_confirmation",
            details={"order_id": args.order_id, "refund_amount": money(order["total_cents"])},
        )
    return {
        "order_id": args.order_id,
        "status": "cancelled",
        "reason": args.reason,
        "cancelled_at": iso(at),
        "refund_amount": money(order["total_cents"]),
        "refund_note": "The full amount goes back to the original payment method in 5 to 10 business days.",
        "confirmation": confirmation,
    }


TOOL_SCHEMA = cancel_order.schema
