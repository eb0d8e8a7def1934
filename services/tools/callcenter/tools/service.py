"""The NATS side: a nats.micro service answering ``tools.list`` and ``tools.call``.

Both endpoints listen in the configured queue group, so replicas share the load, and the
service answers nats.micro discovery (``$SRV.PING|INFO|STATS``). nats-py runs one subscription's
callbacks one after another, so each ``tools.call`` is handled in its own task (held in a set,
awaited on shutdown) and a slow tool never holds up the next request.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import PackageNotFoundError, version

from nats import micro
from nats.micro.request import Request
from nats.micro.service import Service
from opentelemetry import context as otel_context

from callcenter.common.bus import Bus
from callcenter.common.bus.tracing import extract_trace
from callcenter.common.config import load_config
from callcenter.common.contracts import (
    TOOLS_CALL,
    TOOLS_LIST,
    ToolCallRequest,
    ToolOutcome,
    ToolsList,
)
from callcenter.common.logging import get_logger
from callcenter.common.runtime import ServiceRuntime
from callcenter.tools.executor import CallCenterToolExecutor
from callcenter.tools.outbox import OutboxRelay

log = get_logger(__name__)

SERVICE_NAME = "callcenter-tools"


def _version() -> str:
    try:
        return version("callcenter-tools")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


class ToolsService:
    """Serves the executor on the bus; ``start()`` then ``stop()`` (finishes in-flight calls)."""

    def __init__(
        self,
        *,
        bus: Bus,
        executor: CallCenterToolExecutor,
        queue_group: str,
        drain_timeout_s: float = 30.0,
    ) -> None:
        self.bus = bus
        self.executor = executor
        self.queue_group = queue_group
        self.drain_timeout_s = drain_timeout_s
        self.service: Service | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Register the nats.micro service and its two endpoints."""
        self.service = await micro.add_service(
            self.bus.nc,
            name=SERVICE_NAME,
            version=_version(),
            description="Callcenter skills: tools.list and tools.call",
            queue_group=self.queue_group,
            metadata={"subject_prefix": self.bus.settings.subject_prefix},
        )
        await self.service.add_endpoint(
            name="list", subject=self.bus.subject(TOOLS_LIST), handler=self._on_list
        )
        await self.service.add_endpoint(
            name="call", subject=self.bus.subject(TOOLS_CALL), handler=self._on_call
        )
        log.info(
            "tools service listening",
            subjects=[self.bus.subject(TOOLS_LIST), self.bus.subject(TOOLS_CALL)],
            tools=len(self.executor.schemas()),
        )

    async def stop(self) -> None:
        """Stop taking requests, then wait for the calls already running."""
        if self.service is not None:
            await self.service.stop()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.drain_timeout_s)

    async def _on_list(self, request: Request) -> None:
        await request.respond(ToolsList(tools=self.executor.schemas()).to_bytes())

    async def _on_call(self, request: Request) -> None:
        task = asyncio.create_task(self._answer(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, request: Request) -> None:
        token = otel_context.attach(extract_trace(request.headers))
        try:
            outcome = await self._call(request.data)
            await request.respond(outcome.to_bytes())
        except Exception:
            log.exception("could not answer tools.call")
        finally:
            otel_context.detach(token)

    async def _call(self, data: bytes) -> ToolOutcome:
        try:
            call = ToolCallRequest.from_bytes(data)
        except ValueError:
            return ToolOutcome.failure("invalid_request", "That request could not be understood.")
        return await self.executor.run(call.name, call.arguments, call.context.model_dump())


async def serve() -> None:
    """Run the tools service until SIGTERM (in-flight tool calls finish first)."""
    config = load_config()
    runtime = ServiceRuntime(
        name="tools",
        config=config,
        host=config.tools.health_host,
        port=config.tools.health_port,
        needs_db=True,
    )
    async with runtime:
        assert runtime.db is not None
        trusted = {
            "voice": config.twilio.voice_caller_id_verifies,
            "sms": config.twilio.sms_caller_id_verifies,
        }
        relay = OutboxRelay(
            db=runtime.db, bus=runtime.bus, sweep_s=config.notifications.outbox_sweep_s
        )
        executor = CallCenterToolExecutor(
            after_success=relay.kick,
            db=runtime.db,
            timeout_s=config.tools.call_timeout_s,
            caller_id_channels=[channel for channel, allowed in trusted.items() if allowed],
        )
        service = ToolsService(
            bus=runtime.bus, executor=executor, queue_group=config.tools.queue_group
        )
        await relay.start()
        await service.start()
        runtime.on_stop(relay.stop)  # on_stop runs in reverse: in-flight calls finish first
        runtime.on_stop(service.stop)
        await runtime.start_http()
        await runtime.wait_for_shutdown()
