"""A whole phone system for the voice tests: real services, vendor stand-ins.

tools, conversation, gateway and voice_pipeline run as processes in this session's namespace
(own ports, so other suites' gateways never collide); Deepgram, ElevenLabs and Twilio's REST API
are local stand-ins driven by the real client libraries; Twilio's call side is
``tests/fakes/twilio_caller.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from bench._namespace import remove_namespace
from callcenter.common.bus import Bus
from callcenter.common.config import CallCenterConfig
from tests.fakes.deepgram_server import DeepgramFake
from tests.fakes.elevenlabs_server import ElevenLabsFake
from tests.fakes.twilio_caller import TwilioCaller, phone_env
from tests.fakes.twilio_rest import TwilioStandIn
from tests.support.environment import TestEnvironment, free_port
from tests.support.private_servers import prepare_database
from tests.support.processes import ServiceProcess, stop_together

ADMIN_TOKEN = "voice-tests-admin"
AUTH_TOKEN = "twilio-test-auth-token"
ACCOUNT_SID = "AC" + "1" * 32
AGENT_NUMBER = "+15550009999"


@dataclass
class PhoneSystem:
    """The running system and its stand-ins."""

    gateway: ServiceProcess
    voice: ServiceProcess
    deepgram: DeepgramFake
    elevenlabs: ElevenLabsFake
    twilio: TwilioStandIn
    env: dict[str, str]
    config: CallCenterConfig  # the system's own namespace
    bus: Bus  # on that namespace
    callers: list[TwilioCaller] = field(default_factory=list)

    def hung_up(self, call_sid: str) -> bool:
        """Whether the system ended this call through Twilio's REST API (Status=completed)."""
        return any(
            u["call_sid"] == call_sid and u.get("Status") == "completed"
            for u in self.twilio.call_updates
        )

    async def greeted_call(self, *script: str) -> tuple[TwilioCaller, str]:
        """A call that has heard its greeting; ``script`` is what Deepgram will hear said."""
        caller = self.caller()
        if script:
            self.deepgram.script(caller.call_sid, *script)
        await caller.call()
        await caller.wait_for_bot(timeout_s=30)
        return caller, caller.parameters["call_id"]

    def caller(self, **kwargs: Any) -> TwilioCaller:
        caller = TwilioCaller(
            gateway_url=self.gateway.url,
            auth_token=AUTH_TOKEN,
            account_sid=ACCOUNT_SID,
            on_status=self.twilio.set_call_status,
            **kwargs,
        )
        self.callers.append(caller)
        return caller

    async def hang_up_leftovers(self) -> None:
        """Close every call a test left open; wait until no call is running on the pipeline.

        The processes outlive a test module, so the next module starts with no calls of this one.
        """
        callers, self.callers = self.callers, []
        for caller in callers:
            if caller.ws is not None and not caller.closed.is_set():
                await caller.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        async with httpx.AsyncClient(base_url=self.voice.url, timeout=5) as client:
            while (active := _gauge((await client.get("/metrics")).text, ACTIVE_CALLS)) != 0:
                assert loop.time() < deadline, f"{active} calls still running on the pipeline"
                await asyncio.sleep(0.1)


ACTIVE_CALLS = "voice_active_calls"


def _gauge(exposition: str, name: str) -> float | None:
    """A gauge's value in a Prometheus text exposition (None if absent)."""
    for line in exposition.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


@pytest.fixture(scope="session")
def twilio_api() -> Iterator[TwilioStandIn]:
    stand_in = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="session")
async def deepgram() -> AsyncIterator[DeepgramFake]:
    async with DeepgramFake() as fake:
        yield fake


@pytest.fixture(scope="session")
async def elevenlabs() -> AsyncIterator[ElevenLabsFake]:
    async with ElevenLabsFake(ms_per_char=12.0) as fake:
        yield fake


def _start(name: str, env: dict[str, str], port: int, tag: str) -> ServiceProcess:
    return ServiceProcess(name, env=env, port=port, tag=tag).start(wait=False)


