"""Side-effecting tool calls run once per ``(call_id, tool_call_id)``.

The effect and a ``tool_invocations`` row holding its result commit in one transaction, under a
transaction-scoped advisory lock on the key, so a retried or duplicated request (another replica,
a client retry after a timeout) finds the row and gets the first result back without acting again.
A refusal raises before anything is written, so it is not recorded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from callcenter.tools.registry import SkillContext, ToolError


async def run_once(
    ctx: SkillContext, run: Callable[[SkillContext], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """Run ``run`` in a transaction, or return the result recorded for the same key.

    Raises:
        ToolError: the key was already used by a different tool.

    """
    async with ctx.db.acquire() as conn, conn.transaction():
        bound = ctx.bind(conn)
        if ctx.idempotency_key is None:
            return await run(bound)
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", ctx.idempotency_key
        )
        prior = await conn.fetchrow(
            "SELECT tool, result FROM tool_invocations WHERE call_id = $1 AND tool_call_id = $2",
            ctx.call.call_id,
            ctx.call.tool_call_id,
        )
        if prior is not None:
            if prior["tool"] != ctx.tool:
                raise ToolError(
                    "invalid_request", "That request could not be processed. Please try again."
                )
            return dict(prior["result"])
        data = await run(bound)
        await conn.execute(
            "INSERT INTO tool_invocations (call_id, tool_call_id, tool, result) VALUES ($1, $2, $3, $4)",
            ctx.call.call_id,
            ctx.call.tool_call_id,
            ctx.tool,
            data,
        )
        return data
