"""Fixtures for the conversation service's tests.

The real tools service runs as a process (``service_factory("tools")``) over the session's
migrated and seeded schema; the LLM is the OpenAI-compatible stand-in, reached by litellm over
HTTP. The conversation service itself runs in the test process on the session's bus and Redis,
exactly as ``serve()`` wires it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from callcenter.common.bus import Bus
from callcenter.common.clients import ConversationClient
from callcenter.common.config import CallCenterConfig
from callcenter.common.config.sections import LLMModelSettings
from callcenter.common.contracts import TurnRequest
from callcenter.conversation.engine import ConversationEngine
from callcenter.conversation.service import ConversationService, build_engine
from tests.fakes.openai_server import OpenAIStandIn


@pytest.fixture(scope="session")
def llm_server() -> Iterator[OpenAIStandIn]:
    server = OpenAIStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def llm(llm_server: OpenAIStandIn) -> Iterator[OpenAIStandIn]:
    llm_server.reset()
    yield llm_server
    llm_server.reset()


@pytest.fixture(scope="module")
def tools_service(db_pool: Any, service_factory: Callable[..., Any]) -> Any:
    """The real tools service in this session's namespace (for one test module).

    The deployment trusts SMS caller ID (as the edge that vouches for it must be configured to).
    """
    return service_factory("tools", extra_env={"CALLCENTER_TWILIO__SMS_CALLER_ID_VERIFIES": "true"})


def with_models(
    config: CallCenterConfig,
    server: OpenAIStandIn | None,
    *names: str,
    timeouts: dict[str, float] | None = None,
    **llm: Any,
) -> CallCenterConfig:
    """``config`` whose LLM list is ``names`` on the stand-in (offline engine last).

    Timeouts are generous by default: the test machine may be busy, and only the hang test needs
    a short one (``timeouts={"slow": 1.0}``).
    """
    models = [
        LLMModelSettings(
            model=f"openai/{name}",
            api_base=server.base_url if server else None,
            timeout_s=(timeouts or {}).get(name),
        )
        for name in names
    ]
    return config.model_copy(
        update={"llm": config.llm.model_copy(update={"models": models, "timeout_s": 20.0, **llm})}
    )


@dataclass
class TurnResult:
    """Every chunk of one turn's reply."""

    chunks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def done(self) -> dict[str, Any]:
        assert self.chunks and self.chunks[-1]["type"] == "done", self.chunks
        return self.chunks[-1]

    @property
    def text(self) -> str:
        return "".join(c["text"] for c in self.chunks if c["type"] == "delta")

    def tools(self, status: str) -> list[dict[str, Any]]:
        return [c for c in self.chunks if c["type"] == "tool" and c["status"] == status]


class Conversation:
    """A client of ``conversation.turn`` for one call, as the gateway is."""

    def __init__(self, bus: Bus, *, channel: str = "chat", caller: dict[str, Any] | None = None):
        self.bus = bus
        self.call_id = "test-" + uuid.uuid4().hex[:10]
        self.channel = channel
        self.caller = caller or {}

    def request(self, text: str) -> TurnRequest:
        return TurnRequest(
            call_id=self.call_id, channel=self.channel, text=text, caller=self.caller
        )

    def client(self, *, timeout_s: float = 20.0) -> ConversationClient:
        return ConversationClient(bus=self.bus, first_timeout_s=timeout_s)

    async def say(self, text: str, *, timeout_s: float = 20.0) -> TurnResult:
        stream = await self.client(timeout_s=timeout_s).stream_turn(self.request(text))
        result = TurnResult()
        async for chunk in stream:
            result.chunks.append(chunk.model_dump())
        return result


@pytest.fixture
async def serve(
    config: CallCenterConfig, bus: Bus, redis_client: Any
) -> AsyncIterator[Callable[..., Any]]:
    """Start the conversation service in this process with a given config; stopped after the test."""
    services: list[ConversationService] = []

    async def start(cfg: CallCenterConfig | None = None) -> ConversationEngine:
        for running in services:  # one server per test answers the subject
            await running.stop()
        cfg = cfg or config
        engine = build_engine(config=cfg, bus=bus, redis=redis_client)
        service = ConversationService(config=cfg, bus=bus, engine=engine)
        await service.start()
        services.append(service)
        return engine

    yield start
    for service in services:
        await service.stop()


async def turn_events(
    bus: Bus, call_id: str, *, expect: int, timeout_s: float = 5.0
) -> list[dict[str, Any]]:
    """The turn.completed events of ``call_id`` in the JetStream stream."""
    sub = await bus.js.subscribe(bus.subject("turn.completed"), ordered_consumer=True)
    found: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        while loop.time() < deadline:
            try:
                msg = await sub.next_msg(timeout=0.3)
            except Exception:
                if len(found) >= expect:
                    break
                continue
            body = json.loads(msg.data)
            if body.get("call_id") == call_id:
                found.append(body)
    finally:
        await sub.unsubscribe()
    return found
