"""Who owns a conversation, changed atomically: ``bot`` -> ``waiting_for_agent`` -> ``agent`` -> ``bot``/``closed``.

Every change is one conditional statement on the ``handoffs`` row (so two agents, or two replicas,
cannot both win), then mirrored to Redis (:mod:`callcenter.common.handoff`, read by the
conversation service and by :mod:`.routing`), published on JetStream (``handoff.requested``,
``agent.joined``, ``agent.left``, ``handoff.message``), announced to agent pages, and framed for
the customer ("You're now talking with …").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from callcenter.common.events import (
    AgentJoined,
    AgentLeft,
    Channel,
    Event,
    HandoffMessage,
    HandoffRequested,
)
from callcenter.common.handoff import OWNER_TTL_S, Owner, owner_key
from callcenter.common.logging import get_logger
from callcenter.common.pii import redact
from callcenter.gateway import sessions
from callcenter.gateway.calls import end_call
from callcenter.gateway.deps import GatewayDeps
from callcenter.gateway.inbox import delivery, updates
from callcenter.gateway.inbox.agents import Agent
from callcenter.gateway.sms import opt_outs

log = get_logger(__name__)

WAITING_TEXT = (
    "I'm connecting you with a colleague. Please stay here: someone will be with you shortly."
)
CLOSED_TEXT = "This conversation has been closed. Thank you for contacting us."
BACK_TO_BOT_TEXT = "I'm back to help with anything else."


@dataclass(slots=True, kw_only=True)
class Handoff:
    """One conversation's row in ``handoffs``."""

    call_id: str
    channel: Channel
    state: Owner
    reason: str
    trigger: str
    summary: str
    customer_number: str | None
    business_number: str | None
    requested_at: datetime
    agent_id: str | None
    agent_name: str | None
    taken_at: datetime | None
    ticket_id: str | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Handoff:
        """Build from a row selected with :data:`COLUMNS`."""
        return cls(**{name: row[name] for name in cls.__slots__})  # type: ignore[attr-defined]

    def stamp(self, at: datetime | None) -> str:
        """A deterministic event id part for a transition at ``at``."""
        return f"{self.call_id}-{int((at or self.requested_at).timestamp() * 1000)}"


class NotAllowed(Exception):
    """The conversation is not in a state that allows this (or belongs to another agent)."""


COLUMNS = (
    "call_id, channel, state, reason, trigger, summary, customer_number, business_number, "
    "requested_at, agent_id, agent_name, taken_at, ticket_id"
)


async def get(deps: GatewayDeps, call_id: str) -> Handoff | None:
    """The hand-off row of ``call_id``."""
    row = await deps.db.fetchrow(f"SELECT {COLUMNS} FROM handoffs WHERE call_id = $1", call_id)
    return Handoff.from_row(row) if row else None


async def _mirror(deps: GatewayDeps, handoff: Handoff) -> None:
    await deps.redis.set(
        owner_key(deps.config.redis.key_prefix, handoff.call_id), handoff.state, ex=OWNER_TTL_S
    )


async def say(deps: GatewayDeps, handoff: Handoff, frame: dict[str, Any], *, sms: str) -> bool:
    """Frame a change for the customer, and keep it in the conversation's messages."""
    await _store(deps, handoff.call_id, sender="system", agent_name=None, text=sms)
    return await delivery.to_customer(
        deps,
        call_id=handoff.call_id,
        channel=handoff.channel,
        frame=frame,
        sms_text=sms,
        customer_number=handoff.customer_number,
        business_number=handoff.business_number,
    )


async def _store(
    deps: GatewayDeps, call_id: str, *, sender: str, agent_name: str | None, text: str
) -> tuple[int, str]:
    """Keep a message (redacted); its id and the text as kept."""
    clean = redact(text)
    message_id = await deps.db.fetchval(
        "INSERT INTO handoff_messages (call_id, sender, agent_name, text) "
        "VALUES ($1, $2, $3, $4) RETURNING id",
        call_id,
        sender,
        agent_name,
        clean,
    )
    return int(message_id), clean


async def changed(deps: GatewayDeps, handoff: Handoff) -> None:
    """Mirror the new owner to Redis and tell the agent pages."""
    await _mirror(deps, handoff)
    await updates.announce(deps, call_id=handoff.call_id, state=handoff.state)


async def applied(
    deps: GatewayDeps, row: asyncpg.Record, event: Callable[[Handoff], Event]
) -> Handoff:
    """A change committed in ``row``: mirror it, tell the agent pages, publish ``event(handoff)``."""
    handoff = Handoff.from_row(row)
    await changed(deps, handoff)
    await deps.bus.publish(event(handoff))
    return handoff


