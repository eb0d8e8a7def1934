"""What one turn accumulates while it runs: its messages, tool records, text and timings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from callcenter.common.events import ToolCallRecord, TurnLatency
from callcenter.common.pii import redact_customer_text, redact_customer_value
from callcenter.conversation.channel import ChannelWriter
from callcenter.conversation.history import keep_delivered


@dataclass(slots=True)
class TurnInput:
    """One ``conversation.turn`` request."""

    call_id: str
    channel: str
    text: str
    caller_number: str | None = None
    verified_by_caller_id: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, body: Any) -> TurnInput:
        """Parse the request body; raise ValueError when it is not one."""
        if not isinstance(body, dict) or not isinstance(body.get("call_id"), str):
            raise ValueError("a conversation.turn request needs call_id")
        channel = body.get("channel") or "chat"
        if channel not in ("chat", "sms", "voice"):
            raise ValueError(f"unknown channel {channel!r}")
        caller = body.get("caller") if isinstance(body.get("caller"), dict) else {}
        metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        return cls(
            call_id=body["call_id"],
            channel=channel,
            text=redact_customer_text(str(body.get("text") or "")),  # defensive: edges redact
            caller_number=caller.get("number") or None,
            verified_by_caller_id=bool(caller.get("verified_by_caller_id")),
            metadata=redact_customer_value(metadata),  # type: ignore[arg-type]
        )


@dataclass(slots=True)
class TurnState:
    """The turn in progress."""

    request: TurnInput
    writer: ChannelWriter
    started: float = field(default_factory=time.monotonic)
    messages: list[dict[str, Any]] = field(default_factory=list)
    #: how much of ``writer.text`` the assistant messages in ``messages`` hold
    committed: int = 0
    records: list[ToolCallRecord] = field(default_factory=list)
    first_token_at: float | None = None
    tool_time_s: float = 0.0
    end_call: bool = False
    transfer: dict[str, Any] | None = None
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
        edge = self.request.metadata.get("latency")
        stt_final = edge.get("stt_final_ms") if isinstance(edge, dict) else None
        return TurnLatency(
            first_token_ms=round(first, 2) if first is not None else None,
            tool_ms=round(self.tool_time_s * 1000, 2),
            total_ms=round((now - self.started) * 1000, 2),
            # measured by the voice pipeline: caller stopped speaking -> final transcript
            stt_final_ms=float(stt_final) if isinstance(stt_final, int | float) else None,
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
