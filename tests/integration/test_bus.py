"""The bus on a real NATS JetStream server: dedup, redelivery, dead letters, streamed replies."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from nats.aio.msg import Msg

from callcenter.common.bus import (
    Bus,
    DeadLetter,
    Delivery,
    NoResponders,
    PermanentFailure,
    StreamError,
    StreamingRequest,
    StreamingResponder,
    watch_max_deliveries,
)
from callcenter.common.bus.streams import ConsumerSpec, ensure_consumer
from callcenter.common.events import CallEnded, CallStarted, parse_event


def _durable() -> str:
    return "test_" + uuid.uuid4().hex[:8]


def _mine(delivery: Delivery, call_id: str) -> bool:
    return json.loads(delivery.data)["call_id"] == call_id


async def _stored(bus: Bus, subject: str, call_id: str) -> list[bytes]:
    """Every message stored on ``subject`` for ``call_id`` (read with an ephemeral consumer)."""
    sub = await bus.js.pull_subscribe(
        bus.subject(subject), durable=None, stream=bus.settings.stream
    )
    found: list[bytes] = []
    try:
        while True:
            try:
                msgs = await sub.fetch(100, timeout=0.5)
            except Exception:
                break
            for msg in msgs:
                if json.loads(msg.data).get("call_id") == call_id:
                    found.append(msg.data)
                await msg.ack()
    finally:
        await sub.unsubscribe()
    return found


async def test_duplicate_publish_is_stored_once(bus: Bus) -> None:
    event = CallStarted(call_id=uuid.uuid4().hex, channel="chat")
    first = await bus.publish(event)
    again = await bus.publish(event)
    assert not first.duplicate and again.duplicate and again.seq == first.seq
    stored = await _stored(bus, "call.started", event.call_id)
    assert len(stored) == 1
    assert parse_event("call.started", stored[0]) == event


async def test_failing_handler_is_retried_after_its_delay_then_dead_lettered(bus: Bus) -> None:
    attempts: list[tuple[int, float]] = []
    dead: list[DeadLetter] = []
    done = asyncio.Event()
    event = CallEnded(
        call_id=uuid.uuid4().hex, channel="chat", reason="test", duration_s=1, turn_count=0
    )

    async def handler(delivery: Delivery) -> None:
        if not _mine(delivery, event.call_id):
            return
        attempts.append((delivery.attempt, time.monotonic()))
        raise RuntimeError("downstream is down")

    async def sink(record: DeadLetter) -> None:
        dead.append(record)
        done.set()

    durable = _durable()
    # JetStream's advisory for a message terminated by its consumer (AckTerm): the positive sign
    # that it is never delivered again (max_deliver alone would also stop at 3, silently)
    terminated: list[dict] = []
    was_terminated = asyncio.Event()

    async def on_terminated(msg: Msg) -> None:
        terminated.append(json.loads(msg.data))
        was_terminated.set()

    advisory = await bus.nc.subscribe(
        f"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{bus.settings.stream}.{durable}",
        cb=on_terminated,
    )
    consumer = bus.consumer(
        durable=durable, subject="call.ended", handler=handler, max_deliver=3,
        retry_delays_s=[0.4, 0.8], dead_letter=[sink],
    )  # fmt: skip
    runner = asyncio.create_task(consumer.run())
    try:
        await bus.publish(event)
        await asyncio.wait_for(done.wait(), timeout=15)
        await asyncio.wait_for(was_terminated.wait(), timeout=10)
    finally:
        await advisory.unsubscribe()
        await consumer.stop()
        await runner
    mine = attempts
    assert [n for n, _ in mine] == [1, 2, 3]
    assert mine[1][1] - mine[0][1] >= 0.35  # nak(delay=0.4) honoured
    assert mine[2][1] - mine[1][1] >= 0.7  # then 0.8
    assert len(dead) == 1
    record = dead[0]
    assert record.event_id == event.event_id and record.call_id == event.call_id
    assert record.attempts == 3 and "downstream is down" in record.reason
    assert record.subject == "call.ended"  # the deployment prefix is stripped
    assert len(terminated) == 1 and terminated[0]["deliveries"] == 3  # never delivered again
    assert len(attempts) == 3


async def test_permanent_failure_goes_to_the_dead_letter_stream_at_once(bus: Bus) -> None:
    seen: list[int] = []
    event = CallEnded(
        call_id=uuid.uuid4().hex, channel="sms", reason="x", duration_s=0, turn_count=0
    )

    async def handler(delivery: Delivery) -> None:
        if not _mine(delivery, event.call_id):
            return
        seen.append(delivery.attempt)
        raise PermanentFailure("payload refers to nothing")

    durable = _durable()
    consumer = bus.consumer(durable=durable, subject="call.ended", handler=handler, max_deliver=5)
    runner = asyncio.create_task(consumer.run())
    try:
        await bus.publish(event)
        dlq = await bus.js.pull_subscribe(
            bus.subject(f"deadletter.{durable}"),
            durable=None,
            stream=bus.settings.dead_letter_stream,
        )
        record = None
        for _ in range(20):
            msgs = await dlq.fetch(10, timeout=5)
            mine = [
                json.loads(m.data) for m in msgs if json.loads(m.data)["call_id"] == event.call_id
            ]
            if mine:
                record = mine[0]
                break
    finally:
        await consumer.stop()
        await runner
    assert record is not None
    assert seen == [1]  # never retried
    assert record["consumer"] == durable and record["call_id"] == event.call_id
    assert record["payload"]["call_id"] == event.call_id and "refers to nothing" in record["reason"]


async def test_slow_handler_is_kept_alive_with_in_progress(bus: Bus) -> None:
    attempts: list[int] = []
    finished = asyncio.Event()
    event = CallEnded(
        call_id=uuid.uuid4().hex, channel="chat", reason="x", duration_s=0, turn_count=0
    )

    async def handler(delivery: Delivery) -> None:
        if not _mine(delivery, event.call_id):
            return
        attempts.append(delivery.attempt)
        await asyncio.sleep(3.5)  # longer than ack_wait: only in_progress() prevents redelivery
        finished.set()

    consumer = bus.consumer(
        durable=_durable(), subject="call.ended", handler=handler, ack_wait_s=1.5
    )
    runner = asyncio.create_task(consumer.run())
    try:
        await bus.publish(event)
        await asyncio.wait_for(finished.wait(), timeout=15)
        await asyncio.sleep(2.0)
    finally:
        await consumer.stop()
        await runner
    assert attempts == [1]


async def test_unanswered_last_delivery_is_dead_lettered_from_the_advisory(bus: Bus) -> None:
    """A consumer process that dies on every attempt never reaches its own dead-letter code."""
    durable = _durable()
    records: list[DeadLetter] = []
    got = asyncio.Event()

    async def sink(record: DeadLetter) -> None:
        records.append(record)
        got.set()

    watcher = await watch_max_deliveries(
        nc=bus.nc, js=bus.js, stream=bus.settings.stream, consumers=[durable], sink=sink,
        prefix=bus.settings.subject_prefix,
    )  # fmt: skip
    spec = ConsumerSpec(
        durable=durable, filter_subject=bus.subject("call.ended"), max_deliver=2, ack_wait_s=1.0
    )
    await ensure_consumer(bus.js, bus.settings.stream, spec)
    event = CallEnded(
        call_id=uuid.uuid4().hex, channel="voice", reason="x", duration_s=0, turn_count=0
    )
    await bus.publish(event)
    sub = await bus.js.pull_subscribe_bind(durable=durable, stream=bus.settings.stream)
    try:
        # Take each delivery of our event and "crash" (never answer); other events are acked.
        # The restarted consumer keeps pulling; once the message is out of deliveries the
        # server emits the advisory instead of delivering it again.
        deliveries = 0
        for _ in range(30):
            if got.is_set():
                break
            try:
                msgs = await sub.fetch(5, timeout=1)
            except TimeoutError:
                continue
            for msg in msgs:
                if json.loads(msg.data)["call_id"] == event.call_id:
                    deliveries += 1
                else:
                    await msg.ack()
        assert deliveries == 2
        await asyncio.wait_for(got.wait(), timeout=5)
    finally:
        await watcher.unsubscribe()
        await sub.unsubscribe()
    assert records[0].event_id == event.event_id and records[0].subject == "call.ended"
    assert records[0].attempts == 2


@pytest.fixture
async def counter_service(bus: Bus) -> AsyncIterator[tuple[str, list[StreamingRequest]]]:
    subject = "test.count." + uuid.uuid4().hex[:6]
    finished: list[StreamingRequest] = []

    async def handler(request: StreamingRequest) -> AsyncIterator[bytes]:
        body = request.json()
        try:
            for index in range(body["n"]):
                if body.get("fail_at") == index:
                    raise ValueError("internal detail that must not leak")
                yield json.dumps({"i": index}).encode()
                await asyncio.sleep(body.get("pause", 0))
        finally:
            finished.append(request)

    responder = StreamingResponder(
        nc=bus.nc, subject=bus.subject(subject), queue="q", handler=handler
    )
    await responder.start()
    yield subject, finished
    await responder.stop()


async def test_streamed_reply_arrives_complete_and_in_order(
    bus: Bus, counter_service: tuple[str, list[StreamingRequest]]
) -> None:
    subject, _ = counter_service
    stream = await bus.stream_request(subject, {"n": 200})
    received = [chunk async for chunk in stream]
    assert [c.seq for c in received] == list(range(200))
    assert [c.json()["i"] for c in received] == list(range(200))
    assert stream.finished  # the end marker arrived


async def test_streamed_reply_error_is_reported_without_internals(
    bus: Bus, counter_service: tuple[str, list[StreamingRequest]]
) -> None:
    subject, _ = counter_service
    stream = await bus.stream_request(subject, {"n": 5, "fail_at": 2})
    got = []
    with pytest.raises(StreamError) as info:
        async for chunk in stream:
            got.append(chunk.json()["i"])
    assert got == [0, 1]
    assert info.value.code == "internal" and "internal detail" not in info.value.message


async def test_cancel_stops_the_server_and_hands_it_the_payload(
    bus: Bus, counter_service: tuple[str, list[StreamingRequest]]
) -> None:
    subject, finished = counter_service
    stream = await bus.stream_request(subject, {"n": 1000, "pause": 0.01})
    async for chunk in stream:
        if chunk.json()["i"] == 3:
            await stream.cancel(b'{"delivered_text": "0123"}')
            break
    for _ in range(100):
        if any(r.stream_id == stream.stream_id for r in finished):
            break
        await asyncio.sleep(0.02)
    request = next(r for r in finished if r.stream_id == stream.stream_id)
    assert request.cancelled and json.loads(request.cancel_payload) == {"delivered_text": "0123"}


async def test_request_to_a_subject_nobody_serves_fails_fast(bus: Bus) -> None:
    started = time.monotonic()
    stream = await bus.stream_request(
        "nobody.serves." + uuid.uuid4().hex[:6], {}, first_timeout_s=10
    )
    with pytest.raises(NoResponders):
        async for _ in stream:
            pass
    assert time.monotonic() - started < 5
