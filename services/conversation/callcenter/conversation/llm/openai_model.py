"""An OpenAI-compatible model reached directly: one streamed ``/chat/completions`` over aiohttp.

OpenAI, Azure's v1 API, vLLM, Ollama, Groq and most hosted open models speak this protocol, so
they need no translation layer. This path builds the request body itself, keeps its HTTP
connections pooled, and reads the server-sent events line by line with aiohttp's C parser:
a fraction of litellm's CPU per turn (and about a quarter of httpx's per request, measured),
while litellm stays the path for the vendors it translates.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from callcenter.common.config.sections import LLMModelSettings, LLMSettings
from callcenter.common.openai_endpoint import OpenAIEndpoint
from callcenter.conversation.llm.base import (
    ModelEvent,
    ModelFailure,
    ModelRequest,
    TextDelta,
)
from callcenter.conversation.llm.completion import ToolCallParts, traced_completion

_ERROR_TEXT_LIMIT = 300


class OpenAICompatibleModel:
    """One entry of ``llm.models`` whose ``client`` is ``openai``."""

    def __init__(self, *, entry: LLMModelSettings, settings: LLMSettings) -> None:
        endpoint = OpenAIEndpoint.of(entry, accept="text/event-stream")
        self.entry = entry
        self.name = entry.model
        self.api_model = endpoint.api_model
        self.url = endpoint.url
        self.retries = settings.retries
        self.timeout_s = entry.timeout_s or settings.timeout_s
        self.temperature = settings.temperature
        self.max_tokens = settings.max_tokens
        self._headers = endpoint.headers
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        """The pooled HTTP session (made in the running event loop, on first use)."""
        if self._session is None or self._session.closed:
            # the read timeout bounds the wait for the answer to start and each gap between chunks
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self.timeout_s, sock_read=self.timeout_s
            )
            self._session = aiohttp.ClientSession(
                timeout=timeout, connector=aiohttp.TCPConnector(limit=0)
            )
        return self._session

    async def aclose(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def body(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body of the completion request."""
        body: dict[str, Any] = {
            "model": self.api_model,
            "messages": request.messages,
            "stream": True,
            "temperature": self.temperature,
        }
        if self.max_tokens:
            body["max_tokens"] = self.max_tokens
        if request.tools and request.allow_tools:
            body["tools"] = request.tools
            body["tool_choice"] = "auto"
        return body

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream one completion; raise :class:`ModelFailure` when it fails or stalls."""
        return traced_completion(
            name=self.name,
            temperature=self.temperature,
            request=request,
            open_stream=lambda _span, calls: self._open(request, calls),
            classify=_failure,
        )

    async def _open(self, request: ModelRequest, calls: ToolCallParts) -> AsyncIterator[ModelEvent]:
        content = json.dumps(self.body(request)).encode()
        async with self._http().post(self.url, data=content, headers=self._headers) as response:
            if response.status != 200:
                raise _status_failure(response.status, await response.read())
            # read to the end (past ``[DONE]``): a response left unread costs its connection
            async for line in response.content:
                if not line.startswith(b"data:"):
                    continue  # blank separators, comments, event names
                data = line[5:].strip()
                if data == b"[DONE]":
                    continue
                for event in _events(json.loads(data), calls):
                    yield event


def _status_failure(status: int, raw: bytes) -> ModelFailure:
    """An HTTP error: rate limits and 5xx may be retried, the rest moves on to the next model."""
    try:
        message = json.loads(raw)["error"]["message"]
    except Exception:
        message = raw.decode(errors="replace")
    retryable = status == 429 or status >= 500
    return ModelFailure(
        f"HTTP {status}: {str(message)[:_ERROR_TEXT_LIMIT]}", retryable=retryable, status=status
    )


def _failure(exc: BaseException) -> ModelFailure:
    """A transport error: timeouts move on to the next model; a refused connection may be retried."""
    if isinstance(exc, TimeoutError):  # aiohttp's read and connect timeouts are TimeoutErrors
        return ModelFailure(f"timed out: {type(exc).__name__}", retryable=False, status=408)
    if isinstance(exc, aiohttp.ClientError):
        return ModelFailure(f"connection failed: {type(exc).__name__}: {exc}", retryable=True)
    return ModelFailure(f"{type(exc).__name__}: {exc}", retryable=False)


def _events(chunk: dict[str, Any], calls: ToolCallParts) -> list[ModelEvent]:
    """Text from one streamed chunk; tool-call fragments are gathered into ``calls``."""
    out: list[ModelEvent] = []
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta")
        if not delta:
            continue
        content = delta.get("content")
        if content:
            out.append(TextDelta(content))
        for fragment in delta.get("tool_calls") or ():
            call = calls.setdefault(
                fragment.get("index") or 0, {"id": "", "name": "", "arguments": ""}
            )
            if fragment.get("id"):
                call["id"] = fragment["id"]
            function = fragment.get("function") or {}
            if function.get("name"):
                call["name"] = function["name"]
            if function.get("arguments"):
                call["arguments"] += function["arguments"]
    return out
