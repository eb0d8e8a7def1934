"""A caller whose media stream no voice replica admitted hears the overflow message, not silence.

Between the voice webhook's answer and the media socket every replica can fill up; the replica
then refuses the socket. The ``<Connect action>`` makes Twilio ask the gateway what to do once
the stream ended: the overflow message for a call no replica admitted, a plain hang-up for a
call that ran. First the handler on its own (in-process app, real Redis and PostgreSQL), then the
whole path: a gateway and a voice replica that takes one call, Twilio's call side played by the
stand-in, which requests the action as Twilio documents.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
import websockets
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from bench._namespace import remove_namespace
from callcenter.common.bus import Bus
from callcenter.common.config import CallCenterConfig
from callcenter.common.health import Readiness
from tests.fakes.deepgram_server import DeepgramFake
from tests.fakes.elevenlabs_server import ElevenLabsFake
from tests.fakes.twilio_caller import TwilioCaller, phone_env
from tests.fakes.twilio_rest import TwilioStandIn
from tests.support.environment import TestEnvironment, free_port
from tests.support.private_servers import prepare_database
from tests.support.processes import ServiceProcess, stop_together

TOKEN = "stream-ended-test-token"
ACCOUNT_SID = "AC" + "3" * 32


class Webhooks:
    """Signed Twilio webhooks to an in-process gateway."""

    def __init__(self, *, app: Any, config: CallCenterConfig, db: Any) -> None:
        self.app = app
        self.config = config
        self.db = db
        self.base = config.gateway.public_base_url.rstrip("/")

    async def post(self, path: str, form: dict[str, str], *, signed: bool = True) -> httpx.Response:
        signature = RequestValidator(TOKEN).compute_signature(self.base + path, form)
        headers = {"X-Twilio-Signature": signature if signed else "forged"}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://gateway"
        ) as client:
            return await client.post(path, data=form, headers=headers)


def _form(call_sid: str, status: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": status,
        "Direction": "inbound",
        "From": "+15550003333",
        "To": "+15550004444",
    }


@pytest.fixture
async def webhooks(
    config: CallCenterConfig, db_pool: Any, bus: Bus, redis_client: Any
) -> AsyncIterator[Webhooks]:
    from callcenter.gateway.app import create_app
    from callcenter.gateway.deps import GatewayDeps

    cfg = config.model_copy(
        update={"twilio": config.twilio.model_copy(update={"auth_token": SecretStr(TOKEN)})}
    )
    deps = GatewayDeps(config=cfg, bus=bus, redis=redis_client, db=db_pool, readiness=Readiness())
    yield Webhooks(app=create_app(deps), config=cfg, db=db_pool)


def _said(twiml: str) -> list[str]:
    return [say.text or "" for say in ElementTree.fromstring(twiml).iter("Say")]


def _hangs_up(twiml: str) -> bool:
    return ElementTree.fromstring(twiml).find("./Hangup") is not None


async def test_the_stream_end_says_the_overflow_message_only_to_a_call_no_replica_admitted(
    webhooks: Webhooks, config: CallCenterConfig, redis_client: Any
) -> None:
    refused, served = "CA" + uuid.uuid4().hex, "CA" + uuid.uuid4().hex
    calls = {}
    for call_sid in (refused, served):
        answer = await webhooks.post("/twilio/voice", _form(call_sid, "ringing"))
        assert answer.status_code == 200, answer.text
        connect = ElementTree.fromstring(answer.text).find("./Connect")
        assert connect is not None and connect.find("./Stream") is not None
        assert connect.attrib["action"] == webhooks.base + "/twilio/stream-ended"
        stream = connect.find("./Stream")
        calls[call_sid] = {p.attrib["name"]: p.attrib["value"] for p in stream.iter("Parameter")}
    # what a replica writes once it admitted the socket (trusted_call.claim_live_stream)
    served_id = calls[served]["call_id"]
    await redis_client.set(f"{config.redis.key_prefix}call:{served_id}:stream", served)

    ended = await webhooks.post("/twilio/stream-ended", _form(refused, "in-progress"))
    assert ended.status_code == 200
    assert _said(ended.text) == [config.voice_pipeline.overflow_text] and _hangs_up(ended.text)

    # the replica ended it on purpose (goodbye): marked closing before its socket closed
    await redis_client.set(f"{config.redis.key_prefix}call:{served_id}:closing", "goodbye")
    ended = await webhooks.post("/twilio/stream-ended", _form(served, "in-progress"))
    assert ended.status_code == 200
    assert _said(ended.text) == [] and _hangs_up(ended.text)  # no greeting, nothing replayed
    assert "<Connect" not in ended.text and "<Play" not in ended.text


async def _admitted_call(webhooks: Webhooks, config: CallCenterConfig, redis_client: Any) -> tuple:
    """A call whose first stream a replica took: (CallSid, call_id, first stream's token)."""
    from callcenter.voice_pipeline.trusted_call import resolve_trusted_call

    call_sid = "CA" + uuid.uuid4().hex
    answer = await webhooks.post("/twilio/voice", _form(call_sid, "ringing"))
    params = {
        p.attrib["name"]: p.attrib["value"]
        for p in ElementTree.fromstring(answer.text).iter("Parameter")
    }
    trusted = await resolve_trusted_call(
        config=webhooks.config,
        redis=redis_client,
        db=webhooks.db,
        token=params["token"],
        call_sid=call_sid,
    )
    assert trusted.call_id == params["call_id"] and trusted.resume == 0
    return call_sid, trusted.call_id, params["token"]


def _resumed_stream(twiml: str) -> dict[str, str]:
    """The ``<Parameter>``s of a resumed ``<Connect action><Stream>`` (fails on anything else)."""
    connect = ElementTree.fromstring(twiml).find("./Connect")
    assert connect is not None and connect.attrib["action"].endswith("/twilio/stream-ended"), twiml
    assert _said(twiml) == [] and not _hangs_up(twiml)
    return {p.attrib["name"]: p.attrib["value"] for p in connect.iter("Parameter")}


async def test_a_call_whose_replica_died_is_resumed_each_resume_opening_one_stream(
    webhooks: Webhooks, config: CallCenterConfig, redis_client: Any
) -> None:
    from callcenter.voice_pipeline.trusted_call import UntrustedStream, resolve_trusted_call

    call_sid, call_id, first_token = await _admitted_call(webhooks, config, redis_client)

    async def open_stream(token: str):  # noqa: ANN202
        return await resolve_trusted_call(
            config=webhooks.config,
            redis=redis_client,
            db=webhooks.db,
            token=token,
            call_sid=call_sid,
        )

    # the replica died: no closing mark, no ended claim, the row active -> a fresh stream
    lost = await webhooks.post("/twilio/stream-ended", _form(call_sid, "in-progress"))
    unused = _resumed_stream(lost.text)
    assert unused["call_id"] == call_id and unused["token"] != first_token
    # that resumed stream never opened (its replica refused it too): lost again, resumed again;
    # the unused token is stale from now on, though its stream was never claimed
    again = _resumed_stream(
        (await webhooks.post("/twilio/stream-ended", _form(call_sid, "in-progress"))).text
    )
    with pytest.raises(UntrustedStream):
        await open_stream(unused["token"])
    # the call was answered 1000 s ago: the resumed stream has what is left of max_call_s
    await webhooks.db.execute(
        "UPDATE calls SET started_at = now() - interval '1000 seconds' WHERE call_id = $1", call_id
    )
    trusted = await open_stream(again["token"])
    assert (trusted.call_id, trusted.resume) == (call_id, 2)
    assert 1800 - 1000 - 60 < trusted.time_left_s(1800) <= 1800 - 1000
    assert trusted.time_left_s(900) == 0.0
    for stale in (again["token"], first_token):  # replayed: this resume's and the first's
        with pytest.raises(UntrustedStream):
            await open_stream(stale)

    # the limit (voice_pipeline.max_resumes, 2 by default): the third loss hangs up
    assert config.voice_pipeline.max_resumes == 2
    third = await webhooks.post("/twilio/stream-ended", _form(call_sid, "in-progress"))
    assert "<Connect" not in third.text and _hangs_up(third.text)


async def test_a_call_that_ended_or_is_ending_on_purpose_is_not_resumed(
    webhooks: Webhooks, config: CallCenterConfig, redis_client: Any
) -> None:
    prefix = config.redis.key_prefix
    closing_sid, closing_id, _ = await _admitted_call(webhooks, config, redis_client)
    await redis_client.set(f"{prefix}call:{closing_id}:closing", "transferred")
    ended_sid, ended_id, _ = await _admitted_call(webhooks, config, redis_client)
    await webhooks.post("/twilio/status", _form(ended_sid, "completed"))  # ends the call
    assert await redis_client.exists(f"{prefix}call:{ended_id}:ended")
    for call_sid in (closing_sid, ended_sid):
        answer = await webhooks.post("/twilio/stream-ended", _form(call_sid, "in-progress"))
        assert "<Connect" not in answer.text and _hangs_up(answer.text), answer.text


async def test_the_stream_end_trusts_only_a_signed_request_and_the_servers_own_record(
    webhooks: Webhooks,
) -> None:
    call_sid = "CA" + uuid.uuid4().hex
    forged = await webhooks.post(
        "/twilio/stream-ended", _form(call_sid, "in-progress"), signed=False
    )
    assert forged.status_code == 403
    # a CallSid no webhook answered is no call of ours: hung up, nothing said
    unknown = await webhooks.post("/twilio/stream-ended", _form(call_sid, "in-progress"))
    assert unknown.status_code == 200 and _said(unknown.text) == [] and _hangs_up(unknown.text)


# ----- the whole path: a replica full between the webhook and the media socket ----------------


class OneCallSystem:
    """A gateway and a voice replica that takes one call at a time, with the vendor stand-ins."""

    def __init__(
        self, *, gateway: ServiceProcess, voice: ServiceProcess, twilio: TwilioStandIn
    ) -> None:
        self.gateway = gateway
        self.voice = voice
        self.twilio = twilio

    def caller(self) -> TwilioCaller:
        return TwilioCaller(
            gateway_url=self.gateway.url,
            auth_token=TOKEN,
            account_sid=ACCOUNT_SID,
            on_status=self.twilio.set_call_status,
        )


@pytest.fixture(scope="module")
async def one_call_system(test_env: TestEnvironment) -> AsyncIterator[OneCallSystem]:
    twilio = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=TOKEN).start()
    async with DeepgramFake() as deepgram, ElevenLabsFake() as elevenlabs:
        namespace = TestEnvironment(tag=f"{test_env.tag}se")
        ports = {
            name: free_port() for name in ("gateway", "voice_pipeline", "conversation", "tools")
        }
        env = phone_env(
            namespace.env,
            ports=ports,
            auth_token=TOKEN,
            account_sid=ACCOUNT_SID,
            twilio_api_url=twilio.base_url,
            agent_number="+15550009999",
            deepgram=deepgram,
            elevenlabs=elevenlabs,
        )
        env["CALLCENTER_VOICE_PIPELINE__MAX_CALLS"] = "1"
        # the admitted call ends on its own: reprompt after 1 s of silence, goodbye after 1 more
        env["CALLCENTER_VOICE_PIPELINE__SILENCE_REPROMPT_S"] = "1"
        env["CALLCENTER_VOICE_PIPELINE__SILENCE_HANGUP_S"] = "1"
        config = namespace.config(**env)
        await prepare_database(config.database.url, config.database.schema_name)
        procs = [
            ServiceProcess(name, env=env, port=ports[name], tag=namespace.tag).start(wait=False)
            for name in ("gateway", "voice_pipeline")
        ]
        try:
            for proc in procs:
                await asyncio.to_thread(proc.wait_ready, timeout_s=90)
            yield OneCallSystem(gateway=procs[0], voice=procs[1], twilio=twilio)
        finally:
            await asyncio.to_thread(stop_together, reversed(procs))
            twilio.stop()
            if os.environ.get("KEEP_TEST_SCHEMA") != "1":
                await remove_namespace(config)