@pytest.fixture(scope="package")
async def phone_system(
    test_env: TestEnvironment,
    deepgram: DeepgramFake,
    elevenlabs: ElevenLabsFake,
    twilio_api: TwilioStandIn,
) -> AsyncIterator[PhoneSystem]:
    """The processes, started once for this package, in a namespace of their own.

    Other modules here serve or watch the session's namespace (a conversation stand-in, the
    gateway's replica registry, a keyless stack of their own); this system never meets them.
    """
    namespace = TestEnvironment(tag=f"{test_env.tag}ph")
    ports = {name: free_port() for name in ("gateway", "voice_pipeline", "conversation", "tools")}
    env = phone_env(
        namespace.env,
        ports=ports,
        auth_token=AUTH_TOKEN,
        account_sid=ACCOUNT_SID,
        twilio_api_url=twilio_api.base_url,
        agent_number=AGENT_NUMBER,
        deepgram=deepgram,
        elevenlabs=elevenlabs,
    )
    env["ADMIN_TOKEN"] = ADMIN_TOKEN
    env["CALLCENTER_VOICE_PIPELINE__SILENCE_REPROMPT_S"] = "60"
    env["CALLCENTER_VOICE_PIPELINE__SILENCE_HANGUP_S"] = "120"
    config = namespace.config(**env)
    await prepare_database(config.database.url, config.database.schema_name)
    bus = await Bus.connect(config.nats, name="voice-tests")
    procs = {name: _start(name, env, ports[name], namespace.tag) for name in ports}
    try:
        for proc in procs.values():
            await asyncio.to_thread(proc.wait_ready, timeout_s=90)
        yield PhoneSystem(
            gateway=procs["gateway"],
            voice=procs["voice_pipeline"],
            deepgram=deepgram,
            elevenlabs=elevenlabs,
            twilio=twilio_api,
            env=env,
            config=config,
            bus=bus,
        )
    finally:
        await asyncio.to_thread(stop_together, reversed(procs.values()))
        await bus.drain()
        if os.environ.get("KEEP_TEST_SCHEMA") != "1":
            await remove_namespace(config)


@pytest.fixture(scope="module")
async def phone(phone_system: PhoneSystem) -> AsyncIterator[PhoneSystem]:
    """The phone system, shared by this package's modules (starting it costs seconds of CPU).

    Each module leaves it as it found it: no call of the module is still running afterwards.
    """
    yield phone_system
    await phone_system.hang_up_leftovers()


class EventLog:
    """Every event on this namespace's stream since the test began, by subject."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._sub: Any = None

    async def start(self) -> EventLog:
        async def on_msg(msg: Any) -> None:
            subject = msg.subject.removeprefix(self.bus.settings.subject_prefix)
            self.events.append((subject, json.loads(msg.data)))

        self._sub = await self.bus.nc.subscribe(self.bus.subject(">"), cb=on_msg)
        return self

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()

    def of(self, subject: str, call_id: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for s, e in self.events
            if s == subject and (call_id is None or e.get("call_id") == call_id)
        ]

    async def settled(self, *, timeout_s: float = 10.0) -> None:
        """Every event the server routed to this log before now has been recorded.

        A marker published now (on a subject outside the JetStream stream) reaches this
        subscription after everything routed to it earlier; once the marker is here, so are they.
        """
        marker = f"tests.marker.{uuid.uuid4().hex}"
        await self.bus.nc.publish(self.bus.subject(marker), b"{}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not any(subject == marker for subject, _ in self.events):
            if loop.time() > deadline:
                raise TimeoutError("this test's own marker event never arrived")
            await asyncio.sleep(0.02)

    async def wait_for(
        self, subject: str, call_id: str, *, count: int = 1, timeout_s: float = 30.0
    ) -> list[dict[str, Any]]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            found = self.of(subject, call_id)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)
        raise TimeoutError(
            f"{count} x {subject} for {call_id} not seen; have {self.of(subject, call_id)}"
        )


@pytest.fixture
async def events(phone: PhoneSystem) -> AsyncIterator[EventLog]:
    """Every event of the phone system's namespace since the test began."""
    log = await EventLog(phone.bus).start()
    yield log
    await log.stop()
