"""Request with a streamed reply over core NATS, with cancellation.

Wire protocol (one request, many replies):

* the requester publishes the request with ``reply=<inbox>`` and header
  ``Cc-Stream-Id: <inbox>``, where ``<inbox>`` is ``<prefix>.<token>`` under the one wildcard
  subscription its connection holds for all streamed replies (:class:`ReplyMux`, as nats-py's own
  ``request()`` does); servers listen in a queue group, so one replica answers;
* the server publishes each piece to the inbox with headers ``Cc-Kind: chunk`` and
  ``Cc-Seq: 0, 1, 2…``, then exactly one ``Cc-Kind: end`` (or ``Cc-Kind: error`` whose body is
  ``{"error": code, "message": text}``);
* to cancel, the requester publishes to ``<subject>.cancel`` (:func:`cancel_subject`) with
  ``Cc-Stream-Id`` and a body (for ``conversation.turn``: a ``TurnCancel``); every replica listens
  there and the one holding the stream stops its handler, which sees ``request.cancelled``.

The messages of each subject are typed in :mod:`callcenter.common.contracts`, and each subject has
its client in :mod:`callcenter.common.clients`.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from opentelemetry import context as otel_context
from opentelemetry import trace

from callcenter.common.bus.reply_mux import Reply, ReplyMux, reply_mux
from callcenter.common.bus.tracing import extract_trace, inject_trace
from callcenter.common.contracts.subjects import cancel_subject
from callcenter.common.logging import get_logger

log = get_logger(__name__)
tracer = trace.get_tracer("callcenter.bus")

KIND_HEADER = "Cc-Kind"
SEQ_HEADER = "Cc-Seq"
STREAM_ID_HEADER = "Cc-Stream-Id"


class StreamError(Exception):
    """The server ended the stream with an error, or the stream broke."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class NoResponders(StreamError):
    """Nobody serves the subject."""

    def __init__(self, subject: str) -> None:
        super().__init__("no_responders", f"no service is answering {subject}")


@dataclass(slots=True)
class Chunk:
    """One piece of a streamed reply."""

    seq: int
    data: bytes

    def json(self) -> Any:
        """The piece parsed as JSON."""
        return json.loads(self.data)


class ReplyStream:
    """The requester's side: iterate the chunks; cancel to stop the server early."""

    def __init__(
        self,
        *,
        nc: NatsClient,
        subject: str,
        mux: ReplyMux,
        inbox: str,
        replies: asyncio.Queue[Reply],
        first_timeout_s: float,
        idle_timeout_s: float,
    ) -> None:
        self._nc = nc
        self._subject = subject
        self._replies = replies
        self.stream_id = inbox
        self._first_timeout = first_timeout_s
        self._idle_timeout = idle_timeout_s
        self._expected = 0
        self.finished = False
        # releases the inbox on close, or when the stream is dropped without being closed
        self._release = weakref.finalize(self, mux.release, inbox)

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._iterate()

    async def _next_reply(self, timeout: float) -> Msg:
        if self._replies.empty() and self._nc.is_closed:
            raise nats.errors.ConnectionClosedError
        try:
            async with asyncio.timeout(timeout):
                reply = await self._replies.get()
        except TimeoutError as exc:
            if self._nc.is_closed:
                raise nats.errors.ConnectionClosedError from exc
            raise StreamError(
                "timeout", f"no reply from {self._subject} in {timeout:.1f}s"
            ) from exc
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def _iterate(self) -> AsyncIterator[Chunk]:
        try:
            while True:
                timeout = self._first_timeout if self._expected == 0 else self._idle_timeout
                msg = await self._next_reply(timeout)
                headers = msg.headers or {}
                if headers.get("Status") == "503":
                    raise NoResponders(self._subject)
                kind = headers.get(KIND_HEADER, "chunk")
                if kind == "end":
                    self.finished = True
                    return
                if kind == "error":
                    try:
                        body = json.loads(msg.data)
                        code, text = str(body.get("error", "error")), str(body.get("message", ""))
                    except ValueError:
                        code, text = "error", msg.data.decode(errors="replace")
                    self.finished = True
                    raise StreamError(code, text)
                seq = int(headers.get(SEQ_HEADER, self._expected))
                if seq != self._expected:
                    raise StreamError("out_of_order", f"expected chunk {self._expected}, got {seq}")
                self._expected += 1
                yield Chunk(seq=seq, data=msg.data)
        finally:
            await self.close()

    async def cancel(self, payload: bytes = b"") -> None:
        """Tell the server to stop; ``payload`` is handed to its handler."""
        if not self.finished:
            await self._nc.publish(
                cancel_subject(self._subject), payload, headers={STREAM_ID_HEADER: self.stream_id}
            )
            self.finished = True
        await self.close()

    async def close(self) -> None:
        """Stop listening (idempotent): replies still on their way are dropped."""
        self._release()


