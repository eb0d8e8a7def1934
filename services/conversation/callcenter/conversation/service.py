"""The conversation service: ``conversation.turn`` served in a queue group, inside the runtime."""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from callcenter.common.bus import Bus, StreamingRequest, StreamingResponder
from callcenter.common.bus.streaming import STREAM_ID_HEADER
from callcenter.common.config import CallCenterConfig, load_config
from callcenter.common.events import TurnCompleted
from callcenter.common.handoff import OwnedByAgent, current_owner
from callcenter.common.logging import bind_call, get_logger
from callcenter.common.pii import redact
from callcenter.common.runtime import ServiceRuntime
from callcenter.conversation.engine import ConversationEngine
from callcenter.conversation.llm import ChatModel
from callcenter.conversation.offline import OfflineModel
from callcenter.conversation.session import SessionStore
from callcenter.conversation.tools_client import ToolsClient
from callcenter.conversation.turn import TurnInput

log = get_logger(__name__)

SUBJECT = "conversation.turn"
#: finished turns remembered for a cancel that comes after the reply ended (voice: the reply was
#: generated faster than it was spoken, and the caller barged in while it was being spoken)
RECENT_TURNS = 5000


def build_models(config: CallCenterConfig) -> list[ChatModel]:
    """The configured LLMs in order, then the offline engine (default and last resort)."""
    models: list[ChatModel] = []
    if config.llm.models:
        from callcenter.conversation.llm.litellm_model import LiteLLMModel

        models = [LiteLLMModel(entry=entry, settings=config.llm) for entry in config.llm.models]
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
        tools=ToolsClient(
            bus=bus, ttl_s=settings.tools_schema_ttl_s, call_timeout_s=settings.tool_timeout_s
        ),
        models=build_models(config),
        publish=bus.publish if publish else None,
    )


def _error(exc: Exception) -> tuple[str, str]:
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
            subject=bus.subject(SUBJECT),
            queue=config.conversation.queue_group,
            handler=self._handle,
            error_mapper=_error,
        )
        self._recent: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._late_sub: Subscription | None = None
        self._report_sub: Subscription | None = None
        self._background: set[asyncio.Task[None]] = set()
        # voice turns whose turn.completed waits for the pipeline's audio timings
        self._pending_voice: dict[str, TurnCompleted] = {}
        self._report_arrived: dict[str, asyncio.Event] = {}
        self._reports: OrderedDict[str, dict[str, Any]] = OrderedDict()
        if engine.defer_voice is None and engine.publishes:
            engine.defer_voice = self._defer_voice

    async def start(self) -> None:
        """Start answering."""
        await self.engine.tools.schema()  # warm the cache; an absent tools service is fine
        for model in self.engine.models:
            warm_up = getattr(model, "warm_up", None)
            if warm_up is not None:
                await warm_up()
        await self.responder.start()
        self._late_sub = await self.bus.nc.subscribe(
            self.bus.subject(SUBJECT) + ".cancel", cb=self._on_late_cancel
        )
        self._report_sub = await self.bus.nc.subscribe(
            self.bus.subject(SUBJECT) + ".report", cb=self._on_report
        )
        log.info(
            "serving",
            subject=self.bus.subject(SUBJECT),
            models=[m.name for m in self.engine.models],
        )

    async def stop(self) -> None:
        """Stop taking turns and let the ones in flight finish."""
        if self._late_sub is not None:
            await self._late_sub.unsubscribe()
            self._late_sub = None
        await self.responder.stop(grace_s=self.config.gateway.turn_timeout_s)
        if self._report_sub is not None:
            await self._report_sub.unsubscribe()
            self._report_sub = None
        for arrived in self._report_arrived.values():
            arrived.set()  # publish what waits now, with the timings known so far
        if self._background:
            await asyncio.wait(self._background, timeout=10)

    async def _handle(self, request: StreamingRequest) -> AsyncIterator[bytes]:
        turn = TurnInput.from_wire(request.json())
        with bind_call(turn.call_id, channel=turn.channel):
            if self.redis is not None:
                owner = await current_owner(
                    self.redis, key_prefix=self.config.redis.key_prefix, call_id=turn.call_id
                )
                if owner != "bot":  # a person owns it: the bot never answers
                    log.info("turn refused: a person owns the conversation", owner=owner)
                    yield OwnedByAgent(call_id=turn.call_id, owner=owner).model_dump_json().encode()
                    return
            async for chunk in self.engine.turn(turn, cancel=request):
                if chunk["type"] == "done":
                    self._remember(request.stream_id, turn.call_id, int(chunk["turn_index"]))
                yield json.dumps(chunk).encode()

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
            body = json.loads(msg.data or b"{}")
            delivered = str(body.get("delivered_text") or "") if isinstance(body, dict) else ""
        except ValueError:
            return
        pending = self._pending_voice.get(stream_id)
        if pending is not None:  # not published yet: it says what the caller actually heard
            pending.assistant_text = redact(delivered)
            pending.interrupted = True
        call_id, turn_index = found
        task = asyncio.create_task(self._trim(call_id, turn_index, delivered))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ----- voice turns: turn.completed carries the audio timings ----------------------------

    def _defer_voice(self, event: TurnCompleted, request: Any) -> bool:
        """Hold a voice turn's turn.completed until the pipeline reports its audio timings."""
        stream_id = getattr(request, "stream_id", None)
        if not stream_id or self._report_sub is None:
            return False
        self._pending_voice[stream_id] = event
        arrived = self._report_arrived.setdefault(stream_id, asyncio.Event())
        if stream_id in self._reports:
            arrived.set()
        task = asyncio.create_task(self._publish_voice(stream_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return True

    async def _on_report(self, msg: Msg) -> None:
        """The voice pipeline's timings for one turn (it may arrive before the turn is done)."""
        stream_id = (msg.headers or {}).get(STREAM_ID_HEADER)
        try:
            body = json.loads(msg.data or b"{}")
        except ValueError:
            return
        if not stream_id or not isinstance(body, dict) or not isinstance(body.get("latency"), dict):
            return
        self._reports[stream_id] = body["latency"]
        while len(self._reports) > RECENT_TURNS:
            self._reports.popitem(last=False)
        arrived = self._report_arrived.get(stream_id)
        if arrived is not None:
            arrived.set()

    async def _publish_voice(self, stream_id: str) -> None:
        arrived = self._report_arrived[stream_id]
        try:
            await asyncio.wait_for(
                arrived.wait(), timeout=self.config.conversation.voice_report_wait_s
            )
        except TimeoutError:
            pass
        event = self._pending_voice.pop(stream_id)
        self._report_arrived.pop(stream_id, None)
        report = self._reports.pop(stream_id, None) or {}
        for stage in ("stt_final_ms", "first_audio_ms", "first_audio_sent_ms"):
            value = report.get(stage)
            if isinstance(value, int | float) and getattr(event.latency, stage) is None:
                setattr(event.latency, stage, float(value))
        with bind_call(event.call_id):
            try:
                await self.bus.publish(event)
            except Exception:
                log.exception("turn.completed not published", turn_index=event.turn_index)

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
