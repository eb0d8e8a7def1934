"""Who a browser call's caller is: only what the gateway proved, never what the browser says.

A chat visitor who verified (order number + ZIP) and then presses Call stays verified on the
call: the widget sends the chat's call id and session token (``resume_token``) with
``POST /web-voice/calls``; the gateway checks the token and that the chat is open, records the
chat on the call's row, the voice pipeline reads it there, and the conversation service carries
the chat's verified customer over. Asked "where is my order, O R D one oh oh one" on the call, the
verified owner hears the order's items (only a verified owner gets them) with no verification
on the call, and the call is recorded as that customer's.

Each way of claiming a chat without proving it gives an unverified call (the same question gets
the public tracking answer, no items, and the turn is nobody's): an unverified chat, a forged
chat token, the token of the visitor's own chat sent with a verified chat's id, and the token of
a verified chat that has ended. The call's own token opens nothing else: replayed after the call,
forged (another secret), or expired, the socket is refused.

The security suite's system (gateway, conversation, tools, post_call) plus a voice pipeline of this
module's on the embedded speech (PocketSphinx hears the question spoken by espeak-ng, espeak-ng
answers), so real audio goes both ways and no key is involved.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
import soxr
import websockets
from websockets.exceptions import ConnectionClosed

from callcenter.common.stream_token import sign_stream_token
from callcenter.voice_pipeline.simulator import speech_ulaw, ulaw_to_pcm16
from tests.security.conftest import SecureSystem
from tests.support.chat_client import ChatVisitor
from tests.support.environment import free_port
from tests.support.private_servers import start_service
from tests.support.processes import ServiceProcess

pytestmark = [
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng"),
    pytest.mark.timeout(300),
]

ORDER = "ORD-1001"
QUESTION = "where is my order, O R D one oh oh one"
#: only a verified owner's order answer names what is in the order
ITEMS = "It contains"
RATE = 16000
FRAME = 640  # 20 ms of 16 kHz PCM16, as the widget sends it
POLICY_VIOLATION = 1008


def browser_pcm(text: str) -> bytes:
    """``text`` spoken by espeak-ng as the widget sends the microphone: 16 kHz PCM16."""
    phone = np.frombuffer(ulaw_to_pcm16(speech_ulaw(text)), dtype="<i2")
    return soxr.resample(phone, 8000, RATE).astype("<i2").tobytes()


@dataclass
class Caller:
    """A browser caller: the gateway that hands out calls and the voice pipeline's socket."""

    system: SecureSystem
    voice: ServiceProcess

    @property
    def media_url(self) -> str:
        return self.voice.url.replace("http://", "ws://") + "/web/media"

    async def grant(self, chat: dict[str, str] | None) -> dict[str, Any]:
        """What the Call button gets, sending ``chat`` as the widget does."""
        async with httpx.AsyncClient(base_url=self.system.gateway.url) as client:
            response = await client.post("/web-voice/calls", json={"chat": chat})
        assert response.status_code == 200, response.text
        return response.json()

    async def ask(self, grant: dict[str, Any]) -> dict[str, Any]:
        """Open the call, wait out the greeting, ask about the order; the stored answer.

        The microphone streams (silence, then the question, then silence) at its real pace
        until the answering turn is stored, then the caller hangs up.
        """
        greeting = len(browser_pcm(self.system.config.conversation.greeting))
        question = browser_pcm(QUESTION)
        async with websockets.connect(self.media_url) as ws:
            await ws.send(json.dumps({"type": "start", "token": grant["token"]}))
            assert json.loads(await asyncio.wait_for(ws.recv(), timeout=30))["type"] == "started"
            # what the microphone sends once the greeting has (nearly) all arrived: a pause of a
            # second (the caller lets the greeting end), the question, then silence
            speech = [bytes(FRAME)] * 50 + [
                question[i : i + FRAME] for i in range(0, len(question), FRAME)
            ]
            heard = 0
            asked = False
            sent = 0
            started = time.monotonic()
            async with asyncio.timeout(150):
                while True:
                    if not asked and heard >= greeting * 9 // 10:
                        asked = True
                    await ws.send(speech.pop(0) if asked and speech else bytes(FRAME))
                    sent += 1
                    heard += await self._drain(ws)
                    if asked and sent % 10 == 0:
                        turn = await answer_of(self.system, grant["call_id"])
                        if turn is not None:
                            break
                    # keep the microphone's pace: frame n leaves at n * 20 ms
                    await asyncio.sleep(max(0.0, started + sent * 0.02 - time.monotonic()))
            await ws.send(json.dumps({"type": "hangup"}))
        return turn

    @staticmethod
    async def _drain(ws: websockets.ClientConnection) -> int:
        """Bytes of audio that arrived since the last look."""
        audio = 0
        while True:
            try:
                message = await asyncio.wait_for(ws.recv(), timeout=0.001)
            except TimeoutError:
                return audio
            if isinstance(message, bytes):
                audio += len(message)


