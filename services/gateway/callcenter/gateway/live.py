"""Live updates for the dashboard: bus events fanned out to every connected supervisor.

Each gateway replica holds one :class:`LiveHub` with plain core-NATS subscriptions on ``call.>``
and ``turn.>`` (in the deployment's prefix). JetStream stores those subjects, but a core
subscription sees every message as it is published, on every replica, without a consumer to
manage. Each dashboard client gets a bounded queue; a client too slow to keep up is told to
``resync`` (fetch the snapshot again) instead of slowing the others or growing without bound.

:func:`sse_stream` turns a subscription into a ``text/event-stream`` body: one ``event:`` per bus
subject (``call.started``, ``turn.completed``, ``call.ended``, ``call.summarized``) whose data is
the event's JSON, comment lines as keep-alives, and ``shutdown`` when the replica is stopping
(``EventSource`` then reconnects to another one).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from callcenter.common.bus import Bus
from callcenter.common.events import SUBJECT_NOTIFICATION_REQUESTED
from callcenter.common.logging import get_logger

log = get_logger(__name__)

LIVE_SUBJECTS = ("call.>", "turn.>")
KEEPALIVE_S = 15.0


@dataclass(slots=True, kw_only=True)
class LiveMessage:
    """One update for a dashboard client."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class LiveSubscription:
    """One client's view of the hub: an async iterator of :class:`LiveMessage`."""

    def __init__(self, *, hub: LiveHub, max_queue: int) -> None:
        self._hub = hub
        self.queue: asyncio.Queue[LiveMessage | None] = asyncio.Queue(maxsize=max_queue)

    def offer(self, message: LiveMessage) -> None:
        """Queue ``message``; when the client lags, replace its backlog with one ``resync``."""
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(LiveMessage(kind="resync"))

    def close(self) -> None:
        """End the iteration (the hub is stopping)."""
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            self.queue.get_nowait()
            self.queue.put_nowait(None)

    async def next(self, *, timeout_s: float) -> LiveMessage | None:
        """The next message; ``kind == "keepalive"`` after ``timeout_s`` of quiet; None at the end."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout=timeout_s)
        except TimeoutError:
            return LiveMessage(kind="keepalive")

    def __enter__(self) -> LiveSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self._hub.discard(self)


class LiveHub:
    """Bus events of this deployment, fanned out to dashboard clients of this replica."""

    def __init__(self, *, bus: Bus, max_queue: int = 500) -> None:
        self._bus = bus
        self._max_queue = max_queue
        self._prefix = bus.settings.subject_prefix
        self._subscriptions: list[Subscription] = []
        self._clients: set[LiveSubscription] = set()
        self.stopped = asyncio.Event()

    @property
    def client_count(self) -> int:
        """How many dashboard clients are connected to this replica."""
        return len(self._clients)

    async def start(self) -> None:
        """Subscribe to the event subjects."""
        for name in LIVE_SUBJECTS:
            self._subscriptions.append(
                await self._bus.nc.subscribe(self._bus.subject(name), cb=self._on_message)
            )
        log.info("live updates subscribed", subjects=list(LIVE_SUBJECTS))

    async def stop(self) -> None:
        """Unsubscribe and end every client's stream."""
        self.stopped.set()
        for sub in self._subscriptions:
            try:
                await sub.unsubscribe()
            except Exception:
                log.debug("live unsubscribe failed", exc_info=True)
        self._subscriptions.clear()
        for client in list(self._clients):
            client.close()

    def subscribe(self) -> LiveSubscription:
        """A new client subscription (use as a context manager so it is discarded)."""
        client = LiveSubscription(hub=self, max_queue=self._max_queue)
        if self.stopped.is_set():
            client.close()
        self._clients.add(client)
        return client

    def discard(self, client: LiveSubscription) -> None:
        """Forget a client that went away."""
        self._clients.discard(client)

    def publish_local(self, message: LiveMessage) -> None:
        """Hand ``message`` to every client of this replica."""
        for client in list(self._clients):
            client.offer(message)

    async def _on_message(self, msg: Msg) -> None:
        subject = msg.subject
        if self._prefix and subject.startswith(self._prefix):
            subject = subject[len(self._prefix) :]
        if subject == SUBJECT_NOTIFICATION_REQUESTED:
            return  # may carry a one-time code for the customer: never shown on a dashboard
        try:
            data = json.loads(msg.data)
        except ValueError:
            log.warning("live: undecodable event", subject=subject)
            return
        if not isinstance(data, dict):
            return
        self.publish_local(LiveMessage(kind=subject, data=data))


def _sse(kind: str, data: dict[str, Any] | None = None) -> str:
    return f"event: {kind}\ndata: {json.dumps(data or {}, default=str)}\n\n"


async def sse_stream(hub: LiveHub, *, keepalive_s: float = KEEPALIVE_S) -> AsyncIterator[str]:
    """The ``text/event-stream`` body for one dashboard client."""
    with hub.subscribe() as client:
        yield "retry: 2000\n" + _sse("hello", {"clients": hub.client_count})
        while True:
            message = await client.next(timeout_s=keepalive_s)
            if message is None:
                yield _sse("shutdown")
                return
            if message.kind == "keepalive":
                yield ": keepalive\n\n"
            else:
                yield _sse(message.kind, message.data)
