"""Run one tool call and always answer with a :class:`~callcenter.common.contracts.ToolOutcome`.

``{"success": true, "data": {...}}`` or ``{"success": false, "error": "<code>", "message": "..."}``
where ``message`` is plain text safe to say to a customer: validation details name only the
argument, and an unexpected exception is logged, never returned.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import asyncpg
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import ValidationError

from callcenter.common.contracts import ToolOutcome
from callcenter.common.logging import bind_call, get_logger
from callcenter.tools.idempotency import run_once
from callcenter.tools.metrics import TOOL_CALLS, TOOL_SECONDS
from callcenter.tools.registry import (
    TOOLS_REGISTRY,
    CallContext,
    Skill,
    SkillContext,
    ToolError,
)

log = get_logger(__name__)
tracer = trace.get_tracer("callcenter.tools")

FAILED_MESSAGE = "Something went wrong on our side while doing that. I can try again, or connect you to an agent."
TIMEOUT_MESSAGE = "That is taking longer than it should on our side. Please try again in a moment."
UNKNOWN_MESSAGE = "I can't do that here, but I can connect you to an agent who can help."


def describe_validation_error(exc: ValidationError) -> str:
    """A short plain-text account of what was wrong with the arguments."""
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "arguments"
        if error.get("type") == "missing":
            parts.append(f"{where} is required")
        elif error.get("type") == "extra_forbidden":
            parts.append(f"{where} is not a known detail for this request")
        elif error.get("type") == "value_error":  # our own validators' messages are plain
            reason = str(error.get("msg", "")).removeprefix("Value error, ")
            parts.append(f"{where} is not valid ({reason})")
        else:
            parts.append(f"{where} is not valid")
    return "Some details were missing or not valid: " + "; ".join(parts) + "."


class CallCenterToolExecutor:
    """Looks a tool up, validates its arguments, runs it with a timeout, shapes the reply."""

    def __init__(
        self,
        *,
        db: asyncpg.Pool,
        timeout_s: float,
        registry: Mapping[str, Skill] | None = None,
        caller_id_channels: Iterable[str] = ("voice", "sms"),
        after_success: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.timeout_s = timeout_s
        self.registry = registry if registry is not None else TOOLS_REGISTRY
        self.caller_id_channels = frozenset(caller_id_channels)
        #: Called after each successful tool call (the tools service publishes its outbox).
        self.after_success = after_success

    def schemas(self) -> list[dict[str, Any]]:
        """The OpenAI function-tool schema of every tool this executor runs."""
        return [entry.schema for entry in self.registry.values()]

    async def execute(
        self,
        name: str,
        arguments: Mapping[str, Any] | str | None,
        context: Mapping[str, Any] | CallContext | None,
    ) -> dict[str, Any]:
        """:meth:`run`, answered as the reply's JSON object (for callers without the contract)."""
        return (await self.run(name, arguments, context)).as_reply()

    async def run(
        self,
        name: str,
        arguments: Mapping[str, Any] | str | None,
        context: Mapping[str, Any] | CallContext | None,
    ) -> ToolOutcome:
        """Run ``name`` with ``arguments`` for the caller in ``context``; never raises.

        ``arguments`` arrive parsed from ``tools.call``; a JSON string (a direct caller holding
        the model's raw arguments) is parsed here.
        """
        try:
            call = (
                context
                if isinstance(context, CallContext)
                else CallContext.model_validate(context or {})
            )
        except ValidationError:
            return ToolOutcome.failure("invalid_request", "That request could not be processed.")
        call = call.model_copy(
            update={"caller_id_trusted": call.channel in self.caller_id_channels}
        )
        with (
            bind_call(call.call_id or "-", tool=name, tool_call_id=call.tool_call_id),
            tracer.start_as_current_span(f"tools.call {name}", kind=SpanKind.SERVER) as span,
        ):
            span.set_attribute("tool.name", name)
            span.set_attribute("call.id", call.call_id)
            span.set_attribute("tool.call_id", call.tool_call_id)
            span.set_attribute("tool.verified", bool(call.verified_customer_id))
            started = time.perf_counter()
            result = await self._execute(name, arguments, call)
            if result.success and self.after_success is not None:
                self.after_success()
            label = name if name in self.registry else "unknown"
            TOOL_SECONDS.labels(tool=label).observe(time.perf_counter() - started)
            TOOL_CALLS.labels(tool=label, outcome=result.error or "ok").inc()
            span.set_attribute("tool.success", result.success)
            if not result.success:
                span.set_attribute("tool.error", result.error or "")
                if result.error in ("tool_failed", "timeout"):
                    span.set_status(Status(StatusCode.ERROR, result.error))
            log.info("tool call", success=result.success, error=result.error)
            return result

    async def _execute(
        self, name: str, arguments: Mapping[str, Any] | str | None, call: CallContext
    ) -> ToolOutcome:
        entry = self.registry.get(name)
        if entry is None:
            return ToolOutcome.failure("unknown_tool", UNKNOWN_MESSAGE)
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError:
                return ToolOutcome.failure(
                    "invalid_arguments", "The details for that request were garbled."
                )
        if arguments is not None and not isinstance(arguments, Mapping):
            return ToolOutcome.failure(
                "invalid_arguments", "The details for that request were not understood."
            )
        try:
            args = entry.arguments.model_validate(dict(arguments or {}))
        except ValidationError as exc:
            return ToolOutcome.failure("invalid_arguments", describe_validation_error(exc))
        ctx = SkillContext(db=self.db, call=call, tool=name)
        try:
            async with asyncio.timeout(self.timeout_s):
                if entry.side_effects:
                    data = await run_once(ctx, lambda bound: entry.run(args, bound))
                else:
                    data = await entry.run(args, ctx)
        except ToolError as exc:
            return ToolOutcome.failure(exc.code, exc.message)
        except TimeoutError:
            log.warning("tool timed out", timeout_s=self.timeout_s)
            return ToolOutcome.failure("timeout", TIMEOUT_MESSAGE)
        except Exception:
            log.exception("tool failed")
            return ToolOutcome.failure("tool_failed", FAILED_MESSAGE)
        return ToolOutcome.ok(data)
