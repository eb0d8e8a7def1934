"""The durable pull-consumer runner every post-call step uses.

Contract with a handler:

* return normally -> the message is acked;
* raise :class:`RetryLater` (or any other exception) -> ``nak(delay)`` with the step's next
  retry delay, until ``max_deliver`` deliveries have been made;
* raise :class:`PermanentFailure` -> dead-lettered at once and terminated (never redelivered);
* on the last delivery, a failure is dead-lettered with its reason and the message terminated.

A consumer may also take a *batch handler*: each fetch (up to ``batch`` messages) is handed to it
as one list, and all are acked when it returns. When it raises, nothing of the batch is assumed
done: each message then goes through the single-message handler above, so retries, dead letters
and delivery counts stay per message (a batch handler must therefore be all-or-nothing, e.g. one
database transaction). A batch handler whose messages each take effect on their own may instead
raise :class:`PartlyDone`: the messages it names as failed are settled with their own exception
(as if the single-message handler had raised it), the ones it leaves go through the
single-message handler, and the rest are acked.

While a handler runs, the runner sends ``in_progress()`` every third of ``ack_wait`` so a slow
step is not redelivered to another replica. If the process dies on the last delivery, JetStream
emits a MAX_DELIVERIES advisory: :func:`watch_max_deliveries` turns that into a dead-letter
record too, so nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from callcenter.common.bus.streams import ConsumerSpec, ensure_consumer
from callcenter.common.bus.tracing import extract_trace
from callcenter.common.logging import bind_call, get_logger

log = get_logger(__name__)


class RetryLater(Exception):
    """A transient failure: try again after ``delay_s`` (or the step's next retry delay)."""

    def __init__(self, reason: str, *, delay_s: float | None = None) -> None:
        super().__init__(reason)
        self.delay_s = delay_s


class PermanentFailure(Exception):
    """The message can never succeed (malformed, refers to nothing): dead-letter it now."""


class PartlyDone(Exception):
    """A batch handler's outcome when not every message of the fetch was done.

    Attributes:
        failed: deliveries that failed, each with the exception to settle it by (a
            :class:`RetryLater` naks with its delay, a :class:`PermanentFailure` dead-letters).
        alone: deliveries to hand to the single-message handler.
        made: the deliveries whose effect was made now (for the handler's own bookkeeping; the
            consumer acks every delivery neither failed nor left alone).

    """

    def __init__(
        self,
        *,
        failed: Sequence[tuple[Delivery, Exception]] = (),
        alone: Sequence[Delivery] = (),
        made: Sequence[Delivery] = (),
    ) -> None:
        super().__init__(f"{len(failed)} failed, {len(alone)} left to be handled alone")
        self.failed = list(failed)
        self.alone = list(alone)
        self.made = list(made)


@dataclass(slots=True)
class Delivery:
    """One delivered message, as a handler sees it."""

    subject: str  # without the deployment's subject prefix, e.g. "call.ended"
    data: bytes
    headers: dict[str, str]
    attempt: int
    max_deliver: int
    stream_sequence: int
    msg: Msg = field(repr=False)

    @property
    def is_last_attempt(self) -> bool:
        """Whether a failure now is final."""
        return self.attempt >= self.max_deliver

    @property
    def event_id(self) -> str | None:
        """The event id (the ``Nats-Msg-Id`` it was published with)."""
        return self.headers.get("Nats-Msg-Id")

    @property
    def call_id(self) -> str | None:
        """The call the event belongs to."""
        return self.headers.get("Cc-Call-Id")


@dataclass(slots=True, kw_only=True)
class DeadLetter:
    """What a consumer gave up on, and why."""

    consumer: str
    subject: str
    stream_sequence: int
    attempts: int
    reason: str
    event_id: str | None
    call_id: str | None
    payload: bytes

    def to_json(self) -> dict[str, Any]:
        """A JSON-able record; the payload as text when it is UTF-8, else base64."""
        try:
            payload: Any = json.loads(self.payload)
        except ValueError:
            try:
                payload = self.payload.decode()
            except UnicodeDecodeError:
                payload = {"base64": base64.b64encode(self.payload).decode()}
        return {
            "consumer": self.consumer,
            "subject": self.subject,
            "stream_sequence": self.stream_sequence,
            "attempts": self.attempts,
            "reason": self.reason,
            "event_id": self.event_id,
            "call_id": self.call_id,
            "payload": payload,
        }


Handler = Callable[[Delivery], Awaitable[None]]
BatchHandler = Callable[[list[Delivery]], Awaitable[None]]
DeadLetterSink = Callable[[DeadLetter], Awaitable[None]]


def jetstream_dead_letter_sink(js: JetStreamContext, *, prefix: str = "") -> DeadLetterSink:
    """A sink that publishes the record on ``deadletter.<consumer>`` (the dead-letter stream)."""

    async def sink(record: DeadLetter) -> None:
        msg_id = f"dlq-{record.consumer}-{record.stream_sequence}"
        await js.publish(
            f"{prefix}deadletter.{record.consumer}",
            json.dumps(record.to_json()).encode(),
            headers={"Nats-Msg-Id": msg_id, "Cc-Call-Id": record.call_id or ""},
        )

    return sink


class PullConsumer:
    """Runs one durable pull consumer until stopped."""

    def __init__(
        self,
        *,
        js: JetStreamContext,
        stream: str,
        spec: ConsumerSpec,
        handler: Handler,
        dead_letter: Sequence[DeadLetterSink] = (),
        retry_delays_s: Sequence[float] = (1.0, 2.0, 5.0, 10.0, 30.0),
        batch: int = 10,
        concurrency: int = 10,
        subject_prefix: str = "",
        batch_handler: BatchHandler | None = None,
    ) -> None:
        self._js = js
        self._prefix = subject_prefix
        self._stream = stream
        self._spec = spec
        self._handler = handler
        self._batch_handler = batch_handler
        self._dead_letter = list(dead_letter) or [
            jetstream_dead_letter_sink(js, prefix=subject_prefix)
        ]
        self._retry_delays = list(retry_delays_s) or [1.0]
        self._batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self.processed = 0

    @property
    def name(self) -> str:
        """The durable name."""
        return self._spec.durable

    async def run(self) -> None:
        """Set up the consumer and process messages until :meth:`stop` is called."""
        await ensure_consumer(self._js, self._stream, self._spec)
        sub = await self._js.pull_subscribe_bind(durable=self._spec.durable, stream=self._stream)
        log.info("consumer running", consumer=self.name, subject=self._spec.filter_subject)
        try:
            while not self._stopping.is_set():
                try:
                    msgs = await sub.fetch(self._batch, timeout=1.0)
                except (nats.errors.TimeoutError, TimeoutError):
                    continue  # nothing to do right now
                except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError):
                    await asyncio.sleep(0.5)
                    continue
                except Exception as exc:  # server restarts surface as assorted API errors
                    log.warning(
                        "fetch failed", consumer=self.name, error=str(exc) or type(exc).__name__
                    )
                    await asyncio.sleep(0.5)
                    continue
                if self._batch_handler is not None and msgs:
                    await self._slots.acquire()
                    self._spawn(self._process_batch(msgs))
                    continue
                for msg in msgs:
                    await self._slots.acquire()
                    self._spawn(self._process(msg))
        finally:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            try:
                await sub.unsubscribe()
            except Exception:  # the connection may already be closing
                pass

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def stop(self) -> None:
        """Stop fetching; in-flight messages finish (``run`` returns after they do)."""
        self._stopping.set()

    def _delivery(self, msg: Msg) -> Delivery:
        meta = msg.metadata
        subject = msg.subject
        if self._prefix and subject.startswith(self._prefix):
            subject = subject[len(self._prefix) :]
        return Delivery(
            subject=subject,
            data=msg.data,
            headers=dict(msg.headers or {}),
            attempt=meta.num_delivered,
            max_deliver=self._spec.max_deliver,
            stream_sequence=meta.sequence.stream,
            msg=msg,
        )

    async def _process_batch(self, msgs: list[Msg]) -> None:
        """The whole fetch through the batch handler; each message alone if that fails."""
        assert self._batch_handler is not None
        heartbeat = asyncio.create_task(self._heartbeat(*msgs))
        deliveries = [self._delivery(msg) for msg in msgs]
        try:
            await self._batch_handler(deliveries)
        except PartlyDone as partial:
            await self._settle_partly_done(deliveries, partial)
            return
        except Exception as exc:
            log.warning(
                "batch failed; handling its messages one by one",
                consumer=self.name,
                size=len(msgs),
                error=f"{type(exc).__name__}: {exc}",
            )
        else:
            for msg in msgs:
                await _quietly(msg.ack())
            self.processed += len(msgs)
            return
        finally:
            heartbeat.cancel()
        await asyncio.gather(*(self._process(msg) for msg in msgs))

    async def _settle_partly_done(self, deliveries: list[Delivery], partial: PartlyDone) -> None:
        """Ack what a batch handler did, settle what failed, hand the rest to the handler."""
        failed = {id(delivery): exc for delivery, exc in partial.failed}
        alone = {id(delivery) for delivery in partial.alone}
        for delivery in deliveries:
            if id(delivery) in failed:
                with bind_call(delivery.call_id or "-", consumer=self.name):
                    await self._settle_failure(delivery, failed[id(delivery)])
            elif id(delivery) not in alone:
                await _quietly(delivery.msg.ack())
                self.processed += 1
        await asyncio.gather(*(self._process(d.msg) for d in deliveries if id(d) in alone))

    async def _process(self, msg: Msg) -> None:
        delivery = self._delivery(msg)
        headers = delivery.headers
        call_id = delivery.call_id or "-"
        with bind_call(call_id, consumer=self.name):
            from opentelemetry import context as otel_context

            token = otel_context.attach(extract_trace(headers))
            heartbeat = asyncio.create_task(self._heartbeat(msg))
            try:
                await self._handler(delivery)
            except Exception as exc:
                await self._settle_failure(delivery, exc)
                return
            finally:
                heartbeat.cancel()
                otel_context.detach(token)
            await _quietly(msg.ack())
            self.processed += 1

    async def _settle_failure(self, delivery: Delivery, exc: Exception) -> None:
        """Dead-letter a permanent failure or the last attempt; nak anything else with a delay."""
        if isinstance(exc, PermanentFailure):
            await self._give_up(delivery, f"permanent failure: {exc}")
            return
        reason = f"{type(exc).__name__}: {exc}"
        if delivery.is_last_attempt:
            await self._give_up(delivery, f"gave up after {delivery.attempt} attempts: {reason}")
            return
        delay = exc.delay_s if isinstance(exc, RetryLater) and exc.delay_s is not None else None
        if delay is None:
            delay = self._retry_delays[min(delivery.attempt - 1, len(self._retry_delays) - 1)]
        log.warning(
            "step failed, will retry",
            attempt=delivery.attempt,
            retry_in_s=delay,
            error=reason,
            exc_info=False if isinstance(exc, RetryLater) else exc,
        )
        await _quietly(delivery.msg.nak(delay=delay))

    async def _heartbeat(self, *msgs: Msg) -> None:
        interval = max(self._spec.ack_wait_s / 3.0, 0.5)
        while True:
            await asyncio.sleep(interval)
            for msg in msgs:
                await _quietly(msg.in_progress())

    async def _give_up(self, delivery: Delivery, reason: str) -> None:
        record = DeadLetter(
            consumer=self.name,
            subject=delivery.subject,
            stream_sequence=delivery.stream_sequence,
            attempts=delivery.attempt,
            reason=reason,
            event_id=delivery.event_id,
            call_id=delivery.call_id,
            payload=delivery.data,
        )
        for sink in self._dead_letter:
            try:
                await sink(record)
            except Exception:
                # The record could not be stored: leave the message unacked so it is not lost.
                log.exception("dead-letter sink failed; message left for redelivery")
                return
        log.error("dead-lettered", reason=reason, attempts=delivery.attempt)
        await _quietly(delivery.msg.term())


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception as exc:  # acks to a restarting server fail; redelivery covers it
        log.warning("ack/nak not sent", error=str(exc) or type(exc).__name__)


