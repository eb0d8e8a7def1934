"""An LLM reached through litellm: streamed chat completion with tools, bounded in time."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from opentelemetry import trace

from callcenter.common.config.sections import LLMModelSettings, LLMSettings
from callcenter.common.logging import get_logger
from callcenter.conversation.llm.base import (
    ModelEvent,
    ModelFailure,
    ModelRequest,
    TextDelta,
)
from callcenter.conversation.llm.completion import ToolCallParts, traced_completion

# litellm fetches a price list from the internet at import unless told to use its bundled copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402

litellm.suppress_debug_info = True
litellm.telemetry = False

log = get_logger(__name__)

_warm = False
_WARM_TOOL = {
    "type": "function",
    "function": {"name": "noop", "parameters": {"type": "object", "properties": {}}},
}


def _failure(exc: BaseException) -> ModelFailure:
    """Classify an error: rate limits and 5xx may be retried; timeouts move on to the next model."""
    if isinstance(exc, TimeoutError | litellm.Timeout):
        return ModelFailure(f"timed out: {type(exc).__name__}", retryable=False, status=408)
    status = getattr(exc, "status_code", None)
    if isinstance(exc, litellm.APIConnectionError):
        return ModelFailure(f"connection failed: {exc}", retryable=True, status=status)
    retryable = isinstance(status, int) and (status == 429 or status >= 500)
    return ModelFailure(f"{type(exc).__name__}: {exc}", retryable=retryable, status=status)


class LiteLLMModel:
    """One entry of ``llm.models``."""

    def __init__(self, *, entry: LLMModelSettings, settings: LLMSettings) -> None:
        self.entry = entry
        self.name = entry.model
        self.retries = settings.retries
        self.timeout_s = entry.timeout_s or settings.timeout_s
        self.temperature = settings.temperature
        self.max_tokens = settings.max_tokens

    async def warm_up(self) -> None:
        """Load litellm's lazily imported machinery now (seconds), not on a customer's first turn."""
        global _warm
        if _warm:
            return
        try:
            response = await litellm.acompletion(
                model=self.entry.model,
                messages=[{"role": "user", "content": "warm-up"}],
                tools=[_WARM_TOOL],
                stream=True,
                mock_response="ok",
                api_key="warm-up",
            )
            async for _ in response:
                pass
            _warm = True
        except Exception as exc:  # only a warm-up: the real call reports real problems
            log.debug("litellm warm-up failed", error=str(exc))

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.entry.model,
            "messages": request.messages,
            "stream": True,
            "temperature": self.temperature,
            "timeout": self.timeout_s,
            "num_retries": 0,  # retries and fallbacks are ours
            "max_retries": 0,
        }
        if self.max_tokens:
            params["max_tokens"] = self.max_tokens
        if request.tools and request.allow_tools:
            params["tools"] = request.tools
            params["tool_choice"] = "auto"
        if self.entry.api_base:
            params["api_base"] = self.entry.api_base
        if self.entry.api_key is not None:
            params["api_key"] = self.entry.api_key.get_secret_value()
        elif self.entry.api_key_env and os.environ.get(self.entry.api_key_env):
            params["api_key"] = os.environ[self.entry.api_key_env]
        elif self.entry.api_base:
            params["api_key"] = "not-needed"  # local OpenAI-compatible servers take any key
        return params

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream one completion; raise :class:`ModelFailure` when it fails or stalls."""
        return traced_completion(
            name=self.name,
            temperature=self.temperature,
            request=request,
            open_stream=lambda span, calls: self._open(request, span, calls),
            classify=_failure,
        )

    async def _open(
        self, request: ModelRequest, span: trace.Span, calls: ToolCallParts
    ) -> AsyncIterator[ModelEvent]:
        async with asyncio.timeout(self.timeout_s):
            with trace.use_span(span, end_on_exit=False):
                response = await litellm.acompletion(**self._params(request))
        iterator = response.__aiter__()
        while True:
            try:
                async with asyncio.timeout(self.timeout_s):
                    chunk = await iterator.__anext__()
            except StopAsyncIteration:
                break
            for event in _events(chunk, calls):
                yield event


def _events(chunk: Any, calls: ToolCallParts) -> list[ModelEvent]:
    """Text from one streamed chunk; tool-call fragments are gathered into ``calls``."""
    out: list[ModelEvent] = []
    for choice in getattr(chunk, "choices", None) or []:
        delta = getattr(choice, "delta", None)
        if delta is None:
            continue
        content = getattr(delta, "content", None)
        if content:
            out.append(TextDelta(content))
        for fragment in getattr(delta, "tool_calls", None) or []:
            index = getattr(fragment, "index", None) or 0
            call = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
            if getattr(fragment, "id", None):
                call["id"] = fragment.id
            function = getattr(fragment, "function", None)
            if function is not None:
                if getattr(function, "name", None):
                    call["name"] = function.name
                if getattr(function, "arguments", None):
                    call["arguments"] += function.arguments
    return out
