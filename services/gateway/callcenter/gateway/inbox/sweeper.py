"""Nobody came: tell the customer, open a ticket with the transcript, offer a callback.

After ``inbox.agent_wait_s`` (or at once outside business hours) the conversation goes back to the
bot, which can schedule the callback; the customer is never left talking to nobody. The sweeper
also closes hand-offs of conversations that ended.

Every replica runs :func:`inbox_sweeper`; the state change is a conditional update in the same
transaction as the ticket, so exactly one replica acts on each expired hand-off.
"""

from __future__ import annotations

import json

from callcenter.common.events import AgentLeft
from callcenter.common.logging import bind_call, get_logger
from callcenter.gateway.deps import GatewayDeps
from callcenter.gateway.inbox import state
from callcenter.gateway.inbox.state import COLUMNS, Handoff
from callcenter.gateway.inbox.transcript import conversation_transcript
from callcenter.gateway.periodic import Periodic

log = get_logger(__name__)

TICKET_BODY_MAX = 4000


def no_agent_text(ticket_id: str, *, outside_hours: bool) -> str:
    """What the customer is told when no agent came."""
    why = (
        "We're outside business hours right now"
        if outside_hours
        else ("Sorry, no colleague is free right now")
    )
    return (
        f"{why}, so I've opened ticket {ticket_id} with our conversation and the team will follow "
        "up. If you'd like a call back, tell me a good time and number and I'll schedule it."
    )


async def transcript_text(deps: GatewayDeps, call_id: str) -> str:
    """The conversation so far as plain text (already redacted where it was stored)."""
    names = {"customer": "Customer", "assistant": "Assistant", "system": "System"}
    return "\n".join(
        f"{names.get(entry.sender) or f'{entry.agent_name} (agent)'}: {entry.text}"
        for entry in await conversation_transcript(deps.db, call_id)
    )


async def no_agent(deps: GatewayDeps, handoff: Handoff, *, outside_hours: bool) -> str | None:
    """Give the conversation back to the bot with a ticket; return the ticket id (None: not ours)."""
    ticket_id = f"TCK-{handoff.call_id[:8].upper()}-{int(handoff.requested_at.timestamp())}"
    transcript = await transcript_text(deps, handoff.call_id)
    body = (
        f"No agent took this {handoff.channel} conversation"
        f"{' (outside business hours)' if outside_hours else ''}.\n"
        f"Reason: {handoff.reason}\nSummary: {handoff.summary or '-'}\n\nTranscript:\n{transcript}"
    )[:TICKET_BODY_MAX]
    async with deps.db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"""
            UPDATE handoffs SET state = 'bot', ticket_id = $2, updated_at = now()
            WHERE call_id = $1 AND state = 'waiting_for_agent' AND requested_at = $3
            RETURNING {COLUMNS}
            """,
            handoff.call_id,
            ticket_id,
            handoff.requested_at,
        )
        if row is None:
            return None  # taken meanwhile, or another replica got there first
        customer_id = await conn.fetchval(
            "SELECT customer_id FROM calls WHERE call_id = $1", handoff.call_id
        )
        await conn.execute(
            """
            INSERT INTO tickets (ticket_id, call_id, customer_id, source, priority, subject, body,
                                 idempotency_key)
            VALUES ($1, $2, $3, 'inbox', 'high', $4, $5, $6)
            ON CONFLICT DO NOTHING
            """,
            ticket_id,
            handoff.call_id,
            customer_id,
            f"No agent available: {handoff.reason}"[:200],
            body,
            f"inbox-no-agent:{handoff.call_id}:{handoff.requested_at.isoformat()}",
        )
    updated = await state.applied(
        deps,
        row,
        lambda h: AgentLeft(
            event_id=f"agent-left-{h.stamp(None)}-no-agent",
            call_id=h.call_id,
            channel=h.channel,
            outcome="no_agent",
        ),
    )
    log.info("no agent came: ticket opened", ticket_id=ticket_id, outside_hours=outside_hours)
    text = no_agent_text(ticket_id, outside_hours=outside_hours)
    await state.say(
        deps,
        updated,
        {"type": "no_agent", "ticket_id": ticket_id, "text": text},
        sms=text,
    )
    return ticket_id


async def sweep_once(deps: GatewayDeps) -> int:
    """Act on expired hand-offs and close those whose call ended; return how many expired."""
    closed = await deps.db.fetch(
        """
        UPDATE handoffs h SET state = 'closed', updated_at = now()
        FROM calls c
        WHERE c.call_id = h.call_id AND c.ended_at IS NOT NULL AND h.state <> 'closed'
        RETURNING h.call_id
        """
    )
    for row in closed:
        handoff = await state.get(deps, row["call_id"])
        if handoff is not None:
            await state.changed(deps, handoff)
    expired = await deps.db.fetch(
        f"""
        SELECT {COLUMNS} FROM handoffs
        WHERE state = 'waiting_for_agent' AND channel <> 'voice'
          AND requested_at < now() - make_interval(secs => $1)
        ORDER BY requested_at LIMIT 50
        """,
        deps.config.inbox.agent_wait_s,
    )
    done = 0
    for row in expired:
        handoff = Handoff.from_row(row)
        with bind_call(handoff.call_id):
            try:
                if await no_agent(deps, handoff, outside_hours=False):
                    done += 1
            except Exception:
                log.exception("no-agent hand-off failed; will retry")
    return done


async def watch_voice_transfers(deps: GatewayDeps, data: bytes) -> None:
    """A voice turn called ``transfer_to_agent``: show the call in the inbox (the screen pop)."""
    try:
        event = json.loads(data)
    except ValueError:
        return
    if not isinstance(event, dict) or event.get("channel") != "voice":
        return
    for call in event.get("tool_calls") or []:
        if call.get("name") == "transfer_to_agent" and call.get("success"):
            result = call.get("result") or {}
            arguments = call.get("arguments") or {}
            await state.request_handoff(
                deps,
                call_id=str(event["call_id"]),
                channel="voice",
                reason=str(result.get("reason") or arguments.get("reason") or "caller asked"),
                summary=str(arguments.get("summary") or ""),
                trigger="voice_transfer",
            )
            return


def inbox_sweeper(deps: GatewayDeps) -> Periodic:
    """:func:`sweep_once` every ``inbox.sweep_interval_s`` (one per gateway replica)."""
    return Periodic(
        name="inbox-sweeper",
        work=lambda: sweep_once(deps),
        interval_s=lambda: deps.config.inbox.sweep_interval_s,
    )