@pytest.fixture(scope="module")
async def caller(secure_system: SecureSystem) -> AsyncIterator[Caller]:
    """A voice pipeline of this module's, on the embedded speech, in the security system."""
    env = {
        **secure_system.env,
        "CALLCENTER_VOICE_PIPELINE__STT_PROVIDER": "pocketsphinx",
        "CALLCENTER_VOICE_PIPELINE__TTS_PROVIDER": "espeak",
        "CALLCENTER_VOICE_PIPELINE__SMART_TURN": "false",
        "CALLCENTER_VOICE_PIPELINE__SILENCE_REPROMPT_S": "60",
        "CALLCENTER_VOICE_PIPELINE__SILENCE_HANGUP_S": "120",
    }
    voice = start_service(
        "voice_pipeline", env=env, tag=f"{secure_system.tag}-webid", port=free_port(), wait=False
    )
    secure_system.extra.append(voice)
    await asyncio.to_thread(voice.wait_ready, timeout_s=120)
    yield Caller(system=secure_system, voice=voice)


async def owner_and_zip(system: SecureSystem) -> tuple[str, str]:
    row = await system.db.fetchrow(
        "SELECT c.customer_id, c.zip FROM customers c JOIN orders o USING (customer_id) "
        "WHERE o.order_id = $1",
        ORDER,
    )
    return row["customer_id"], row["zip"]


async def verified_chat(system: SecureSystem, chat: ChatVisitor) -> str:
    """Verify in the chat as the order's owner; the owner's customer id."""
    customer_id, zip_code = await owner_and_zip(system)
    reply = await chat.say(f"Please verify me: {ORDER} and ZIP {zip_code}")
    assert "verify_identity" in reply.tools and "verified" in reply.text.lower(), reply.text
    return customer_id


def chat_ref(chat: ChatVisitor, *, token: str | None = None) -> dict[str, str]:
    return {"call_id": chat.call_id, "resume_token": token or chat.hello["resume_token"]}


async def answer_of(system: SecureSystem, call_id: str) -> dict[str, Any] | None:
    """The call's stored turn that answered the question about the order, if stored yet."""
    rows = await system.db.fetch(
        "SELECT user_text, assistant_text, customer_id, tool_calls FROM turns "
        "WHERE call_id = $1 ORDER BY turn_index",
        call_id,
    )
    return next((dict(r) for r in rows if ORDER in r["assistant_text"]), None)


async def call_customer(system: SecureSystem, call_id: str) -> str:
    """The customer the calls table records for the call, once it records one."""
    async with asyncio.timeout(30):
        while True:
            found = await system.db.fetchval(
                "SELECT customer_id FROM calls WHERE call_id = $1", call_id
            )
            if found is not None:
                return found
            await asyncio.sleep(0.2)


def tools_of(turn: dict[str, Any]) -> list[str]:
    calls = turn["tool_calls"]
    calls = json.loads(calls) if isinstance(calls, str) else calls
    return [c["name"] for c in calls]


