"""The client of ``tools.list`` and ``tools.call``.

:meth:`ToolsClient.call` never raises: an unanswered call, a broken reply or a failure whose
message is not fit for a customer comes back as a failed :class:`ToolOutcome` with a plain message.
"""

from __future__ import annotations

import re
from typing import Any

import nats.errors
from opentelemetry import trace
from pydantic import ValidationError

from callcenter.common.bus.bus import Bus
from callcenter.common.bus.tracing import inject_trace
from callcenter.common.contracts.subjects import TOOLS_CALL, TOOLS_LIST
from callcenter.common.contracts.tools import ToolCallRequest, ToolOutcome, ToolsList
from callcenter.common.logging import get_logger

log = get_logger(__name__)
tracer = trace.get_tracer("callcenter.tools_client")

UNAVAILABLE_MESSAGE = (
    "I can't reach that system right now. Please try again in a moment, or I can connect you "
    "with a colleague."
)
GENERIC_FAILURE = "Something went wrong on our side while I was checking that."
_INTERNALS = re.compile(r"Traceback|File \"|Exception|Error:|\bat 0x|asyncpg|psycopg|SELECT |nats")


def plain_message(message: Any) -> str:
    """A failure message safe to show a customer (no stack traces or internal names)."""
    if not isinstance(message, str) or not message.strip() or _INTERNALS.search(message):
        return GENERIC_FAILURE
    return message.strip()[:400]


class ToolsClient:
    """Asks the tools service over the bus."""

    def __init__(self, *, bus: Bus, timeout_s: float = 10.0) -> None:
        self._bus = bus
        self._timeout = timeout_s

    async def _request(self, subject: str, body: bytes) -> bytes:
        msg = await self._bus.nc.request(
            self._bus.subject(subject), body, timeout=self._timeout, headers=inject_trace()
        )
        return msg.data

    async def list(self) -> ToolsList:
        """The tools schema.

        Raises:
            nats.errors.Error, TimeoutError: nobody answered.
            ValueError: the reply was not a tools list.

        """
        return ToolsList.from_bytes(await self._request(TOOLS_LIST, b"{}"))

    async def call(self, request: ToolCallRequest) -> ToolOutcome:
        """Run one tool; failures of any kind come back as a failed outcome, never raised."""
        name = request.name
        with tracer.start_as_current_span(
            f"tools.call {name}",
            kind=trace.SpanKind.CLIENT,
            attributes={"tool.name": name, "tool.call_id": request.context.tool_call_id},
        ) as span:
            try:
                data = await self._request(TOOLS_CALL, request.to_bytes())
            except (nats.errors.Error, TimeoutError) as exc:
                span.set_attribute("tool.success", False)
                log.warning("tools.call unanswered", tool=name, error=type(exc).__name__)
                return ToolOutcome.failure("tool_unavailable", UNAVAILABLE_MESSAGE)
            try:
                outcome = ToolOutcome.from_bytes(data)
            except ValidationError:
                log.warning("tools.call answered with a bad reply", tool=name)
                outcome = ToolOutcome.failure("bad_reply", GENERIC_FAILURE)
            if not outcome.success:
                outcome.error = outcome.error or "failed"
                outcome.message = plain_message(outcome.message)
                span.set_attribute("tool.error", outcome.error)
            span.set_attribute("tool.success", outcome.success)
            return outcome
