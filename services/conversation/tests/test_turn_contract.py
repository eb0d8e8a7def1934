"""The service validates every turn request with the contract and answers in typed chunks."""

from __future__ import annotations

import json
import uuid

import pytest

from callcenter.common.bus import Bus, StreamError
from callcenter.common.clients import ConversationClient
from callcenter.common.contracts import CONVERSATION_TURN, DeltaChunk, DoneChunk, TurnRequest


@pytest.mark.parametrize(
    "body",
    [
        {"channel": "chat", "text": "no call id"},
        {"call_id": "c-1", "channel": "fax", "text": "4111 1111 1111 1111"},
        {"call_id": "c-1", "caller": "4111 1111 1111 1111"},
        {"call_id": "c-1", "schema_version": 99},
    ],
)
async def test_a_malformed_request_is_refused_without_echoing_it(
    bus: Bus, serve, body: dict
) -> None:
    await serve()
    stream = await bus.stream_request(CONVERSATION_TURN, body, first_timeout_s=20)
    with pytest.raises(StreamError) as info:
        async for _ in stream:
            pass
    assert info.value.code == "bad_request", info.value
    assert "4111" not in info.value.message
    assert "conversation.turn request" in info.value.message


async def test_every_chunk_is_a_contract_chunk_and_turns_count_up(bus: Bus, serve) -> None:
    await serve()
    client = ConversationClient(bus=bus, first_timeout_s=20)
    call_id = "test-" + uuid.uuid4().hex[:10]
    for index in range(2):
        stream = await client.stream_turn(TurnRequest(call_id=call_id, text="Hello there"))
        chunks = [chunk async for chunk in stream]
        assert isinstance(chunks[-1], DoneChunk) and chunks[-1].turn_index == index
        assert all(isinstance(c, DeltaChunk) for c in chunks[:-1] if c.type != "tool")
        assert chunks[-1].text == stream.text
        assert json.loads(chunks[-1].to_bytes())["schema_version"] == 1


@pytest.mark.parametrize("channel", ["voice", "chat"])
async def test_turn_completed_is_stored_before_the_done_chunk_on_every_channel(
    bus: Bus, serve, channel: str
) -> None:
    await serve()
    call_id = "test-" + uuid.uuid4().hex[:10]
    stream = await ConversationClient(bus=bus, first_timeout_s=20).stream_turn(
        TurnRequest(call_id=call_id, channel=channel, text="Hello there", stt_final_ms=12.5)
    )
    done = await stream.reply()
    # no waiting: the event was published (and acknowledged by JetStream) before the done chunk
    last = await bus.js.get_last_msg(bus.settings.stream, bus.subject("turn.completed"))
    event = json.loads(last.data)
    assert (event["call_id"], event["turn_index"]) == (call_id, done.turn_index)
    assert event["channel"] == channel and event["latency"]["stt_final_ms"] == 12.5