async def request_handoff(
    deps: GatewayDeps,
    *,
    call_id: str,
    channel: Channel,
    reason: str,
    summary: str = "",
    trigger: str = "tool",
    customer_number: str | None = None,
    business_number: str | None = None,
) -> Handoff | None:
    """Queue the conversation for an agent (the bot stops answering); None if it already left the bot."""
    row = await deps.db.fetchrow(
        f"""
        INSERT INTO handoffs (call_id, channel, state, reason, trigger, summary, customer_number,
                              business_number, requested_at, updated_at)
        VALUES ($1, $2, 'waiting_for_agent', $3, $4, $5, $6, $7, now(), now())
        ON CONFLICT (call_id) DO UPDATE SET
            state = 'waiting_for_agent', reason = EXCLUDED.reason, trigger = EXCLUDED.trigger,
            summary = EXCLUDED.summary, requested_at = now(), updated_at = now(),
            agent_id = NULL, agent_name = NULL, taken_at = NULL, ticket_id = NULL,
            customer_number = COALESCE(EXCLUDED.customer_number, handoffs.customer_number),
            business_number = COALESCE(EXCLUDED.business_number, handoffs.business_number)
        WHERE handoffs.state = 'bot'
        RETURNING {COLUMNS}
        """,
        call_id,
        channel,
        redact(reason)[:500],
        trigger,
        redact(summary)[:4000],
        customer_number,
        business_number,
    )
    if row is None:
        return None
    handoff = await applied(
        deps,
        row,
        lambda h: HandoffRequested(
            event_id=f"handoff-requested-{h.stamp(None)}",
            call_id=call_id,
            channel=channel,
            reason=h.reason,
            trigger=trigger,  # type: ignore[arg-type]
            summary=h.summary,
        ),
    )
    log.info("hand-off requested", call_id=call_id, reason=handoff.reason, trigger=trigger)
    if channel == "chat":  # SMS: the bot's own reply already says so
        await say(
            deps,
            handoff,
            {"type": "handoff", "state": handoff.state, "text": WAITING_TEXT},
            sms=WAITING_TEXT,
        )
    return handoff


async def take(deps: GatewayDeps, *, call_id: str, agent: Agent) -> Handoff:
    """``agent`` takes the conversation; exactly one of several racing agents wins.

    Agents take what waits for an agent; the supervisor may also take a conversation from the bot.

    Raises:
        NotAllowed: it is not waiting (someone else took it, it was closed, or it never left the bot).

    """
    allowed = ["waiting_for_agent", "bot"] if agent.supervisor else ["waiting_for_agent"]
    if agent.supervisor:
        row = await deps.db.fetchrow(
            f"""
            INSERT INTO handoffs (call_id, channel, state, reason, trigger, customer_number,
                                  business_number, requested_at, agent_id, agent_name, taken_at)
            SELECT call_id, channel, 'agent', 'supervisor took over', 'supervisor', from_number,
                   to_number, now(), $2, $3, now()
            FROM calls WHERE call_id = $1 AND ended_at IS NULL
            ON CONFLICT (call_id) DO UPDATE SET
                state = 'agent', agent_id = $2, agent_name = $3, taken_at = now(), updated_at = now(),
                requested_at = CASE WHEN handoffs.state = 'bot' THEN now() ELSE handoffs.requested_at END
            WHERE handoffs.state = ANY($4::text[])
            RETURNING {COLUMNS}
            """,
            call_id,
            agent.agent_id,
            agent.name,
            allowed,
        )
    else:
        row = await deps.db.fetchrow(
            f"""
            UPDATE handoffs SET state = 'agent', agent_id = $2, agent_name = $3, taken_at = now(),
                                updated_at = now()
            WHERE call_id = $1 AND state = ANY($4::text[])
            RETURNING {COLUMNS}
            """,
            call_id,
            agent.agent_id,
            agent.name,
            allowed,
        )
    if row is None:
        current = await get(deps, call_id)
        if current is not None and current.state == "agent":
            raise NotAllowed(f"{current.agent_name} already took this conversation.")
        raise NotAllowed("This conversation is not waiting for an agent.")
    handoff = await applied(
        deps,
        row,
        lambda h: AgentJoined(
            event_id=f"agent-joined-{h.stamp(h.taken_at)}",
            call_id=call_id,
            channel=h.channel,
            agent_name=agent.name,
            wait_s=max(0.0, ((h.taken_at or h.requested_at) - h.requested_at).total_seconds()),
        ),
    )
    log.info("agent took the conversation", call_id=call_id, agent=agent.name)
    text = f"You're now talking with {agent.name}."
    if handoff.channel != "voice":
        await say(
            deps, handoff, {"type": "agent_joined", "agent": agent.name, "text": text}, sms=text
        )
    return handoff


async def _owned_by(deps: GatewayDeps, call_id: str, agent: Agent) -> Handoff:
    handoff = await get(deps, call_id)
    if handoff is None or handoff.state != "agent":
        raise NotAllowed("No agent owns this conversation: take it first.")
    if handoff.agent_id != agent.agent_id:
        raise NotAllowed(f"{handoff.agent_name} owns this conversation.")
    return handoff


