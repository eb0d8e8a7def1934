"""A trace through one chat turn shows spans from three services, and the logs carry its id.

Why an OTLP receiver and not the SDK's in-memory span exporter: an in-memory exporter only sees
spans made inside the test's own process, so it could at best show that the code *would*
propagate context. Here the real gateway, conversation and tools processes run as they do in
production (``python -m callcenter.<service>``), each with its own tracer provider and its real
OTLP/HTTP exporter pointed (``OTEL_EXPORTER_OTLP_ENDPOINT``) at ``tests/fakes/otlp_collector.py``,
a stand-in that speaks the OTLP wire protocol (protobuf ``ExportTraceServiceRequest``). So the test
proves what an operator relies on: W3C trace context crosses the WebSocket -> ``conversation.turn``
-> ``tools.call`` hops over NATS headers, and all three services' spans reach a collector under one
trace id. ``OTEL_BSP_SCHEDULE_DELAY`` is lowered so the batch span processors export within
moments of a span ending, without waiting for process exit.

The three processes run in their own subject prefix, stream names and Redis key prefix (the
session's database schema, migrated and seeded, is shared), so replicas started by other tests in
the same session, which export nowhere, cannot answer this test's requests.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

import asyncpg
import pytest
import redis.asyncio as aioredis
import websockets

from callcenter.common.bus import Bus
from tests.fakes.otlp_collector import OtlpCollector, ReceivedSpan
from tests.support.environment import free_port
from tests.support.processes import ServiceProcess, stop_together

SERVICES = ("tools", "conversation", "gateway")
SERVICE_NAMES = {f"callcenter-{name}" for name in SERVICES}


@pytest.fixture(scope="module")
def collector() -> OtlpCollector:
    receiver = OtlpCollector().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def namespace() -> dict[str, str]:
    tag = "tr" + uuid.uuid4().hex[:8]
    return {
        "CALLCENTER_NATS__SUBJECT_PREFIX": f"{tag}.",
        "CALLCENTER_NATS__STREAM": f"{tag.upper()}_EVENTS",
        "CALLCENTER_NATS__DEAD_LETTER_STREAM": f"{tag.upper()}_DLQ",
        "CALLCENTER_REDIS__KEY_PREFIX": f"{tag}:",
    }


@pytest.fixture(scope="module")
async def traced_system(
    db_pool: asyncpg.Pool,
    service_factory: Callable[..., ServiceProcess],
    collector: OtlpCollector,
    namespace: dict[str, str],
    bus: Bus,
    redis_client: aioredis.Redis,
) -> dict[str, ServiceProcess]:
    env = {
        **namespace,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "CALLCENTER_TELEMETRY__SAMPLE_RATIO": "1.0",
    }
    procs = {
        name: service_factory(name, wait=False, port=free_port(), extra_env=env)
        for name in SERVICES
    }
    for proc in procs.values():  # started together: their imports overlap on the machine's cores
        proc.wait_ready()
    yield procs
    stop_together(procs.values())
    for stream in (
        namespace["CALLCENTER_NATS__STREAM"],
        namespace["CALLCENTER_NATS__DEAD_LETTER_STREAM"],
    ):
        try:
            await bus.js.delete_stream(stream)
        except Exception:
            pass
    async for key in redis_client.scan_iter(match=f"{namespace['CALLCENTER_REDIS__KEY_PREFIX']}*"):
        await redis_client.delete(key)


async def _chat_turn(gateway: ServiceProcess, text: str) -> tuple[str, dict]:
    url = gateway.url.replace("http://", "ws://") + "/chat/ws"
    async with websockets.connect(url) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "session", hello
        await ws.send(json.dumps({"type": "message", "text": text}))
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
            if msg["type"] == "done":
                break
            assert msg["type"] != "error", msg
        await ws.send(json.dumps({"type": "end"}))
        await asyncio.wait_for(ws.recv(), timeout=10)
    return hello["call_id"], msg


def _by_id(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    return {s.span_id: s for s in spans}


def _render(spans: list[ReceivedSpan]) -> str:
    """The trace as an indented tree, for failure messages."""
    by_id = _by_id(spans)
    lines = []

    def walk(span: ReceivedSpan, depth: int) -> None:
        lines.append(f"{'  ' * depth}{span.service}: {span.name} [{span.kind}]")
        for child in spans:
            if child.parent_span_id == span.span_id:
                walk(child, depth + 1)

    for span in spans:
        if not span.parent_span_id or span.parent_span_id not in by_id:
            walk(span, 0)
    return "\n".join(lines)


def _ancestors(span: ReceivedSpan, spans: dict[str, ReceivedSpan]) -> list[ReceivedSpan]:
    chain = []
    while span.parent_span_id and span.parent_span_id in spans:
        span = spans[span.parent_span_id]
        chain.append(span)
    return chain


async def test_one_chat_turn_is_one_trace_across_gateway_conversation_and_tools(
    traced_system: dict[str, ServiceProcess], collector: OtlpCollector
) -> None:
    call_id, done = await _chat_turn(traced_system["gateway"], "Where is my order ORD-1001?")
    assert done["text"]

    # the turn's root: the gateway's chat turn span for this call
    def gateway_turn(spans: list[ReceivedSpan]) -> ReceivedSpan | None:
        for span in spans:
            if (
                span.service == "callcenter-gateway"
                and span.name == "chat.turn"
                and span.attributes.get("call.id") == call_id
            ):
                return span
        return None

    spans = await asyncio.to_thread(collector.wait_until, lambda s: gateway_turn(s) is not None)
    root = gateway_turn(spans)
    assert root is not None
    trace_id = root.trace_id

    def complete(spans: list[ReceivedSpan]) -> bool:
        in_trace = [s for s in spans if s.trace_id == trace_id]
        has_tool_server = any(
            s.service == "callcenter-tools" and s.kind == "SPAN_KIND_SERVER" for s in in_trace
        )
        return SERVICE_NAMES <= {s.service for s in in_trace} and has_tool_server

    await asyncio.to_thread(collector.wait_until, complete)
    await asyncio.sleep(0.5)  # let any straggling batches of this trace arrive
    trace = collector.trace(trace_id)
    by_id = _by_id(trace)

    assert {s.service for s in trace} == SERVICE_NAMES, sorted((s.service, s.name) for s in trace)
    tree = _render(trace)
    assert root.parent_span_id == "", f"the trace starts at the gateway's chat turn:\n{tree}"
    assert [s for s in trace if not s.parent_span_id] == [root], "one root: no broken context"
    # one trace per turn: the socket's own span (if the web framework makes one) is only linked
    assert all(linked_trace != trace_id for linked_trace, _ in root.links)
    # every span hangs under the gateway's turn span: context crossed every hop
    for span in trace:
        if span is not root:
            assert root in _ancestors(span, by_id), f"{span.service}/{span.name} is detached"
    # the conversation served the turn under the gateway's span ...
    served = [
        s for s in trace if s.service == "callcenter-conversation" and s.kind == "SPAN_KIND_SERVER"
    ]
    assert served and all(by_id[s.parent_span_id].service == "callcenter-gateway" for s in served)
    # ... and the tool ran in the tools service, under a span of the conversation service
    tool_runs = [
        s for s in trace if s.service == "callcenter-tools" and s.kind == "SPAN_KIND_SERVER"
    ]
    assert any(s.attributes.get("tool.name") == "check_order_status" for s in tool_runs), tool_runs
    for run in tool_runs:
        assert any(a.service == "callcenter-conversation" for a in _ancestors(run, by_id))
    for span in trace:
        assert span.resource.get("service.namespace") == "callcenter"
    assert collector.content_types == {"application/x-protobuf"}


async def test_json_logs_of_the_turn_carry_trace_and_call_ids(
    traced_system: dict[str, ServiceProcess], collector: OtlpCollector
) -> None:
    call_id, _ = await _chat_turn(traced_system["gateway"], "Where is my order ORD-1001?")
    spans = await asyncio.to_thread(
        collector.wait_until,
        lambda s: any(
            x.attributes.get("call.id") == call_id and x.service == "callcenter-tools" for x in s
        ),
    )
    trace_ids = {s.trace_id for s in spans if s.attributes.get("call.id") == call_id}
    assert len(trace_ids) == 1, "one trace per turn"
    (trace_id,) = trace_ids
    await asyncio.sleep(0.3)  # the log lines are flushed line by line; give the pipes a moment

    for name in ("tools", "conversation"):
        lines = []
        for raw in traced_system[name].log_text().splitlines():
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if record.get("call_id") == call_id:
                lines.append(record)
        assert lines, f"{name} logged nothing with call_id {call_id}"
        traced = [r for r in lines if r.get("trace_id") == trace_id]
        assert traced, f"{name}: no log line of the turn carries trace_id {trace_id}: {lines[:3]}"
        for record in traced:
            assert len(record["span_id"]) == 16
