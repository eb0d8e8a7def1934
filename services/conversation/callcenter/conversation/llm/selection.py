"""Which client reaches each configured model (``llm.models[].client``)."""

from __future__ import annotations

from callcenter.common.config.sections import LLMModelSettings, LLMSettings
from callcenter.common.openai_endpoint import client_for
from callcenter.conversation.llm.base import ChatModel

__all__ = ["build_llm", "client_for"]


def build_llm(*, entry: LLMModelSettings, settings: LLMSettings) -> ChatModel:
    """The model for one entry; litellm is imported only when an entry needs it (seconds, ~150 MB)."""
    if client_for(entry) == "openai":
        from callcenter.conversation.llm.openai_model import OpenAICompatibleModel

        return OpenAICompatibleModel(entry=entry, settings=settings)
    from callcenter.conversation.llm.litellm_model import LiteLLMModel

    return LiteLLMModel(entry=entry, settings=settings)