async def test_a_caller_refused_at_the_media_socket_hears_the_overflow_message(
    one_call_system: OneCallSystem,
) -> None:
    admitted, refused = one_call_system.caller(), one_call_system.caller()
    # both webhooks are answered while the replica is still empty: both get a media stream
    await admitted.dial()
    await refused.dial()
    await admitted.open_stream()
    await admitted.wait_for_bot(timeout_s=30)  # the replica's one call is taken
    with pytest.raises(websockets.InvalidStatus):
        await refused.open_stream()
    await refused.after_stream_done.wait()
    assert refused.said_after_stream() == [
        "Sorry, all our lines are busy right now. Please call again in a few minutes. Goodbye."
    ]
    assert refused.after_stream is not None and _hangs_up(refused.after_stream)

    # the admitted call runs to its end (the silence goodbye): the server closes its stream
    # with the call still up, and the action hangs up without saying anything more
    await admitted.closed.wait()
    await admitted.after_stream_done.wait()
    assert admitted.after_stream is not None
    assert admitted.said_after_stream() == [] and _hangs_up(admitted.after_stream)
    assert len(admitted.bot) >= 2  # it did run: greeting, reprompt, goodbye were spoken


async def test_a_lost_call_hears_the_overflow_message_when_no_replica_has_room(
    webhooks: Webhooks, config: CallCenterConfig, redis_client: Any
) -> None:
    from callcenter.common.voice_load import forget_voice_replica, report_voice_load

    prefix = config.redis.key_prefix
    call_sid, call_id, _ = await _admitted_call(webhooks, config, redis_client)
    await report_voice_load(redis_client, key_prefix=prefix, replica="full", active=2, capacity=2)
    try:
        lost = await webhooks.post("/twilio/stream-ended", _form(call_sid, "in-progress"))
    finally:
        await forget_voice_replica(redis_client, key_prefix=prefix, replica="full")
    assert _said(lost.text) == [config.voice_pipeline.overflow_text] and _hangs_up(lost.text)
    assert "<Connect" not in lost.text
    assert not await redis_client.exists(f"{prefix}call:{call_id}:resumes")  # none spent
