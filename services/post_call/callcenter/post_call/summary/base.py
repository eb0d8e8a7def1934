"""The summary a step stores and publishes, and the summariser interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class CallSummary(BaseModel):
    """Structured output asked of the LLM (and produced offline)."""

    model_config = ConfigDict(extra="ignore")

    summary: str = Field(
        description="For colleagues: the problem in plain words, the final outcome of each "
        "action, what remains"
    )
    sentiment: Literal["positive", "neutral", "negative"]
    satisfaction: int = Field(ge=1, le=5, description="Estimated customer satisfaction, 1 to 5")
    resolved: bool = Field(description="Only true when the customer's request was actually met")
    topics: list[str] = Field(default_factory=list, description="Short topic labels")
    follow_up_needed: bool = Field(description="Whether the customer should get a follow-up")
    follow_up: str | None = Field(
        default=None,
        description="Written to the customer: what we did and what happens next (never internal)",
    )


@dataclass(slots=True, kw_only=True)
class TranscriptTurn:
    """One stored turn, as the summarisers read it."""

    turn_index: int
    user_text: str
    assistant_text: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False


class Summarizer(ABC):
    """Turns a transcript into a :class:`CallSummary`."""

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Load what the first summary would otherwise load mid-call (a slow import)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release pooled connections."""

    @abstractmethod
    async def summarize(
        self, *, channel: str, reason: str, turns: list[TranscriptTurn]
    ) -> tuple[CallSummary, str]:
        """Summarise one conversation; return the summary and the engine that wrote it."""
