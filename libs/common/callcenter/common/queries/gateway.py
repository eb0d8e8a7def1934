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
