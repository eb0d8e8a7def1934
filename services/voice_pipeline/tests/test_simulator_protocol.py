"""The simulated Twilio caller is as strict as Twilio about what the bot sends back.

A bare WebSocket server plays the bot here, sending raw Media Streams messages, so each rule of
the stand-in (streamSid, μ-law payloads, marks after playback, marks returned on ``clear``) is
checked on its own; the whole-system voice tests then run every real call through those rules.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
import pytest
import websockets

from callcenter.voice_pipeline.simulator import FRAME_BYTES, RATE, TwilioCaller, pcm16_to_ulaw

Bot = Callable[[websockets.ServerConnection, str], Awaitable[None]]


def tone_ulaw(seconds: float) -> bytes:
    """A 330 Hz tone as 8 kHz μ-law, in whole 20 ms frames."""
    n = int(RATE * seconds) // FRAME_BYTES * FRAME_BYTES
    t = np.arange(n) / RATE
    return pcm16_to_ulaw((6000 * np.sin(2 * math.pi * 330 * t)).astype("<i2").tobytes())


def media(stream_sid: str, audio: bytes) -> str:
    payload = base64.b64encode(audio).decode()
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark(stream_sid: str, name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


class BotServer:
    """A WebSocket server that runs ``bot`` on each connection after Twilio's ``start``."""

    def __init__(self) -> None:
        self.bot: Bot | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.url = ""

    async def handler(self, ws: websockets.ServerConnection) -> None:
        async for raw in ws:
            message = json.loads(raw)
            if message.get("event") == "start" and self.bot is not None:
                self.tasks.append(asyncio.create_task(self.bot(ws, message["streamSid"])))


@pytest.fixture
async def server() -> AsyncIterator[BotServer]:
    bot_server = BotServer()
    async with websockets.serve(bot_server.handler, "127.0.0.1", 0) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        bot_server.url = f"ws://127.0.0.1:{port}/twilio/media"
        yield bot_server


async def connect(server: BotServer, bot: Bot) -> TwilioCaller:
    server.bot = bot
    caller = TwilioCaller(gateway_url="http://127.0.0.1:9", auth_token="token")
    await caller.open_stream(url=server.url, parameters={})
    return caller


async def returned(caller: TwilioCaller, name: str, timeout_s: float = 10.0) -> float:
    """When the caller sent mark ``name`` back."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        for got, at in caller.marks_returned:
            if got == name:
                return at
        await asyncio.sleep(0.01)
    raise TimeoutError(f"mark {name} never came back; returned {caller.marks_returned}")


async def test_mark_comes_back_only_after_its_audio_has_played(server: BotServer) -> None:
    async def bot(ws: websockets.ServerConnection, sid: str) -> None:
        await ws.send(media(sid, tone_ulaw(1.0)))  # a second of audio, sent at once
        await ws.send(mark(sid, "after-greeting"))

    caller = await connect(server, bot)
    at = await returned(caller, "after-greeting")
    [played] = caller.bot
    assert played.seconds == pytest.approx(1.0, abs=0.02)
    # Twilio plays the buffer in real time and answers the mark when it reaches it
    assert at >= played.play_end - 0.01, (at, played.play_end)
    assert at - played.started >= 0.9
    await caller.close()


async def test_clear_returns_pending_marks_at_once(server: BotServer) -> None:
    async def bot(ws: websockets.ServerConnection, sid: str) -> None:
        await ws.send(media(sid, tone_ulaw(3.0)))
        await ws.send(mark(sid, "end-of-answer"))
        await asyncio.sleep(0.3)
        await ws.send(json.dumps({"event": "clear", "streamSid": sid}))

    caller = await connect(server, bot)
    at = await returned(caller, "end-of-answer")
    [cleared] = caller.clears
    [played] = caller.bot
    assert cleared <= at < played.play_start + 3.0 - 1.0  # came back with the clear, not at 3 s
    assert played.play_end == cleared  # the caller heard nothing after the clear
    await caller.close()


async def test_messages_twilio_would_refuse_are_dropped_and_reported(server: BotServer) -> None:
    good = tone_ulaw(0.2)
    pcm = (6000 * np.sin(2 * math.pi * 330 * np.arange(1600) / RATE)).astype("<i2").tobytes()

    async def bot(ws: websockets.ServerConnection, sid: str) -> None:
        await ws.send(media("MZ" + "0" * 32, good))  # another stream's SID
        await ws.send(media(sid, pcm))  # 16-bit PCM, not μ-law
        await ws.send(media(sid, good[:-40]))  # not whole 20 ms frames
        await ws.send(media(sid, b"RIFF" + good[4:]))  # a WAV header
        await ws.send(json.dumps({"event": "media", "streamSid": sid, "media": {"payload": "%"}}))
        await ws.send(json.dumps({"event": "speak", "streamSid": sid}))
        await ws.send(mark(sid, "last"))

    caller = await connect(server, bot)
    await returned(caller, "last")
    reasons = [reason for code, reason in caller.protocol_errors if code == 31951]
    assert len(reasons) == 6, reasons
    assert "is not this stream's" in reasons[0]
    assert "not 8 kHz μ-law" in reasons[1]
    assert "whole 20 ms frames" in reasons[2]
    assert "RIFF" in reasons[3]
    assert "base64" in reasons[4]
    assert "unsupported event" in reasons[5]
    assert caller.bot == []  # none of it was played
    with pytest.raises(AssertionError, match="Media Streams protocol"):
        caller.assert_protocol_kept()
    await caller.close()


async def test_valid_audio_plays_and_keeps_the_protocol(server: BotServer) -> None:
    async def bot(ws: websockets.ServerConnection, sid: str) -> None:
        for _ in range(10):
            await ws.send(media(sid, tone_ulaw(0.04)))
        await ws.send(mark(sid, "done"))

    caller = await connect(server, bot)
    await returned(caller, "done")
    assert caller.protocol_errors == []
    assert sum(b.seconds for b in caller.bot) == pytest.approx(0.4, abs=0.01)
    caller.assert_protocol_kept()
    await caller.close()
