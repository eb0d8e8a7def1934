"""Events on the bus: one pydantic model per subject, versioned.

Every event carries ``event_id`` (used as ``Nats-Msg-Id`` so a retried publish is stored once),
``schema_version`` and ``occurred_at``. Consumers must accept unknown fields from newer producers,
so the models ignore extras; a breaking change bumps ``schema_version``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

#: ``web_voice``: a voice call from the browser (the chat widget's "Call" button), no number
Channel = Literal["voice", "sms", "chat", "web_voice"]

SUBJECT_CALL_STARTED = "call.started"
SUBJECT_CALL_ENDED = "call.ended"
SUBJECT_CALL_SUMMARIZED = "call.summarized"
SUBJECT_TURN_COMPLETED = "turn.completed"
SUBJECT_TURN_HEARD = "turn.heard"

SUBJECT_HANDOFF_REQUESTED = "handoff.requested"
SUBJECT_HANDOFF_MESSAGE = "handoff.message"
SUBJECT_AGENT_JOINED = "agent.joined"
SUBJECT_AGENT_LEFT = "agent.left"

#: Subjects stored in the events stream.
STREAM_SUBJECTS = ["call.>", "turn.>", "handoff.>", "agent.>"]


def new_id() -> str:
    """A new random identifier (hex UUID4)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Event(BaseModel):
    """Fields every event has."""

    model_config = ConfigDict(extra="ignore")

    subject: ClassVar[str]
    current_version: ClassVar[int] = 1

    event_id: str = Field(default_factory=new_id)
    schema_version: int = 1
    occurred_at: datetime = Field(default_factory=utcnow)
    call_id: str

    def to_bytes(self) -> bytes:
        """Serialise as JSON for the wire."""
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Event:
        """Parse from the wire."""
        return cls.model_validate_json(data)


class CallStarted(Event):
    """A conversation began on some channel."""

    subject: ClassVar[str] = SUBJECT_CALL_STARTED

    channel: Channel
    from_number: str | None = None
    to_number: str | None = None
    customer_hint: str | None = None
    provider_ids: dict[str, str] = Field(default_factory=dict)


class ToolCallRecord(BaseModel):
    """One tool call made during a turn and its result."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    success: bool
    result: dict[str, Any] | None = None
    error: str | None = None
    duration_ms: float = 0.0


class TurnLatency(BaseModel):
    """Where a turn's time went, in milliseconds; absent stages are None."""

    model_config = ConfigDict(extra="ignore")

    first_token_ms: float | None = None
    tool_ms: float = 0.0
    total_ms: float = 0.0
    stt_final_ms: float | None = None
    first_audio_ms: float | None = None
    first_audio_sent_ms: float | None = None


class TurnCompleted(Event):
    """The assistant finished (or was interrupted in) one reply."""

    subject: ClassVar[str] = SUBJECT_TURN_COMPLETED

    channel: Channel
    turn_index: int
    user_text: str
    assistant_text: str
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    latency: TurnLatency = Field(default_factory=TurnLatency)
    interrupted: bool = False
    engine: str = "offline"
    customer_id: str | None = None


class CallEnded(Event):
    """A conversation is over; published once per call."""

    subject: ClassVar[str] = SUBJECT_CALL_ENDED

    channel: Channel
    reason: str
    duration_s: float
    turn_count: int
    customer_id: str | None = None


class CallSummarized(Event):
    """The post-call summary of a conversation."""

    subject: ClassVar[str] = SUBJECT_CALL_SUMMARIZED

    channel: Channel | None = None
    customer_id: str | None = None
    summary: str
    sentiment: Literal["positive", "neutral", "negative"]
    satisfaction: int = Field(ge=1, le=5)
    resolved: bool
    topics: list[str] = Field(default_factory=list)
    follow_up_needed: bool
    follow_up: str | None = None


# --- promises: customer notifications and the verified customer (issue 15) ---------------------

SUBJECT_NOTIFICATION_REQUESTED = "call.notification_requested"
SUBJECT_CUSTOMER_VERIFIED = "call.customer_verified"

