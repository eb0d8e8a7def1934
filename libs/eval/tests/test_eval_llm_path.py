"""The same scenarios on the LLM path: the conversation service talks to the scripted
OpenAI-compatible stand-in through litellm (offline fallback off), and the harness scores what
the model's tool calls did in PostgreSQL. The stand-in is a small rule-following "model": it
reads the conversation it is sent, calls tools, and answers from their results, so a passing
score proves the whole tool loop (schemas out, tool calls in, results back, final answer).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from callcenter.eval.report import render, summarize
from callcenter.eval.runner import Runner, Target
from callcenter.eval.scenarios import load, select
from tests.fakes.openai_server import OpenAIStandIn, Reply, ToolCall
from tests.support.environment import TestEnvironment

ROOT = Path(__file__).resolve().parents[3]
MODEL = "eval-model"
SCENARIOS = ["cancel-pending", "policy-returns", "handoff-human", "status-public"]

pytestmark = pytest.mark.timeout(240)


def _results(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Tool name -> its result, for the tool calls since the customer's last message."""
    names: dict[str, str] = {}
    out: dict[str, dict[str, Any]] = {}
    for message in messages:
        if message.get("role") == "user":
            names, out = {}, {}
        for call in message.get("tool_calls") or []:
            names[call["id"]] = call["function"]["name"]
        if message.get("role") == "tool":
            out[names.get(message.get("tool_call_id"), "?")] = json.loads(message["content"])
    return out


def scripted_model(body: dict[str, Any]) -> Reply:
    """What a model that follows the tool descriptions does with this conversation."""
    messages = body["messages"]
    said = next(m["content"] for m in reversed(messages) if m.get("role") == "user")
    order = re.search(r"ORD-\d+", said)
    zip_code = re.search(r"\b\d{5}\b", said)
    done = _results(messages)
    if "cancel" in said.lower() and order and zip_code:
        if "verify_identity" not in done:
            args = {"method": "order_number_zip", "order_id": order[0], "zip": zip_code[0]}
            return Reply(tool_calls=[ToolCall("verify_identity", args)])
        if "cancel_order" not in done:
            return Reply(tool_calls=[ToolCall("cancel_order", {"order_id": order[0]})])
        if done["cancel_order"].get("success"):
            return Reply(text=f"Done: order {order[0]} is cancelled.")
        return Reply(text=done["cancel_order"].get("message", "I couldn't cancel it."))
    if "human" in said.lower():
        if "transfer_to_agent" not in done:
            return Reply(tool_calls=[ToolCall("transfer_to_agent", {"reason": said[:200]})])
        return Reply(text="I'm connecting you with a colleague now.")
    if "policy" in said.lower():
        if "search_knowledge_base" not in done:
            return Reply(tool_calls=[ToolCall("search_knowledge_base", {"query": said})])
        body_text = done["search_knowledge_base"]["data"]["articles"][0]["body"]
        return Reply(text=body_text.split(". ")[0] + ".")
    if order:
        if "check_order_status" not in done:
            return Reply(tool_calls=[ToolCall("check_order_status", {"order_id": order[0]})])
        data = done["check_order_status"]["data"]
        return Reply(text=f"Order {order[0]} is {data['status']} with {data.get('carrier')}.")
    return Reply(text="How can I help?")


@pytest.fixture(scope="module")
def llm() -> Iterator[OpenAIStandIn]:
    server = OpenAIStandIn().start()
    server.default = scripted_model
    yield server
    server.stop()


@pytest.fixture(scope="module")
def system(
    service_factory: Callable[..., Any],
    test_env: TestEnvironment,
    llm: OpenAIStandIn,
    db_pool: asyncpg.Pool,
) -> str:
    tools = service_factory("tools", wait=False)
    models = json.dumps([{"model": f"openai/{MODEL}", "api_base": llm.base_url}])
    conversation = service_factory(
        "conversation",
        wait=False,
        extra_env={"CALLCENTER_LLM__MODELS": models, "CALLCENTER_LLM__OFFLINE_FALLBACK": "false"},
    )
    gateway = service_factory("gateway", wait=False)
    tools.wait_ready()
    gateway.wait_ready()
    conversation.wait_ready(timeout_s=180)  # litellm loads slowly on a busy machine
    return f"http://127.0.0.1:{test_env.ports['gateway']}"


async def test_the_suite_runs_through_the_llm_tool_loop(
    system: str, llm: OpenAIStandIn, db_pool: asyncpg.Pool
) -> None:
    chosen = select(load([ROOT / "eval" / "scenarios"]), only=SCENARIOS)
    assert len(chosen) == len(SCENARIOS)
    runner = Runner(
        pool=db_pool,
        target=Target(gateway_url=system, public_base_url=system, twilio_auth_token=None),
        concurrency=2,
    )
    results = await runner.run(chosen)
    assert summarize(results).pass_rate == 1.0, render(results, engine=MODEL, repeat=1)
    requests = llm.requests_for(MODEL)
    # the model was asked (not the offline engine), with the tool schemas and their rules
    assert len(requests) >= 2 * len(SCENARIOS)
    tools = {t["function"]["name"]: t["function"] for t in requests[0]["tools"]}
    assert "before any change" in tools["verify_identity"]["description"]
    assert "asks for a person" in tools["transfer_to_agent"]["description"]
    # tool results went back to the model as tool messages
    assert any(m.get("role") == "tool" for r in requests for m in r["messages"])
