"""Provider sockets that drop, broken media streams, transfers and hang-ups."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import redis.asyncio as aioredis

from callcenter.common.config.sections import VoicePipelineSettings

from .conftest import ADMIN_TOKEN, AGENT_NUMBER, EventLog, PhoneSystem

QUESTION = "How long does shipping take for my order?"


async def _until(predicate, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("condition not met")


async def test_stt_socket_drop_mid_call_recovers(phone: PhoneSystem, events: EventLog) -> None:
    caller, call_id = await phone.greeted_call(QUESTION)

    assert await phone.deepgram.drop(caller.call_sid) == 1
    await _until(lambda: len(phone.deepgram.for_tag(caller.call_sid)) >= 2, timeout_s=20)

    asked = time.monotonic()
    await caller.say(QUESTION)
    turns = await events.wait_for("turn.completed", call_id, timeout_s=30)
    assert turns[0]["user_text"] == QUESTION
    await caller.wait_for_bot(after=asked, timeout_s=20)
    assert not events.of("call.ended", call_id)
    await caller.hang_up()


async def test_malformed_media_ends_that_call_only(phone: PhoneSystem, events: EventLog) -> None:
    broken, healthy = phone.caller(), phone.caller()
    phone.deepgram.script(healthy.call_sid, QUESTION)
    await broken.call()
    await healthy.call()
    await broken.wait_for_bot(timeout_s=30)
    await healthy.wait_for_bot(timeout_s=30)

    await broken.send_raw('{"event": "media", "media": {"payload": "%%% not base64 %%%"}}')
    await asyncio.wait_for(broken.closed.wait(), timeout=15)
    ended = await events.wait_for("call.ended", broken.parameters["call_id"], timeout_s=15)
    assert ended[0]["reason"] == "protocol_error"

    asked = time.monotonic()
    await healthy.say(QUESTION)
    turns = await events.wait_for("turn.completed", healthy.parameters["call_id"], timeout_s=30)
    assert turns[0]["user_text"] == QUESTION
    await healthy.wait_for_bot(after=asked, timeout_s=20)
    assert not events.of("call.ended", healthy.parameters["call_id"])

    not_json = phone.caller()
    await not_json.call()
    await not_json.send_raw("this is not Twilio")
    await asyncio.wait_for(not_json.closed.wait(), timeout=15)
    ended = await events.wait_for("call.ended", not_json.parameters["call_id"], timeout_s=15)
    assert ended[0]["reason"] == "protocol_error"
    await healthy.hang_up()


async def test_transfer_to_agent_redirects_the_live_call(
    phone: PhoneSystem,
    events: EventLog,
    redis_client: aioredis.Redis,
) -> None:
    caller, call_id = await phone.greeted_call("I want to speak with a human agent please")
    await caller.say("I want to speak with a human agent please")

    def redirected() -> list[dict]:
        return [
            u
            for u in phone.twilio.call_updates
            if u["call_sid"] == caller.call_sid and "Twiml" in u
        ]

    await _until(lambda: bool(redirected()), timeout_s=30)
    twiml = redirected()[0]["Twiml"]
    assert "<Dial>" in twiml and AGENT_NUMBER in twiml
    ended = await events.wait_for("call.ended", call_id, timeout_s=15)
    assert ended[0]["reason"] == "transferred"
    handoff = json.loads(
        await redis_client.get(f"{phone.config.redis.key_prefix}call:{call_id}:handoff")
    )
    assert handoff["to"] == AGENT_NUMBER
    # the agent's screen (the call's API record, shown on the dashboard) carries the note
    async with httpx.AsyncClient() as client:
        detail = await client.get(
            f"{phone.gateway.url}/api/calls/{call_id}",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    assert detail.status_code == 200, detail.text
    assert detail.json()["handoff"]["to"] == AGENT_NUMBER
    assert detail.json()["handoff"]["summary"]
    # the agent's call is not hung up when the stream ends: call.ended (seen above) is published
    # only after the call's pipeline has finished, and with it any hang-up request its serializer
    # makes on the way out; the stream has ended too
    await asyncio.wait_for(caller.closed.wait(), timeout=15)
    assert not phone.hung_up(caller.call_sid)


async def test_goodbye_hangs_up(phone: PhoneSystem, events: EventLog) -> None:
    caller, call_id = await phone.greeted_call("That is all, goodbye")
    said = time.monotonic()
    await caller.say("That is all, goodbye")
    await caller.wait_for_bot(after=said, timeout_s=30)
    ended = await events.wait_for("call.ended", call_id, timeout_s=20)
    assert ended[0]["reason"] == "assistant_ended"
    await _until(lambda: phone.hung_up(caller.call_sid), timeout_s=10)


async def test_stt_that_stays_down_gets_an_apology_then_a_transfer(
    phone: PhoneSystem, events: EventLog
) -> None:
    caller, call_id = await phone.greeted_call()
    phone.deepgram.refuse = 1000
    try:
        await phone.deepgram.drop(caller.call_sid)
        down = time.monotonic()
        apology = await caller.wait_for_bot(after=down, timeout_s=30, quiet_s=0.5)
        apology_text = VoicePipelineSettings().apology_text
        assert apology_text in phone.elevenlabs.http_texts  # synthesised once, cached
        expected_s = len(apology_text) * phone.elevenlabs.ms_per_char / 1000
        assert apology.seconds >= expected_s * 0.9  # the caller heard it: no dead air
        ended = await events.wait_for("call.ended", call_id, timeout_s=20)
        assert ended[0]["reason"] == "transferred"
        assert any(
            u["call_sid"] == caller.call_sid and AGENT_NUMBER in u.get("Twiml", "")
            for u in phone.twilio.call_updates
        )
    finally:
        phone.deepgram.refuse = 0
