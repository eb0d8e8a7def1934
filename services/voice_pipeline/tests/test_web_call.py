"""Browser calls at the edge: who may open one, how often, and the caller cutting the bot off.

A browser call's socket opens only with the gateway's token: once, for that call, while it is
live; call starts are limited per address like chats; when the caller speaks over the assistant
the browser is told to drop the queued audio (``clear``). Real gateway and voice pipeline
processes (embedded speech, no keys). The gateway's ``POST /web-voice/calls`` records the call and
hands out the token, as the widget's Call button gets it; a client then speaks the browser protocol
of ``callcenter.voice_pipeline.web_call``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest
import soxr
import websockets
from websockets.exceptions import ConnectionClosed

from callcenter.common.bus import Bus
from callcenter.common.call_end import end_call
from callcenter.common.stream_token import sign_stream_token
from callcenter.voice_pipeline.simulator import speech_ulaw, ulaw_to_pcm16
from tests.support.environment import TestEnvironment, free_port
from tests.support.processes import ServiceProcess

from .conftest import _start

pytestmark = [
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng"),
    pytest.mark.timeout(180),
]

SECRET = "web-call-tests-" + uuid.uuid4().hex
POLICY_VIOLATION = 1008


@pytest.fixture(scope="module")
async def edge(test_env: TestEnvironment, db_pool: Any, bus: Bus) -> AsyncIterator[dict[str, Any]]:
    """The gateway and the voice pipeline, sharing the stream-token secret."""
    ports = {name: free_port() for name in ("gateway", "voice_pipeline")}
    env = {
        **test_env.env,
        "CALLCENTER_GATEWAY__PORT": str(ports["gateway"]),
        "CALLCENTER_VOICE_PIPELINE__PORT": str(ports["voice_pipeline"]),
        "CALLCENTER_VOICE_PIPELINE__PUBLIC_WS_URL": f"ws://127.0.0.1:{ports['voice_pipeline']}/twilio/media",
        "CALLCENTER_VOICE_PIPELINE__STREAM_TOKEN_SECRET": SECRET,
        "CALLCENTER_VOICE_PIPELINE__STT_PROVIDER": "pocketsphinx",
        "CALLCENTER_VOICE_PIPELINE__TTS_PROVIDER": "espeak",
        "CALLCENTER_VOICE_PIPELINE__SMART_TURN": "false",
    }
    procs: dict[str, ServiceProcess] = {
        name: _start(name, env, ports[name], test_env.tag) for name in ports
    }
    try:
        for proc in procs.values():
            await asyncio.to_thread(proc.wait_ready, timeout_s=90)
        yield {"gateway": procs["gateway"].url, "voice": procs["voice_pipeline"]}
    finally:
        for proc in reversed(list(procs.values())):
            await asyncio.to_thread(proc.stop)


async def new_call(edge: dict[str, Any]) -> dict[str, Any]:
    """What the widget's Call button gets from the gateway."""
    async with httpx.AsyncClient(base_url=edge["gateway"]) as client:
        response = await client.post("/web-voice/calls")
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    return response.json()


async def open_stream(url: str, token: Any) -> tuple[dict[str, Any] | None, int | None, int]:
    """Send ``start`` with ``token``; (the first message, the close code, audio bytes heard).

    An accepted socket is read until the greeting's first audio arrives, then hung up.
    """
    first: dict[str, Any] | None = None
    audio = 0
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "start", "token": token}))
        try:
            async with asyncio.timeout(60):
                while audio == 0:
                    message = await ws.recv()
                    if isinstance(message, bytes):
                        audio += len(message)
                    elif first is None:
                        first = json.loads(message)
        except ConnectionClosed:
            pass
        if audio:
            await ws.send(json.dumps({"type": "hangup"}))
            await ws.close()
    return first, ws.close_code, audio


async def call_status(db_pool: Any, call_id: str, wanted: str, *, within_s: float = 30) -> str:
    """The call row's status once it is ``wanted`` (TimeoutError after ``within_s``)."""
    async with asyncio.timeout(within_s):
        while True:
            row = await db_pool.fetchrow("SELECT status FROM calls WHERE call_id = $1", call_id)
            if row is not None and row["status"] == wanted:
                return wanted
            await asyncio.sleep(0.1)


