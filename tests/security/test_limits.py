"""Abuse limits on a gateway replica configured with small ones: body size, chat frame size,
chat messages per minute per conversation and per address, open chats per address.

Windows are one minute long and fixed, so a test that straddles a minute boundary may see one
window's worth more: each check sends up to twice the limit plus one and expects a refusal.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.security.conftest import SecureSystem
from tests.support.chat_client import ChatVisitor
from tests.support.private_servers import start_service
from tests.support.processes import ServiceProcess

LIMITS = {
    "CALLCENTER_GATEWAY__MAX_BODY_BYTES": "4096",
    "CALLCENTER_GATEWAY__CHAT_MAX_FRAME_BYTES": "1024",
    "CALLCENTER_GATEWAY__CHAT_MESSAGES_PER_MINUTE": "4",
    "CALLCENTER_GATEWAY__CHAT_MESSAGES_PER_MINUTE_PER_IP": "10",
    "CALLCENTER_GATEWAY__CHAT_SESSIONS_PER_IP": "3",
}
TOO_FAST = "too quickly"


@pytest.fixture(scope="module")
def limited(secure_system: SecureSystem) -> Iterator[ServiceProcess]:
    """A second gateway replica with small limits (its own Redis counters: own key prefix)."""
    env = {**secure_system.env, **LIMITS}
    env["CALLCENTER_REDIS__KEY_PREFIX"] = env["CALLCENTER_REDIS__KEY_PREFIX"] + "limits:"
    proc = start_service("gateway", env=env, tag=secure_system.tag + "-limits")
    secure_system.extra.append(proc)
    yield proc
    proc.stop()


@pytest.fixture
async def fresh_minute() -> AsyncIterator[None]:
    """Start near the beginning of a one-minute window when the current one is almost over."""
    loop = asyncio.get_running_loop()
    import time

    left = 60 - time.time() % 60
    if left < 15:
        await asyncio.sleep(left + 0.1)
    yield
    del loop


async def test_oversized_request_bodies_get_413(limited: ServiceProcess) -> None:
    big = {"Body": "x" * 8000, "From": "+15550001", "To": "+15550002", "MessageSid": "SM1"}

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"Body=" + b"y" * 1000 + b"&"

    async with httpx.AsyncClient(base_url=limited.url, timeout=20) as client:
        for path in ("/twilio/sms", "/twilio/voice", "/twilio/status", "/dashboard/login"):
            announced = await client.post(path, data=big)
            assert announced.status_code == 413, (path, announced.status_code)
            streamed = await client.post(
                path,
                content=chunks(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert streamed.status_code == 413, (path, streamed.status_code)
        # the control: a small unsigned post reaches the signature check
        small = await client.post("/twilio/sms", data={"Body": "hi"})
        assert small.status_code == 403
        assert (await client.get("/healthz")).status_code == 200


async def test_oversized_chat_frames_are_refused_and_the_chat_goes_on(
    limited: ServiceProcess,
) -> None:
    async with ChatVisitor(limited.url) as chat:
        reply = await chat.say("x" * 1500)
        assert reply.kind == "error" and "too large" in reply.text
        nested = await chat.say("hello")  # still works
        assert nested.kind == "done"
        assert chat.ws is not None
        await chat.ws.send("[" * 900 + "]" * 900)
        assert (await chat.receive())["type"] == "error"
        await chat.end()
    # Over the server's hard frame cap the socket is closed (1009), the gateway stays up.
    async with websockets.connect(
        limited.url.replace("http://", "ws://") + "/chat/ws", max_size=None
    ) as ws:
        await ws.recv()
        await ws.send("z" * (2 * 1024 * 1024))
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(5):
                await asyncio.wait_for(ws.recv(), timeout=20)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{limited.url}/healthz")).status_code == 200


async def _until_refused(chat: ChatVisitor, budget: int) -> tuple[int, str | None]:
    """Send 'hello' until a message is refused; return (accepted, refusal text)."""
    accepted = 0
    for _ in range(budget):
        reply = await chat.say("hello")
        if reply.kind == "error":
            return accepted, reply.text
        accepted += 1
    return accepted, None


async def test_chat_messages_per_minute_per_conversation(
    limited: ServiceProcess, fresh_minute: None
) -> None:
    async with ChatVisitor(limited.url) as chat:
        accepted, refusal = await _until_refused(chat, budget=2 * 4 + 1)
        assert refusal is not None and TOO_FAST in refusal, (accepted, refusal)
        assert accepted >= 4
        await chat.end()


async def test_chat_messages_per_minute_per_address(
    limited: ServiceProcess, fresh_minute: None
) -> None:
    # Several conversations from one address, each under its own limit, share the address's.
    refused = None
    total = 0
    for _ in range(2 * 10 // 3 + 2):
        async with ChatVisitor(limited.url) as chat:
            accepted, refusal = await _until_refused(chat, budget=3)
            total += accepted
            if refusal is not None:
                refused = refusal
                break
    assert refused is not None and TOO_FAST in refused, total
    assert total <= 2 * 10


async def test_open_chats_per_address(limited: ServiceProcess) -> None:
    url = limited.url.replace("http://", "ws://") + "/chat/ws"
    sockets = []
    try:
        for _ in range(3):
            ws = await websockets.connect(url)
            assert json.loads(await ws.recv())["type"] == "session"
            sockets.append(ws)
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(url):
                pass
        assert refused.value.response.status_code == 429
        await sockets.pop().close()
        await asyncio.sleep(0.3)  # the server notices the close and frees the slot
        ws = await websockets.connect(url)  # a slot is free again
        assert json.loads(await ws.recv())["type"] == "session"
        sockets.append(ws)
    finally:
        for ws in sockets:
            await ws.close()
