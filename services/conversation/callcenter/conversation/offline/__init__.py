"""The deterministic offline engine (no LLM needed): the demo's engine and the last resort."""

from callcenter.conversation.offline.model import OfflineModel

__all__ = ["OfflineModel"]