async def assert_unverified_call(caller: Caller, chat: dict[str, str]) -> None:
    turn = await caller.ask(await caller.grant(chat))
    assert turn["customer_id"] is None, turn
    assert "check_order_status" in tools_of(turn), turn
    assert ITEMS not in turn["assistant_text"], turn["assistant_text"]  # public tracking only


async def test_a_visitor_verified_in_the_chat_is_verified_on_the_call(caller: Caller) -> None:
    system = caller.system
    async with ChatVisitor(system.gateway.url) as chat:
        customer_id = await verified_chat(system, chat)
        grant = await caller.grant(chat_ref(chat))
        turn = await caller.ask(grant)
    assert turn["customer_id"] == customer_id, turn
    assert ITEMS in turn["assistant_text"], turn["assistant_text"]  # the owner's own details
    assert "verify_identity" not in tools_of(turn), turn  # no verification on the call
    # The call is recorded as the customer's (the dashboard's and /api/calls?customer_id=).
    assert await call_customer(system, grant["call_id"]) == customer_id
    # The call's token opened that call once: replayed now, the socket is refused.
    assert await refused(caller, grant["token"])


async def test_an_unverified_chat_gives_an_unverified_call(caller: Caller) -> None:
    async with ChatVisitor(caller.system.gateway.url) as chat:
        assert (await chat.say("Hi")).kind == "done"
        await assert_unverified_call(caller, chat_ref(chat))


async def test_a_forged_chat_token_gives_an_unverified_call(caller: Caller) -> None:
    async with ChatVisitor(caller.system.gateway.url) as chat:
        await verified_chat(caller.system, chat)
        await assert_unverified_call(caller, chat_ref(chat, token="0" * 64))


async def test_the_token_of_another_chat_gives_an_unverified_call(caller: Caller) -> None:
    """The attacker holds their own chat's genuine token, and knows a verified chat's id."""
    system = caller.system
    async with ChatVisitor(system.gateway.url) as victim, ChatVisitor(system.gateway.url) as own:
        await verified_chat(system, victim)
        assert (await own.say("Hi")).kind == "done"
        await assert_unverified_call(caller, chat_ref(victim, token=own.hello["resume_token"]))


async def test_an_ended_chat_gives_an_unverified_call(caller: Caller) -> None:
    async with ChatVisitor(caller.system.gateway.url) as chat:
        await verified_chat(caller.system, chat)
        ended = chat_ref(chat)
        await chat.end()
    await assert_unverified_call(caller, ended)


async def refused(caller: Caller, token: str) -> bool:
    """Whether the voice socket is closed (1008) on ``token`` before any audio."""
    async with websockets.connect(caller.media_url) as ws:
        await ws.send(json.dumps({"type": "start", "token": token}))
        try:
            message = await asyncio.wait_for(ws.recv(), timeout=30)
        except ConnectionClosed:
            return ws.close_code == POLICY_VIOLATION
        await ws.send(json.dumps({"type": "hangup"}))
        raise AssertionError(f"the socket was accepted: {message!r}")


async def test_a_forged_or_expired_call_token_opens_nothing(caller: Caller) -> None:
    system = caller.system
    async with ChatVisitor(system.gateway.url) as chat:
        await verified_chat(system, chat)
        grant = await caller.grant(chat_ref(chat))
    call_id = grant["call_id"]
    stream_id = grant["token"].split(".")[1]
    secret = system.secrets["CALLCENTER_VOICE_PIPELINE__STREAM_TOKEN_SECRET"].encode()
    forged = sign_stream_token(
        b"not-the-secret-" + uuid.uuid4().bytes, call_id=call_id, call_sid=stream_id, ttl_s=60
    )
    expired = sign_stream_token(secret, call_id=call_id, call_sid=stream_id, ttl_s=-5)
    assert await refused(caller, forged)
    assert await refused(caller, expired)
    # the control: the genuine token, unused, still opens the call
    with pytest.raises(AssertionError, match="accepted"):
        await refused(caller, grant["token"])
