"""The tools service as this service sees it: the schema (cached) and tool calls over NATS."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

import nats.errors
from opentelemetry import trace

from callcenter.common.bus import Bus
from callcenter.common.logging import get_logger

log = get_logger(__name__)
tracer = trace.get_tracer("callcenter.conversation")

UNAVAILABLE_MESSAGE = (
    "I can't reach that system right now. Please try again in a moment, or I can connect you "
    "with a colleague."
)
GENERIC_FAILURE = "Something went wrong on our side while I was checking that."
_INTERNALS = re.compile(r"Traceback|File \"|Exception|Error:|\bat 0x|asyncpg|psycopg|SELECT |nats")


@dataclass(slots=True)
class ToolContext:
    """Who is asking: set by this service from the session, never by the model."""

    call_id: str
    channel: str
    verified_customer_id: str | None
    caller_number: str | None

    def for_call(self, tool_call_id: str) -> dict[str, Any]:
        """The ``context`` object of one ``tools.call`` request."""
        return {
            "call_id": self.call_id,
            "channel": self.channel,
            "tool_call_id": tool_call_id,
            "verified_customer_id": self.verified_customer_id,
            "caller_number": self.caller_number,
        }


@dataclass(slots=True)
class ToolOutcome:
    """The reply of one tool call, always in the wire's success/error shape."""

    success: bool
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    message: str | None = None

    def as_reply(self) -> dict[str, Any]:
        """The shape the model sees as the tool result."""
        if self.success:
            return {"success": True, "data": self.data}
        return {"success": False, "error": self.error, "message": self.message}

    @classmethod
    def failure(cls, error: str, message: str) -> ToolOutcome:
        """A failed outcome."""
        return cls(success=False, error=error, message=message)


def plain_message(message: Any) -> str:
    """A failure message safe to show a customer (no stack traces or internal names)."""
    if not isinstance(message, str) or not message.strip() or _INTERNALS.search(message):
        return GENERIC_FAILURE
    return message.strip()[:400]


class ToolsClient:
    """``tools.list`` (cached for ``ttl_s``, kept when a refresh fails) and ``tools.call``."""

    def __init__(self, *, bus: Bus, ttl_s: float, call_timeout_s: float) -> None:
        self._bus = bus
        self._ttl = ttl_s
        self._timeout = call_timeout_s
        self._schema: list[dict[str, Any]] = []
        self._fetched_at = float("-inf")
        self._refresh_lock = asyncio.Lock()

    @property
    def names(self) -> set[str]:
        """Names of the tools in the cached schema."""
        return {tool["function"]["name"] for tool in self._schema if "function" in tool}

    def _fresh(self) -> bool:
        return bool(self._schema) and time.monotonic() - self._fetched_at < self._ttl

    async def schema(self, *, force: bool = False) -> list[dict[str, Any]]:
        """The tools schema (OpenAI function tools).

        With nothing cached yet (the tools service was not up when this replica started) every
        call asks again: a turn must not run without tools because of a start-up race.
        """
        if not force and self._fresh():
            return self._schema
        async with self._refresh_lock:
            if not force and self._fresh():
                return self._schema
            try:
                with tracer.start_as_current_span("tools.list"):
                    reply = await self._bus.request_json("tools.list", {}, timeout_s=self._timeout)
                tools = reply.get("tools") if isinstance(reply, dict) else None
                if isinstance(tools, list):
                    self._schema = [t for t in tools if isinstance(t, dict)]
                    self._fetched_at = time.monotonic()
                    log.debug("tools schema refreshed", tools=len(self._schema))
            except (nats.errors.Error, TimeoutError, ValueError) as exc:
                # keep serving the schema we had; try again soon
                self._fetched_at = time.monotonic() - self._ttl + min(self._ttl, 2.0)
                log.warning("tools.list failed", error=type(exc).__name__)
        return self._schema

    async def call(
        self, name: str, arguments: dict[str, Any], context: dict[str, Any]
    ) -> ToolOutcome:
        """Run one tool; failures of any kind come back as a failed outcome, never raised."""
        with tracer.start_as_current_span(
            f"tools.call {name}",
            kind=trace.SpanKind.CLIENT,
            attributes={"tool.name": name, "tool.call_id": context.get("tool_call_id", "")},
        ) as span:
            try:
                reply = await self._bus.request_json(
                    "tools.call",
                    {"name": name, "arguments": arguments, "context": context},
                    timeout_s=self._timeout,
                )
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError, TimeoutError) as exc:
                span.set_attribute("tool.success", False)
                log.warning("tools.call unanswered", tool=name, error=type(exc).__name__)
                return ToolOutcome.failure("tool_unavailable", UNAVAILABLE_MESSAGE)
            except (nats.errors.Error, ValueError) as exc:
                span.set_attribute("tool.success", False)
                log.warning("tools.call failed", tool=name, error=type(exc).__name__)
                return ToolOutcome.failure("tool_unavailable", UNAVAILABLE_MESSAGE)
            outcome = _outcome(reply)
            span.set_attribute("tool.success", outcome.success)
            if not outcome.success:
                span.set_attribute("tool.error", outcome.error or "")
            return outcome


def _outcome(reply: Any) -> ToolOutcome:
    if not isinstance(reply, dict) or "success" not in reply:
        return ToolOutcome.failure("bad_reply", GENERIC_FAILURE)
    if reply["success"]:
        data = reply.get("data")
        return ToolOutcome(success=True, data=data if isinstance(data, dict) else {"result": data})
    return ToolOutcome.failure(
        str(reply.get("error") or "failed"), plain_message(reply.get("message"))
    )
