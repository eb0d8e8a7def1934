"""The first vertical slice: a web-chat visitor asks for an order and gets its real status.

Real processes (gateway, conversation, tools) on real NATS, Redis and PostgreSQL; a real WebSocket
client; the answer is checked against the database row, and the call's events against JetStream.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
import websockets

from callcenter.common.bus import Bus
from tests.support.environment import free_port
from tests.support.processes import ServiceProcess


@pytest.fixture(scope="module")
def chat_system(
    db_pool: asyncpg.Pool, service_factory: Callable[..., ServiceProcess]
) -> dict[str, ServiceProcess]:
    """tools, conversation and gateway running in this session's namespace."""
    procs = {
        name: service_factory(name, wait=False) for name in ("tools", "conversation", "gateway")
    }
    for proc in procs.values():  # started together: their imports overlap on the machine's cores
        proc.wait_ready()
    return procs


def _ws_url(gateway: ServiceProcess) -> str:
    return gateway.url.replace("http://", "ws://") + "/chat/ws"


async def _turn(ws: websockets.ClientConnection, text: str) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "message", "text": text}))
    deltas: list[str] = []
    kinds: list[str] = []
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
        kinds.append(msg["type"])
        if msg["type"] == "delta":
            deltas.append(msg["text"])
        elif msg["type"] == "done":
            return {"deltas": deltas, "done": msg, "kinds": kinds}
        elif msg["type"] == "error":
            raise AssertionError(f"chat error: {msg}")


