"""Nobody takes the conversation: after ``inbox.agent_wait_s``, or at once outside business hours,
the customer is told, a ticket with the transcript is opened, and the bot takes the conversation
back (it can schedule the callback it offers). Real processes: two gateways with a short wait, one
whose business hours are closed, conversation and tools (offline engine).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from callcenter.common.bus import Bus
from tests.support.chat_client import ChatVisitor
from tests.support.environment import free_port
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.timeout(120)

ASK_FOR_HUMAN = "Can I talk to a real person?"
SHORT_WAIT = {
    "CALLCENTER_INBOX__AGENT_WAIT_S": "1",
    "CALLCENTER_INBOX__SWEEP_INTERVAL_S": "0.2",
    "CALLCENTER_GATEWAY__SESSION_SECRET": "no-agent-tests",
}
CLOSED = {"CALLCENTER_INBOX__BUSINESS_HOURS__DAYS": "[]"}
ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
IDLE_S = 1.5
QUICK_IDLE = {
    "ADMIN_TOKEN": ADMIN_TOKEN,
    "CALLCENTER_GATEWAY__CHAT_IDLE_TIMEOUT_S": str(IDLE_S),
    "CALLCENTER_GATEWAY__REAPER_INTERVAL_S": "0.2",
}


@dataclass
class Stack:
    short_wait: list[ServiceProcess]
    closed: ServiceProcess
    quick_idle: ServiceProcess


@pytest.fixture(scope="module")
def stack(db_pool: Any, service_factory: Callable[..., ServiceProcess]) -> Stack:
    procs = [
        service_factory("tools", wait=False),
        service_factory("conversation", wait=False),
        service_factory("gateway", wait=False, extra_env=SHORT_WAIT),
        service_factory("gateway", wait=False, extra_env=SHORT_WAIT, port=free_port()),
        service_factory("gateway", wait=False, extra_env=CLOSED, port=free_port()),
        service_factory("gateway", wait=False, extra_env=QUICK_IDLE, port=free_port()),
    ]
    for proc in procs:
        proc.wait_ready()
    return Stack(short_wait=procs[2:4], closed=procs[4], quick_idle=procs[5])


async def next_frame(chat: ChatVisitor, kind: str) -> dict[str, Any]:
    while True:
        frame = await chat.receive()
        if frame["type"] == kind:
            return frame


async def tickets_of(db_pool: asyncpg.Pool, call_id: str) -> list[asyncpg.Record]:
    return await db_pool.fetch("SELECT * FROM tickets WHERE call_id = $1", call_id)


async def test_no_agent_in_time_opens_a_ticket_and_the_bot_takes_back(
    stack: Stack, db_pool: asyncpg.Pool, bus: Bus
) -> None:
    async with ChatVisitor(stack.short_wait[0].url) as chat:
        reply = await chat.say(ASK_FOR_HUMAN)
        assert "transfer_to_agent" in reply.tools
        await next_frame(chat, "handoff")
        await chat.ws.send(json.dumps({"type": "message", "text": "Hello? Is anyone there?"}))
        assert (await next_frame(chat, "held"))["type"] == "held"

        notice = await next_frame(chat, "no_agent")
        ticket_id = notice["ticket_id"]
        assert ticket_id in notice["text"] and "call back" in notice["text"]

        tickets = await tickets_of(db_pool, chat.call_id)
        assert [t["ticket_id"] for t in tickets] == [ticket_id]
        assert tickets[0]["source"] == "inbox" and tickets[0]["status"] == "open"
        assert "Customer: Hello? Is anyone there?" in tickets[0]["body"]
        row = await db_pool.fetchrow(
            "SELECT state, ticket_id FROM handoffs WHERE call_id = $1", chat.call_id
        )
        assert dict(row) == {"state": "bot", "ticket_id": ticket_id}

        # never talking to nobody: the bot answers again
        again = await chat.say("Where is my order?")
        assert again.kind == "done" and again.text
        assert (
            len(await tickets_of(db_pool, chat.call_id)) == 1
        )  # one ticket, whichever replica swept


async def test_outside_business_hours_the_ticket_is_opened_at_once(
    stack: Stack, db_pool: asyncpg.Pool
) -> None:
    async with ChatVisitor(stack.closed.url) as chat:
        reply = await chat.say(ASK_FOR_HUMAN)
        assert "transfer_to_agent" in reply.tools
        notice = await next_frame(chat, "no_agent")
        assert notice["text"].startswith("We're outside business hours")
        tickets = await tickets_of(db_pool, chat.call_id)
        assert [t["ticket_id"] for t in tickets] == [notice["ticket_id"]]


async def test_a_customer_with_a_person_is_not_ended_as_idle(stack: Stack) -> None:
    """Chat idles out after IDLE_S without a customer message, but not while a person holds it."""
    async with ChatVisitor(stack.quick_idle.url) as chat:
        assert (await chat.say("Where is my order ORD-1001?")).kind == "done"
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with httpx.AsyncClient(base_url=stack.quick_idle.url, timeout=30) as client:
            taken = await client.post(f"/api/inbox/{chat.call_id}/take", headers=admin)
            assert taken.status_code == 200, taken.text
            assert (await next_frame(chat, "agent_joined"))["agent"] == "Supervisor"
            await asyncio.sleep(IDLE_S * 3)  # the customer reads and says nothing
            sent = await client.post(
                f"/api/inbox/{chat.call_id}/messages", json={"text": "Still there?"}, headers=admin
            )
            assert sent.json() == {"delivered": True}
        frame = await chat.receive()  # an idle end would have come first
        assert frame == {"type": "agent", "agent": "Supervisor", "text": "Still there?"}, frame
