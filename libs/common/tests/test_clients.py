"""The two clients over real NATS, against a peer that speaks the wire (or breaks it).

The real services answer these clients in services/conversation/tests and services/tools/tests;
here the peer is a plain :class:`StreamingResponder` so the client's own rules can be seen: chunks
validated, a malformed one refused, a cancel sent even after the reply ended, tools failures
turned into outcomes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from callcenter.common.bus import Bus, StreamError, StreamingRequest, StreamingResponder
from callcenter.common.bus.streaming import STREAM_ID_HEADER
from callcenter.common.clients import ConversationClient, ToolsClient
from callcenter.common.clients.tools import GENERIC_FAILURE, UNAVAILABLE_MESSAGE
from callcenter.common.contracts import (
    CONVERSATION_TURN,
    CONVERSATION_TURN_CANCEL,
    TOOLS_CALL,
    DeltaChunk,
    DoneChunk,
    ToolCallRequest,
    TurnCancel,
    TurnRequest,
)


def _isolated(bus: Bus) -> Bus:
    """The same connection under a prefix of its own: no real service answers there."""
    prefix = f"{bus.settings.subject_prefix}client{uuid.uuid4().hex[:6]}."
    return Bus(nc=bus.nc, settings=bus.settings.model_copy(update={"subject_prefix": prefix}))


@pytest.fixture
async def peer(bus: Bus) -> AsyncIterator[tuple[Bus, list[bytes], list[StreamingRequest]]]:
    """A conversation.turn peer: echoes the request's text, or sends ``pieces`` as they are."""
    own = _isolated(bus)
    pieces: list[bytes] = []
    seen: list[StreamingRequest] = []

    async def handler(request: StreamingRequest) -> AsyncIterator[bytes]:
        seen.append(request)
        if pieces:
            for piece in pieces:
                yield piece
            return
        turn = TurnRequest.from_bytes(request.data)
        yield DeltaChunk(text=turn.text).to_bytes()
        yield DoneChunk(turn_index=0, text=turn.text).to_bytes()

    responder = StreamingResponder(
        nc=own.nc, subject=own.subject(CONVERSATION_TURN), queue="q", handler=handler
    )
    await responder.start()
    yield own, pieces, seen
    await responder.stop()


async def test_a_turn_streams_typed_chunks(peer) -> None:
    own, _, seen = peer
    client = ConversationClient(bus=own, first_timeout_s=5)
    request = TurnRequest(call_id="c1", channel="sms", text="Hello", caller={"number": "+1555"})
    stream = await client.stream_turn(request)
    chunks = [chunk async for chunk in stream]
    assert chunks == [DeltaChunk(text="Hello"), DoneChunk(turn_index=0, text="Hello")]
    assert stream.done == chunks[-1] and stream.text == "Hello" and stream.finished
    assert TurnRequest.from_bytes(seen[0].data) == request


async def test_a_malformed_chunk_ends_the_stream_with_an_error(peer) -> None:
    own, pieces, _ = peer
    pieces.extend([DeltaChunk(text="ok").to_bytes(), b'{"type": "delta"}'])
    stream = await ConversationClient(bus=own, first_timeout_s=5).stream_turn(
        TurnRequest(call_id="c2")
    )
    got = []
    with pytest.raises(StreamError) as info:
        async for chunk in stream:
            got.append(chunk)
    assert got == [DeltaChunk(text="ok")] and info.value.code == "bad_chunk"


async def test_reply_without_a_done_chunk_is_an_error(peer) -> None:
    own, pieces, _ = peer
    pieces.append(DeltaChunk(text="half").to_bytes())
    stream = await ConversationClient(bus=own, first_timeout_s=5).stream_turn(
        TurnRequest(call_id="c3")
    )
    with pytest.raises(StreamError) as info:
        await stream.reply()
    assert info.value.code == "incomplete" and stream.text == "half"


async def test_a_cancel_is_sent_even_after_the_reply_ended(peer) -> None:
    own, _, _ = peer
    cancels: asyncio.Queue = asyncio.Queue()

    async def on_cancel(msg) -> None:
        await cancels.put(msg)

    sub = await own.nc.subscribe(own.subject(CONVERSATION_TURN_CANCEL), cb=on_cancel)
    try:
        stream = await ConversationClient(bus=own, first_timeout_s=5).stream_turn(
            TurnRequest(call_id="c4", text="Long answer")
        )
        done = await stream.reply()
        assert done.text == "Long answer" and stream.finished
        await stream.cancel(delivered_text="Long")
        msg = await asyncio.wait_for(cancels.get(), timeout=5)
        assert msg.headers[STREAM_ID_HEADER] == stream.stream_id
        assert TurnCancel.from_bytes(msg.data).delivered_text == "Long"
    finally:
        await sub.unsubscribe()


async def test_nobody_serving_turns_is_reported(bus: Bus) -> None:
    stream = await ConversationClient(bus=_isolated(bus), first_timeout_s=5).stream_turn(
        TurnRequest(call_id="c5")
    )
    with pytest.raises(StreamError) as info:
        await stream.reply()
    assert info.value.code == "no_responders"


async def test_an_unanswered_tool_call_is_a_failed_outcome(bus: Bus) -> None:
    outcome = await ToolsClient(bus=_isolated(bus), timeout_s=2).call(ToolCallRequest(name="x"))
    assert outcome.success is False and outcome.error == "tool_unavailable"
    assert outcome.message == UNAVAILABLE_MESSAGE


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (b"not json", "bad_reply", GENERIC_FAILURE),
        (
            b'{"success": false, "error": "x", "message": "Traceback (most recent call last)"}',
            "x",
            GENERIC_FAILURE,
        ),
        (b'{"success": false, "message": "Sorry."}', "failed", "Sorry."),
    ],
)
async def test_a_tool_reply_is_checked_and_its_message_made_safe(
    bus: Bus, reply: bytes, error: str, message: str
) -> None:
    own = _isolated(bus)

    async def answer(msg) -> None:
        await msg.respond(reply)

    sub = await own.nc.subscribe(own.subject(TOOLS_CALL), cb=answer)
    try:
        outcome = await ToolsClient(bus=own, timeout_s=5).call(ToolCallRequest(name="x"))
    finally:
        await sub.unsubscribe()
    assert (outcome.success, outcome.error, outcome.message) == (False, error, message)
