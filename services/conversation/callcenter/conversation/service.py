"""The conversation service: ``conversation.turn`` served in a queue group, inside the runtime."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from callcenter.common.bus import Bus, StreamingRequest, StreamingResponder
from callcenter.common.bus.streaming import STREAM_ID_HEADER
from callcenter.common.config import CallCenterConfig, load_config
from callcenter.common.contracts import (
    CONVERSATION_TURN,
    CONVERSATION_TURN_CANCEL,
    DoneChunk,
    OwnedChunk,
    TurnCancel,
    TurnRequest,
)
from callcenter.common.handoff import current_owner
from callcenter.common.logging import bind_call, get_logger
from callcenter.common.runtime import ServiceRuntime
from callcenter.conversation.engine import ConversationEngine
from callcenter.conversation.llm import ChatModel
from callcenter.conversation.llm.selection import build_llm
from callcenter.conversation.offline import OfflineModel
from callcenter.conversation.session import SessionStore
from callcenter.conversation.tools_client import CachedToolsClient

log = get_logger(__name__)
#: finished turns remembered for a cancel that comes after the reply ended (voice: the reply was
#: generated faster than it was spoken, and the caller barged in while it was being spoken)
RECENT_TURNS = 5000


def build_models(config: CallCenterConfig) -> list[ChatModel]:
    """The configured LLMs in order, then the offline engine (default and last resort)."""
    models: list[ChatModel] = []
    if config.llm.models:
        models = [build_llm(entry=entry, settings=config.llm) for entry in config.llm.models]
    if config.llm.offline_fallback or not models:
        models.append(OfflineModel(settings=config.conversation))
    return models


def build_engine(
    *, config: CallCenterConfig, bus: Bus, redis: aioredis.Redis, publish: bool = True
) -> ConversationEngine:
    """The engine wired to this process's connections."""
    settings = config.conversation
    return ConversationEngine(
        config=config,
        store=SessionStore(
            redis=redis,
            key_prefix=config.redis.key_prefix,
            ttl_s=config.redis.session_ttl_s,
            lock_timeout_s=settings.turn_lock_timeout_s,
        ),
        tools=CachedToolsClient(
            bus=bus, ttl_s=settings.tools_schema_ttl_s, call_timeout_s=settings.tool_timeout_s
        ),
        models=build_models(config),
        publish=bus.publish if publish else None,
    )


def _error(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, ValidationError):  # where and what, never the caller's values
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()
        )
        return "bad_request", f"not a conversation.turn request ({problems})"[:500]
    if isinstance(exc, ValueError):
        return "bad_request", str(exc)
    return "internal", "Sorry, something went wrong on our side. Please try again."


class ConversationService:
    """Answers ``conversation.turn`` with the engine's chunks as JSON."""

    def __init__(
        self,
        *,
        config: CallCenterConfig,
        bus: Bus,
        engine: ConversationEngine,
        redis: aioredis.Redis | None = None,
    ) -> None:
        self.config = config
        self.bus = bus
        self.engine = engine
        self.redis = redis  # where the gateway mirrors who owns a conversation (bot or agent)
        self.responder = StreamingResponder(
            nc=bus.nc,
            subject=bus.subject(CONVERSATION_TURN),
            queue=config.conversation.queue_group,
            handler=self._handle,
            error_mapper=_error,
        )
        self._recent: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._late_sub: Subscription | None = None
        self._background: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start answering."""
        await self.engine.tools.schema()  # warm the cache; an absent tools service is fine
        for model in self.engine.models:
            warm_up = getattr(model, "warm_up", None)
            if warm_up is not None:
                await warm_up()
        await self.responder.start()
        self._late_sub = await self.bus.nc.subscribe(
            self.bus.subject(CONVERSATION_TURN_CANCEL), cb=self._on_late_cancel
        )
        log.info(
            "serving",
            subject=self.bus.subject(CONVERSATION_TURN),
            models=[m.name for m in self.engine.models],
        )

    async def stop(self) -> None:
        """Stop taking turns and let the ones in flight finish."""
        if self._late_sub is not None:
            await self._late_sub.unsubscribe()
            self._late_sub = None
        await self.responder.stop(grace_s=self.config.gateway.turn_timeout_s)
        if self._background:
            await asyncio.wait(self._background, timeout=10)
        for model in self.engine.models:  # the LLM clients' pooled connections
            close = getattr(model, "aclose", None)
            if close is not None:
                await close()

    async def _handle(self, request: StreamingRequest) -> AsyncIterator[bytes]:
        turn = TurnRequest.from_bytes(request.data)
        with bind_call(turn.call_id, channel=turn.channel):
            if self.redis is not None:
                owner = await current_owner(
                    self.redis, key_prefix=self.config.redis.key_prefix, call_id=turn.call_id
                )
                if owner != "bot":  # a person owns it: the bot never answers
                    log.info("turn refused: a person owns the conversation", owner=owner)
                    yield OwnedChunk(call_id=turn.call_id, owner=owner).to_bytes()
                    return
            async for chunk in self.engine.turn(turn, cancel=request):
                if isinstance(chunk, DoneChunk):
                    self._remember(request.stream_id, turn.call_id, chunk.turn_index)
                yield chunk.to_bytes()

    def _remember(self, stream_id: str, call_id: str, turn_index: int) -> None:
        self._recent[stream_id] = (call_id, turn_index)
        while len(self._recent) > RECENT_TURNS:
            self._recent.popitem(last=False)

    async def _on_late_cancel(self, msg: Msg) -> None:
        """A cancel for a turn this replica already finished: cut its stored answer."""
        stream_id = (msg.headers or {}).get(STREAM_ID_HEADER)
        if not stream_id or stream_id not in self._recent:
            return
        # If the turn was still streaming, the engine cuts it too; cutting twice to the same
        # delivered text changes nothing, so both may run.
        found = self._recent.pop(stream_id, None)
        if found is None:
            return
        try:
            delivered = TurnCancel.from_bytes(msg.data or b"{}").delivered_text
        except ValueError:
            return
        call_id, turn_index = found
        task = asyncio.create_task(self._trim(call_id, turn_index, delivered))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _trim(self, call_id: str, turn_index: int, delivered: str) -> None:
        with bind_call(call_id):
            try:
                await self.engine.trim_delivered(call_id, turn_index, delivered)
            except Exception:
                log.exception("could not cut the stored answer", turn_index=turn_index)


async def serve() -> None:
    """Run the service until SIGTERM."""
    config = load_config()
    runtime = ServiceRuntime(
        name="conversation",
        config=config,
        host=config.conversation.health_host,
        port=config.conversation.health_port,
        needs_redis=True,
    )
    async with runtime:
        assert runtime.redis is not None
        engine = build_engine(config=config, bus=runtime.bus, redis=runtime.redis)
        service = ConversationService(
            config=config, bus=runtime.bus, engine=engine, redis=runtime.redis
        )
        await service.start()
        runtime.on_stop(service.stop)
        await runtime.start_http()
        await runtime.wait_for_shutdown()
