"""Helpers for the post-call tests: events, processes, waiting."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from callcenter.common.bus import Bus
from callcenter.common.bus.consumer import Delivery
from callcenter.common.config import CallCenterConfig
from callcenter.common.events import (
    CallSummarized,
    Event,
    ToolCallRecord,
    TurnCompleted,
    TurnLatency,
)
from callcenter.post_call.steps import StepContext
from callcenter.post_call.telemetry import setup_metrics
from tests.fakes.smtp_server import SmtpCatcher
from tests.fakes.threaded_http import ThreadedHTTPStandIn
from tests.support.environment import TestEnvironment, free_port
from tests.support.processes import ServiceProcess

T = TypeVar("T")

#: Fast retries so redelivery after a crash and dead-lettering take seconds, not minutes.
FAST_ENV = {
    "CALLCENTER_POST_CALL__ACK_WAIT_S": "2",
    "CALLCENTER_POST_CALL__RETRY_DELAYS_S": "[0.2, 0.4]",
    "CALLCENTER_POST_CALL__SUMMARY_WAIT_DELAY_S": "0.3",
    "CALLCENTER_LOGGING__LEVEL": "INFO",
}
ALL_STEPS = ["transcript", "summary", "crm", "email", "ticket", "metrics"]


async def wait_for(
    probe: Callable[[], Awaitable[T]], *, timeout_s: float = 30.0, what: str = "condition"
) -> T:
    """Poll ``probe`` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.1)


def new_call_id() -> str:
    return "call-" + uuid.uuid4().hex[:12]


def unhappy_turns(call_id: str, customer_id: str | None) -> list[TurnCompleted]:
    """A conversation with a card number in it, a return agreed, and a customer left unhappy."""
    texts = [
        (
            "My jacket arrived damaged and I'm really frustrated. I want to return it.",
            "I'm sorry to hear that. Let me look at your order.",
            [],
        ),
        (
            "Sure, and charge my card 4111 1111 1111 1111 for the shipping if needed.",
            "I've started a return for order W1001. Your return label is on its way.",
            [
                ToolCallRecord(
                    id="call_1",
                    name="start_return",
                    arguments={"order_id": "W1001"},
                    success=True,
                    result={"success": True, "data": {"return_id": "R-5531", "order_id": "W1001"}},
                    duration_ms=42.0,
                ),
                ToolCallRecord(
                    id="call_2",
                    name="update_shipping_address",
                    arguments={"order_id": "W1001"},
                    success=False,
                    error="already_shipped",
                    duration_ms=12.0,
                ),
            ],
        ),
        (
            "This is ridiculous, it is still not resolved. I want to speak to a manager.",
            "I understand. I've noted this and a colleague will follow up.",
            [],
        ),
    ]
    return [
        TurnCompleted(
            event_id=f"turn-{call_id}-{i}",
            call_id=call_id,
            channel="chat",
            turn_index=i,
            user_text=user,
            assistant_text=assistant,
            tool_calls=tools,
            latency=TurnLatency(
                first_token_ms=180.0 + i, tool_ms=54.0 if tools else 0.0, total_ms=900.0
            ),
            customer_id=customer_id,
        )
        for i, (user, assistant, tools) in enumerate(texts)
    ]


def summarized(call_id: str, customer_id: str | None, **fields: Any) -> CallSummarized:
    """A call.summarized as the summary step publishes it."""
    values: dict[str, Any] = {
        "summary": "The customer asked to return a damaged jacket.",
        "sentiment": "negative",
        "satisfaction": 2,
        "resolved": False,
        "topics": ["return"],
        "follow_up_needed": True,
        "follow_up": "We agreed to start a return (return id R-1).",
    }
    values.update(fields)
    return CallSummarized(
        event_id=f"summarized-{call_id}",
        call_id=call_id,
        channel="chat",
        customer_id=customer_id,
        **values,
    )


def delivery_of(
    event: Event, *, prefix: str = "", attempt: int = 1, max_deliver: int = 6
) -> Delivery:
    """The delivery a consumer would hand a step for ``event`` (for in-process runs)."""
    return Delivery(
        subject=event.subject,
        data=event.to_bytes(),
        headers={"Nats-Msg-Id": event.event_id, "Cc-Call-Id": event.call_id},
        attempt=attempt,
        max_deliver=max_deliver,
        stream_sequence=0,
        msg=None,  # type: ignore[arg-type]
    )


