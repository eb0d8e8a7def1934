"""The ElevenLabs stream-input stand-in keeps ElevenLabs' rules (see its module docstring)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.elevenlabs_server import ElevenLabsFake

SETTINGS = {"stability": 0.5, "similarity_boost": 0.8}


@pytest.fixture
async def elevenlabs() -> AsyncIterator[ElevenLabsFake]:
    async with ElevenLabsFake(ms_per_char=2.0) as fake:
        yield fake


async def session(
    elevenlabs: ElevenLabsFake, sent: list[dict[str, Any]], *, auto_mode: bool = False
) -> tuple[list[dict[str, Any]], int | None]:
    """Send ``sent`` then ``close_socket``; what came back before the close, and its code."""
    url = f"{elevenlabs.http_url}/v1/text-to-speech/voice/multi-stream-input"
    params = {"output_format": "pcm_16000", "auto_mode": str(auto_mode).lower()}
    got: list[dict[str, Any]] = []
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, params=params, headers={"xi-api-key": elevenlabs.api_key}) as ws,
    ):
        for message in [*sent, {"close_socket": True}]:
            await ws.send_str(json.dumps(message))
        async for msg in ws:  # ends when the server closes: the positive signal
            got.append(json.loads(msg.data))
        return got, ws.close_code


def of(got: list[dict[str, Any]], context: str) -> list[str]:
    return ["final" if m.get("isFinal") else "audio" for m in got if m.get("contextId") == context]


async def test_text_is_spoken_on_flush_or_schedule_not_on_arrival(
    elevenlabs: ElevenLabsFake,
) -> None:
    short = "Your order shipped."
    long = "Your boots shipped on Monday and should arrive by Thursday; " * 3  # > 120 chars
    got, code = await session(
        elevenlabs,
        [
            {"text": " ", "context_id": "unflushed", "voice_settings": SETTINGS},
            {"text": short, "context_id": "unflushed"},
            {"context_id": "unflushed", "close_context": True},
            {"text": " ", "context_id": "flushed", "voice_settings": SETTINGS},
            {"text": short, "context_id": "flushed"},
            {"context_id": "flushed", "flush": True},
            {"context_id": "flushed", "close_context": True},
            {"text": " ", "context_id": "scheduled", "voice_settings": SETTINGS},
            {"text": long, "context_id": "scheduled"},
        ],
    )
    assert code == 1000
    assert of(got, "unflushed") == ["final"]  # never flushed: never spoken
    flushed = of(got, "flushed")
    assert flushed[-1] == "final" and flushed.count("audio") >= 1 and flushed.count("final") == 1
    assert "audio" in of(got, "scheduled")  # the 120-character schedule step was reached


async def test_auto_mode_speaks_each_text_and_is_final_follows_the_last_audio(
    elevenlabs: ElevenLabsFake,
) -> None:
    got, _ = await session(
        elevenlabs,
        [
            {"text": " ", "context_id": "c", "voice_settings": SETTINGS},
            {"text": "A long answer that takes a while to generate. " * 4, "context_id": "c"},
            {"context_id": "c", "close_context": True},  # sent before any audio was generated
        ],
        auto_mode=True,
    )
    events = of(got, "c")
    assert events.count("audio") > 3
    assert events[-1] == "final" and events.count("final") == 1


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        (
            [
                {"text": "Hello. ", "context_id": "c", "voice_settings": SETTINGS},
                {"text": "Again. ", "context_id": "c", "voice_settings": SETTINGS},
            ],
            "first message",
        ),
        (
            [{"text": "Hi. ", "context_id": f"c{i}", "voice_settings": SETTINGS} for i in range(6)],
            "max_active_conversations",
        ),
    ],
)
async def test_context_rules_close_the_socket_with_1008(
    elevenlabs: ElevenLabsFake, messages: list[dict[str, Any]], reason: str
) -> None:
    _, code = await session(elevenlabs, messages)
    assert code == 1008
    assert reason in elevenlabs.sockets[-1].close_reason


async def test_inactivity_timeout_closes_with_1008_unless_kept_alive() -> None:
    async with ElevenLabsFake(inactivity_timeout_s=0.5) as fake:
        url = f"{fake.http_url}/v1/text-to-speech/voice/multi-stream-input"
        headers = {"xi-api-key": fake.api_key}
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(url, headers=headers) as idle:
                msg = await asyncio.wait_for(idle.receive(), timeout=10)
                assert msg.type == aiohttp.WSMsgType.CLOSE and idle.close_code == 1008
            params = {"auto_mode": "true"}
            async with http.ws_connect(url, headers=headers, params=params) as kept:
                for _ in range(6):  # 1.2 s, over twice the timeout, kept alive every 0.2 s
                    await kept.send_str(json.dumps({"text": ""}))
                    await asyncio.sleep(0.2)
                await kept.send_str(json.dumps({"text": "Still here.", "context_id": "k"}))
                msg = await asyncio.wait_for(kept.receive(), timeout=10)
                assert json.loads(msg.data)["contextId"] == "k"  # it was still open


async def test_inactivity_timeout_is_bounded(elevenlabs: ElevenLabsFake) -> None:
    url = f"{elevenlabs.http_url}/v1/text-to-speech/voice/multi-stream-input"
    async with aiohttp.ClientSession() as http:
        response = await http.get(
            url, params={"inactivity_timeout": "181"}, headers={"xi-api-key": elevenlabs.api_key}
        )
        assert response.status == 400
