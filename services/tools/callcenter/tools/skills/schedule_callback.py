"""schedule_callback: a person calls the customer back at a chosen time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from callcenter.common.pii import redact
from callcenter.tools.callback_time import callback_slot
from callcenter.tools.contact_authorization import authorized_phone
from callcenter.tools.domain import new_id
from callcenter.tools.registry import SkillContext, ToolArguments, ToolError, skill

MAX_DAYS_AHEAD = 30


class ScheduleCallbackArgs(ToolArguments):
    """When, why, and (optionally) which number to call."""

    preferred_time: datetime = Field(
        description=(
            "When to call, as the customer said it: ISO 8601 local time WITHOUT an offset, like "
            "2026-11-24T10:00:00 (read in the customer's time zone), or with an offset when known."
        )
    )
    timezone: str | None = Field(
        default=None,
        max_length=64,
        description="The customer's time zone if they said one (e.g. Pacific, America/Chicago); "
        "otherwise the zone of the address on file is used.",
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
        f"{MAX_DAYS_AHEAD} days). Ask for a time when the customer has not given one; the number "
        "defaults to the verified customer's or the caller's."
    ),
    arguments=ScheduleCallbackArgs,
    side_effects=True,
)
async def schedule_callback(args: ScheduleCallbackArgs, ctx: SkillContext) -> dict[str, Any]:
    """Record a callback request."""
    async with ctx.connection() as conn:
        slot = await callback_slot(conn, ctx, args, max_days=MAX_DAYS_AHEAD)
        when = slot.at
        phone = await authorized_phone(conn, ctx, args.phone) or ""  # never another customer's
        if len(phone) < 11:
            raise ToolError("phone_required", "Which phone number should we call you back on?")
        callback_id = new_id("CB")
        await conn.execute(
            """
            INSERT INTO callbacks (callback_id, customer_id, call_id, phone, scheduled_for, reason,
                                   idempotency_key, customer_timezone)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """,
            callback_id,
            ctx.customer_id,
            ctx.call.call_id or None,
            phone,
            when,
            redact(args.reason),
            ctx.idempotency_key,
            slot.customer_zone,
        )
    return {
        "callback_id": callback_id,
        "scheduled_for": slot.local.isoformat(),
        "timezone": slot.customer_zone,
        "when_local": slot.spoken(),
        "phone": phone,
        "status": "scheduled",
    }


TOOL_SCHEMA = schedule_callback.schema
