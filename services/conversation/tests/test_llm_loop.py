"""The LLM tool loop over conversation.turn, with the stand-in model and the real tools service.

Every test runs on both model paths (``llm.models[].client``): the lean OpenAI-compatible client
and litellm, with the same assertions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from callcenter.common.bus import Bus
from callcenter.common.config import CallCenterConfig
from callcenter.common.telemetry import setup_tracing
from callcenter.conversation.engine import END_CALL_TOOL
from callcenter.conversation.service import ConversationService, build_engine
from tests.fakes.openai_server import OpenAIStandIn, Reply, ToolCall

from .conftest import Conversation, turn_events, with_models

INTERNAL_WORDS = ("Traceback", "order_not_found", "check_order_status", "Exception", "tool_")


def on_path(config: CallCenterConfig, client: str) -> CallCenterConfig:
    """``config`` whose every LLM is reached through ``client``."""
    models = [m.model_copy(update={"client": client}) for m in config.llm.models]
    return config.model_copy(update={"llm": config.llm.model_copy(update={"models": models})})


@pytest.fixture(params=["openai", "litellm"])
def llm_client(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def serve(serve: Callable[..., Any], llm_client: str) -> Callable[..., Any]:
    """The conversation service with its LLMs on this test's path."""

    async def start(cfg: CallCenterConfig) -> Any:
        return await serve(on_path(cfg, llm_client))

    return start


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m["role"] == "tool"]


async def test_model_calls_two_tools_at_once_then_one_more_and_answers(
    config: CallCenterConfig, bus, redis_client, db_pool, tools_service, llm: OpenAIStandIn, serve
) -> None:
    await serve(with_models(config, llm, "primary"))
    status = ToolCall("check_order_status", {"order_id": "ORD-1001"}, id="call_status")
    policy = ToolCall("search_knowledge_base", {"query": "return window"}, id="call_kb")
    verify = ToolCall(
        "verify_identity",
        {"method": "order_number_zip", "order_id": "ORD-1001", "zip": "94105"},
        id="call_verify",
    )
    llm.script(
        "primary",
        Reply(text="Let me check that.", tool_calls=[status, policy]),
        Reply(tool_calls=[verify]),
        Reply(text="Your order ORD-1001 is on its way with UPS. You're verified now."),
    )
    chat = Conversation(bus)
    result = await chat.say("Where is my order ORD-1001, and how long do I have to return it?")

    # the stream: text, two tool calls started together, their results, a third tool, the answer
    assert [c["id"] for c in result.tools("started")] == ["call_status", "call_kb", "call_verify"]
    assert {c["id"] for c in result.tools("finished")} == {"call_status", "call_kb", "call_verify"}
    assert all(c["success"] for c in result.tools("finished"))
    done = result.done
    assert done["engine"] == "openai/primary"
    assert done["turn_index"] == 0
    assert done["text"] == result.text
    assert result.text == (
        "Let me check that. Your order ORD-1001 is on its way with UPS. You're verified now."
    )
    assert done["end_call"] is False and done["transfer"] is None

    # what the model received
    first, second, third = llm.requests_for("primary")
    schema = (await bus.request_json("tools.list", {}))["tools"]
    assert first["tools"] == [*schema, END_CALL_TOOL]
    assert first["stream"] is True
    system = first["messages"][0]
    assert system["role"] == "system"
    assert system["content"].startswith(
        config.conversation.system_prompt.format(persona=config.conversation.persona)
    )
    assert "not verified" in system["content"]
    assert first["messages"][-1] == {
        "role": "user",
        "content": "Where is my order ORD-1001, and how long do I have to return it?",
    }
    assert [m["tool_call_id"] for m in tool_messages(second)] == ["call_status", "call_kb"]
    order = await db_pool.fetchrow("SELECT status FROM orders WHERE order_id = 'ORD-1001'")
    status_reply = json.loads(tool_messages(second)[0]["content"])
    assert status_reply["success"] is True
    assert status_reply["data"]["order_id"] == "ORD-1001"
    assert status_reply["data"]["status"] == order["status"]
    assert json.loads(tool_messages(second)[1]["content"])["data"]["articles"]
    assert [m["tool_call_id"] for m in tool_messages(third)] == [
        "call_status",
        "call_kb",
        "call_verify",
    ]
    verify_reply = json.loads(tool_messages(third)[-1]["content"])
    assert verify_reply["data"]["verified_customer_id"] == "CUS-0001"

    # the verified customer lives in the session, and later tools are authorised from it, not
    # from what the model writes
    session = json.loads(await redis_client.get(f"{config.redis.key_prefix}session:{chat.call_id}"))
    assert session["verified_customer_id"] == "CUS-0001"
    assert session["turn_index"] == 1
    assert await redis_client.ttl(f"{config.redis.key_prefix}session:{chat.call_id}") > 0
    llm.script(
        "primary",
        Reply(tool_calls=[ToolCall("list_recent_orders", {}, id="c4")]),
        Reply(text="Here are your orders."),
    )
    again = await chat.say("What are my recent orders?")
    assert again.done["turn_index"] == 1
    fourth, fifth = llm.requests_for("primary")[3:]
    assert "verified (customer id CUS-0001)" in fourth["messages"][0]["content"]
    # the history of the first turn is in the prompt of the second
    said = [m.get("content") for m in fourth["messages"] if m["role"] == "assistant"]
    assert said == [
        "Let me check that.",
        None,
        "Your order ORD-1001 is on its way with UPS. You're verified now.",
    ]
    orders = json.loads(tool_messages(fifth)[-1]["content"])
    assert orders["success"] is True
    assert {o["order_id"] for o in orders["data"]["orders"]} >= {"ORD-1001", "ORD-1002"}
    assert "ORD-1006" not in {o["order_id"] for o in orders["data"]["orders"]}

    events = await turn_events(bus, chat.call_id, expect=2)
    assert [e["turn_index"] for e in events] == [0, 1]
    first_event = events[0]
    assert first_event["user_text"].startswith("Where is my order ORD-1001")
    assert first_event["assistant_text"] == result.text
    assert first_event["engine"] == "openai/primary"
    assert first_event["customer_id"] == "CUS-0001"
    assert first_event["interrupted"] is False
    assert [c["name"] for c in first_event["tool_calls"]] == [
        "check_order_status",
        "search_knowledge_base",
        "verify_identity",
    ]
    assert first_event["tool_calls"][0]["result"]["order_id"] == "ORD-1001"
    assert first_event["tool_calls"][0]["arguments"] == {"order_id": "ORD-1001"}
    latency = first_event["latency"]
    assert latency["first_token_ms"] is not None
    assert latency["total_ms"] >= latency["tool_ms"] > 0