NotificationKind = Literal[
    "verification_code",
    "return_confirmation",
    "exchange_confirmation",
    "cancellation_confirmation",
    "address_change_confirmation",
]


class NotificationRequested(Event):
    """A skill promised the customer a message; post_call sends it once to the contact on file.

    ``event_id`` is the notification id (``Nats-Msg-Id``), fixed when the skill records it, so a
    republished request is stored once and sent once. The recipient is never in the event: the
    sender looks up ``customer_id``'s email or phone on file.
    """

    subject: ClassVar[str] = SUBJECT_NOTIFICATION_REQUESTED

    customer_id: str
    kind: NotificationKind
    via: Literal["email", "sms"] = "email"
    #: What the message states (ids, items, amounts, links), as the skill's result had them.
    details: dict[str, Any] = Field(default_factory=dict)


class CustomerVerified(Event):
    """The caller proved who they are; the calls table owner records ``customer_id`` on the call."""

    subject: ClassVar[str] = SUBJECT_CUSTOMER_VERIFIED

    channel: str | None = None
    customer_id: str
    method: str


# ----- voice: what the caller heard and when (published by voice_pipeline) ---------------------


class TurnHeard(Event):
    """What the caller of a phone call heard of one answer, and when (voice only).

    Published by the voice pipeline once the answer's first audio left for Twilio, or once the
    turn ended without it (interrupted, failed). ``turn_index`` is the conversation's, from its
    ``done`` chunk (None when the turn never got one); post_call joins it with
    ``turn.completed`` on ``(call_id, turn_index)``. Every ``*_ms`` is measured from the moment
    the caller stopped speaking (VAD stop minus its ``stop_secs``), except
    ``transcript_to_first_audio_sent_ms``, the platform's own overhead.
    """

    subject: ClassVar[str] = SUBJECT_TURN_HEARD

    turn_index: int | None = None
    source: Literal["speech", "dtmf"] = "speech"
    stt_final_ms: float | None = None
    first_text_ms: float | None = None
    first_audio_ms: float | None = None
    first_audio_sent_ms: float | None = None
    transcript_to_first_audio_sent_ms: float | None = None
    interrupted: bool = False
    heard_text: str | None = None
    error: str | None = None


# -- the agent inbox: a person takes over a conversation (issue 14) ------------------------


class HandoffRequested(Event):
    """The conversation waits for a human agent (the bot stops answering)."""

    subject: ClassVar[str] = SUBJECT_HANDOFF_REQUESTED

    channel: Channel
    reason: str
    trigger: Literal["tool", "supervisor", "voice_transfer"] = "tool"
    summary: str = ""


class HandoffMessage(Event):
    """A message exchanged while a person owns the conversation (for the transcript)."""

    subject: ClassVar[str] = SUBJECT_HANDOFF_MESSAGE

    channel: Channel
    sender: Literal["customer", "agent", "system"]
    agent_name: str | None = None
    text: str


class AgentJoined(Event):
    """A named agent took the conversation; ``wait_s`` is how long the customer queued."""

    subject: ClassVar[str] = SUBJECT_AGENT_JOINED

    channel: Channel
    agent_name: str
    wait_s: float = Field(ge=0)


class AgentLeft(Event):
    """The agent handed the conversation back to the bot, closed it, or nobody came in time."""

    subject: ClassVar[str] = SUBJECT_AGENT_LEFT

    channel: Channel
    agent_name: str | None = None
    outcome: Literal["handed_back", "closed", "no_agent"]


EVENT_TYPES: dict[str, type[Event]] = {
    model.subject: model
    for model in (
        CallStarted,
        TurnCompleted,
        CallEnded,
        CallSummarized,
        NotificationRequested,
        CustomerVerified,
        TurnHeard,
        HandoffRequested,
        HandoffMessage,
        AgentJoined,
        AgentLeft,
    )
}


def parse_event(subject: str, data: bytes) -> Event:
    """Parse an event by the subject it arrived on."""
    try:
        model = EVENT_TYPES[subject]
    except KeyError as exc:
        raise ValueError(f"no event model for subject {subject!r}") from exc
    return model.from_bytes(data)
