"""Where an OpenAI-compatible model of ``llm.models`` is reached, and with which headers.

Shared by every service that calls such a model without litellm (the conversation's streamed turns,
post-call's summaries), so the choice of client (``llm.models[].client``), the default base URL of
each provider prefix and the key lookup are the same everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from callcenter.common.config.sections import LLMModelSettings

#: litellm provider prefixes of OpenAI-compatible services, and where each lives by default
DEFAULT_BASES: dict[str, str | None] = {
    "openai": "https://api.openai.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "azure": None,
    "hosted_vllm": None,
    "ollama_chat": None,
    "ollama": None,
}


def client_for(entry: LLMModelSettings) -> str:
    """``openai`` or ``litellm``: ``auto`` sends ``openai/...`` models the lean way."""
    if entry.client != "auto":
        return entry.client
    return "openai" if entry.model.startswith("openai/") else "litellm"


def api_key(entry: LLMModelSettings) -> str:
    """The key for ``entry``: its own, its environment variable, ``OPENAI_API_KEY``, or a dummy."""
    if entry.api_key is not None:
        return entry.api_key.get_secret_value()
    if entry.api_key_env and os.environ.get(entry.api_key_env):
        return os.environ[entry.api_key_env]
    if entry.model.startswith("openai/") and os.environ.get("OPENAI_API_KEY"):
        return os.environ["OPENAI_API_KEY"]  # where litellm would look too
    return "not-needed"  # local OpenAI-compatible servers take any key


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenAIEndpoint:
    """The ``/chat/completions`` URL, the model name the server knows, the request headers."""

    url: str
    api_model: str
    headers: dict[str, str]

    @classmethod
    def of(cls, entry: LLMModelSettings, *, accept: str = "application/json") -> OpenAIEndpoint:
        """The endpoint of ``entry`` (``openai/gpt-4o-mini`` is ``gpt-4o-mini`` at OpenAI).

        Raises:
            ValueError: no ``api_base`` and the provider prefix has no default one.

        """
        provider, _, api_model = entry.model.partition("/")
        if provider not in DEFAULT_BASES or not api_model:
            provider, api_model = "", entry.model
        base = entry.api_base or DEFAULT_BASES.get(provider)
        if not base:
            raise ValueError(
                f"llm model {entry.model!r}: the openai client needs api_base "
                "(the URL that /chat/completions is under)"
            )
        url = base.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json", "Accept": accept}
        key = api_key(entry)
        if ".azure.com" in url:
            headers["api-key"] = key
        else:
            headers["Authorization"] = f"Bearer {key}"
        return cls(url=url, api_model=api_model, headers=headers)
