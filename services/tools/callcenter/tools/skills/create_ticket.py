"""create_ticket: open a support ticket for follow-up by the team."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from callcenter.common.pii import redact
from callcenter.tools.domain import new_id
from callcenter.tools.registry import SkillContext, ToolArguments, skill


class CreateTicketArgs(ToolArguments):
    """What the ticket is about."""

    subject: str = Field(min_length=3, max_length=200, description="A one-line summary.")
    description: str = Field(
        min_length=3, max_length=4000, description="What happened and what the customer wants."
    )
    priority: Literal["low", "normal", "high", "urgent"] = Field(default="normal")


@skill(
    name="create_ticket",
    description=(
        "Open a support ticket so the team follows up: a complaint (damaged, wrong or late item, "
        "bad service; apologise first), a problem you can't solve, or a request that needs a "
        "person later. Open it whenever the customer asks for a ticket. Linked to the verified "
        "customer when there is one."
    ),
    arguments=CreateTicketArgs,
    side_effects=True,
)
async def create_ticket(args: CreateTicketArgs, ctx: SkillContext) -> dict[str, Any]:
    """Insert a ticket (once per tool call: the idempotency key is call_id:tool_call_id)."""
    async with ctx.connection() as conn:
        row = await conn.fetchrow(
            """
            INSERT INTO tickets (ticket_id, call_id, customer_id, source, priority, subject, body,
                                 idempotency_key)
            VALUES ($1, $2, $3, 'tools', $4, $5, $6, $7)
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING ticket_id, status, priority
            """,
            new_id("TCK"),
            ctx.call.call_id or None,
            ctx.customer_id,
            args.priority,
            redact(args.subject),
            redact(args.description),
            ctx.idempotency_key,
        )
        if row is None:
            row = await conn.fetchrow(
                "SELECT ticket_id, status, priority FROM tickets WHERE idempotency_key = $1",
                ctx.idempotency_key,
            )
    return {
        "ticket_id": row["ticket_id"],
        "status": row["status"],
        "priority": row["priority"],
        "next_steps": "Our support team will follow up by email, usually within one business day.",
    }


TOOL_SCHEMA = create_ticket.schema
