"""Streamed requests share one reply subscription per connection: replies never mix or leak.

The peer here is a bare NATS subscriber that answers on the wire as the test tells it, so replies
can be interleaved, or sent after the requester stopped listening.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import AsyncIterator

import nats.errors
import pytest
from nats.aio.msg import Msg

from callcenter.common.bus import Bus, NoResponders, StreamError, stream_request
from callcenter.common.bus.reply_mux import reply_mux
from callcenter.common.bus.streaming import KIND_HEADER, SEQ_HEADER, STREAM_ID_HEADER


class WirePeer:
    """Takes streamed requests on a subject and answers them when told to."""

    def __init__(self, *, bus: Bus) -> None:
        self.bus = bus
        self.subject = "test.mux." + uuid.uuid4().hex[:8]
        self.requests: asyncio.Queue[Msg] = asyncio.Queue()

    async def start(self) -> None:
        async def on_request(msg: Msg) -> None:
            self.requests.put_nowait(msg)

        self._sub = await self.bus.nc.subscribe(self.subject, cb=on_request)
        await self.bus.nc.flush()

    async def stop(self) -> None:
        await self._sub.unsubscribe()

    async def chunk(self, request: Msg, seq: int, data: bytes) -> None:
        await self.bus.nc.publish(
            request.reply, data, headers={KIND_HEADER: "chunk", SEQ_HEADER: str(seq)}
        )

    async def end(self, request: Msg, seq: int) -> None:
        await self.bus.nc.publish(
            request.reply, b"", headers={KIND_HEADER: "end", SEQ_HEADER: str(seq)}
        )


@pytest.fixture
async def peer(bus: Bus) -> AsyncIterator[WirePeer]:
    wire_peer = WirePeer(bus=bus)
    await wire_peer.start()
    yield wire_peer
    await wire_peer.stop()


async def _answer_whole(peer: WirePeer, pieces: list[bytes]) -> None:
    """Answer the next request with ``pieces`` and an end marker."""
    request = await peer.requests.get()
    for seq, piece in enumerate(pieces):
        await peer.chunk(request, seq, piece)
    await peer.end(request, len(pieces))


async def test_two_concurrent_streams_on_one_connection_never_mix(bus: Bus, peer: WirePeer) -> None:
    mux = reply_mux(bus.nc)
    first = await stream_request(bus.nc, peer.subject, b"first")
    second = await stream_request(bus.nc, peer.subject, b"second")
    assert first.stream_id != second.stream_id
    assert {
        first.stream_id.rpartition(".")[0] + ".",
        second.stream_id.rpartition(".")[0] + ".",
    } == {mux.prefix}
    requests = {}
    for _ in range(2):
        msg = await peer.requests.get()
        requests[msg.data] = msg
    assert (
        requests[b"first"].headers[STREAM_ID_HEADER] == first.stream_id == requests[b"first"].reply
    )

    async def read(stream) -> list[tuple[int, bytes]]:
        return [(chunk.seq, chunk.data) async for chunk in stream]

    readers = [asyncio.create_task(read(first)), asyncio.create_task(read(second))]
    for seq in range(50):  # interleaved on the wire: first 0, second 0, first 1, ...
        await peer.chunk(requests[b"first"], seq, f"first-{seq}".encode())
        await peer.chunk(requests[b"second"], seq, f"second-{seq}".encode())
    await peer.end(requests[b"second"], 50)
    await peer.end(requests[b"first"], 50)
    got_first, got_second = await asyncio.gather(*readers)
    assert got_first == [(seq, f"first-{seq}".encode()) for seq in range(50)]
    assert got_second == [(seq, f"second-{seq}".encode()) for seq in range(50)]
    assert first.finished and second.finished


async def test_a_late_reply_after_timeout_goes_nowhere_and_the_inbox_is_released(
    bus: Bus, peer: WirePeer
) -> None:
    mux = reply_mux(bus.nc)
    open_before, late_before = mux.open_requests, mux.late_replies
    stream = await stream_request(bus.nc, peer.subject, b"slow", first_timeout_s=0.2)
    request = await peer.requests.get()
    assert mux.open_requests == open_before + 1
    with pytest.raises(StreamError) as info:
        async for _ in stream:
            pass
    assert info.value.code == "timeout"
    assert mux.open_requests == open_before

    # the answer comes after the requester gave up; the next request on the connection is
    # answered after it on the same wire, so once that one is read the late one was routed
    await peer.chunk(request, 0, b"late")
    await peer.end(request, 1)
    following = await stream_request(bus.nc, peer.subject, b"next")
    answering = asyncio.create_task(_answer_whole(peer, [b"own"]))
    assert [chunk.data async for chunk in following] == [b"own"]
    await answering
    assert mux.late_replies == late_before + 2  # the late chunk and its end marker, dropped
    assert mux.open_requests == open_before


async def test_a_late_reply_after_cancel_goes_nowhere(bus: Bus, peer: WirePeer) -> None:
    mux = reply_mux(bus.nc)
    open_before, late_before = mux.open_requests, mux.late_replies
    stream = await stream_request(bus.nc, peer.subject, b"long")
    request = await peer.requests.get()
    await peer.chunk(request, 0, b"zero")
    async for chunk in stream:
        assert chunk.data == b"zero"
        await stream.cancel(b"stop")
        break
    assert mux.open_requests == open_before

    await peer.chunk(request, 1, b"one, after the cancel")
    following = await stream_request(bus.nc, peer.subject, b"next")
    answering = asyncio.create_task(_answer_whole(peer, [b"own"]))
    assert [chunk.data async for chunk in following] == [b"own"]
    await answering
    assert mux.late_replies == late_before + 1
    assert mux.open_requests == open_before


async def test_every_ending_releases_the_request_queue(bus: Bus, peer: WirePeer) -> None:
    mux = reply_mux(bus.nc)
    open_before = mux.open_requests

    stream = await stream_request(bus.nc, peer.subject, b"whole")
    await _answer_whole(peer, [b"a", b"b"])
    assert [chunk.data async for chunk in stream] == [b"a", b"b"]
    assert mux.open_requests == open_before

    stream = await stream_request(bus.nc, peer.subject, b"failing")
    request = await peer.requests.get()
    await bus.nc.publish(
        request.reply,
        b'{"error": "internal", "message": "Something went wrong"}',
        headers={KIND_HEADER: "error", SEQ_HEADER: "0"},
    )
    with pytest.raises(StreamError) as info:
        async for _ in stream:
            pass
    assert info.value.code == "internal" and mux.open_requests == open_before

    stream = await stream_request(bus.nc, peer.subject, b"disordered")
    request = await peer.requests.get()
    await peer.chunk(request, 1, b"skipped one")
    with pytest.raises(StreamError) as info:
        async for _ in stream:
            pass
    assert info.value.code == "out_of_order" and mux.open_requests == open_before

    stream = await stream_request(bus.nc, "nobody.serves." + uuid.uuid4().hex[:6], b"")
    with pytest.raises(NoResponders):
        async for _ in stream:
            pass
    assert mux.open_requests == open_before

    stream = await stream_request(bus.nc, peer.subject, b"never read")
    await peer.requests.get()
    assert mux.open_requests == open_before + 1
    del stream  # dropped without being read or closed
    gc.collect()
    assert mux.open_requests == open_before


async def test_closing_the_connection_ends_a_waiting_stream(config, peer: WirePeer) -> None:
    own = await Bus.connect(config.nats, name="tests-mux", ensure=False)
    stream = await stream_request(own.nc, peer.subject, b"unanswered", first_timeout_s=3600)
    await peer.requests.get()

    async def read() -> None:
        async for _ in stream:
            pass

    reader = asyncio.create_task(read())
    await own.drain()
    with pytest.raises(nats.errors.ConnectionClosedError):
        await reader
    assert reply_mux(own.nc).open_requests == 0
