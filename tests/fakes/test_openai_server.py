"""The OpenAI-compatible stand-in refuses what the chat completions API refuses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.openai_server import OpenAIStandIn, Reply

TOOL = {
    "type": "function",
    "function": {
        "name": "check_order_status",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
    },
}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "check_order_status", "arguments": '{"order_id": "ORD-1"}'},
}


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIStandIn]:
    stand_in = OpenAIStandIn(api_key="sk-right").start()
    stand_in.default = Reply(text="Fine.")
    yield stand_in
    stand_in.stop()


def post(
    server: OpenAIStandIn, body: dict[str, Any], key: str | None = "sk-right"
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{server.base_url}/chat/completions", json=body, headers=headers)


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": list(messages), **extra}


USER = {"role": "user", "content": "Where is my order?"}
ASKED = {"role": "assistant", "content": None, "tool_calls": [CALL]}
ANSWER = {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'}


def test_a_valid_tool_round_trip_is_answered(server: OpenAIStandIn) -> None:
    response = post(server, chat(USER, ASKED, ANSWER, tools=[TOOL]))
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Fine."


@pytest.mark.parametrize(
    ("key", "code"), [(None, None), ("sk-wrong", "invalid_api_key")], ids=["none", "wrong"]
)
def test_authorization_is_required(
    server: OpenAIStandIn, key: str | None, code: str | None
) -> None:
    response = post(server, chat(USER), key=key)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (chat(USER, ANSWER), "must be a response to a preceeding message with 'tool_calls'"),
        (chat(USER, ASKED, {**ANSWER, "tool_call_id": "call_2"}), "preceeding message"),
        (chat(USER, ASKED), "did not have response messages: call_1"),
        (chat(USER, ASKED, USER, ANSWER), "did not have response messages: call_1"),
        (chat({"role": "user", "content": ""}), "messages[0].content"),
        (chat(USER, {"role": "assistant", "content": None}), "needs 'content' or 'tool_calls'"),
        (chat({"role": "robot", "content": "hi"}), "messages[0].role"),
        (chat(), "non-empty"),
        (
            chat(USER, tools=[{**TOOL, "function": {**TOOL["function"], "name": "check order"}}]),
            "does not match pattern",
        ),
        (
            chat(
                USER,
                tools=[{**TOOL, "function": {"name": "t", "parameters": {"type": "nothing"}}}],
            ),
            "Invalid schema for function 't'",
        ),
        (
            chat(
                USER, tools=[{**TOOL, "function": {"name": "t", "parameters": {"type": "array"}}}]
            ),
            "must be a JSON Schema of 'type: \"object\"'",
        ),
    ],
)
def test_invalid_requests_get_openais_400(
    server: OpenAIStandIn, body: dict[str, Any], words: str
) -> None:
    before = len(server.requests)
    response = post(server, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert words in error["message"]
    assert len(server.requests) == before  # no scripted reply was spent on it