async def test_first_provider_500_then_second_answers(
    config: CallCenterConfig, bus, redis_client, tools_service, llm: OpenAIStandIn, serve
) -> None:
    await serve(with_models(config, llm, "flaky", "backup", retries=1, retry_backoff_s=0.01))
    llm.script("flaky", Reply(status=500), Reply(status=503))
    llm.script("backup", Reply(text="Hello from the backup model."))
    result = await Conversation(bus).say("Hi")
    assert result.done["engine"] == "openai/backup"
    assert result.text == "Hello from the backup model."
    assert len(llm.requests_for("flaky")) == 2  # tried, retried once on 5xx, then moved on


async def test_rate_limited_provider_is_retried(
    config: CallCenterConfig, bus, tools_service, llm: OpenAIStandIn, serve
) -> None:
    await serve(with_models(config, llm, "busy", "backup", retries=1, retry_backoff_s=0.01))
    llm.script("busy", Reply(status=429), Reply(text="Second try worked."))
    result = await Conversation(bus).say("Hi")
    assert result.done["engine"] == "openai/busy"
    assert result.text == "Second try worked."
    assert llm.requests_for("backup") == []


async def test_hanging_provider_times_out_and_the_next_answers(
    config: CallCenterConfig, bus, tools_service, llm: OpenAIStandIn, serve
) -> None:
    await serve(with_models(config, llm, "slow", "backup", timeouts={"slow": 1.0}))
    llm.script("slow", Reply(hang_s=10, text="too late"))
    llm.script("backup", Reply(text="I'm here."))
    result = await Conversation(bus).say("Hello?")
    assert result.done["engine"] == "openai/backup"
    assert result.text == "I'm here."
    assert len(llm.requests_for("slow")) == 1  # a timeout is not retried on the same model