async def test_the_gateway_records_a_browser_call_without_a_number(
    edge: dict[str, Any], db_pool: Any
) -> None:
    grant = await new_call(edge)
    assert grant["url"].endswith("/web/media") and grant["token"]
    row = await db_pool.fetchrow(
        "SELECT channel, from_number, status, provider_ids FROM calls WHERE call_id = $1",
        grant["call_id"],
    )
    assert row["channel"] == "web_voice" and row["from_number"] is None
    assert row["status"] == "active"
    assert row["provider_ids"]["web_stream_id"] in grant["token"]


async def test_a_token_opens_its_call_once(edge: dict[str, Any], db_pool: Any) -> None:
    grant = await new_call(edge)
    async with websockets.connect(grant["url"]) as first:
        await first.send(json.dumps({"type": "start", "token": grant["token"]}))
        started = json.loads(await asyncio.wait_for(first.recv(), timeout=30))
        assert started == {"type": "started", "call_id": grant["call_id"], "sample_rate": 16000}
        greeting = await asyncio.wait_for(first.recv(), timeout=60)
        assert isinstance(greeting, bytes) and greeting  # the greeting, as 16 kHz PCM

        # the same token again while the call is live: refused, the call goes on
        replay = await open_stream(grant["url"], grant["token"])
        assert replay == (None, POLICY_VIOLATION, 0)
        await first.send(json.dumps({"type": "hangup"}))
    assert await call_status(db_pool, grant["call_id"], "ended") == "ended"

    # and after the call ended
    assert await open_stream(grant["url"], grant["token"]) == (None, POLICY_VIOLATION, 0)


@pytest.mark.parametrize("token", [None, "", "not-a-token", "c1.WV1.99999999999.00"])
async def test_no_valid_token_no_stream(edge: dict[str, Any], token: str | None) -> None:
    grant = await new_call(edge)
    assert await open_stream(grant["url"], token) == (None, POLICY_VIOLATION, 0)


async def test_a_token_for_another_stream_of_the_call_is_refused(edge: dict[str, Any]) -> None:
    grant = await new_call(edge)
    forged = sign_stream_token(
        SECRET.encode(), call_id=grant["call_id"], call_sid="WV" + uuid.uuid4().hex, ttl_s=60
    )
    assert await open_stream(grant["url"], forged) == (None, POLICY_VIOLATION, 0)


async def test_an_ended_call_gets_no_stream(
    edge: dict[str, Any], test_env: TestEnvironment, bus: Bus, db_pool: Any, redis_client: Any
) -> None:
    grant = await new_call(edge)
    assert await end_call(
        bus=bus,
        redis=redis_client,
        db=db_pool,
        key_prefix=test_env.config().redis.key_prefix,
        call_id=grant["call_id"],
        reason="customer_closed",
        channel="web_voice",
    )
    assert await open_stream(grant["url"], grant["token"]) == (None, POLICY_VIOLATION, 0)


def browser_speech(text: str) -> bytes:
    """``text`` spoken (espeak-ng) as the widget sends it: 16 kHz 16-bit PCM."""
    phone = np.frombuffer(ulaw_to_pcm16(speech_ulaw(text)), dtype="<i2")
    return soxr.resample(phone, 8000, 16000).astype("<i2").tobytes()


async def test_the_caller_speaking_over_the_assistant_clears_the_browser_playback(
    edge: dict[str, Any],
) -> None:
    grant = await new_call(edge)
    speech = browser_speech("I want to return it") + bytes(16000)  # and half a second of quiet
    async with websockets.connect(grant["url"]) as ws:
        await ws.send(json.dumps({"type": "start", "token": grant["token"]}))
        assert json.loads(await asyncio.wait_for(ws.recv(), timeout=30))["type"] == "started"
        greeting = await asyncio.wait_for(ws.recv(), timeout=60)
        assert isinstance(greeting, bytes)  # the greeting is playing (seconds of it)
        for i in range(0, len(speech), 640):  # 20 ms frames, at the pace a microphone gives them
            await ws.send(speech[i : i + 640])
            await asyncio.sleep(0.02)
        async with asyncio.timeout(30):
            message = await ws.recv()
            while isinstance(message, bytes):  # what was left of the greeting
                message = await ws.recv()
        assert json.loads(message) == {"type": "clear"}
        await ws.send(json.dumps({"type": "hangup"}))


