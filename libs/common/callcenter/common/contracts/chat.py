"""The web-chat WebSocket (``/chat/ws``): the frames between the gateway and a visitor.

Client -> server: :class:`ChatMessage`, :class:`ChatEnd`, :class:`ChatPing`. Server -> client:
:data:`ChatFrame` (``session``, ``typing``, ``delta``, ``tool``, ``done``, ``error``, ``ended``,
``pong``, ``reconnect``, and the agent inbox's ``handoff``, ``held``, ``agent_joined``, ``agent``,
``agent_left``, ``no_agent``). A browser page reads these frames too, so they carry no
``schema_version``: the protocol is versioned by its path, and a reader ignores unknown fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore")

    def to_text(self) -> str:
        """The frame as a JSON text frame."""
        return self.model_dump_json()


class ChatMessage(_Frame):
    """The visitor's message."""

    type: Literal["message"] = "message"
    text: str


class ChatEnd(_Frame):
    """The visitor closes the conversation."""

    type: Literal["end"] = "end"


class ChatPing(_Frame):
    """Keep-alive; answered with ``pong``."""

    type: Literal["ping"] = "ping"


class SessionFrame(_Frame):
    """The conversation this socket is bound to (the first frame)."""

    type: Literal["session"] = "session"
    call_id: str
    resume_token: str = ""
    resumed: bool = False
    greeting: str | None = None


class TypingFrame(_Frame):
    """The assistant is working on a reply."""

    type: Literal["typing"] = "typing"


class DeltaFrame(_Frame):
    """A piece of the reply."""

    type: Literal["delta"] = "delta"
    text: str


class ToolFrame(_Frame):
    """A tool started or finished."""

    type: Literal["tool"] = "tool"
    name: str
    status: Literal["started", "finished"]


class DoneFrame(_Frame):
    """The reply is complete."""

    type: Literal["done"] = "done"
    turn_index: int
    text: str
    end_call: bool = False
    transfer: dict[str, Any] | None = None


class ErrorFrame(_Frame):
    """Something the visitor should read (a refused message, a failed turn)."""

    type: Literal["error"] = "error"
    message: str


class EndedFrame(_Frame):
    """The conversation is over."""

    type: Literal["ended"] = "ended"
    reason: str


class PongFrame(_Frame):
    """The answer to ``ping``."""

    type: Literal["pong"] = "pong"


class ReconnectFrame(_Frame):
    """This replica is stopping: reconnect (with the resume token) to continue."""

    type: Literal["reconnect"] = "reconnect"


# --- the agent inbox (issue 14): a person takes the conversation over ---------------------------


class HandoffFrame(_Frame):
    """The conversation waits for a person; ``text`` tells the visitor so."""

    type: Literal["handoff"] = "handoff"
    state: str
    text: str


class HeldFrame(_Frame):
    """The visitor's message was kept for the person who owns the conversation (no bot reply)."""

    type: Literal["held"] = "held"


class AgentJoinedFrame(_Frame):
    """A named agent joined ("You're now talking with <agent>")."""

    type: Literal["agent_joined"] = "agent_joined"
    agent: str
    text: str


class AgentFrame(_Frame):
    """A message from a person (the named agent), not from the assistant."""

    type: Literal["agent"] = "agent"
    agent: str
    text: str


class AgentLeftFrame(_Frame):
    """The agent left ("<agent> has left the conversation"); the assistant answers again."""

    type: Literal["agent_left"] = "agent_left"
    agent: str
    text: str


class NoAgentFrame(_Frame):
    """No person came in time (or outside hours): a ticket was opened and a callback offered."""

    type: Literal["no_agent"] = "no_agent"
    ticket_id: str | None = None
    text: str


#: A frame the gateway sends, told apart by ``type``.
ChatFrame = Annotated[
    SessionFrame
    | TypingFrame
    | DeltaFrame
    | ToolFrame
    | DoneFrame
    | ErrorFrame
    | EndedFrame
    | PongFrame
    | ReconnectFrame
    | HandoffFrame
    | HeldFrame
    | AgentJoinedFrame
    | AgentFrame
    | AgentLeftFrame
    | NoAgentFrame,
    Field(discriminator="type"),
]

_FRAME = TypeAdapter(ChatFrame)


def parse_chat_frame(data: str | bytes) -> ChatFrame:
    """One server frame; raises ``pydantic.ValidationError`` when it is not one."""
    return _FRAME.validate_json(data)