async def _events_for(
    bus: Bus, call_id: str, subject: str, *, expect: int, timeout_s: float = 15
) -> list[dict]:
    """Every stored event on ``subject`` of ``call_id`` (waits until ``expect`` are there)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        sub = await bus.js.pull_subscribe(
            bus.subject(subject), durable=None, stream=bus.settings.stream
        )
        found = []
        try:
            while True:
                try:
                    msgs = await sub.fetch(200, timeout=0.5)
                except TimeoutError:
                    break
                for msg in msgs:
                    body = json.loads(msg.data)
                    if body.get("call_id") == call_id:
                        found.append(body)
        finally:
            await sub.unsubscribe()
        if len(found) >= expect or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.3)


async def test_every_service_is_live_and_ready(chat_system: dict[str, ServiceProcess]) -> None:
    async with httpx.AsyncClient() as client:
        for name, proc in chat_system.items():
            assert (await client.get(f"{proc.url}/healthz")).status_code == 200, name
            ready = await client.get(f"{proc.url}/readyz")
            assert ready.status_code == 200, (name, ready.text)
            assert all(ready.json()["checks"].values())


async def test_visitor_gets_the_real_order_status(
    chat_system: dict[str, ServiceProcess], db_pool: asyncpg.Pool, bus: Bus
) -> None:
    order = await db_pool.fetchrow(
        "SELECT o.status, s.tracking_number FROM orders o "
        "LEFT JOIN shipments s USING (order_id) WHERE o.order_id = 'ORD-1001'"
    )
    assert order is not None, "the demo seed must contain ORD-1001"
    async with websockets.connect(_ws_url(chat_system["gateway"])) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "session" and hello["call_id"] and hello["greeting"]
        call_id = hello["call_id"]
        turn = await _turn(ws, "Where is my order ORD-1001?")
        answer = turn["done"]["text"]
        assert "".join(turn["deltas"]) == answer  # streamed, then confirmed whole
        assert len(turn["deltas"]) >= 1 and turn["kinds"][0] == "typing"
        assert str(order["status"]).replace("_", " ").lower() in answer.lower(), answer
        assert order["tracking_number"] in answer
        await ws.send(json.dumps({"type": "end"}))
        ended = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        assert ended == {"type": "ended", "reason": "customer_closed"}

    started = await _events_for(bus, call_id, "call.started", expect=1)
    assert len(started) == 1 and started[0]["channel"] == "chat"
    turns = await _events_for(bus, call_id, "turn.completed", expect=1)
    assert len(turns) == 1 and turns[0]["turn_index"] == 0
    assert turns[0]["assistant_text"] == answer
    assert any(
        call["name"] == "check_order_status" and call["success"] for call in turns[0]["tool_calls"]
    )
    ended_events = await _events_for(bus, call_id, "call.ended", expect=1)
    assert len(ended_events) == 1
    assert ended_events[0]["turn_count"] == 1 and ended_events[0]["reason"] == "customer_closed"
    row = await db_pool.fetchrow(
        "SELECT status, turn_count, end_reason FROM calls WHERE call_id = $1", call_id
    )
    assert dict(row) == {"status": "ended", "turn_count": 1, "end_reason": "customer_closed"}


async def test_malformed_frames_get_a_clear_error_and_the_chat_goes_on(
    chat_system: dict[str, ServiceProcess],
) -> None:
    async with websockets.connect(_ws_url(chat_system["gateway"])) as ws:
        json.loads(await ws.recv())
        await ws.send(b"\x00\xff\xfe garbage")
        assert "binary" in json.loads(await ws.recv())["message"]
        await ws.send("{not json")
        assert "JSON" in json.loads(await ws.recv())["message"]
        await ws.send(json.dumps({"type": "launch_missiles"}))
        assert "Unknown" in json.loads(await ws.recv())["message"]
        await ws.send(json.dumps({"type": "message", "text": "x" * 5000}))
        assert "limited" in json.loads(await ws.recv())["message"]
        turn = await _turn(ws, "Where is my order ORD-1001?")
        assert turn["done"]["text"]


async def test_dropped_socket_resumes_the_same_conversation(
    chat_system: dict[str, ServiceProcess], bus: Bus
) -> None:
    url = _ws_url(chat_system["gateway"])
    async with websockets.connect(url) as ws:
        hello = json.loads(await ws.recv())
        await _turn(ws, "Where is my order ORD-1001?")
    call_id, token = hello["call_id"], hello["resume_token"]
    async with websockets.connect(f"{url}?call_id={call_id}&resume_token={token}") as ws:
        again = json.loads(await ws.recv())
        assert again["call_id"] == call_id and again["resumed"] is True
        turn = await _turn(ws, "Thanks, bye")
        assert turn["done"]["turn_index"] == 1
    async with websockets.connect(f"{url}?call_id={call_id}&resume_token=forged") as ws:
        refused = json.loads(await ws.recv())
        assert refused["type"] == "error"
        assert json.loads(await ws.recv())["call_id"] != call_id


def test_terminal_chat_gets_the_answer(chat_system: dict[str, ServiceProcess]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "callcenter.common.cli", "chat", "--url", _ws_url(chat_system["gateway"]),
         "-m", "Where is my order ORD-1001?"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # the assistant's reply line (not the echoed question, not the greeting) carries the status
    replies = [line for line in result.stdout.splitlines() if line.startswith("assistant> ")]
    assert len(replies) == 2, result.stdout  # greeting, then the answer
    assert "shipped" in replies[1].lower() and "1Z999AA10123456784" in replies[1], result.stdout


def test_sigterm_drains_and_exits_cleanly(
    chat_system: dict[str, ServiceProcess], service_factory
) -> None:
    """A second conversation replica started and stopped: it exits 0 and logs a clean stop."""
    extra = service_factory("conversation", port=free_port())
    assert extra.stop(timeout_s=30) == 0
    assert '"event": "stopped"' in extra.log_text()


async def test_idle_and_abandoned_chats_end_once_across_two_gateways(
    chat_system: dict[str, ServiceProcess], service_factory, bus: Bus, db_pool: asyncpg.Pool
) -> None:
    """Two more gateway replicas with short timeouts: a silent visitor is told the chat ended;
    a visitor whose socket dropped is ended by the reapers, and call.ended is published once."""
    short = {
        "CALLCENTER_GATEWAY__CHAT_IDLE_TIMEOUT_S": "1.5",
        "CALLCENTER_GATEWAY__CHAT_RESUME_GRACE_S": "1.0",
        "CALLCENTER_GATEWAY__REAPER_INTERVAL_S": "0.3",
    }
    replicas = [service_factory("gateway", port=free_port(), extra_env=short) for _ in range(2)]
    # Every publish of call.ended, read on a core subscription: JetStream drops a duplicate
    # Nats-Msg-Id, so the stream could never show a second publish.
    published: list[dict[str, Any]] = []

    async def record(msg: Any) -> None:
        published.append(json.loads(msg.data))

    sub = await bus.nc.subscribe(bus.subject("call.ended"), cb=record)
    try:
        async with websockets.connect(_ws_url(replicas[0])) as ws:
            silent_call = json.loads(await ws.recv())["call_id"]
            ended = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
            assert ended == {"type": "ended", "reason": "idle_timeout"}

        async with websockets.connect(_ws_url(replicas[1])) as ws:
            dropped_call = json.loads(await ws.recv())["call_id"]
            await _turn(ws, "Where is my order ORD-1001?")
        # The socket is gone without an "end": after the resume grace a reaper ends the call.
        for call_id in (silent_call, dropped_call):
            await _events_for(bus, call_id, "call.ended", expect=1, timeout_s=15)
        # A marker chat that starts now is ended by a reaper only after its own idle timeout,
        # so by the time its call.ended is published both replicas' reapers have passed over
        # the first two calls again: a second publish of theirs would have come before it.
        async with websockets.connect(_ws_url(replicas[0])) as ws:
            marker = json.loads(await ws.recv())["call_id"]
            await asyncio.wait_for(ws.recv(), timeout=10)
        await _events_for(bus, marker, "call.ended", expect=1, timeout_s=15)
        deadline = asyncio.get_running_loop().time() + 10
        while marker not in [e["call_id"] for e in published]:
            assert asyncio.get_running_loop().time() < deadline, "marker publish not seen"
            await asyncio.sleep(0.05)
    finally:
        await sub.unsubscribe()
    for call_id, turns in ((silent_call, 0), (dropped_call, 1)):
        events = [e for e in published if e["call_id"] == call_id]
        assert len(events) == 1, events
        assert events[0]["reason"] == "idle_timeout" and events[0]["turn_count"] == turns
    for proc in replicas:
        assert proc.stop() == 0
