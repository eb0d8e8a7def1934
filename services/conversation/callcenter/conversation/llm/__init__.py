"""Models the engine asks for the next step of a turn: LLMs, and the offline engine.

An OpenAI-compatible model is reached directly (``openai_model``), any other vendor through
litellm (``litellm_model``); ``selection`` picks per model from ``llm.models[].client``.
``litellm_model`` is imported only when a model needs it: litellm takes seconds and ~150 MB to
import, and neither the lean path nor the offline engine needs it.
"""

from callcenter.conversation.llm.base import (
    ChatModel,
    ModelFailure,
    ModelRequest,
    TextDelta,
    ToolCallRequest,
)

__all__ = ["ChatModel", "ModelFailure", "ModelRequest", "TextDelta", "ToolCallRequest"]
