"""The gateway's tables as other services may use them (post_call's summaries).

The gateway owns ``sms_opt_outs``, ``agents``, ``handoffs`` and ``handoff_messages``
(services/gateway/.../migrations). This is the only SQL about them outside the gateway.
"""

from __future__ import annotations

import asyncpg


async def handoff_messages(db: asyncpg.Pool, call_id: str) -> list[asyncpg.Record]:
    """What the customer and the agent wrote while a person owned ``call_id``, in order.

    Each row has ``sender`` (customer, agent, system), ``agent_name`` and ``text`` (redacted).
    """
    return await db.fetch(
        "SELECT sender, agent_name, text FROM handoff_messages WHERE call_id = $1 ORDER BY id",
        call_id,
    )


async def handoff_messages_of(
    db: asyncpg.Pool | asyncpg.Connection, call_ids: list[str]
) -> dict[str, list[asyncpg.Record]]:
    """:func:`handoff_messages` for many calls in one query, by call (calls without any absent)."""
    found: dict[str, list[asyncpg.Record]] = {}
    for row in await db.fetch(
        "SELECT call_id, sender, agent_name, text FROM handoff_messages "
        "WHERE call_id = ANY($1::text[]) ORDER BY call_id, id",
        call_ids,
    ):
        found.setdefault(row["call_id"], []).append(row)
    return found
