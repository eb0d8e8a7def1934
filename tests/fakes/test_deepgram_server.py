"""The Deepgram stand-in behaves as Deepgram documents (see its module docstring for the rules)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import numpy as np
import pytest

from tests.fakes.deepgram_server import DeepgramFake

RATE = 16000
SCRIPT = "I ordered the waterproof hiking boots last week and they have not arrived yet"


def tone(ms: int) -> bytes:
    t = np.arange(RATE * ms // 1000) / RATE
    return (6000 * np.sin(2 * math.pi * 220 * t)).astype("<i2").tobytes()


def silence(ms: int) -> bytes:
    return b"\x00\x00" * (RATE * ms // 1000)


@pytest.fixture
async def deepgram() -> AsyncIterator[DeepgramFake]:
    async with DeepgramFake(idle_timeout_s=1.0) as fake:
        yield fake


async def transcribe(
    deepgram: DeepgramFake,
    audio: bytes | list[bytes | dict[str, str]],
    *,
    script: str = SCRIPT,
    **params: str,
) -> list[dict[str, Any]]:
    """Send ``audio`` (pieces of audio and control messages, in order) then CloseStream; every
    message up to the closing Metadata."""
    query = {"encoding": "linear16", "sample_rate": str(RATE), "tag": "t", **params}
    deepgram.script("t", script)
    out: list[dict[str, Any]] = []
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"{deepgram.http_url}/v1/listen",
            params=query,
            headers={"Authorization": f"Token {deepgram.api_key}"},
        ) as ws,
    ):
        for piece in audio if isinstance(audio, list) else [audio]:
            if isinstance(piece, dict):
                await ws.send_str(json.dumps(piece))
                continue
            for i in range(0, len(piece), 640):
                await ws.send_bytes(piece[i : i + 640])
        await ws.send_str(json.dumps({"type": "CloseStream"}))
        async for msg in ws:
            message = json.loads(msg.data)
            out.append(message)
            if message["type"] == "Metadata":  # the positive signal that all was processed
                break
    return out


def text(message: dict[str, Any]) -> str:
    return message["channel"]["alternatives"][0]["transcript"]


def finals(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == "Results" and m["is_final"]]


async def test_an_utterance_is_finalized_in_pieces_and_interims_are_revised(
    deepgram: DeepgramFake,
) -> None:
    messages = await transcribe(deepgram, tone(3500) + silence(900), interim_results="true")
    pieces = [text(m) for m in finals(messages) if text(m)]
    assert len(pieces) >= 2, pieces  # several is_final results for one utterance
    assert " ".join(pieces) == SCRIPT
    speech_finals = [m for m in finals(messages) if m["speech_final"]]
    assert len(speech_finals) == 1 and speech_finals[0] is finals(messages)[-1]
    interims = [text(m) for m in messages if m["type"] == "Results" and not m["is_final"]]
    assert interims
    # an interim guess that the final transcript does not keep: interims are not final text
    assert any(not SCRIPT.startswith(t) for t in interims), interims


async def test_endpointing_follows_the_parameter(deepgram: DeepgramFake) -> None:
    audio = tone(800) + silence(300) + tone(800) + silence(900)
    short = await transcribe(deepgram, audio, interim_results="true")  # default: 10 ms
    long = await transcribe(deepgram, audio, interim_results="true", endpointing="500")
    off = await transcribe(deepgram, audio, interim_results="true", endpointing="false")
    assert len([m for m in finals(short) if m["speech_final"]]) == 2
    assert len([m for m in finals(long) if m["speech_final"]]) == 1
    assert [m for m in finals(off) if m["speech_final"]] == []
    for messages in (short, long, off):
        assert " ".join(text(m) for m in finals(messages) if text(m)) == SCRIPT


PAUSED = "Thanks, can you also check my refund?"


@pytest.mark.parametrize("first_ms", [340, 600], ids=["on the clock", "slower than the clock"])
async def test_a_pause_at_a_comma_finalizes_only_the_words_said(
    deepgram: DeepgramFake, first_ms: int
) -> None:
    # "Thanks," then a pause the endpointer hears, then the rest of the sentence
    audio = tone(first_ms) + silence(300) + tone(1400) + silence(900)
    messages = await transcribe(
        deepgram, audio, script=PAUSED, interim_results="true", endpointing="100"
    )
    assert deepgram.finals("t") == ["Thanks,", "can you also check my refund?"]
    [at_pause] = [m for m in finals(messages) if m["speech_final"] and text(m) == "Thanks,"]
    # nothing said after the pause was final before it
    assert all("can" not in text(m) for m in finals(messages)[: finals(messages).index(at_pause)])


async def test_finalize_at_a_comma_pause_finalizes_only_the_words_said(
    deepgram: DeepgramFake,
) -> None:
    # the client's VAD heard the pause and asks for a final (pipecat does at every VAD stop)
    finalize = {"type": "Finalize"}
    audio = [tone(340) + silence(300), finalize, tone(1400) + silence(300), finalize]
    messages = await transcribe(
        deepgram, audio, script=PAUSED, interim_results="true", endpointing="false"
    )
    assert deepgram.finals("t") == ["Thanks,", "can you also check my refund?"]
    assert [m["from_finalize"] for m in finals(messages) if text(m) == "Thanks,"] == [True]


async def test_a_finalize_that_arrives_as_speech_resumes_does_not_finalize_the_rest(
    deepgram: DeepgramFake,
) -> None:
    # the client's VAD stop comes after the pause; its Finalize reaches Deepgram once the next
    # words have begun (60 ms of them): those words are not over yet
    finalize = {"type": "Finalize"}
    audio = [tone(340) + silence(300) + tone(60), finalize, tone(1340) + silence(300), finalize]
    messages = await transcribe(
        deepgram, audio, script=PAUSED, interim_results="true", endpointing="false"
    )
    assert deepgram.finals("t") == ["Thanks,", "can you also check my refund?"]
    assert [text(m) for m in finals(messages) if m["from_finalize"]][0] == "Thanks,"


async def test_utterance_end_only_when_requested(deepgram: DeepgramFake) -> None:
    audio = tone(1000) + silence(1500)
    plain = await transcribe(deepgram, audio, interim_results="true")
    asked = await transcribe(deepgram, audio, interim_results="true", utterance_end_ms="1000")
    assert [m for m in plain if m["type"] == "UtteranceEnd"] == []
    [end] = [m for m in asked if m["type"] == "UtteranceEnd"]
    assert asked.index(end) > asked.index(finals(asked)[-1])


async def test_utterance_end_needs_interim_results(deepgram: DeepgramFake) -> None:
    async with aiohttp.ClientSession() as session:
        response = await session.get(
            f"{deepgram.http_url}/v1/listen",
            params={"utterance_end_ms": "1000"},
            headers={"Authorization": f"Token {deepgram.api_key}"},
        )
        assert response.status == 400
        assert "interim_results" in (await response.json())["err_msg"]


async def test_idle_socket_closes_with_net0001_unless_kept_alive(deepgram: DeepgramFake) -> None:
    url = f"{deepgram.http_url}/v1/listen"
    headers = {"Authorization": f"Token {deepgram.api_key}"}
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, headers=headers) as idle:
            msg = await asyncio.wait_for(idle.receive(), timeout=10)
            assert msg.type == aiohttp.WSMsgType.CLOSE
            assert idle.close_code == 1011
            assert "NET-0001" in str(msg.extra)
        async with session.ws_connect(url, headers=headers) as kept:
            for _ in range(8):  # 2 s, twice the idle timeout, with a KeepAlive every 0.25 s
                await kept.send_str(json.dumps({"type": "KeepAlive"}))
                await asyncio.sleep(0.25)
            await kept.send_str(json.dumps({"type": "CloseStream"}))
            msg = await asyncio.wait_for(kept.receive(), timeout=10)
            assert json.loads(msg.data)["type"] == "Metadata"