async def test_every_provider_fails_and_the_offline_engine_answers(
    config: CallCenterConfig, bus, db_pool, tools_service, llm: OpenAIStandIn, serve
) -> None:
    await serve(with_models(config, llm, "one", "two", retries=0))
    llm.script("one", Reply(status=500))
    llm.script("two", Reply(status=401))
    result = await Conversation(bus).say("Where is my order ORD-1001?")
    assert result.done["engine"] == "offline"
    row = await db_pool.fetchrow(
        "SELECT o.status, s.tracking_number FROM orders o JOIN shipments s USING (order_id) "
        "WHERE order_id = 'ORD-1001'"
    )
    assert f"Order ORD-1001 is {row['status']}" in result.text
    assert row["tracking_number"] in result.text
    assert [c["name"] for c in result.tools("finished")] == ["check_order_status"]


async def test_failed_tool_reaches_the_customer_as_a_plain_explanation(
    config: CallCenterConfig, bus, tools_service, llm: OpenAIStandIn, serve
) -> None:
    await serve(with_models(config, llm, "primary"))
    llm.script(
        "primary",
        Reply(tool_calls=[ToolCall("check_order_status", {"order_id": "ORD-999999"}, id="c1")]),
        Reply(text=""),  # the model says nothing after the failure
    )
    result = await Conversation(bus).say("Where is ORD-999999?")
    failure = json.loads(tool_messages(llm.requests_for("primary")[1])[0]["content"])
    assert failure["success"] is False
    assert failure["error"] and failure["message"]
    assert result.tools("finished")[0]["success"] is False
    # the customer gets the tool's plain message, nothing internal
    assert result.text == failure["message"]
    assert not any(word in result.text for word in INTERNAL_WORDS)


async def test_unreachable_tools_service_is_explained_not_raised(
    config: CallCenterConfig, bus, redis_client, llm: OpenAIStandIn, llm_client: str
) -> None:
    # a deployment whose tools service is down: nobody answers tools.call in this namespace
    lonely = config.model_copy(
        update={
            "nats": config.nats.model_copy(
                update={"subject_prefix": config.nats.subject_prefix + "x."}
            )
        }
    )

    other = await Bus.connect(lonely.nats, name="tests-lonely", ensure=False)
    try:
        cfg = on_path(with_models(lonely, llm, "primary"), llm_client)
        engine = build_engine(config=cfg, bus=other, redis=redis_client, publish=False)
        service = ConversationService(config=cfg, bus=other, engine=engine)
        await service.start()
        llm.script(
            "primary",
            Reply(tool_calls=[ToolCall("check_order_status", {"order_id": "ORD-1001"}, id="c1")]),
            Reply(text="Sorry, I can't check orders right now."),
        )
        result = await Conversation(other).say("Where is ORD-1001?")
        await service.stop()
    finally:
        await other.drain()
    sent = json.loads(tool_messages(llm.requests_for("primary")[1])[0]["content"])
    assert sent["success"] is False
    assert "Traceback" not in sent["message"]
    assert result.text == "Sorry, I can't check orders right now."


async def test_unknown_tool_is_fed_back_to_the_model(
    config: CallCenterConfig, bus, tools_service, llm: OpenAIStandIn, serve
) -> None:
    await serve(with_models(config, llm, "primary"))
    llm.script(
        "primary",
        Reply(tool_calls=[ToolCall("teleport_parcel", {"to": "moon"}, id="bad")]),
        Reply(tool_calls=[ToolCall("check_order_status", "{not json", id="broken")]),
        Reply(text="I can't do that, but I can check your order status."),
    )
    result = await Conversation(bus).say("Teleport my parcel")
    second, third = llm.requests_for("primary")[1:]
    unknown = json.loads(tool_messages(second)[0]["content"])
    assert unknown == {
        "success": False,
        "error": "unknown_tool",
        "message": unknown["message"],
    }
    assert "teleport_parcel" in unknown["message"]
    broken = json.loads(tool_messages(third)[-1]["content"])
    assert broken["error"] == "invalid_arguments"
    assert result.done["text"] == "I can't do that, but I can check your order status."