async def stream_request(
    nc: NatsClient,
    subject: str,
    data: bytes,
    *,
    headers: dict[str, str] | None = None,
    first_timeout_s: float = 30.0,
    idle_timeout_s: float = 30.0,
) -> ReplyStream:
    """Send a request whose answer comes back as a stream of chunks.

    The replies come back on the connection's one reply subscription (:func:`reply_mux`): no
    subscription is made or removed per request.

    Returns:
        a :class:`ReplyStream` to iterate (``async for chunk in stream``).

    """
    mux = reply_mux(nc)
    inbox, replies = await mux.open(nc)
    stream = ReplyStream(
        nc=nc,
        subject=subject,
        mux=mux,
        inbox=inbox,
        replies=replies,
        first_timeout_s=first_timeout_s,
        idle_timeout_s=idle_timeout_s,
    )
    hdrs = inject_trace({**(headers or {}), STREAM_ID_HEADER: inbox})
    try:
        await nc.publish(subject, data, reply=inbox, headers=hdrs)
    except BaseException:
        await stream.close()
        raise
    return stream


@dataclass(slots=True)
class StreamingRequest:
    """The server's view of one request."""

    data: bytes
    headers: dict[str, str]
    stream_id: str
    cancelled: bool = False
    cancel_payload: bytes = b""

    def json(self) -> Any:
        """The request body parsed as JSON."""
        return json.loads(self.data)


StreamHandler = Callable[[StreamingRequest], AsyncIterator[bytes]]
ErrorMapper = Callable[[Exception], tuple[str, str]]


def _default_error(exc: Exception) -> tuple[str, str]:
    return "internal", "Something went wrong on our side."


class StreamingResponder:
    """The server's side: answers ``subject`` in a queue group with streamed chunks."""

    def __init__(
        self,
        *,
        nc: NatsClient,
        subject: str,
        queue: str,
        handler: StreamHandler,
        error_mapper: ErrorMapper = _default_error,
        on_done: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._nc = nc
        self._subject = subject
        self._queue = queue
        self._handler = handler
        self._error_mapper = error_mapper
        self._active: dict[str, tuple[asyncio.Task[None], StreamingRequest]] = {}
        self._early_cancels: dict[str, bytes] = {}
        self._subs: list[Subscription] = []
        self._on_done = on_done

    @property
    def in_flight(self) -> int:
        """Requests being answered now."""
        return len(self._active)

    async def start(self) -> None:
        """Subscribe to the subject (queue group) and its cancel subject (every replica)."""
        self._subs.append(
            await self._nc.subscribe(self._subject, queue=self._queue, cb=self._on_request)
        )
        self._subs.append(
            await self._nc.subscribe(cancel_subject(self._subject), cb=self._on_cancel)
        )

    async def stop(self, *, grace_s: float = 30.0) -> None:
        """Take no new requests; let in-flight ones finish within ``grace_s``."""
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except Exception:
                pass
        self._subs.clear()
        tasks = [task for task, _ in self._active.values()]
        if tasks:
            log.info("draining streamed requests", subject=self._subject, in_flight=len(tasks))
            done, pending = await asyncio.wait(tasks, timeout=grace_s)
            for task in pending:
                task.cancel()

    async def _on_request(self, msg: Msg) -> None:
        headers = dict(msg.headers or {})
        stream_id = headers.get(STREAM_ID_HEADER) or msg.reply
        if not msg.reply:
            log.warning("streamed request without reply subject dropped", subject=self._subject)
            return
        request = StreamingRequest(data=msg.data, headers=headers, stream_id=stream_id)
        if stream_id in self._early_cancels:
            request.cancelled = True
            request.cancel_payload = self._early_cancels.pop(stream_id)
        task = asyncio.create_task(self._respond(msg.reply, request))
        self._active[stream_id] = (task, request)
        task.add_done_callback(lambda _t, sid=stream_id: self._active.pop(sid, None))

    async def _on_cancel(self, msg: Msg) -> None:
        stream_id = (msg.headers or {}).get(STREAM_ID_HEADER)
        if not stream_id:
            return
        entry = self._active.get(stream_id)
        if entry is None:
            if len(self._early_cancels) > 1000:
                self._early_cancels.clear()
            self._early_cancels[stream_id] = msg.data
            return
        task, request = entry
        request.cancelled = True
        request.cancel_payload = msg.data
        task.cancel()

    async def _respond(self, reply: str, request: StreamingRequest) -> None:
        token = otel_context.attach(extract_trace(request.headers))
        seq = 0
        agen = self._handler(request)
        try:
            with tracer.start_as_current_span(f"{self._subject} serve", kind=trace.SpanKind.SERVER):
                try:
                    async for piece in agen:
                        if request.cancelled:
                            break
                        await self._nc.publish(
                            reply, piece, headers={KIND_HEADER: "chunk", SEQ_HEADER: str(seq)}
                        )
                        seq += 1
                    if not request.cancelled:
                        await self._nc.publish(
                            reply, b"", headers={KIND_HEADER: "end", SEQ_HEADER: str(seq)}
                        )
                except asyncio.CancelledError:
                    await agen.aclose()
                    if not request.cancelled:
                        raise
                except Exception as exc:
                    code, message = self._error_mapper(exc)
                    log.exception("streamed request failed", subject=self._subject, error=code)
                    body = json.dumps({"error": code, "message": message}).encode()
                    try:
                        await self._nc.publish(
                            reply, body, headers={KIND_HEADER: "error", SEQ_HEADER: str(seq)}
                        )
                    except Exception:
                        pass
                finally:
                    await agen.aclose()
        finally:
            otel_context.detach(token)
