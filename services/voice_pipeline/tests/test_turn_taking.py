"""Barge-in, backchannels and the keypad."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from callcenter.voice_pipeline.simulator import trim_trailing_silence
from tests.fakes.twilio_caller import TwilioCaller, speech_ulaw

from .conftest import EventLog, PhoneSystem

QUESTION = "How long does shipping take for my order?"
# with the comma pause a caller makes there: the turn goes on after "Thanks,"
FOLLOW_UP = "Thanks, can you also check my refund?"


@pytest.fixture
async def slow_speech(phone: PhoneSystem) -> AsyncIterator[None]:
    """Make the bot's answers long enough to talk over."""
    saved = phone.elevenlabs.ms_per_char
    phone.elevenlabs.ms_per_char = 60.0
    yield
    phone.elevenlabs.ms_per_char = saved


async def _history(redis_client: aioredis.Redis, phone: PhoneSystem, call_id: str) -> list[dict]:
    raw = await redis_client.get(f"{phone.config.redis.key_prefix}session:{call_id}")
    return json.loads(raw)["history"] if raw else []


async def _talk_over_answer(
    phone: PhoneSystem, interjection: str
) -> tuple[TwilioCaller, str, float, int]:
    """Call, ask the question, and say ``interjection`` while the answer plays.

    Returns the caller, the call id, when the question was asked and the clears seen before.
    """
    caller = phone.caller()
    phone.deepgram.script(caller.call_sid, QUESTION, interjection)
    await caller.call()
    await caller.wait_for_bot(timeout_s=30)
    asked = time.monotonic()
    await caller.say(QUESTION)
    await caller.wait_speaking(after=asked, timeout_s=20)
    await asyncio.sleep(0.5)
    clears_before = len(caller.clears)
    await caller.say(interjection)
    return caller, caller.parameters["call_id"], asked, clears_before


async def _barge_in_call(
    phone: PhoneSystem, events: EventLog
) -> tuple[str, list[dict], list[dict], TwilioCaller]:
    """A call whose caller talks over the first answer; (call_id, turns, cancels, caller)."""
    cancels: list[dict] = []

    async def on_cancel(msg: Any) -> None:
        cancels.append(json.loads(msg.data))

    bus = phone.bus
    sub = await bus.nc.subscribe(bus.subject("conversation.turn.cancel"), cb=on_cancel)
    caller, call_id, _, clears_before = await _talk_over_answer(
        # no comma: a spoken pause there lets a slow Smart Turn (a loaded machine) end the turn
        # after "Wait," - turn-ending on pauses is not what this test is about
        phone,
        "Wait I have a different question",
    )
    for _ in range(100):
        if len(caller.clears) > clears_before:
            break
        await asyncio.sleep(0.05)
    assert len(caller.clears) > clears_before, "no clear sent to Twilio"
    turns = await events.wait_for("turn.completed", call_id, count=2, timeout_s=30)
    await sub.unsubscribe()
    await caller.hang_up()
    return call_id, turns, cancels, caller


async def test_barge_in_clears_twilio_and_history_keeps_only_what_was_heard(
    phone: PhoneSystem,
    events: EventLog,
    slow_speech: None,
    redis_client: aioredis.Redis,
) -> None:
    call_id, turns, cancels, _ = await _barge_in_call(phone, events)
    first = turns[0]
    assert first["user_text"] == QUESTION
    assert turns[1]["user_text"] == "Wait I have a different question"
    assert len(cancels) == 1
    delivered = cancels[0]["delivered_text"]
    assert delivered and first["assistant_text"].startswith(delivered)
    assert len(delivered) < len(first["assistant_text"])
    history = await _history(redis_client, phone, call_id)
    assistant = [m["content"] for m in history if m.get("role") == "assistant" and m.get("content")]
    assert delivered in assistant
    assert first["assistant_text"] not in assistant


async def test_backchannel_does_not_interrupt(
    phone: PhoneSystem, events: EventLog, slow_speech: None
) -> None:
    caller, call_id, asked, clears_before = await _talk_over_answer(phone, "uh-huh")
    answer = await caller.wait_for_bot(after=asked, timeout_s=40)
    assert len(caller.clears) == clears_before, "a backchannel interrupted the bot"
    turns = await events.wait_for("turn.completed", call_id)
    assert turns[0]["user_text"] == QUESTION
    # the whole answer was sent, in one stretch
    assert answer.seconds >= len(turns[0]["assistant_text"]) * 0.06 * 0.8
    assert phone.deepgram.finals(caller.call_sid)[-1] == "uh-huh"
    # A next question is the positive signal: had "uh-huh" become a turn, it would be the
    # second turn, before this one.
    phone.deepgram.script(caller.call_sid, FOLLOW_UP)
    await caller.say(FOLLOW_UP)
    turns = await events.wait_for("turn.completed", call_id, count=2, timeout_s=30)
    assert [t["user_text"] for t in turns] == [QUESTION, FOLLOW_UP]
    await caller.hang_up()


async def test_a_comma_paused_follow_up_as_the_answer_ends_is_one_turn(
    phone: PhoneSystem, events: EventLog, slow_speech: None
) -> None:
    # "Thanks," over the last moment of the answer, the answer ends in the comma pause (half a
    # second, longer than the VAD's stop), then the rest: one turn (it was two: "Thanks," ended
    # a turn at the pause, the rest barged in)
    first_words = trim_trailing_silence(speech_ulaw("Thanks,"))
    pause = b"\xff" * int(0.5 * 8000)  # μ-law silence at 8 kHz
    said = first_words + pause + speech_ulaw("can you also check my refund?")
    paused = "Thanks, can you also check my refund?"
    caller = phone.caller()
    phone.deepgram.script(caller.call_sid, QUESTION, paused)
    await caller.call()
    call_id = caller.parameters["call_id"]
    await caller.wait_for_bot(timeout_s=30)
    asked = time.monotonic()
    await caller.say(QUESTION)
    await caller.wait_speaking(after=asked, timeout_s=20)
    answer_started = time.monotonic()
    [first] = await events.wait_for("turn.completed", call_id)
    answer_s = len(first["assistant_text"]) * phone.elevenlabs.ms_per_char / 1000
    thanks_s = len(first_words) / 8000
    await asyncio.sleep(max(0.0, answer_started + answer_s - thanks_s - time.monotonic()))
    await caller.say(ulaw=said)
    turns = await events.wait_for("turn.completed", call_id, count=2, timeout_s=30)
    assert [t["user_text"] for t in turns] == [QUESTION, paused]
    # the endpoint the Smart Turn skip relies on is asked of Deepgram explicitly
    sockets = phone.deepgram.for_tag(caller.call_sid)
    assert {c.query.get("endpointing") for c in sockets} == {
        str(phone.config.deepgram.endpointing_ms)
    }
    await caller.hang_up()


async def test_keypad_digits_reach_the_conversation(phone: PhoneSystem, events: EventLog) -> None:
    caller, call_id = await phone.greeted_call()
    pressed = time.monotonic()
    await caller.dtmf("1001#")
    turns = await events.wait_for("turn.completed", call_id, timeout_s=20)
    assert turns[0]["user_text"] == "1001"
    await caller.wait_for_bot(after=pressed, timeout_s=20)
    await caller.hang_up()
