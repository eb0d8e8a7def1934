"""What a model is to the tool loop: a stream of text deltas, then the tool calls it wants."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from callcenter.conversation.session import Session
    from callcenter.conversation.turn import TurnState


@dataclass(slots=True)
class TextDelta:
    """A piece of the answer."""

    text: str


@dataclass(slots=True)
class ToolCallRequest:
    """A tool the model wants run (arguments as the JSON text it wrote)."""

    id: str
    name: str
    arguments: str


ModelEvent = TextDelta | ToolCallRequest


@dataclass(slots=True)
class ModelRequest:
    """Everything a model may look at for the next step of a turn."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    session: Session
    turn: TurnState
    allow_tools: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


class ModelFailure(Exception):
    """The model could not answer; ``retryable`` for rate limits and server errors."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class ChatModel(Protocol):
    """One model in the fallback list."""

    name: str
    retries: int

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Text deltas as they come, then the requested tool calls (if any)."""
        ...