async def test_tool_rounds_are_bounded(
    config: CallCenterConfig, bus, tools_service, llm: OpenAIStandIn, serve
) -> None:
    cfg = with_models(config, llm, "loopy")
    cfg = cfg.model_copy(
        update={"conversation": cfg.conversation.model_copy(update={"max_tool_rounds": 2})}
    )
    await serve(cfg)

    def always_tools(body: dict[str, Any]) -> Reply:
        if "tools" not in body:
            return Reply(text="Here is what I found so far.")
        return Reply(tool_calls=[ToolCall("search_knowledge_base", {"query": "shipping"})])

    llm.script("loopy", *([always_tools] * 5))
    result = await Conversation(bus).say("Tell me everything about shipping")
    requests = llm.requests_for("loopy")
    assert len(requests) == 3  # two rounds with tools, then one that must answer
    assert "tools" not in requests[-1]
    assert result.text == "Here is what I found so far."


async def test_caller_vouched_for_by_the_edge_is_verified_by_caller_id(
    config: CallCenterConfig, bus, redis_client, tools_service, llm: OpenAIStandIn, serve
) -> None:
    await serve(with_models(config, llm, "primary"))
    llm.script("primary", Reply(text="Hi Maya!"), Reply(text="Hi there!"))
    sms = Conversation(
        bus, channel="sms", caller={"number": "+15555550101", "verified_by_caller_id": True}
    )
    result = await sms.say("hello")
    assert result.text == "Hi Maya!"
    system = llm.requests_for("primary")[0]["messages"][0]["content"]
    assert "verified (customer id CUS-0001)" in system
    # a number the edge does not vouch for verifies nobody
    other = Conversation(bus, channel="sms", caller={"number": "+15555550101"})
    await other.say("hello")
    assert "not verified" in llm.requests_for("primary")[1]["messages"][0]["content"]


async def test_llm_call_and_each_tool_call_are_traced_in_the_turn(
    config: CallCenterConfig, bus, tools_service, llm: OpenAIStandIn, serve
) -> None:
    exporter = InMemorySpanExporter()
    setup_tracing(
        service="tests", settings=config.telemetry, extra_processors=[SimpleSpanProcessor(exporter)]
    )
    await serve(with_models(config, llm, "primary"))
    llm.script(
        "primary",
        Reply(
            tool_calls=[
                ToolCall("check_order_status", {"order_id": "ORD-1001"}),
                ToolCall("search_knowledge_base", {"query": "shipping"}),
            ]
        ),
        Reply(text="Done."),
    )
    await Conversation(bus).say("Where is ORD-1001 and how does shipping work?")
    spans = {span.name: span for span in exporter.get_finished_spans()}
    serve_span = spans[f"{bus.subject('conversation.turn')} serve"]
    llm_span = spans["llm.completion openai/primary"]
    tool_span = spans["tools.call check_order_status"]
    assert "tools.call search_knowledge_base" in spans
    for span in (llm_span, tool_span):
        assert span.context.trace_id == serve_span.context.trace_id
        assert span.parent is not None and span.parent.span_id == serve_span.context.span_id
    assert tool_span.attributes["tool.success"] is True
    assert llm_span.attributes["gen_ai.request.model"] == "openai/primary"


async def test_model_ends_the_call_and_asks_for_a_person(
    config: CallCenterConfig, bus, tools_service, llm: OpenAIStandIn, serve
) -> None:
    await serve(with_models(config, llm, "primary"))
    llm.script(
        "primary",
        Reply(
            text="Let me get you a colleague.",
            tool_calls=[ToolCall("transfer_to_agent", {"reason": "wants a refund exception"})],
        ),
        Reply(text="Connecting you now."),
        Reply(text="Goodbye!", tool_calls=[ToolCall("end_call", {})]),
    )
    chat = Conversation(bus)
    transfer = await chat.say("I want an exception to the refund policy")
    assert transfer.done["transfer"]["reason"] == "wants a refund exception"
    assert "I want an exception" in transfer.done["transfer"]["summary"]
    bye = await chat.say("ok bye")
    assert bye.done["end_call"] is True
    assert bye.text == "Goodbye!"
    assert len(llm.requests_for("primary")) == 3  # no round after end_call
