"""A phone call survives its voice replica dying: the stream resumes on another replica.

Two voice replicas behind one public media URL (a TCP balancer that sends each socket to the
first replica whose ``/readyz`` answers 200, as a Kubernetes Service routes to ready pods), a
gateway, conversation and tools, the vendor stand-ins. The replica holding a call is SIGKILLed:
the media socket closes without the pipeline ending the call, Twilio's stand-in requests the
``<Connect action>``, the gateway answers a fresh stream for the same call, the other replica
takes it and says the resume line (not the greeting), and the conversation goes on where it was:
a follow-up that needs the identity verified before the kill is answered without verifying again.
Post-call's view (the events) is one call: one call.started, one call.ended, turn indexes that
continue across the two streams. A call the pipeline ends on purpose (goodbye) is not resumed;
nor is a call past the resume limit. A replica stopped by SIGTERM (a rolling deploy) hands its
calls to a replica with room the same way; the last replica ends them as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from xml.etree import ElementTree

import httpx
import pytest

from bench._namespace import remove_namespace
from callcenter.common.bus import Bus
from callcenter.common.config import CallCenterConfig
from callcenter.common.db import create_pool
from tests.fakes.deepgram_server import DeepgramFake
from tests.fakes.elevenlabs_server import ElevenLabsFake
from tests.fakes.twilio_caller import TwilioCaller, phone_env
from tests.fakes.twilio_rest import TwilioStandIn
from tests.support.environment import TestEnvironment, free_port
from tests.support.private_servers import prepare_database
from tests.support.processes import ServiceProcess, stop_together

from .conftest import ACCOUNT_SID, AGENT_NUMBER, AUTH_TOKEN, EventLog

STRANGER = "+15550007777"  # no customer has this number: caller ID does not verify
FIRST = "Where is my order ORD-1001? My ZIP code is 94105."
FOLLOW_UP = "What are my recent orders?"


class Balancer:
    """The public media URL: each connection goes to the first ready replica."""

    def __init__(self, *, port: int, backends: list[int]) -> None:
        self.port = port
        self.backends = backends
        self.server: asyncio.Server | None = None

    async def start(self) -> Balancer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for port in self.backends:
            try:
                async with httpx.AsyncClient(timeout=2.0) as client:
                    if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code != 200:
                        continue  # draining (or full): the next one
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            except (OSError, httpx.HTTPError):
                continue  # that replica is gone: the next one
            break
        else:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@dataclass
class TwoReplicaSystem:
    gateway: ServiceProcess
    voices: list[ServiceProcess]
    deepgram: DeepgramFake
    elevenlabs: ElevenLabsFake
    twilio: TwilioStandIn
    config: CallCenterConfig
    bus: Bus
    redis: object
    db: object

    def caller(self) -> TwilioCaller:
        return TwilioCaller(
            gateway_url=self.gateway.url,
            auth_token=AUTH_TOKEN,
            account_sid=ACCOUNT_SID,
            from_number=STRANGER,
            on_status=self.twilio.set_call_status,
        )


@pytest.fixture(scope="module")
async def two_replicas(
    test_env: TestEnvironment,
    deepgram: DeepgramFake,
    elevenlabs: ElevenLabsFake,
    twilio_api: TwilioStandIn,
) -> AsyncIterator[TwoReplicaSystem]:
    import redis.asyncio as aioredis

    namespace = TestEnvironment(tag=f"{test_env.tag}rs")
    ports = {
        name: free_port()
        for name in ("gateway", "voice_pipeline", "conversation", "tools", "voice_a", "voice_b")
    }
    env = phone_env(
        namespace.env,
        ports=ports,  # voice_pipeline: the balancer's port, the public media URL
        auth_token=AUTH_TOKEN,
        account_sid=ACCOUNT_SID,
        twilio_api_url=twilio_api.base_url,
        agent_number=AGENT_NUMBER,
        deepgram=deepgram,
        elevenlabs=elevenlabs,
    )
    env["CALLCENTER_VOICE_PIPELINE__SILENCE_REPROMPT_S"] = "60"
    env["CALLCENTER_VOICE_PIPELINE__SILENCE_HANGUP_S"] = "120"
    config = namespace.config(**env)
    await prepare_database(config.database.url, config.database.schema_name)
    balancer = await Balancer(
        port=ports["voice_pipeline"], backends=[ports["voice_a"], ports["voice_b"]]
    ).start()
    bus = await Bus.connect(config.nats, name="resume-tests")
    redis = aioredis.Redis.from_url(config.redis.url, decode_responses=True)
    ports["post_call"] = int(env["CALLCENTER_POST_CALL__HEALTH_PORT"])
    procs = [
        ServiceProcess(name, env=env, port=ports[name], tag=namespace.tag).start(wait=False)
        for name in ("tools", "conversation", "gateway", "post_call")
    ]
    db = await create_pool(config.database)
    voices = [
        ServiceProcess(
            "voice_pipeline",
            env={**env, "CALLCENTER_VOICE_PIPELINE__PORT": str(ports[replica])},
            port=ports[replica],
            tag=f"{namespace.tag}-{replica}",
        ).start(wait=False)
        for replica in ("voice_a", "voice_b")
    ]
    try:
        for proc in [*procs, *voices]:
            await asyncio.to_thread(proc.wait_ready, timeout_s=90)
        yield TwoReplicaSystem(
            gateway=procs[2],
            voices=voices,
            deepgram=deepgram,
            elevenlabs=elevenlabs,
            twilio=twilio_api,
            config=config,
            bus=bus,
            redis=redis,
            db=db,
        )
    finally:
        await asyncio.to_thread(stop_together, reversed([*procs, *voices]))
        await balancer.stop()
        await bus.drain()
        await redis.aclose()
        await db.close()
        if os.environ.get("KEEP_TEST_SCHEMA") != "1":
            await remove_namespace(config)


@pytest.fixture
async def events(two_replicas: TwoReplicaSystem) -> AsyncIterator[EventLog]:
    log = await EventLog(two_replicas.bus).start()
    yield log
    await log.stop()


def _hangs_up(twiml: str | None) -> bool:
    return twiml is not None and ElementTree.fromstring(twiml).find("./Hangup") is not None


def _tools(turn: dict) -> list[tuple[str, bool]]:
    return [(call["name"], call["success"]) for call in turn["tool_calls"]]


async def test_a_goodbye_is_not_resumed(two_replicas: TwoReplicaSystem, events: EventLog) -> None:
    system = two_replicas
    caller = system.caller()
    system.deepgram.script(caller.call_sid, "That is all, goodbye.")
    await caller.call()
    call_id = caller.parameters["call_id"]
    await caller.wait_for_bot(timeout_s=30)
    await caller.say("That is all, goodbye.")
    await caller.closed.wait()  # the pipeline closed the socket after its goodbye
    # what the gateway's action relies on: the deliberate end was marked before the close
    assert await system.redis.exists(f"{system.config.redis.key_prefix}call:{call_id}:closing")
    await caller.after_stream_done.wait()
    assert _hangs_up(caller.after_stream), caller.after_stream
    assert caller.streams == 1 and not caller.resumed.is_set()
    await events.wait_for("call.ended", call_id)


async def test_a_call_resumes_on_another_replica_when_its_replica_is_killed(
    two_replicas: TwoReplicaSystem, events: EventLog
) -> None:
    system = two_replicas
    greeting = system.config.conversation.greeting
    resume_line = system.config.voice_pipeline.resume_text
    caller = system.caller()
    system.deepgram.script(caller.call_sid, FIRST, FOLLOW_UP)
    await caller.call()
    call_id = caller.parameters["call_id"]
    await caller.wait_for_bot(timeout_s=30)
    loop = asyncio.get_running_loop()
    asked = loop.time()
    await caller.say(FIRST)
    await caller.wait_for_bot(after=asked, timeout_s=30)
    first = (await events.wait_for("turn.completed", call_id))[0]
    assert ("verify_identity", True) in _tools(first), first["tool_calls"]
    assert "ORD-1001" in first["assistant_text"] or "shipped" in first["assistant_text"].lower()

    said_before = len(system.elevenlabs.texts)
    killed = loop.time()
    system.voices[0].kill()  # the replica holding the call (the balancer's first choice)
    await asyncio.wait_for(caller.resumed.wait(), timeout=30)
    assert caller.streams == 2
    resumed = await caller.wait_for_bot(after=killed, timeout_s=30)
    assert resumed.seconds > 0.5
    said_after = " ".join(system.elevenlabs.texts[said_before:])
    assert resume_line in said_after and greeting not in said_after

    asked = loop.time()
    await caller.say(FOLLOW_UP)
    await caller.wait_for_bot(after=asked, timeout_s=30)
    turns = await events.wait_for("turn.completed", call_id, count=2)
    follow_up = turns[1]
    assert follow_up["user_text"] == FOLLOW_UP
    # the identity verified on the dead replica holds: no verification asked, the orders told
    assert _tools(follow_up) == [("list_recent_orders", True)], follow_up["tool_calls"]
    assert "ORD-1001" in follow_up["assistant_text"]
    assert [t["turn_index"] for t in turns] == [first["turn_index"], first["turn_index"] + 1]

    await caller.hang_up(status_callback=False)
    await events.wait_for("call.ended", call_id)
    assert (await caller.status("completed")).is_success
    await events.settled()
    assert len(events.of("call.started", call_id)) == 1
    ended = events.of("call.ended", call_id)
    assert len(ended) == 1 and ended[0]["turn_count"] >= 2, ended
    # post-call's transcript: the turns of both streams, none overwritten
    deadline = loop.time() + 30
    while len(stored := await _transcript(system, call_id)) < 2:
        assert loop.time() < deadline, stored
        await asyncio.sleep(0.1)
    assert stored == [(first["turn_index"], FIRST), (first["turn_index"] + 1, FOLLOW_UP)]


async def _transcript(system: TwoReplicaSystem, call_id: str) -> list[tuple[int, str]]:
    rows = await system.db.fetch(
        "SELECT turn_index, user_text FROM turns WHERE call_id = $1 ORDER BY turn_index", call_id
    )
    return [(row["turn_index"], row["user_text"]) for row in rows]


async def _running(proc: ServiceProcess) -> None:
    """Start a replica an earlier test stopped (as the deployment's supervisor would)."""
    if proc.proc is None or proc.proc.poll() is not None:
        proc.start(wait=False)
        await asyncio.to_thread(proc.wait_ready, timeout_s=90)


async def test_a_rolling_deploy_hands_live_calls_to_a_replica_with_room(
    two_replicas: TwoReplicaSystem, events: EventLog
) -> None:
    system = two_replicas
    first, second = system.voices
    await _running(first)
    await _running(second)
    caller = system.caller()
    await caller.call()
    call_id = caller.parameters["call_id"]
    await caller.wait_for_bot(timeout_s=30)
    said_before = len(system.elevenlabs.texts)

    signalled = asyncio.get_running_loop().time()
    stopping = asyncio.ensure_future(asyncio.to_thread(first.stop))  # SIGTERM, the call's replica
    await asyncio.wait_for(caller.resumed.wait(), timeout=30)
    await stopping
    await caller.wait_for_bot(after=signalled, timeout_s=30)
    assert system.config.voice_pipeline.resume_text in " ".join(
        system.elevenlabs.texts[said_before:]
    )
    assert caller.streams == 2 and not events.of("call.ended", call_id)

    # the last replica stops: nowhere to hand the call to, so it is ended (as before)
    caller.resumed.clear()
    await asyncio.to_thread(second.stop)
    ended = await events.wait_for("call.ended", call_id)
    deadline = asyncio.get_running_loop().time() + 30
    while not _hangs_up(caller.after_stream):  # the action: not resumed, hung up
        assert asyncio.get_running_loop().time() < deadline, caller.after_stream
        await asyncio.sleep(0.05)
    assert ended[0]["reason"] == "service_shutdown" and caller.streams == 2
    await events.settled()
    assert len(events.of("call.ended", call_id)) == 1


async def test_the_resume_limit_holds_when_every_replica_dies(
    two_replicas: TwoReplicaSystem, events: EventLog
) -> None:
    system = two_replicas
    system.voices[0].kill()  # (stopped by the tests before; this one runs on its own too)
    await _running(system.voices[1])
    caller = system.caller()
    await caller.call()
    call_id = caller.parameters["call_id"]
    await caller.wait_for_bot(timeout_s=30)
    system.voices[1].kill()
    # every resumed stream is refused (no replica left): each refusal requests the action again,
    # until the limit (voice_pipeline.max_resumes, 2) hangs up
    deadline = asyncio.get_running_loop().time() + 30
    while not _hangs_up(caller.after_stream):
        assert asyncio.get_running_loop().time() < deadline, caller.after_stream
        await asyncio.sleep(0.05)
    granted = await system.redis.get(f"{system.config.redis.key_prefix}call:{call_id}:resumes")
    assert int(granted) == system.config.voice_pipeline.max_resumes + 1
    assert caller.streams == 1
