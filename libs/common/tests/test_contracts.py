"""The request/reply contracts: what a peer may send, what is refused, and the wire shapes."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from callcenter.common.contracts import (
    CONVERSATION_TURN,
    CONVERSATION_TURN_CANCEL,
    DeltaChunk,
    DoneChunk,
    ToolCallRequest,
    ToolChunk,
    ToolOutcome,
    ToolsList,
    TurnCancel,
    TurnRequest,
    cancel_subject,
    parse_chunk,
)


def test_a_turn_request_round_trips_and_fills_defaults() -> None:
    request = TurnRequest.from_bytes(b'{"call_id": "c1", "text": "hi"}')
    assert request.channel == "chat" and request.caller.number is None
    assert TurnRequest.from_bytes(request.to_bytes()) == request
    body = json.loads(request.to_bytes())
    assert body["schema_version"] == 1 and body["caller"] == {
        "number": None,
        "verified_by_caller_id": False,
        "linked_call_id": None,
    }


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"text": "no call id"}',
        b'{"call_id": ""}',
        b'{"call_id": "c1", "channel": "fax"}',
        b'{"call_id": "c1", "caller": "555"}',
        b'{"call_id": "c1", "schema_version": 2}',
        b'{"call_id": "c1", "stt_final_ms": -1}',
    ],
)
def test_a_bad_turn_request_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
        TurnRequest.from_bytes(body)


def test_unknown_fields_from_a_newer_peer_are_ignored() -> None:
    request = TurnRequest.from_bytes(b'{"call_id": "c1", "mood": "happy"}')
    assert "mood" not in request.model_dump()


def test_chunks_are_told_apart_by_type() -> None:
    assert parse_chunk(DeltaChunk(text="Hel").to_bytes()) == DeltaChunk(text="Hel")
    tool = parse_chunk(b'{"type": "tool", "name": "lookup", "status": "finished", "success": true}')
    assert isinstance(tool, ToolChunk) and tool.success is True
    done = parse_chunk(
        b'{"type": "done", "turn_index": 3, "text": "Bye", "end_call": true,'
        b' "transfer": {"reason": "asked", "summary": "s"}}'
    )
    assert isinstance(done, DoneChunk)
    assert done.turn_index == 3 and done.end_call and done.transfer and done.transfer.reason
    for bad in (b'{"type": "shout", "text": "x"}', b'{"type": "done"}', b'{"text": "x"}'):
        with pytest.raises(ValidationError):
            parse_chunk(bad)


def test_the_cancel_subject_is_spelled_once() -> None:
    assert (
        CONVERSATION_TURN_CANCEL == cancel_subject(CONVERSATION_TURN) == "conversation.turn.cancel"
    )
    assert TurnCancel.from_bytes(b"{}").delivered_text == ""


def test_a_tool_call_request_carries_parsed_arguments_only() -> None:
    request = ToolCallRequest.from_bytes(
        b'{"name": "lookup", "arguments": {"order_id": "ORD-1"}, "context": {"call_id": "c"}}'
    )
    assert request.arguments == {"order_id": "ORD-1"} and request.context.call_id == "c"
    for bad in (
        b'{"arguments": {}}',
        b'{"name": "x", "arguments": "{}"}',
        b'{"name": "x", "context": {"verified_customer_id": ["CUS-1"]}}',
    ):
        with pytest.raises(ValidationError):
            ToolCallRequest.from_bytes(bad)


def test_a_tool_outcome_has_exactly_the_reply_shape_on_the_wire() -> None:
    assert json.loads(ToolOutcome.ok({"n": 1}).to_bytes()) == {"success": True, "data": {"n": 1}}
    failed = json.loads(ToolOutcome.failure("nope", "Can't.").to_bytes())
    assert failed == {"success": False, "error": "nope", "message": "Can't."}
    assert ToolOutcome.from_bytes(ToolOutcome.ok({"n": 1}).to_bytes()) == ToolOutcome.ok({"n": 1})
    assert json.loads(ToolsList(tools=[{"a": 1}]).to_bytes()) == {"tools": [{"a": 1}]}


def test_a_tool_outcome_writes_dates_as_text() -> None:
    from datetime import date

    body = json.loads(ToolOutcome.ok({"on": date(2026, 1, 2)}).to_bytes())
    assert body == {"success": True, "data": {"on": "2026-01-02"}}


def test_chat_frames_are_told_apart_and_keep_their_wire_shape() -> None:
    from callcenter.common.contracts.chat import (
        DoneFrame,
        EndedFrame,
        SessionFrame,
        ToolFrame,
        parse_chat_frame,
    )

    hello = parse_chat_frame('{"type": "session", "call_id": "c1", "greeting": "Hi"}')
    assert isinstance(hello, SessionFrame) and hello.greeting == "Hi"
    tool = parse_chat_frame('{"type": "tool", "name": "x", "status": "finished"}')
    assert isinstance(tool, ToolFrame)
    done = DoneFrame(turn_index=1, text="Bye", end_call=True)
    assert json.loads(done.to_text()) == {
        "type": "done",
        "turn_index": 1,
        "text": "Bye",
        "end_call": True,
        "transfer": None,
    }
    assert json.loads(EndedFrame(reason="idle_timeout").to_text()) == {
        "type": "ended",
        "reason": "idle_timeout",
    }
    for bad in ('{"type": "shout"}', '{"type": "done", "text": "no index"}', "[]"):
        with pytest.raises(ValidationError):
            parse_chat_frame(bad)