async def watch_max_deliveries(
    *,
    nc: NatsClient,
    js: JetStreamContext,
    stream: str,
    consumers: Sequence[str],
    sink: DeadLetterSink,
    prefix: str = "",
) -> Any:
    """Dead-letter messages whose last delivery was never answered (the process died).

    Subscribes to ``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>`` and, for
    each advisory, fetches the message from the stream and hands it to ``sink``.

    Returns:
        the subscription, to unsubscribe on shutdown.

    """
    wanted = set(consumers)

    async def on_advisory(msg: Msg) -> None:
        try:
            advisory = json.loads(msg.data)
            consumer = advisory["consumer"]
            if consumer not in wanted:
                return
            seq = int(advisory["stream_seq"])
            stored = await js.get_msg(stream, seq)
            subject = stored.subject or ""
            if prefix and subject.startswith(prefix):
                subject = subject[len(prefix) :]
            record = DeadLetter(
                consumer=consumer,
                subject=subject,
                stream_sequence=seq,
                attempts=int(advisory.get("deliveries", 0)),
                reason="max deliveries reached without an answer (consumer crashed or timed out)",
                event_id=(stored.headers or {}).get("Nats-Msg-Id"),
                call_id=(stored.headers or {}).get("Cc-Call-Id"),
                payload=stored.data or b"",
            )
            await sink(record)
            log.error("dead-lettered from advisory", consumer=consumer, stream_sequence=seq)
        except Exception:
            log.exception("max-deliveries advisory not recorded")

    return await nc.subscribe(
        f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.*", cb=on_advisory
    )
