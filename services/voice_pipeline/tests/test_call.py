"""A whole simulated phone call through gateway, voice pipeline, conversation and tools."""

from __future__ import annotations

import asyncio

from tests.fakes.twilio_caller import TwilioCaller

from .conftest import EventLog, PhoneSystem

QUESTION = "How long does shipping take for my order?"


async def test_whole_call(phone: PhoneSystem, events: EventLog) -> None:
    caller: TwilioCaller = phone.caller()
    phone.deepgram.script(caller.call_sid, QUESTION)
    texts_before = len(phone.elevenlabs.texts)

    await caller.call()
    call_id = caller.parameters["call_id"]
    started = await events.wait_for("call.started", call_id)
    assert started[0]["channel"] == "voice"
    assert started[0]["provider_ids"] == {"twilio_call_sid": caller.call_sid}

    greeting = await caller.wait_for_bot(timeout_s=20)
    assert greeting.seconds > 0.5
    assert "How can I help" in " ".join(phone.elevenlabs.texts[texts_before:])

    asked_at = asyncio.get_running_loop().time()
    await caller.say(QUESTION)
    answer = await caller.wait_for_bot(after=asked_at, timeout_s=30)
    assert answer.seconds > 0.5

    turns = await events.wait_for("turn.completed", call_id)
    turn = turns[0]
    assert turn["user_text"] == QUESTION
    assert turn["tool_calls"], turn
    assert turn["assistant_text"]
    # every stage is published: caller stops -> final transcript -> first LLM token (in
    # turn.completed, at once) -> first TTS audio -> first audio sent to Twilio (in turn.heard,
    # once the audio went out; post_call joins the two on turn_index)
    latency = turn["latency"]
    heard = (await events.wait_for("turn.heard", call_id))[0]
    assert heard["turn_index"] == turn["turn_index"]
    for stage in ("stt_final_ms", "first_token_ms"):
        assert latency[stage] is not None and latency[stage] >= 0, (stage, latency)
    for stage in ("stt_final_ms", "first_audio_ms", "first_audio_sent_ms"):
        assert heard[stage] is not None and heard[stage] >= 0, (stage, heard)
    assert latency["stt_final_ms"] <= heard["first_audio_ms"] <= heard["first_audio_sent_ms"]
    assert latency["total_ms"] > 0
    assert heard["transcript_to_first_audio_sent_ms"] > 0
    assert heard["heard_text"] and turn["assistant_text"].startswith(heard["heard_text"][:10])
    spoken = " ".join(phone.elevenlabs.texts[texts_before:])
    assert turn["assistant_text"].split(".")[0].strip() in spoken

    # Both sides that may end the call act, each with a positive signal, before counting: the
    # stream closing (the voice pipeline publishes call.ended), then Twilio's status callback
    # (the gateway has answered it). EventLog is a core subscription: it sees every publish.
    await caller.hang_up(status_callback=False)
    ended = await events.wait_for("call.ended", call_id)
    assert (await caller.status("completed")).is_success
    await events.bus.nc.flush()  # whatever the server routed to us before now has arrived
    assert len(events.of("call.ended", call_id)) == 1
    assert ended[0]["channel"] == "voice"
    assert ended[0]["turn_count"] >= 1
