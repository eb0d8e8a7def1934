"""The two ways a summary request reaches a model: straight to an OpenAI-compatible server, or litellm.

Both send the same request (the system prompt, the transcript, temperature 0 and the summary's JSON
schema as ``response_format``, built once) and return the answer's text; the summariser validates it.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any, Protocol

import aiohttp

from callcenter.common.config.sections import LLMModelSettings, LLMSettings
from callcenter.common.openai_endpoint import OpenAIEndpoint
from callcenter.post_call.summary.base import CallSummary

#: The structured-output request, built once (the schema is the same for every call).
RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "call_summary", "schema": CallSummary.model_json_schema()},
}
_ERROR_TEXT_LIMIT = 300


class SummaryModel(Protocol):
    """One configured model, as the summariser asks it."""

    name: str

    def warm_up(self) -> None:
        """Load what the first request would otherwise load."""

    async def complete(self, messages: list[dict[str, str]]) -> str:
        """The model's answer (the summary's JSON, as text)."""

    async def close(self) -> None:
        """Release pooled connections."""


class ModelError(Exception):
    """The model did not answer; ``retryable`` when the same request may succeed soon."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


class OpenAISummaryModel:
    """An OpenAI-compatible model (``client: openai``): one JSON ``POST /chat/completions``.

    A rate limit, a 5xx or a refused connection is retried ``llm.retries`` times after
    ``llm.retry_backoff_s`` (doubling); anything else moves on to the next model at once.
    """

    def __init__(self, *, entry: LLMModelSettings, settings: LLMSettings) -> None:
        endpoint = OpenAIEndpoint.of(entry)
        self.name = entry.model
        self._url = endpoint.url
        self._headers = endpoint.headers
        self._api_model = endpoint.api_model
        self._timeout_s = entry.timeout_s or settings.timeout_s
        self._retries = settings.retries
        self._backoff_s = settings.retry_backoff_s
        self._session: aiohttp.ClientSession | None = None

    def warm_up(self) -> None:
        """Nothing to load: the session opens in the event loop on the first request."""

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
                connector=aiohttp.TCPConnector(limit=0),
            )
        return self._session

    async def close(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def complete(self, messages: list[dict[str, str]]) -> str:
        """The answer's content.

        Raises:
            ModelError: the server refused, failed or timed out (after the retries).

        """
        body = json.dumps(
            {
                "model": self._api_model,
                "messages": messages,
                "temperature": 0,
                "response_format": RESPONSE_FORMAT,
            }
        ).encode()
        attempt = 0
        while True:
            try:
                return await self._post(body)
            except ModelError as exc:
                if not exc.retryable or attempt >= self._retries:
                    raise
            await asyncio.sleep(self._backoff_s * 2**attempt)
            attempt += 1

    async def _post(self, body: bytes) -> str:
        try:
            async with self._http().post(self._url, data=body, headers=self._headers) as response:
                raw = await response.read()
                status = response.status
        except TimeoutError as exc:
            raise ModelError(f"timed out after {self._timeout_s} s", retryable=False) from exc
        except aiohttp.ClientError as exc:
            raise ModelError(
                f"connection failed: {type(exc).__name__}: {exc}", retryable=True
            ) from exc
        if status != 200:
            raise ModelError(
                f"HTTP {status}: {_error_message(raw)[:_ERROR_TEXT_LIMIT]}",
                retryable=status == 429 or status >= 500,
            )
        try:
            return json.loads(raw)["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ModelError(
                f"unexpected answer: {raw[:_ERROR_TEXT_LIMIT]!r}", retryable=False
            ) from exc


def _error_message(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["error"]["message"])
    except Exception:
        return raw.decode(errors="replace")


def _litellm() -> Any:
    """litellm, imported on first use (it is slow to import), without network look-ups."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


def _litellm_key(entry: LLMModelSettings) -> str | None:
    """The entry's own key or its variable's; None lets litellm look where it looks."""
    if entry.api_key is not None:
        return entry.api_key.get_secret_value()
    return os.environ.get(entry.api_key_env) if entry.api_key_env else None


class LiteLLMSummaryModel:
    """Any other vendor (``client: litellm``), translated by litellm."""

    def __init__(self, *, entry: LLMModelSettings, settings: LLMSettings) -> None:
        self.name = entry.model
        self._entry = entry
        self._timeout_s = entry.timeout_s or settings.timeout_s
        self._retries = settings.retries

    def warm_up(self) -> None:
        """Import litellm (seconds of CPU)."""
        _litellm()

    async def close(self) -> None:
        """Nothing to close: litellm keeps its own clients."""

    async def complete(self, messages: list[dict[str, str]]) -> str:
        """The answer's content (litellm raises its own errors)."""
        entry = self._entry
        response = await _litellm().acompletion(
            model=entry.model,
            messages=messages,
            api_key=_litellm_key(entry),
            api_base=entry.api_base,
            timeout=self._timeout_s,
            temperature=0,
            num_retries=self._retries,
            response_format=RESPONSE_FORMAT,
        )
        return response.choices[0].message.content or ""
