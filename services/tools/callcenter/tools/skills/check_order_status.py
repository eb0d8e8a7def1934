"""check_order_status: where an order is.

Without verification it answers like a public "track your order" page (status, carrier, tracking
number, estimated delivery, last update); a verified customer also gets items, address and
payment, for their own orders only.
"""

from __future__ import annotations

from typing import Any

from callcenter.tools.domain import (
    NOT_YOURS_MESSAGE,
    OrderId,
    fetch_order,
    latest_shipment,
    order_details,
    public_status,
)
from callcenter.tools.registry import SkillContext, ToolArguments, ToolError, skill


class CheckOrderStatusArgs(ToolArguments):
    """The order to check."""

    order_id: OrderId


@skill(
    name="check_order_status",
    description=(
        "Look up an order's status by order number: status, carrier, tracking number and "
        "estimated delivery. Items, address and payment are included only when the customer is "
        "verified and the order is theirs."
    ),
    arguments=CheckOrderStatusArgs,
)
async def check_order_status(args: CheckOrderStatusArgs, ctx: SkillContext) -> dict[str, Any]:
    """Public tracking status, or full details for the verified owner."""
    async with ctx.connection() as conn:
        order = await fetch_order(conn, args.order_id)
        if ctx.customer_id is None:
            data = public_status(order, await latest_shipment(conn, args.order_id))
            data["verified"] = False
            return data
        if order["customer_id"] != ctx.customer_id:
            raise ToolError("not_your_order", NOT_YOURS_MESSAGE)
        data = await order_details(conn, order)
    data["verified"] = True
    return data


TOOL_SCHEMA = check_order_status.schema
