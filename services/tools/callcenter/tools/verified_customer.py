"""Telling the calls table who the caller is, once they proved it (every channel).

``verify_identity`` records a ``CustomerVerified`` event in the outbox; post_call's ``verified``
step (the calls table's post-call writer) sets ``calls.customer_id`` from it, so the dashboard and
``/api/calls?customer_id=`` find the call.
"""

from __future__ import annotations

import asyncpg

from callcenter.common.events import CustomerVerified
from callcenter.tools import outbox
from callcenter.tools.registry import SkillContext


async def record_verified(
    conn: asyncpg.Connection, ctx: SkillContext, *, customer_id: str, method: str
) -> None:
    """Queue the event (once per call and customer) when the call is known."""
    if not ctx.call.call_id:
        return
    await outbox.record(
        conn,
        CustomerVerified(
            event_id=f"verified-{ctx.call.call_id}-{customer_id}",
            call_id=ctx.call.call_id,
            channel=ctx.call.channel or None,
            customer_id=customer_id,
            method=method,
        ),
    )
