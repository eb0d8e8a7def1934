"""Models the engine asks for the next step of a turn: LLMs through litellm, and the offline engine.

``callcenter.conversation.llm.litellm_model`` is imported only when an LLM is configured: litellm
takes seconds to import, and the offline engine does not need it.
"""

from callcenter.conversation.llm.base import (
    ChatModel,
    ModelFailure,
    ModelRequest,
    TextDelta,
    ToolCallRequest,
)

__all__ = ["ChatModel", "ModelFailure", "ModelRequest", "TextDelta", "ToolCallRequest"]
