"""schedule_callback: a person calls the customer back at a chosen time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field

from callcenter.common.pii import redact
from callcenter.tools.contact_authorization import authorized_phone
from callcenter.tools.domain import new_id, now
from callcenter.tools.registry import SkillContext, ToolArguments, ToolError, skill

MAX_DAYS_AHEAD = 30


class ScheduleCallbackArgs(ToolArguments):
    """When, why, and (optionally) which number to call."""

    preferred_time: datetime = Field(
        description="When to call, ISO 8601 with timezone offset, like 2026-11-24T15:00:00-08:00."
    )
    reason: str = Field(min_length=3, max_length=500, description="What the call is about.")
    phone: str | None = Field(
        default=None,
        max_length=32,
        description="Number to call; defaults to the verified customer's or the caller's number.",
    )


@skill(
    name="schedule_callback",
    description=(
        "Schedule a callback from a human agent at the customer's preferred time (in the next "
        f"{MAX_DAYS_AHEAD} days). Confirm the time and number with the customer before calling."
    ),
    arguments=ScheduleCallbackArgs,
    side_effects=True,
)
async def schedule_callback(args: ScheduleCallbackArgs, ctx: SkillContext) -> dict[str, Any]:
    """Record a callback request."""
    when = args.preferred_time
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now()
    if when < current:
        raise ToolError(
            "invalid_time", "That time has already passed. What later time works for you?"
        )
    if when > current + timedelta(days=MAX_DAYS_AHEAD):
        raise ToolError(
            "invalid_time",
            f"I can only schedule callbacks within the next {MAX_DAYS_AHEAD} days. What time in that range works?",
        )
    async with ctx.connection() as conn:
        phone = await authorized_phone(conn, ctx, args.phone) or ""  # never another customer's
        if len(phone) < 11:
            raise ToolError("phone_required", "Which phone number should we call you back on?")
        callback_id = new_id("CB")
        await conn.execute(
            """
            INSERT INTO callbacks (callback_id, customer_id, call_id, phone, scheduled_for, reason,
                                   idempotency_key)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            """,
            callback_id,
            ctx.customer_id,
            ctx.call.call_id or None,
            phone,
            when,
            redact(args.reason),
            ctx.idempotency_key,
        )
    return {
        "callback_id": callback_id,
        "scheduled_for": when.isoformat(),
        "phone": phone,
        "status": "scheduled",
    }


TOOL_SCHEMA = schedule_callback.schema
