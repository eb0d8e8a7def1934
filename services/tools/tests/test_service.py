"""tools.list and tools.call over real NATS: in-process (concurrency, tracing) and as a process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import Field

from callcenter.common.bus import Bus
from callcenter.common.clients import ToolsClient
from callcenter.common.config import CallCenterConfig
from callcenter.common.contracts import ToolCallContext, ToolCallRequest
from callcenter.common.telemetry import setup_tracing
from callcenter.tools import TOOLS_REGISTRY, TOOLS_SCHEMA
from callcenter.tools.executor import CallCenterToolExecutor
from callcenter.tools.registry import Skill, SkillContext, ToolArguments
from callcenter.tools.service import ToolsService

CONTEXT = {"call_id": "call-svc", "channel": "chat", "tool_call_id": "tc-1"}


class _WaitArgs(ToolArguments):
    seconds: float = Field(ge=0, le=10)


async def _wait(args: _WaitArgs, ctx: SkillContext) -> dict[str, Any]:
    await asyncio.sleep(args.seconds)
    return {"waited": args.seconds}


@pytest.fixture
async def in_process(
    db_pool: asyncpg.Pool, bus: Bus, config: CallCenterConfig
) -> AsyncIterator[ToolsService]:
    registry = {
        **TOOLS_REGISTRY,
        "test_wait": Skill(name="test_wait", description="waits", arguments=_WaitArgs, run=_wait),
    }
    executor = CallCenterToolExecutor(
        db=db_pool, timeout_s=config.tools.call_timeout_s, registry=registry
    )
    service = ToolsService(bus=bus, executor=executor, queue_group=config.tools.queue_group)
    await service.start()
    yield service
    await service.stop()


async def test_list_and_call_in_process(in_process: ToolsService, bus: Bus) -> None:
    listed = await bus.request_json("tools.list", {})
    names = [t["function"]["name"] for t in listed["tools"]]
    assert set(names) == set(TOOLS_REGISTRY) | {"test_wait"}
    reply = await bus.request_json(
        "tools.call",
        {"name": "check_order_status", "arguments": {"order_id": "ORD-1001"}, "context": CONTEXT},
    )
    assert reply["success"] is True
    assert reply["data"]["tracking_number"] == "1Z999AA10123456784"


async def test_the_shared_client_gets_typed_outcomes(in_process: ToolsService, bus: Bus) -> None:
    client = ToolsClient(bus=bus, timeout_s=5)
    listed = await client.list()
    assert {t["function"]["name"] for t in listed.tools} == set(TOOLS_REGISTRY) | {"test_wait"}
    outcome = await client.call(
        ToolCallRequest(
            name="check_order_status",
            arguments={"order_id": "ORD-1001"},
            context=ToolCallContext(**CONTEXT),
        )
    )
    assert outcome.success and outcome.data["tracking_number"] == "1Z999AA10123456784"
    refused = await client.call(ToolCallRequest(name="test_wait", arguments={"seconds": -1}))
    assert (refused.success, refused.error) == (False, "invalid_arguments")
    assert refused.message and "seconds" in refused.message


async def test_arguments_travel_as_an_object_not_a_string(
    in_process: ToolsService, bus: Bus
) -> None:
    reply = await bus.request_json(
        "tools.call", {"name": "test_wait", "arguments": '{"seconds": 0}', "context": CONTEXT}
    )
    assert reply["success"] is False and reply["error"] == "invalid_request"


async def test_malformed_requests_get_the_error_shape(in_process: ToolsService, bus: Bus) -> None:
    for body in (b"not json", b"[1, 2]", json.dumps({"arguments": {}}).encode()):
        msg = await bus.nc.request(bus.subject("tools.call"), body, timeout=5)
        reply = json.loads(msg.data)
        assert reply["success"] is False and reply["error"] == "invalid_request", body
        assert reply["message"]


async def test_a_slow_call_does_not_hold_up_others(in_process: ToolsService, bus: Bus) -> None:
    slow = asyncio.create_task(
        bus.request_json(
            "tools.call", {"name": "test_wait", "arguments": {"seconds": 1}, "context": CONTEXT}
        )
    )
    fast = await bus.request_json(
        "tools.call", {"name": "test_wait", "arguments": {"seconds": 0}, "context": CONTEXT}
    )
    assert fast == {"success": True, "data": {"waited": 0}}
    assert not slow.done()
    assert (await slow)["success"] is True


async def test_stop_finishes_in_flight_calls(db_pool, bus: Bus, config: CallCenterConfig) -> None:
    started = asyncio.Event()

    async def wait_then_answer(args: _WaitArgs, ctx: SkillContext) -> dict[str, Any]:
        started.set()
        return await _wait(args, ctx)

    registry = {
        "test_wait": Skill(
            name="test_wait", description="waits", arguments=_WaitArgs, run=wait_then_answer
        )
    }
    service = ToolsService(
        bus=bus,
        executor=CallCenterToolExecutor(db=db_pool, timeout_s=5, registry=registry),
        queue_group=config.tools.queue_group,
    )
    await service.start()
    pending = asyncio.create_task(
        bus.request_json(
            "tools.call", {"name": "test_wait", "arguments": {"seconds": 0.5}, "context": CONTEXT}
        )
    )
    await asyncio.wait_for(started.wait(), timeout=5)
    await service.stop()
    assert (await pending) == {"success": True, "data": {"waited": 0.5}}


async def test_trace_context_is_continued(
    in_process: ToolsService, bus: Bus, config: CallCenterConfig
) -> None:
    exporter = InMemorySpanExporter()
    setup_tracing(
        service="tests", settings=config.telemetry, extra_processors=[SimpleSpanProcessor(exporter)]
    )
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    msg = await bus.nc.request(
        bus.subject("tools.call"),
        json.dumps(
            {
                "name": "check_order_status",
                "arguments": {"order_id": "ORD-1001"},
                "context": CONTEXT,
            }
        ).encode(),
        timeout=5,
        headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
    )
    assert json.loads(msg.data)["success"] is True
    spans = [s for s in exporter.get_finished_spans() if s.name == "tools.call check_order_status"]
    assert spans, [s.name for s in exporter.get_finished_spans()]
    span = spans[-1]
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.parent is not None and format(span.parent.span_id, "016x") == parent_id
    assert span.attributes["tool.success"] is True


async def test_service_process_answers_list_call_and_discovery(
    db_pool, bus: Bus, service_factory
) -> None:
    proc = service_factory("tools")
    try:
        listed = await bus.request_json("tools.list", {})
        assert listed == {"tools": TOOLS_SCHEMA}
        reply = await bus.request_json(
            "tools.call",
            {
                "name": "verify_identity",
                "arguments": {"method": "order_number_zip", "order_id": "ORD-1001", "zip": "94105"},
                "context": CONTEXT,
            },
        )
        assert reply == {
            "success": True,
            "data": {
                "verified": True,
                "verified_customer_id": "CUS-0001",
                "first_name": "Maya",
                "method": "order_number_zip",
            },
        }
        unknown = await bus.request_json(
            "tools.call", {"name": "nope", "arguments": {}, "context": CONTEXT}
        )
        assert unknown["error"] == "unknown_tool"
        # nats.micro discovery: every instance answers PING for the service name
        inbox = bus.nc.new_inbox()
        sub = await bus.nc.subscribe(inbox)
        await bus.nc.publish("$SRV.PING.callcenter-tools", b"", reply=inbox)
        found = False
        while not found:  # other sessions' instances may answer too; ours must be among them
            msg = await sub.next_msg(timeout=5)
            found = (
                json.loads(msg.data)["metadata"]["subject_prefix"] == bus.settings.subject_prefix
            )
        await sub.unsubscribe()
        async with httpx.AsyncClient(timeout=5) as http:
            metrics = (await http.get(f"{proc.url}/metrics")).text
        assert 'callcenter_tool_calls_total{outcome="ok",tool="verify_identity"} 1.0' in metrics
        assert 'callcenter_tool_calls_total{outcome="unknown_tool",tool="unknown"} 1.0' in metrics
    finally:
        assert proc.stop() == 0