async def _keep_open(deps: GatewayDeps, handoff: Handoff) -> None:
    """An agent writing is activity: the idle reapers must not end the conversation under them."""
    settings = deps.config.gateway
    if handoff.channel in ("chat", "sms"):
        timeout = (
            settings.chat_idle_timeout_s
            if handoff.channel == "chat"
            else settings.sms_idle_timeout_s
        )
        if await sessions.is_active(deps, channel=handoff.channel, call_id=handoff.call_id):
            await sessions.touch(
                deps, channel=handoff.channel, call_id=handoff.call_id, idle_timeout_s=timeout
            )


async def _refuse_opted_out(deps: GatewayDeps, handoff: Handoff | None) -> None:
    if (
        handoff is not None
        and handoff.channel == "sms"
        and handoff.customer_number
        and handoff.business_number
        and await opt_outs.is_opted_out(
            deps.db, customer=handoff.customer_number, business=handoff.business_number
        )
    ):
        raise NotAllowed("The customer opted out of SMS (STOP): nothing can be sent.")


async def agent_message(deps: GatewayDeps, *, call_id: str, agent: Agent, text: str) -> bool:
    """The owning agent writes to the customer; return whether it reached them.

    Raises:
        NotAllowed: ``agent`` does not own the conversation, or the SMS customer opted out
            (STOP wins over everything: nothing is sent or kept).

    """
    await _refuse_opted_out(deps, await get(deps, call_id))
    handoff = await _owned_by(deps, call_id, agent)
    await _keep_open(deps, handoff)
    message_id, clean = await _store(
        deps, call_id, sender="agent", agent_name=agent.name, text=text
    )
    await deps.bus.publish(
        HandoffMessage(
            call_id=call_id,
            channel=handoff.channel,
            sender="agent",
            agent_name=agent.name,
            text=clean,
        )
    )
    await updates.announce(deps, call_id=call_id, state=handoff.state)
    delivered = await delivery.to_customer(
        deps,
        call_id=call_id,
        channel=handoff.channel,
        frame=delivery.agent_frame(agent_name=agent.name, text=clean),
        sms_text=f"{agent.name} (agent): {clean}",
        customer_number=handoff.customer_number,
        business_number=handoff.business_number,
        message_id=message_id,
    )
    if delivered:
        await delivery.mark_delivered(deps, [message_id])
    return delivered


async def customer_message(deps: GatewayDeps, *, call_id: str, channel: Channel, text: str) -> None:
    """The customer wrote while a person owns (or is about to own) the conversation."""
    _, clean = await _store(deps, call_id, sender="customer", agent_name=None, text=text)
    await deps.bus.publish(
        HandoffMessage(call_id=call_id, channel=channel, sender="customer", text=clean)
    )
    await updates.announce(deps, call_id=call_id, state="customer_message")


async def leave(deps: GatewayDeps, *, call_id: str, agent: Agent, outcome: str) -> Handoff:
    """The agent hands the conversation back to the bot (``handed_back``) or closes it (``closed``).

    Raises:
        NotAllowed: ``agent`` does not own it (the supervisor may close a waiting one too).

    """
    target = "bot" if outcome == "handed_back" else "closed"
    states = ["agent", "waiting_for_agent"] if agent.supervisor else ["agent"]
    row = await deps.db.fetchrow(
        f"""
        UPDATE handoffs SET state = $2, updated_at = now()
        WHERE call_id = $1 AND state = ANY($4::text[]) AND (agent_id = $3 OR $5)
        RETURNING {COLUMNS}
        """,
        call_id,
        target,
        agent.agent_id,
        states,
        agent.supervisor,
    )
    if row is None:
        await _owned_by(deps, call_id, agent)  # raises the precise reason
        raise NotAllowed("This conversation cannot be left now.")
    handoff = await applied(
        deps,
        row,
        lambda h: AgentLeft(
            event_id=f"agent-left-{h.stamp(h.taken_at)}-{outcome}",
            call_id=call_id,
            channel=h.channel,
            agent_name=agent.name,
            outcome=outcome,  # type: ignore[arg-type]
        ),
    )
    log.info("agent left the conversation", call_id=call_id, agent=agent.name, outcome=outcome)
    if handoff.channel == "voice":
        return handoff
    left = f"{agent.name} has left the conversation."
    if target == "bot":
        text = f"{left} {BACK_TO_BOT_TEXT}"
        await say(
            deps, handoff, {"type": "agent_left", "agent": agent.name, "text": text}, sms=text
        )
    else:
        text = f"{left} {CLOSED_TEXT}"
        await say(
            deps, handoff, {"type": "agent_left", "agent": agent.name, "text": text}, sms=text
        )
        await end_call(deps, call_id=call_id, channel=handoff.channel, reason="agent_closed")
        await sessions.forget(deps, channel=handoff.channel, call_id=call_id)
        if handoff.channel == "chat":
            await delivery.to_customer(
                deps,
                call_id=call_id,
                channel="chat",
                frame={"type": "ended", "reason": "agent_closed"},
                sms_text="",
            )
    return handoff
