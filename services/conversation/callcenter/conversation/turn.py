"""What one turn accumulates while it runs: its messages, tool records, text and timings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from callcenter.common.contracts import TurnRequest, TurnTransfer
from callcenter.common.events import ToolCallRecord, TurnLatency
from callcenter.conversation.channel import ChannelWriter
from callcenter.conversation.history import keep_delivered


@dataclass(slots=True)
class TurnState:
    """The turn in progress."""

    request: TurnRequest
    writer: ChannelWriter
    started: float = field(default_factory=time.monotonic)
    messages: list[dict[str, Any]] = field(default_factory=list)
    #: how much of ``writer.text`` the assistant messages in ``messages`` hold
    committed: int = 0
    records: list[ToolCallRecord] = field(default_factory=list)
    first_token_at: float | None = None
    tool_time_s: float = 0.0
    end_call: bool = False
    transfer: TurnTransfer | None = None
    engine: str = "offline"
    failures: list[str] = field(default_factory=list)
    rounds: int = 0
    #: what the offline engine keeps between the rounds of this turn
    scratch: dict[str, Any] = field(default_factory=dict)

    def mark_output(self) -> None:
        """Note the time of the first piece the customer gets."""
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()

    def latency(self) -> TurnLatency:
        """The latency breakdown so far, in milliseconds."""
        now = time.monotonic()
        first = (self.first_token_at - self.started) * 1000 if self.first_token_at else None
        return TurnLatency(
            first_token_ms=round(first, 2) if first is not None else None,
            tool_ms=round(self.tool_time_s * 1000, 2),
            total_ms=round((now - self.started) * 1000, 2),
            # measured by the voice pipeline: caller stopped speaking -> final transcript
            stt_final_ms=self.request.stt_final_ms,
        )

    def add_assistant(self, message: dict[str, Any]) -> None:
        """Add an assistant message holding the text sent since the last one."""
        self.messages.append(message)
        self.committed = len(self.writer.text)

    def keep_delivered(self, delivered: str) -> None:
        """Cut this turn's assistant text down to what the customer actually received."""
        rest = self.writer.text[self.committed :].strip()
        if rest:  # the round that was cut short
            self.add_assistant({"role": "assistant", "content": rest})
        self.messages[:] = keep_delivered(self.messages, delivered)
