"""What every model path does around one streamed completion: its span, errors, and tool calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

from opentelemetry import trace

from callcenter.conversation.llm.base import ModelEvent, ModelFailure, ModelRequest, ToolCallRequest

tracer = trace.get_tracer("callcenter.conversation")

#: tool-call fragments gathered by index: ``{"id", "name", "arguments"}``
ToolCallParts = dict[int, dict[str, str]]
#: opens the vendor's stream: text events as they come, tool-call fragments gathered into the dict
OpenStream = Callable[[trace.Span, ToolCallParts], AsyncIterator[ModelEvent]]


async def traced_completion(
    *,
    name: str,
    temperature: float,
    request: ModelRequest,
    open_stream: OpenStream,
    classify: Callable[[BaseException], ModelFailure],
) -> AsyncIterator[ModelEvent]:
    """The text of one completion, then its tool calls, in a client span.

    Any error is raised as a :class:`ModelFailure` (``classify`` turns the transport's errors
    into one) and recorded on the span.
    """
    calls: ToolCallParts = {}
    # a span that is not made current: this generator yields to its consumer while it runs
    span = tracer.start_span(
        f"llm.completion {name}",
        kind=trace.SpanKind.CLIENT,
        attributes={
            "gen_ai.request.model": name,
            "gen_ai.request.temperature": temperature,
            "llm.messages": len(request.messages),
            "llm.tools": len(request.tools) if request.allow_tools else 0,
        },
    )
    try:
        try:
            async with aclosing(open_stream(span, calls)) as events:
                async for event in events:
                    yield event
        except Exception as exc:
            failure = exc if isinstance(exc, ModelFailure) else classify(exc)
            span.set_attribute("llm.error", str(failure))
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(failure)))
            if failure is exc:
                raise
            raise failure from exc
        span.set_attribute("llm.tool_calls", len(calls))
        for index, call in sorted(calls.items()):
            yield ToolCallRequest(
                id=call["id"] or f"call_{index}", name=call["name"], arguments=call["arguments"]
            )
    finally:
        span.end()
