"""Attacks on the media socket by someone who holds (or captured) a genuine stream token.

Covers issue 13 points 1 and 2 (and 3 for the voice channel: a card number keyed in is
redacted before the turn leaves the pipeline):

- **forged caller ID**: a socket with a valid token but another customer's number in the
  ``start`` message's ``customParameters``; the pipeline must use the number the gateway recorded
  from Twilio's signed webhook (seen here in the ``conversation.turn`` request a DTMF turn sends);
- **token reuse**: a second socket with the same token while the call is live, a socket after the
  call has ended, and a replayed (correctly signed) ``/twilio/voice`` webhook for the ended call:
  none gets a pipeline (no greeting audio) and the webhook answers ``<Hangup/>``.

A real system (gateway, voice pipeline, conversation, tools) with Deepgram/ElevenLabs/Twilio REST
stand-ins; Twilio's side is the simulator. The legitimate first socket is the control.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import pytest

from callcenter.common.bus import Bus
from callcenter.common.pii import CARD_MASK
from tests.fakes.deepgram_server import DeepgramFake
from tests.fakes.elevenlabs_server import ElevenLabsFake
from tests.fakes.twilio_caller import TwilioCaller, phone_env
from tests.fakes.twilio_rest import TwilioStandIn
from tests.support.environment import TestEnvironment, free_port
from tests.support.processes import ServiceProcess

AUTH_TOKEN = "security-voice-auth-token"
ACCOUNT_SID = "AC" + "2" * 32
STRANGER = "+15557770001"
VICTIM = "+15557770002"
KEYED_CARD = "4111111111111111"


@dataclass
class Phone:
    gateway: ServiceProcess
    voice: ServiceProcess
    elevenlabs: ElevenLabsFake

    def caller(self, **kwargs: Any) -> TwilioCaller:
        return TwilioCaller(
            gateway_url=self.gateway.url, auth_token=AUTH_TOKEN, account_sid=ACCOUNT_SID, **kwargs
        )


@pytest.fixture(scope="module")
async def phone(test_env: TestEnvironment, db_pool: Any) -> AsyncIterator[Phone]:
    """The services of a phone call, on this session's namespace and ports of their own."""
    twilio_api = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    async with DeepgramFake() as deepgram, ElevenLabsFake(ms_per_char=12.0) as elevenlabs:
        ports = {
            name: free_port() for name in ("gateway", "voice_pipeline", "conversation", "tools")
        }
        env = phone_env(
            test_env.env,
            ports=ports,
            auth_token=AUTH_TOKEN,
            account_sid=ACCOUNT_SID,
            twilio_api_url=twilio_api.base_url,
            agent_number="+15550009999",
            deepgram=deepgram,
            elevenlabs=elevenlabs,
        )
        env["CALLCENTER_VOICE_PIPELINE__SILENCE_REPROMPT_S"] = "60"
        env["CALLCENTER_VOICE_PIPELINE__SILENCE_HANGUP_S"] = "120"
        env["CALLCENTER_TWILIO__VOICE_CALLER_ID_VERIFIES"] = "true"
        procs = {
            name: ServiceProcess(name, env=env, port=port, tag=f"{test_env.tag}-secvoice").start(
                wait=False
            )
            for name, port in ports.items()
        }
        try:
            for proc in procs.values():
                await asyncio.to_thread(proc.wait_ready, timeout_s=120)
            yield Phone(
                gateway=procs["gateway"], voice=procs["voice_pipeline"], elevenlabs=elevenlabs
            )
        finally:
            for proc in reversed(list(procs.values())):
                await asyncio.to_thread(proc.stop)
            twilio_api.stop()


async def _refused(caller: TwilioCaller, like: TwilioCaller) -> None:
    """Open a stream with ``like``'s URL and parameters: it must be closed 1008 before any audio."""
    await caller.open_stream(url=like.stream_url, parameters=like.parameters)
    try:
        await asyncio.wait_for(caller.closed.wait(), timeout=15)
    except TimeoutError:
        greeted = bool(caller.bot)
        await caller.close()
        raise AssertionError(f"the socket was accepted (greeting heard: {greeted})") from None
    assert caller.closed_code == 1008
    assert caller.bot == []  # no greeting: no pipeline ran


async def test_the_caller_number_comes_from_the_gateway_record_not_the_stream(
    phone: Phone, bus: Bus
) -> None:
    turns: list[dict[str, Any]] = []

    async def on_turn(msg: Any) -> None:
        turns.append(json.loads(msg.data))

    sub = await bus.nc.subscribe(bus.subject("conversation.turn"), cb=on_turn)
    caller = phone.caller(from_number=STRANGER)
    try:
        await caller.dial()
        forged = {**caller.parameters, "from": VICTIM}
        await caller.open_stream(parameters=forged)
        await caller.wait_for_bot(timeout_s=30)  # the control: this socket is genuine
        await caller.dtmf(KEYED_CARD + "#")  # a card number typed on the keypad
        call_id = caller.parameters["call_id"]
        for _ in range(300):
            if any(t.get("call_id") == call_id for t in turns):
                break
            await asyncio.sleep(0.05)
        mine = [t for t in turns if t.get("call_id") == call_id]
        assert mine, "the keypad turn never reached the conversation service"
        assert mine[0]["caller"]["number"] == STRANGER
        # Redacted where it enters (point 3): the turn request already holds no card number.
        assert CARD_MASK in mine[0]["text"] and KEYED_CARD not in json.dumps(mine[0])
    finally:
        await sub.unsubscribe()
        await caller.hang_up()


async def test_a_stream_token_opens_one_stream_for_a_live_call_only(
    phone: Phone, db_pool: Any
) -> None:
    first = phone.caller(from_number=STRANGER)
    await first.call()
    await first.wait_for_bot(timeout_s=30)  # the control: the genuine socket is greeted
    call_id = first.parameters["call_id"]

    # A second socket with the very same token, while the call is live.
    await _refused(phone.caller(call_sid=first.call_sid), first)

    await first.hang_up()
    for _ in range(300):
        status = await db_pool.fetchval("SELECT status FROM calls WHERE call_id = $1", call_id)
        if status == "ended":
            break
        await asyncio.sleep(0.05)
    assert status == "ended"

    # The token again, after the call ended.
    await _refused(phone.caller(call_sid=first.call_sid), first)

    # The (correctly signed) webhook replayed for the ended call: no stream, no new token.
    replay = phone.caller(call_sid=first.call_sid, from_number=STRANGER)
    response = await replay.post_webhook("/twilio/voice", replay.voice_params())
    assert response.status_code == 200, response.text
    root = ElementTree.fromstring(response.text)
    assert root.find("./Connect/Stream") is None, response.text
    assert root.find("./Hangup") is not None
    assert await db_pool.fetchval("SELECT status FROM calls WHERE call_id = $1", call_id) == "ended"
