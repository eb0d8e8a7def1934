"""list_recent_orders: the verified customer's latest orders."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from callcenter.tools.domain import NOT_YOURS_MESSAGE, iso, money
from callcenter.tools.registry import SkillContext, ToolArguments, ToolError, skill


class ListRecentOrdersArgs(ToolArguments):
    """How many orders to list."""

    limit: int = Field(default=5, ge=1, le=20, description="How many orders, newest first.")
    customer_id: str | None = Field(
        default=None,
        max_length=32,
        description="Not needed: the verified customer's orders are always the ones listed.",
    )


@skill(
    name="list_recent_orders",
    description=(
        "List the verified customer's most recent orders (number, date, status, total, item "
        "count). Requires verification; only ever lists the verified customer's own orders."
    ),
    arguments=ListRecentOrdersArgs,
)
async def list_recent_orders(args: ListRecentOrdersArgs, ctx: SkillContext) -> dict[str, Any]:
    """The newest orders of the verified customer."""
    customer_id = ctx.require_verified()
    if args.customer_id and args.customer_id.strip().upper() != customer_id:
        raise ToolError("not_your_account", NOT_YOURS_MESSAGE)
    async with ctx.connection() as conn:
        rows = await conn.fetch(
            """
            SELECT o.order_id, o.placed_at, o.status, o.total_cents,
                   (SELECT count(*) FROM order_items i WHERE i.order_id = o.order_id) AS item_count
            FROM orders o WHERE o.customer_id = $1
            ORDER BY o.placed_at DESC, o.order_id DESC LIMIT $2
            """,
            customer_id,
            args.limit,
        )
    return {
        "customer_id": customer_id,
        "orders": [
            {
                "order_id": r["order_id"],
                "placed_at": iso(r["placed_at"]),
                "status": r["status"],
                "total": money(r["total_cents"]),
                "item_count": r["item_count"],
            }
            for r in rows
        ],
    }


TOOL_SCHEMA = list_recent_orders.schema
