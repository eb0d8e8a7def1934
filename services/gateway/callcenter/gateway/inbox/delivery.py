"""What reaches the customer while a person owns the conversation.

Web chat: every open chat socket subscribes (core NATS, on whichever replica holds it) to
``inbox.customer.<call_id>``; a message is a request, and the socket's reply says it reached the
widget, so the agent learns when nobody was there to read it; a message that did not arrive is
shown when the visitor reconnects (:meth:`CustomerFeed.replay`). Each agent message is shown
once: the socket claims its row (``handoff_messages.delivered_at``, set only while still unset)
before sending it, whether it comes live (the request names the row in ``Cc-Message-Id``) or in
the replay, and one socket handles the two one at a time. So a message written at the moment the
visitor resumes, both in the replay and on its way live, is shown by whichever claims it first
and skipped by the other. SMS: the business number texts the
customer through Twilio's Messages REST API (opt-outs are checked before every message). Voice:
the agent is on the phone; nothing is sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from callcenter.common.logging import get_logger
from callcenter.gateway.deps import GatewayDeps
from callcenter.gateway.sms.sender import send_messages
from callcenter.gateway.sms.splitter import split_message

log = get_logger(__name__)

DELIVERY_TIMEOUT_S = 3.0
#: header of a live agent message: the ``handoff_messages`` row the socket claims before showing
MESSAGE_ID_HEADER = "Cc-Message-Id"


def agent_frame(*, agent_name: str | None, text: str) -> dict[str, Any]:
    """The chat frame of one agent message."""
    return {"type": "agent", "agent": agent_name, "text": text}


async def mark_delivered(deps: GatewayDeps, message_ids: list[int]) -> None:
    """These agent messages reached the customer's widget (those not marked already)."""
    await deps.db.execute(
        "UPDATE handoff_messages SET delivered_at = now() "
        "WHERE id = ANY($1::bigint[]) AND delivered_at IS NULL",
        message_ids,
    )


async def claim(deps: GatewayDeps, message_id: int) -> bool:
    """Take one agent message for showing; False if it was shown (or is being shown) already."""
    claimed = await deps.db.fetchval(
        "UPDATE handoff_messages SET delivered_at = now() "
        "WHERE id = $1 AND delivered_at IS NULL RETURNING id",
        message_id,
    )
    return claimed is not None


async def unclaim(deps: GatewayDeps, message_ids: list[int]) -> None:
    """These claimed messages did not reach the widget: the next reconnect shows them."""
    await deps.db.execute(
        "UPDATE handoff_messages SET delivered_at = NULL WHERE id = ANY($1::bigint[])",
        message_ids,
    )


async def replay_missed(
    deps: GatewayDeps, *, call_id: str, send: Callable[[dict[str, Any]], Awaitable[None]]
) -> int:
    """Send a reconnected widget the agent messages written while it was away; how many.

    The messages not shown yet are claimed in one statement (a live delivery of one of them
    then skips it), then sent in order; the ones a failed send left unshown are released.
    """
    rows = sorted(
        await deps.db.fetch(
            "UPDATE handoff_messages SET delivered_at = now() "
            "WHERE call_id = $1 AND sender = 'agent' AND delivered_at IS NULL "
            "RETURNING id, agent_name, text",
            call_id,
        ),
        key=lambda row: row["id"],
    )
    for index, row in enumerate(rows):
        try:
            await send(agent_frame(agent_name=row["agent_name"], text=row["text"]))
        except BaseException:
            await unclaim(deps, [r["id"] for r in rows[index:]])
            raise
    if rows:
        log.info("agent messages shown after the visitor reconnected", count=len(rows))
    return len(rows)


def customer_subject(deps: GatewayDeps, call_id: str) -> str:
    """The core subject the customer's chat socket listens on."""
    return deps.bus.subject(f"inbox.customer.{call_id}")


async def to_customer(
    deps: GatewayDeps,
    *,
    call_id: str,
    channel: str,
    frame: dict[str, Any],
    sms_text: str,
    customer_number: str | None = None,
    business_number: str | None = None,
    message_id: int | None = None,
) -> bool:
    """Send ``frame`` to the chat widget, or ``sms_text`` by SMS; return whether it was delivered.

    ``message_id``: the ``handoff_messages`` row of an agent message (the widget shows it once).
    """
    if channel == "chat":
        try:
            await deps.bus.nc.request(
                customer_subject(deps, call_id),
                json.dumps(frame).encode(),
                timeout=DELIVERY_TIMEOUT_S,
                headers={MESSAGE_ID_HEADER: str(message_id)} if message_id is not None else None,
            )
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            log.info(
                "chat message not delivered: the customer's socket is gone", kind=frame["type"]
            )
            return False
        return True
    if channel == "sms" and customer_number and business_number:
        bodies = split_message(sms_text, limit=deps.config.twilio.sms_max_chars)
        sent = await send_messages(
            deps, customer=customer_number, business=business_number, bodies=bodies
        )
        return sent == len(bodies)
    return False


class CustomerFeed:
    """One chat socket's subscription to what agents (and the inbox) send its customer."""

    def __init__(
        self,
        *,
        deps: GatewayDeps,
        call_id: str,
        send: Callable[[dict[str, Any]], Awaitable[None]],
        on_ended: Callable[[], Awaitable[None]],
    ) -> None:
        self._deps = deps
        self._call_id = call_id
        self._send = send
        self._on_ended = on_ended
        self._sub: Subscription | None = None
        # live messages and the replay are shown one at a time, in the order they were taken
        self._showing = asyncio.Lock()

    async def start(self) -> CustomerFeed:
        """Listen for this conversation's messages."""
        self._sub = await self._deps.bus.nc.subscribe(
            customer_subject(self._deps, self._call_id), cb=self._on_message
        )
        return self

    async def replay(self) -> int:
        """Show the agent messages written while the widget was away; how many."""
        async with self._showing:
            return await replay_missed(self._deps, call_id=self._call_id, send=self._send)

    async def stop(self) -> None:
        """Stop listening (the socket closed)."""
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:
                log.debug("customer feed unsubscribe failed", exc_info=True)
            self._sub = None

    async def _on_message(self, msg: Msg) -> None:
        raw_id = (msg.headers or {}).get(MESSAGE_ID_HEADER)
        message_id = int(raw_id) if raw_id and raw_id.isdigit() else None
        async with self._showing:
            try:
                frame = json.loads(msg.data)
                if message_id is None or await claim(self._deps, message_id):
                    await self._send(frame)
                else:
                    log.info("agent message already shown: not sent again", message_id=message_id)
            except Exception:
                log.info("agent message not delivered to the widget", exc_info=True)
                if message_id is not None:
                    await unclaim(self._deps, [message_id])
                return  # no reply: the sender learns it did not arrive
        if msg.reply:
            await msg.respond(b"ok")
        if frame.get("type") == "ended":
            await self._on_ended()