async def test_call_starts_are_limited_per_address(test_env: TestEnvironment, db_pool: Any) -> None:
    port = free_port()
    env = {
        **test_env.env,
        "CALLCENTER_GATEWAY__PORT": str(port),
        "CALLCENTER_GATEWAY__CHAT_SESSIONS_PER_IP": "2",
        "CALLCENTER_REDIS__KEY_PREFIX": f"{test_env.tag}-limits:",  # counters of its own
        "CALLCENTER_VOICE_PIPELINE__STREAM_TOKEN_SECRET": SECRET,
    }
    gateway = _start("gateway", env, port, test_env.tag)
    try:
        await asyncio.to_thread(gateway.wait_ready, timeout_s=90)
        async with httpx.AsyncClient(base_url=gateway.url) as client:
            answers = [await client.post("/web-voice/calls") for _ in range(2)]
            assert [a.status_code for a in answers] == [200, 200]
            # at most 2 per minute: the next is refused (a minute boundary may allow one more)
            for _ in range(3):
                refused = await client.post("/web-voice/calls")
                if refused.status_code != 200:
                    break
    finally:
        await asyncio.to_thread(gateway.stop)
    assert refused.status_code == 429
    assert refused.headers["access-control-allow-origin"] == "*"  # the widget can read why
    assert "Too many calls" in refused.json()["error"]


async def test_a_call_nobody_connects_to_is_ended_after_its_token_expired(
    edge: dict[str, Any], test_env: TestEnvironment, db_pool: Any, redis_client: Any
) -> None:
    port = free_port()
    env = {
        **test_env.env,
        "CALLCENTER_GATEWAY__PORT": str(port),
        "CALLCENTER_GATEWAY__REAPER_INTERVAL_S": "0.5",
        "CALLCENTER_VOICE_PIPELINE__PUBLIC_WS_URL": edge["voice"].url.replace("http", "ws")
        + "/twilio/media",
        "CALLCENTER_VOICE_PIPELINE__STREAM_TOKEN_SECRET": SECRET,
        "CALLCENTER_VOICE_PIPELINE__STREAM_TOKEN_TTL_S": "3",
    }
    gateway = _start("gateway", env, port, test_env.tag)
    try:
        await asyncio.to_thread(gateway.wait_ready, timeout_s=90)
        abandoned = await new_call({"gateway": gateway.url})
        answered = await new_call({"gateway": gateway.url})
        async with websockets.connect(answered["url"]) as ws:
            await ws.send(json.dumps({"type": "start", "token": answered["token"]}))
            assert json.loads(await asyncio.wait_for(ws.recv(), timeout=30))["type"] == "started"
            ended = await call_status(db_pool, abandoned["call_id"], "ended", within_s=60)
            assert ended == "ended"
            reason = await db_pool.fetchval(
                "SELECT end_reason FROM calls WHERE call_id = $1", abandoned["call_id"]
            )
            assert reason == "idle_timeout"
            # the reaper saw the answered call's deadline pass too, and left it to the pipeline
            member = f"web_voice:{answered['call_id']}"
            key = test_env.config().redis.key_prefix + "sessions:active"
            async with asyncio.timeout(30):
                while True:
                    if await redis_client.zscore(key, member) is None:
                        break
                    await asyncio.sleep(0.1)
            status = await db_pool.fetchval(
                "SELECT status FROM calls WHERE call_id = $1", answered["call_id"]
            )
            assert status == "active"
            await ws.send(json.dumps({"type": "hangup"}))
    finally:
        await asyncio.to_thread(gateway.stop)
