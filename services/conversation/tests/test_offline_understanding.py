"""What the offline engine reads in a customer's words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callcenter.conversation.history import keep_delivered
from callcenter.conversation.offline.arguments import fill
from callcenter.conversation.offline.entities import extract, intents

NOW = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)  # a Monday evening


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Where is my order ORD-1001?", ["order_status"]),
        ("What is your return policy?", ["knowledge"]),
        ("I want to return order 1003, it doesn't fit", ["return"]),
        ("Can I swap it for a different size?", ["exchange"]),
        ("Please cancel ORD-1002", ["cancel"]),
        ("I'd like to speak to a real person", ["transfer"]),
        ("That's all, bye", ["goodbye"]),
        ("hello", ["greeting"]),
    ],
)
def test_intents(text: str, expected: list[str]) -> None:
    assert intents(text)[: len(expected)] == expected


def test_entities_from_one_message() -> None:
    found = extract(
        "Order #1005 should go to 12 Oak St, Apt 4, Springfield, IL 62704; call +1 (555) 555-0101",
        now=NOW,
    )
    assert found.order_id == "ORD-1005"
    assert found.address == {
        "line1": "12 Oak St",
        "line2": "Apt 4",
        "city": "Springfield",
        "state": "IL",
        "zip": "62704",
    }
    assert found.phone == "+15555550101"
    assert extract("my zip code is 94105").zip == "94105"
    assert extract("my zip code is 94105").code is None
    assert extract("the code is 482913").code == "482913"
    assert extract("ORD-1003 and ORD-1007 please").order_ids == ["ORD-1003", "ORD-1007"]
    assert extract("size L in black").size == "L" and extract("size L in black").color == "black"


def test_times_for_a_callback() -> None:
    assert extract("call me back tomorrow at 3pm", now=NOW).when == datetime(
        2026, 11, 24, 15, 0, tzinfo=UTC
    )
    assert extract("Friday morning works", now=NOW).when == datetime(
        2026, 11, 27, 10, 0, tzinfo=UTC
    )
    assert extract("no time here", now=NOW).when is None


def test_arguments_follow_the_tool_schema() -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "start_return",
            "parameters": {
                "type": "object",
                "properties": {
                    "order_id": {"type": "string"},
                    "item_ids": {"type": "array"},
                    "reason": {"type": "string", "enum": ["does not fit", "wrong item", "other"]},
                    "refund_method": {"enum": ["original_payment", "gift_card"]},
                },
                "required": ["order_id", "item_ids", "reason"],
            },
        },
    }
    slots = {"order_id": "ORD-1003", "item_ids": ["ITM-1003-1"], "zip": "94105"}
    assert fill(tool, slots, text="it's too small, store credit please") == {
        "order_id": "ORD-1003",
        "item_ids": ["ITM-1003-1"],
        "reason": "does not fit",
    }


def test_delivered_prefix_across_rounds() -> None:
    turn = [
        {"role": "user", "content": "Where is it?"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [{"id": "c1"}]},
        {"role": "tool", "tool_call_id": "c1", "content": "{}"},
        {"role": "assistant", "content": "It shipped Monday. It arrives Friday."},
    ]
    assert keep_delivered(turn, "Let me check. It shipped")[1:] == [
        {"role": "assistant", "content": "Let me check.", "tool_calls": [{"id": "c1"}]},
        {"role": "tool", "tool_call_id": "c1", "content": "{}"},
        {"role": "assistant", "content": "It shipped"},
    ]
    assert keep_delivered(turn, "Let")[-2:] == [
        {"role": "assistant", "content": "Let", "tool_calls": [{"id": "c1"}]},
        {"role": "tool", "tool_call_id": "c1", "content": "{}"},
    ]
    # words the speech engine reports differently replace the text
    assert keep_delivered(turn, "it shipped monday")[-1] == {
        "role": "assistant",
        "content": "it shipped monday",
    }