class PostCall:
    """Test helpers bound to this session's namespace."""

    def __init__(
        self,
        *,
        config: CallCenterConfig,
        db: asyncpg.Pool,
        bus: Bus,
        smtp: SmtpCatcher,
        test_env: TestEnvironment,
    ) -> None:
        self.config = config
        self.db = db
        self.bus = bus
        self.smtp = smtp
        self.test_env = test_env
        self.running: list[ServiceProcess] = []

    def env(self, steps: list[str], **extra: str) -> dict[str, str]:
        return {
            **FAST_ENV,
            **self.smtp.env,
            "CALLCENTER_POST_CALL__STEPS": json.dumps(steps),
            **extra,
        }

    def start(
        self, steps: list[str], *, wait: bool = True, track: bool = True, **extra: str
    ) -> ServiceProcess:
        """A post_call process running ``steps``, on a port of its own, logging to its own file.

        Tracked processes are stopped at the end of the test; untracked ones by the caller.
        """
        port = free_port()
        env = {
            **self.test_env.env,
            **self.env(steps, **extra),
            "CALLCENTER_POST_CALL__HEALTH_PORT": str(port),
        }
        proc = ServiceProcess("post_call", env=env, port=port, tag=self.test_env.tag)
        proc.log_path = proc.log_path.with_name(f"post_call-{'-'.join(steps)}-{port}.log")
        if track:
            self.running.append(proc)
        return proc.start(wait=wait)

    def stop_all(self) -> None:
        for proc in self.running:
            proc.stop()
        self.running.clear()

    async def publish(self, *events: Event) -> None:
        for event in events:
            await self.bus.publish(event)

    async def add_contact(self, customer_id: str, email: str, name: str = "Ada Lovelace") -> None:
        await self.db.execute(
            """
            INSERT INTO crm_contacts (customer_id, name, email) VALUES ($1, $2, $3)
            ON CONFLICT (customer_id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name
            """,
            customer_id,
            name,
            email,
        )

    async def step_status(self, call_id: str, step: str) -> asyncpg.Record | None:
        return await self.db.fetchrow(
            "SELECT * FROM post_call_steps WHERE call_id = $1 AND step = $2", call_id, step
        )

    async def wait_step(
        self, call_id: str, step: str, *, timeout_s: float = 30.0
    ) -> asyncpg.Record:
        async def probe() -> asyncpg.Record | None:
            return await self.step_status(call_id, step)

        return await wait_for(probe, timeout_s=timeout_s, what=f"step {step} of {call_id}")

    async def consumer_settled(self, durable: str) -> bool:
        """Everything delivered to the durable is acked and nothing is waiting."""
        info = await self.bus.js.consumer_info(self.config.nats.stream, durable)
        return info.num_pending == 0 and info.num_ack_pending == 0

    async def wait_settled(self, durable: str, *, timeout_s: float = 30.0) -> None:
        async def probe() -> bool:
            return await self.consumer_settled(durable)

        await wait_for(probe, timeout_s=timeout_s, what=f"consumer {durable} to settle")

    def context(self) -> StepContext:
        """A step context for in-process runs."""
        return StepContext(
            config=self.config,
            db=self.db,
            bus=self.bus,
            metrics=setup_metrics(service="tests", settings=self.config.telemetry),
        )


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels`` (Prometheus text)."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def count_on_subject(bus: Bus, subject: str, call_id: str, *, idle_s: float = 0.5) -> int:
    """How many messages for ``call_id`` the events stream holds on ``subject`` (unprefixed)."""
    sub = await bus.js.subscribe(bus.subject(subject), ordered_consumer=True)
    count = 0
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=idle_s)
            except Exception:
                return count
            if (msg.headers or {}).get("Cc-Call-Id") == call_id:
                count += 1
    finally:
        await sub.unsubscribe()


class OtlpMetricsReceiver(ThreadedHTTPStandIn):
    """An OTLP/HTTP metrics endpoint (``POST /v1/metrics``, protobuf), as a collector receives it.

    (``tests/fakes/otlp_collector.py`` covers ``/v1/traces``; traces sent here are accepted and
    ignored.)
    """

    thread_name = "otlp-metrics-receiver"

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler

        super().__init__()

        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
            ExportMetricsServiceResponse,
        )

        names = self.names = set()  # type: set[str]

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding", "").lower() == "gzip":
                    body = gzip.decompress(body)
                reply = b""
                if self.path.rstrip("/") == "/v1/metrics":
                    request = ExportMetricsServiceRequest()
                    request.ParseFromString(body)
                    for resource in request.resource_metrics:
                        for scope in resource.scope_metrics:
                            names.update(metric.name for metric in scope.metrics)
                    reply = ExportMetricsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self._serve(Handler)

    @property
    def endpoint(self) -> str:
        return self.origin

    def stop(self) -> None:
        self._shutdown()
