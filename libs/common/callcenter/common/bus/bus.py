"""One object per process holding the NATS connection and its JetStream context."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import PubAck

from callcenter.common.bus.connection import connect_nats
from callcenter.common.bus.consumer import BatchHandler, DeadLetterSink, Handler, PullConsumer
from callcenter.common.bus.publish import publish_event
from callcenter.common.bus.reply_mux import abort_requests
from callcenter.common.bus.streaming import ReplyStream, stream_request
from callcenter.common.bus.streams import ConsumerSpec, ensure_streams
from callcenter.common.bus.tracing import inject_trace
from callcenter.common.config.sections import NatsSettings
from callcenter.common.events import Event


class Bus:
    """The process's connection to the bus."""

    def __init__(self, *, nc: NatsClient, settings: NatsSettings) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.settings = settings

    @classmethod
    async def connect(cls, settings: NatsSettings, *, name: str, ensure: bool = True) -> Bus:
        """Connect and (by default) make sure the streams exist."""
        nc = await connect_nats(settings, name=name)
        bus = cls(nc=nc, settings=settings)
        if ensure:
            await ensure_streams(bus.js, settings)
        return bus

    def subject(self, name: str) -> str:
        """The wire subject for ``name`` (the deployment's prefix added)."""
        return self.settings.subject_prefix + name

    @property
    def is_connected(self) -> bool:
        """Whether the connection is up right now (for readiness)."""
        return self.nc.is_connected

    async def publish(self, event: Event) -> PubAck:
        """Publish an event to JetStream (deduplicated by its event id)."""
        return await publish_event(self.js, event, prefix=self.settings.subject_prefix)

    async def stream_request(
        self,
        subject: str,
        payload: dict[str, Any],
        *,
        first_timeout_s: float = 30.0,
        idle_timeout_s: float = 30.0,
    ) -> ReplyStream:
        """A request answered by a stream of JSON chunks."""
        return await stream_request(
            self.nc,
            self.subject(subject),
            json.dumps(payload).encode(),
            first_timeout_s=first_timeout_s,
            idle_timeout_s=idle_timeout_s,
        )

    async def request_json(
        self, subject: str, payload: dict[str, Any], *, timeout_s: float = 10.0
    ) -> Any:
        """A plain request/reply with JSON bodies and trace context."""
        msg = await self.nc.request(
            self.subject(subject),
            json.dumps(payload).encode(),
            timeout=timeout_s,
            headers=inject_trace(),
        )
        return json.loads(msg.data)

    def consumer(
        self,
        *,
        durable: str,
        subject: str | None,
        handler: Handler,
        max_deliver: int = 6,
        ack_wait_s: float = 30.0,
        retry_delays_s: Sequence[float] = (1.0, 2.0, 5.0, 10.0, 30.0),
        dead_letter: Sequence[DeadLetterSink] = (),
        concurrency: int = 10,
        batch: int = 10,
        batch_handler: BatchHandler | None = None,
    ) -> PullConsumer:
        """A durable pull consumer on the events stream, filtered to ``subject`` (unprefixed).

        ``batch`` messages are fetched at a time; with ``batch_handler`` each fetch is handled as
        one batch (see :mod:`callcenter.common.bus.consumer`).
        """
        spec = ConsumerSpec(
            durable=durable,
            filter_subject=self.subject(subject) if subject else None,
            max_deliver=max_deliver,
            ack_wait_s=ack_wait_s,
        )
        return PullConsumer(
            js=self.js,
            stream=self.settings.stream,
            spec=spec,
            handler=handler,
            dead_letter=dead_letter,
            retry_delays_s=retry_delays_s,
            subject_prefix=self.settings.subject_prefix,
            concurrency=concurrency,
            batch=batch,
            batch_handler=batch_handler,
        )

    async def drain(self) -> None:
        """Finish pending work on every subscription, then close.

        Streamed requests still waiting for replies then fail with ``ConnectionClosedError``.
        """
        if not self.nc.is_closed:
            try:
                await self.nc.drain()
            except Exception:
                await self.nc.close()
        abort_requests(self.nc, nats.errors.ConnectionClosedError)
