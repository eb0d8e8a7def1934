"""The agent inbox through real processes: two gateway replicas, conversation and tools (offline
engine), the Twilio REST stand-in for SMS, and agents using the REST API as any agent desktop would.

The customer's chat socket is on one replica while agents act on the other: ownership, agent
messages and inbox notices have to cross replicas through PostgreSQL, Redis and NATS.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import nats.errors
import pytest
import websockets

from callcenter.common.bus import Bus
from callcenter.common.config import CallCenterConfig
from callcenter.common.events import ToolCallRecord, TurnCompleted
from callcenter.common.handoff import OwnedByAgent, current_owner
from services.post_call.tests.support import metric_value
from tests.fakes.twilio_rest import TwilioStandIn, new_sid, sign_webhook
from tests.support.chat_client import ChatVisitor
from tests.support.environment import TestEnvironment, free_port
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.timeout(120)

ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
ACCOUNT_SID = "AC" + uuid.uuid4().hex
AUTH_TOKEN = uuid.uuid4().hex
BUSINESS = "+15550100299"
PUBLIC_BASE = "https://inbox.callcenter.test"
ASK_FOR_HUMAN = "I want to speak to a human please"


def gateway_env(twilio: TwilioStandIn) -> dict[str, str]:
    return {
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "CALLCENTER_GATEWAY__SESSION_SECRET": "inbox-tests-" + uuid.uuid4().hex,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "CALLCENTER_TWILIO__ENABLED": "true",
        "CALLCENTER_TWILIO__API_BASE_URL": twilio.base_url,
        "CALLCENTER_GATEWAY__PUBLIC_BASE_URL": PUBLIC_BASE,
    }


@dataclass
class Stack:
    customer_side: ServiceProcess  # the customer's socket / Twilio's webhooks land here
    agent_side: ServiceProcess  # agents use this replica
    post_call: ServiceProcess


@pytest.fixture(scope="module")
def twilio() -> Iterator[TwilioStandIn]:
    stand_in = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def stack(
    db_pool: Any,
    service_factory: Callable[..., ServiceProcess],
    test_env: TestEnvironment,
    twilio: TwilioStandIn,
) -> Stack:
    env = gateway_env(twilio)
    procs = [
        service_factory("tools", wait=False),
        service_factory("conversation", wait=False),
        service_factory("gateway", wait=False, extra_env=env),
        service_factory("gateway", wait=False, extra_env=env, port=free_port()),
        service_factory("post_call", wait=False),
    ]
    for proc in procs:
        proc.wait_ready()
    return Stack(customer_side=procs[2], agent_side=procs[3], post_call=procs[4])


class AgentDesk:
    """An agent's own desktop, speaking the inbox REST API with the agent's token."""

    def __init__(self, base: str, token: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    async def queue(self) -> list[dict[str, Any]]:
        response = await self.client.get("/api/inbox")
        assert response.status_code == 200, response.text
        return response.json()["items"]

    async def item(self, call_id: str) -> dict[str, Any] | None:
        return next((i for i in await self.queue() if i["call_id"] == call_id), None)

    async def wait_item(self, call_id: str, state: str) -> dict[str, Any]:
        for _ in range(200):
            item = await self.item(call_id)
            if item is not None and item["state"] == state:
                return item
            await asyncio.sleep(0.05)
        raise AssertionError(f"{call_id} never reached {state}: {await self.item(call_id)}")

    async def detail(self, call_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/inbox/{call_id}")
        assert response.status_code == 200, response.text
        return response.json()

    async def post(self, call_id: str, action: str, body: dict | None = None) -> httpx.Response:
        return await self.client.post(f"/api/inbox/{call_id}/{action}", json=body)

    async def aclose(self) -> None:
        await self.client.aclose()


async def new_agent(base: str, name: str) -> AgentDesk:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        created = await client.post(
            "/api/agents", json={"name": name}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
    assert created.status_code == 201, created.text
    return AgentDesk(base, created.json()["token"])


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:6]}"


async def next_frame(chat: ChatVisitor, kind: str) -> dict[str, Any]:
    """The next frame of ``kind`` (frames of other kinds before it are skipped)."""
    while True:
        frame = await chat.receive()
        if frame["type"] == kind:
            return frame


async def ask_for_human(chat: ChatVisitor) -> None:
    reply = await chat.say(ASK_FOR_HUMAN)
    assert reply.kind == "done", reply
    assert "transfer_to_agent" in reply.tools
    waiting = await next_frame(chat, "handoff")
    assert waiting["state"] == "waiting_for_agent"


# -- accounts ----------------------------------------------------------------------------


async def test_agents_are_named_accounts_created_by_the_admin(stack: Stack) -> None:
    base = stack.agent_side.url
    name = unique("Dana")
    desk = await new_agent(base, name)
    try:
        assert (await desk.client.get("/api/inbox")).json()["agent_name"] == name
        async with httpx.AsyncClient(base_url=base, timeout=30) as anonymous:
            assert (await anonymous.get("/api/inbox")).status_code == 401
            wrong = await anonymous.get("/api/inbox", headers={"Authorization": "Bearer agt_nope"})
            assert wrong.status_code == 401
            # only the admin creates agents; an agent's token does not
            refused = await anonymous.post(
                "/api/agents", json={"name": "Mallory"}, headers=desk.client.headers
            )
            assert refused.status_code == 401
            duplicate = await anonymous.post(
                "/api/agents",
                json={"name": name},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert duplicate.status_code == 409
            schema = (
                await anonymous.get(
                    "/openapi.json", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
                )
            ).json()  # the API description is for admins (issue 13)
        for path in ("/api/inbox", "/api/inbox/{call_id}/take", "/api/inbox/{call_id}/messages"):
            assert path in schema["paths"]
        assert "/api/inbox/{call_id}/hand-back" in schema["paths"]
        assert "/api/inbox/{call_id}/close" in schema["paths"]
    finally:
        await desk.aclose()


# -- chat across replicas ----------------------------------------------------------------


async def test_chat_handoff_across_replicas(
    stack: Stack, bus: Bus, redis_client: Any, config: CallCenterConfig
) -> None:
    name = unique("Riley")
    desk = await new_agent(stack.agent_side.url, name)
    async with ChatVisitor(stack.customer_side.url) as chat:
        try:
            await ask_for_human(chat)
            item = await desk.wait_item(chat.call_id, "waiting_for_agent")
            assert item["channel"] == "chat" and item["reason"]

            # While waiting, the customer's messages are kept for the agent and the bot is silent.
            await chat.ws.send(json.dumps({"type": "message", "text": "Hello? Anyone there?"}))
            held = await chat.receive()
            assert held["type"] == "held", held

            # The conversation service refuses a turn itself when asked directly.
            stream = await bus.stream_request(
                "conversation.turn",
                {"call_id": chat.call_id, "channel": "chat", "text": "hi", "caller": {}},
                first_timeout_s=20,
                idle_timeout_s=20,
            )
            chunks = [c.json() async for c in stream]
            assert chunks == [
                OwnedByAgent(call_id=chat.call_id, owner="waiting_for_agent").model_dump()
            ]

            taken = await desk.post(chat.call_id, "take")
            assert taken.status_code == 200, taken.text
            assert taken.json()["agent_name"] == name
            joined = await next_frame(chat, "agent_joined")
            assert joined["text"] == f"You're now talking with {name}."

            sent = await desk.post(chat.call_id, "messages", {"text": "Hi, I'm here to help."})
            assert sent.status_code == 200 and sent.json() == {"delivered": True}
            message = await next_frame(chat, "agent")
            assert message == {"type": "agent", "agent": name, "text": "Hi, I'm here to help."}

            await chat.ws.send(
                json.dumps({"type": "message", "text": "My card is 4111 1111 1111 1111"})
            )
            assert (await chat.receive())["type"] == "held"
            transcript = (await desk.detail(chat.call_id))["transcript"]
            said = [(e["sender"], e["agent_name"], e["text"]) for e in transcript]
            assert ("customer", None, "Hello? Anyone there?") in said
            assert ("agent", name, "Hi, I'm here to help.") in said
            assert all("4111" not in text for _, _, text in said)  # stored redacted

            back = await desk.post(chat.call_id, "hand-back")
            assert back.status_code == 200, back.text
            left = await next_frame(chat, "agent_left")
            assert left["text"].startswith(f"{name} has left the conversation.")
            owner = await current_owner(
                redis_client, key_prefix=config.redis.key_prefix, call_id=chat.call_id
            )
            assert owner == "bot"
            reply = await chat.say("Where is my order?")
            assert reply.kind == "done" and reply.text
        finally:
            await desk.aclose()


async def test_what_the_agent_wrote_while_the_widget_was_away_is_shown_on_reconnect_once(
    stack: Stack,
) -> None:
    name = unique("Noor")
    desk = await new_agent(stack.agent_side.url, name)
    try:
        async with ChatVisitor(stack.customer_side.url) as chat:
            await ask_for_human(chat)
            await desk.wait_item(chat.call_id, "waiting_for_agent")
            assert (await desk.post(chat.call_id, "take")).status_code == 200
            await next_frame(chat, "agent_joined")
            token = chat.hello["resume_token"]
        # the visitor's connection dropped (no "end"): the conversation waits for them

        missed = [f"Found it: your refund left on {day}." for day in ("Monday", "Tuesday")]
        for text in missed:
            sent = await desk.post(chat.call_id, "messages", {"text": text})
            assert sent.status_code == 200 and sent.json() == {"delivered": False}

        url = chat.url + f"?call_id={chat.call_id}&resume_token={token}"
        async with websockets.connect(url) as back:
            hello = json.loads(await asyncio.wait_for(back.recv(), 30))
            assert hello["type"] == "session" and hello["resumed"] is True
            shown = [json.loads(await asyncio.wait_for(back.recv(), 30)) for _ in missed]
            assert shown == [{"type": "agent", "agent": name, "text": t} for t in missed]

        async with websockets.connect(url) as again:  # shown once: not on the next reconnect
            hello = json.loads(await asyncio.wait_for(again.recv(), 30))
            assert hello["resumed"] is True
            await again.send(json.dumps({"type": "message", "text": "Thanks!"}))
            assert json.loads(await asyncio.wait_for(again.recv(), 30))["type"] == "held"
    finally:
        await desk.aclose()


# -- two agents race ---------------------------------------------------------------------


async def test_two_agents_racing_for_one_conversation_one_wins(stack: Stack) -> None:
    first = await new_agent(stack.agent_side.url, unique("Ana"))
    second = await new_agent(stack.customer_side.url, unique("Ben"))  # on the other replica
    async with ChatVisitor(stack.customer_side.url) as chat:
        try:
            await ask_for_human(chat)
            await first.wait_item(chat.call_id, "waiting_for_agent")
            results = await asyncio.gather(
                first.post(chat.call_id, "take"), second.post(chat.call_id, "take")
            )
            codes = sorted(r.status_code for r in results)
            assert codes == [200, 409], [r.text for r in results]
            winner, loser = (first, second) if results[0].status_code == 200 else (second, first)
            assert "already took" in results[[first, second].index(loser)].json()["detail"]
            # only one "You're now talking with" reaches the customer
            joined = await next_frame(chat, "agent_joined")
            refused = await loser.post(chat.call_id, "messages", {"text": "me too"})
            assert refused.status_code == 409
            sent = await winner.post(chat.call_id, "messages", {"text": "Got it."})
            assert sent.status_code == 200
            after = await chat.receive()  # the winner's message is the very next frame
            assert after["type"] == "agent" and after["agent"] == joined["agent"], after
        finally:
            await first.aclose()
            await second.aclose()


# -- SMS ---------------------------------------------------------------------------------


async def text_in(base: str, customer: str, body: str) -> list[str]:
    """Twilio posting an inbound SMS (signed); the bodies of the TwiML reply."""
    params = {
        "MessageSid": new_sid("SM"),
        "AccountSid": ACCOUNT_SID,
        "From": customer,
        "To": BUSINESS,
        "Body": body,
        "NumMedia": "0",
    }
    headers = {"X-Twilio-Signature": sign_webhook(AUTH_TOKEN, PUBLIC_BASE + "/twilio/sms", params)}
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(base + "/twilio/sms", data=params, headers=headers)
    assert response.status_code == 200, response.text
    return [m.text or "" for m in ET.fromstring(response.text).iter("Message")]


async def sms_item(desk: AgentDesk, customer: str, state: str) -> dict[str, Any]:
    for _ in range(200):
        for item in await desk.queue():
            if item["customer_number"] == customer and item["state"] == state:
                return item
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {state} SMS conversation of {customer}")


async def test_sms_agent_replies_from_the_business_number_and_stop_wins(
    stack: Stack, twilio: TwilioStandIn, config: CallCenterConfig
) -> None:
    customer = "+1555" + "".join(random.choices("0123456789", k=7))
    name = unique("Sam")
    desk = await new_agent(stack.agent_side.url, name)
    try:
        replies = await text_in(stack.customer_side.url, customer, ASK_FOR_HUMAN)
        assert replies, "the bot says it hands over"
        item = await sms_item(desk, customer, "waiting_for_agent")
        call_id = item["call_id"]
        assert item["channel"] == "sms"

        assert (await desk.post(call_id, "take")).status_code == 200
        sent = await twilio.wait_for_messages(1, to=customer)
        assert sent[-1]["from"] == BUSINESS
        assert sent[-1]["body"] == f"You're now talking with {name}."

        # the customer's text goes to the agent, not the bot: no reply in the webhook
        assert await text_in(stack.customer_side.url, customer, "Thanks, my parcel is late") == []
        said = [(e["sender"], e["text"]) for e in (await desk.detail(call_id))["transcript"]]
        assert ("customer", "Thanks, my parcel is late") in said

        reply = await desk.post(call_id, "messages", {"text": "Let me check that for you."})
        assert reply.json() == {"delivered": True}
        sent = await twilio.wait_for_messages(2, to=customer)
        assert sent[-1]["from"] == BUSINESS
        assert sent[-1]["body"] == f"{name} (agent): Let me check that for you."

        # STOP wins over the agent: confirmed once, and nothing more is sent
        stopped = await text_in(stack.customer_side.url, customer, "STOP")
        assert stopped == [config.twilio.sms_opt_out_text]
        before = len(twilio.messages_to(customer))
        after_stop = await desk.post(call_id, "messages", {"text": "Are you still there?"})
        assert after_stop.status_code == 409
        assert "opted out" in after_stop.json()["detail"]
        assert len(twilio.messages_to(customer)) == before
    finally:
        await desk.aclose()


# -- voice: the screen pop ---------------------------------------------------------------


async def test_a_transferred_call_shows_in_the_inbox_with_its_summary(
    stack: Stack, bus: Bus, redis_client: Any, config: CallCenterConfig
) -> None:
    call_id = uuid.uuid4().hex
    summary = "Jordan (C-1001) wants to change the delivery address of ORD-1001."
    # what the voice pipeline leaves for the agent when it transfers the call
    await redis_client.set(
        f"{config.redis.key_prefix}call:{call_id}:handoff",
        json.dumps({"reason": "caller asked", "summary": summary, "to": "+15550100111"}),
    )
    await bus.publish(
        TurnCompleted(
            call_id=call_id,
            channel="voice",
            turn_index=2,
            user_text="Can I talk to someone?",
            assistant_text="Of course, transferring you now.",
            tool_calls=[
                ToolCallRecord(
                    id="t1",
                    name="transfer_to_agent",
                    arguments={"reason": "caller asked"},
                    success=True,
                    result={"transfer": True, "reason": "caller asked", "queue": "general"},
                )
            ],
        )
    )
    desk = await new_agent(stack.agent_side.url, unique("Vic"))
    try:
        item = await desk.wait_item(call_id, "waiting_for_agent")
        assert item["channel"] == "voice" and item["trigger"] == "voice_transfer"
        assert item["summary"] == summary and item["reason"] == "caller asked"
        taken = await desk.post(call_id, "take")  # the agent who picked up the phone
        assert taken.status_code == 200 and taken.json()["state"] == "agent"
        # both replicas saw the turn: one hand-off, requested once
        requested = await count_events(bus, "handoff.requested", call_id)
        assert requested == 1
    finally:
        await desk.aclose()


async def count_events(bus: Bus, subject: str, call_id: str) -> int:
    sub = await bus.js.subscribe(bus.subject(subject), ordered_consumer=True)
    count = 0
    try:
        while True:
            msg = await sub.next_msg(timeout=0.5)
            count += json.loads(msg.data)["call_id"] == call_id
    except nats.errors.TimeoutError:
        pass
    finally:
        await sub.unsubscribe()
    return count


# -- post-call: the agent's part in the summary, metrics ---------------------------------


async def test_the_agents_part_reaches_the_summary_and_metrics(
    stack: Stack, db_pool: asyncpg.Pool, bus: Bus
) -> None:
    name = unique("Kim")
    desk = await new_agent(stack.agent_side.url, name)
    async with ChatVisitor(stack.customer_side.url) as chat:
        try:
            await ask_for_human(chat)
            assert (await desk.post(chat.call_id, "take")).status_code == 200
            await chat.ws.send(json.dumps({"type": "message", "text": "I need a refund please"}))
            assert (await next_frame(chat, "held"))["type"] == "held"
            sent = await desk.post(chat.call_id, "messages", {"text": "I have issued your refund."})
            assert sent.json() == {"delivered": True}
            closed = await desk.post(chat.call_id, "close")
            assert closed.status_code == 200 and closed.json()["state"] == "closed"
            left = await next_frame(chat, "agent_left")
            assert left["text"].startswith(f"{name} has left the conversation.")
            assert (await next_frame(chat, "ended"))["reason"] == "agent_closed"
        finally:
            await desk.aclose()

    summary = None
    for _ in range(300):
        summary = await db_pool.fetchrow("SELECT * FROM summaries WHERE call_id = $1", chat.call_id)
        if summary is not None:
            break
        await asyncio.sleep(0.1)
    assert summary is not None, "no summary"
    assert f"{name} (agent): I have issued your refund." in summary["summary"]
    assert "return" in summary["topics"]  # from what the customer told the agent

    async with httpx.AsyncClient(timeout=30) as client:
        detail = await client.get(
            f"{stack.agent_side.url}/api/calls/{chat.call_id}",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert [(m["sender"], m["text"]) for m in detail.json()["agent_messages"]][-3:-1] == [
            ("customer", "I need a refund please"),
            ("agent", "I have issued your refund."),
        ]
        for _ in range(100):
            metrics = (await client.get(f"{stack.post_call.url}/metrics")).text
            if metric_value(metrics, "callcenter_handoff_queue_wait_seconds_count") >= 1:
                break
            await asyncio.sleep(0.1)
    assert metric_value(metrics, "callcenter_handoffs_total", channel="chat", trigger="tool") >= 1
    assert metric_value(metrics, "callcenter_handoff_queue_wait_seconds_count", channel="chat") >= 1


def add_agent_command(env: dict[str, str], name: str) -> subprocess.CompletedProcess[str]:
    """``callcenter inbox add-agent NAME`` in this session's namespace."""
    return subprocess.run(
        [sys.executable, "-m", "callcenter.common.cli", "inbox", "add-agent", name],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_admin_creates_an_agent_from_the_command_line(
    stack: Stack, test_env: TestEnvironment
) -> None:
    name = unique("Cli")
    created = await asyncio.to_thread(add_agent_command, test_env.env, name)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    desk = AgentDesk(stack.agent_side.url, token)
    try:
        assert (await desk.client.get("/api/inbox")).json()["agent_name"] == name
    finally:
        await desk.aclose()
    again = await asyncio.to_thread(add_agent_command, test_env.env, name)
    assert again.returncode == 1 and "already exists" in again.stdout
