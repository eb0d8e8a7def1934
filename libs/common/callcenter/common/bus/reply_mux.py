"""One reply inbox per NATS connection for streamed requests.

A streamed request used to subscribe a fresh inbox and unsubscribe it at the end: a SUB and an
UNSUB on the wire for every turn. Instead, like nats-py's own ``request()`` (its "resp mux"),
each connection holds one wildcard subscription ``<inbox prefix>.<nuid>.*``; a request's reply
subject is that prefix plus a token of its own, and each reply is routed by its token to the
queue of the request that is still listening. A reply whose token nobody holds (it came after its
request was cancelled, timed out or ended) is counted and dropped.
"""

from __future__ import annotations

import asyncio
import weakref

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.nuid import NUID

#: what a request's queue holds: the replies, or the error that ended the connection
Reply = Msg | BaseException

_MUXES: weakref.WeakKeyDictionary[NatsClient, ReplyMux] = weakref.WeakKeyDictionary()


class ReplyMux:
    """The reply inboxes of one connection: one subscription, one queue per open request."""

    def __init__(self, *, prefix: str) -> None:
        """Create the mux.

        Args:
            prefix: the inbox every reply subject starts with, ending in a dot.

        """
        self.prefix = prefix
        self.late_replies = 0
        self._queues: dict[str, asyncio.Queue[Reply]] = {}
        self._subscribed = False
        self._lock = asyncio.Lock()
        self._nuid = NUID()

    @property
    def open_requests(self) -> int:
        """Requests whose replies are being routed now."""
        return len(self._queues)

    async def open(self, nc: NatsClient) -> tuple[str, asyncio.Queue[Reply]]:
        """A reply subject of its own for one request, and the queue its replies arrive on.

        The first call subscribes the wildcard (once per connection; nats-py subscribes it again
        after a reconnect).
        """
        if not self._subscribed:
            async with self._lock:
                if not self._subscribed:
                    await nc.subscribe(self.prefix + "*", cb=self._route)
                    self._subscribed = True
        inbox = self.prefix + self._nuid.next().decode()
        queue: asyncio.Queue[Reply] = asyncio.Queue()
        self._queues[inbox] = queue
        return inbox, queue

    def release(self, inbox: str) -> None:
        """Stop routing replies to ``inbox`` (idempotent); later ones are dropped."""
        self._queues.pop(inbox, None)

    def abort(self, error: type[BaseException]) -> None:
        """End every open request with a new ``error`` (the connection closed under them)."""
        for queue in self._queues.values():
            queue.put_nowait(error())

    async def _route(self, msg: Msg) -> None:
        queue = self._queues.get(msg.subject)
        if queue is None:
            self.late_replies += 1
            return
        queue.put_nowait(msg)


def reply_mux(nc: NatsClient) -> ReplyMux:
    """The mux of connection ``nc`` (created on first use, gone with the connection)."""
    mux = _MUXES.get(nc)
    if mux is None:
        mux = _MUXES[nc] = ReplyMux(prefix=nc.new_inbox() + ".")
    return mux


def abort_requests(nc: NatsClient, error: type[BaseException]) -> None:
    """End the open streamed requests of ``nc`` with ``error``, if it has any."""
    mux = _MUXES.get(nc)
    if mux is not None:
        mux.abort(error)
