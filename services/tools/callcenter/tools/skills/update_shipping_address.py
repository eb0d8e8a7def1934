"""update_shipping_address: change where a not-yet-shipped order goes."""

from __future__ import annotations

from typing import Any

from callcenter.tools.domain import (
    ADDRESS_CHANGE_STATUSES,
    Address,
    OrderId,
    new_id,
    owned_order,
)
from callcenter.tools.notifications import promise_notification
from callcenter.tools.registry import SkillContext, ToolArguments, ToolError, skill


class UpdateShippingAddressArgs(ToolArguments):
    """The order and its new address."""

    order_id: OrderId
    address: Address


@skill(
    name="update_shipping_address",
    description=(
        "Change the shipping address of one of the verified customer's orders. Only possible "
        "before the order ships (pending or processing); verify_identity first. Use the full "
        "address the customer gave (street, city, state, ZIP) and read it back in your answer. "
        "The result's confirmation says what is sent and where; tell the customer only that."
    ),
    arguments=UpdateShippingAddressArgs,
    side_effects=True,
)
async def update_shipping_address(
    args: UpdateShippingAddressArgs, ctx: SkillContext
) -> dict[str, Any]:
    """Replace the shipping address of an order that has not shipped."""
    async with ctx.connection() as conn:
        order = await owned_order(ctx, conn, args.order_id)
        shipped = await conn.fetchval(
            "SELECT 1 FROM shipments WHERE order_id = $1 AND shipped_at IS NOT NULL LIMIT 1",
            args.order_id,
        )
        if order["status"] not in ADDRESS_CHANGE_STATUSES or shipped:
            raise ToolError(
                "already_shipped"
                if order["status"] in ("shipped", "delivered") or shipped
                else "not_changeable",
                f"That order is {order['status']}, so its address can't be changed any more. "
                "For a shipped package, the carrier may be able to redirect it.",
            )
        address = args.address.model_dump()
        await conn.execute(
            "UPDATE orders SET shipping_address = $2, updated_at = now() WHERE order_id = $1",
            args.order_id,
            address,
        )
        confirmation = await promise_notification(
            conn,
            notification_id=f"address_change_confirmation-{ctx.idempotency_key or new_id('ADR')}",
            call_id=ctx.call.call_id,
            customer_id=order["customer_id"],
            kind="address_change_confirmation",
            details={"order_id": args.order_id, "shipping_address": address},
        )
    return {
        "order_id": args.order_id,
        "previous_address": order["shipping_address"],
        "shipping_address": address,
        "status": order["status"],
        "confirmation": confirmation,
    }


TOOL_SCHEMA = update_shipping_address.schema
