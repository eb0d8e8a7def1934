"""``conversation.turn``: one customer message in, the assistant's reply streamed back.

The requester (a channel: chat, SMS, voice, the CLI, the bench) sends a :class:`TurnRequest`; the
conversation service answers with :data:`TurnChunk` pieces (``delta`` text, ``tool`` progress) and
ends with exactly one :class:`DoneChunk`. To stop a turn, or to say that only part of a finished
reply reached the customer (voice barge-in), the requester sends a :class:`TurnCancel` to
``conversation.turn.cancel`` with the stream id (see :mod:`callcenter.common.bus.streaming`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from callcenter.common.contracts.base import Contract
from callcenter.common.events import Channel
from callcenter.common.pii import redact_customer_text, redact_customer_value

#: The longest customer message a turn accepts (a channel usually limits it further).
MAX_TURN_TEXT = 20_000


class TurnCaller(BaseModel):
    """What the edge knows about the caller: the number, and whether the carrier vouches for it."""

    model_config = ConfigDict(extra="ignore")

    number: str | None = Field(default=None, max_length=64)
    verified_by_caller_id: bool = False
    #: another conversation the edge proved this caller holds, from its own server-side records
    #: (a browser call started from a chat whose session token the gateway checked): the customer
    #: verified there is verified here too. Never taken from anything the caller sends.
    linked_call_id: str | None = Field(default=None, max_length=200)


class TurnRequest(Contract):
    """One customer message for the conversation of ``call_id``."""

    call_id: str = Field(min_length=1, max_length=200)
    channel: Channel = "chat"
    text: str = Field(default="", max_length=MAX_TURN_TEXT)
    caller: TurnCaller = Field(default_factory=TurnCaller)
    #: voice: caller stopped speaking -> final transcript, measured by the voice pipeline
    stt_final_ms: float | None = Field(default=None, ge=0)
    #: free-form channel details (e.g. the SMS message sid); the service does not interpret them
    metadata: dict[str, Any] = Field(default_factory=dict)

    # Card numbers and SSNs never travel: the edges redact where customer text enters, and the
    # contract redacts again wherever a request is built or parsed (idempotent, issue 13).
    @field_validator("text")
    @classmethod
    def _redact_text(cls, value: str) -> str:
        return redact_customer_text(value)

    @field_validator("metadata")
    @classmethod
    def _redact_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        return redact_customer_value(value)  # type: ignore[return-value]


class DeltaChunk(Contract):
    """A piece of the reply text, ready for the customer (already shaped for the channel)."""

    type: Literal["delta"] = "delta"
    text: str


class ToolChunk(Contract):
    """A tool call started or finished (for a typing indicator; never the tool's data)."""

    type: Literal["tool"] = "tool"
    name: str
    id: str = ""
    status: Literal["started", "finished"]
    success: bool | None = None


class TurnTransfer(BaseModel):
    """The assistant hands the customer to a human agent."""

    model_config = ConfigDict(extra="ignore")

    reason: str = ""
    summary: str = ""
    queue: str | None = None


class DoneChunk(Contract):
    """The turn is over: the whole reply and what the channel must do next."""

    type: Literal["done"] = "done"
    turn_index: int = Field(ge=0)
    text: str = ""
    end_call: bool = False
    transfer: TurnTransfer | None = None
    engine: str = ""


class OwnedChunk(Contract):
    """The turn was not run: a person owns the conversation (the agent inbox).

    The conversation service sends this as the only chunk while the conversation's owner is
    anything but ``bot``; the channel hands the customer's text to the agent instead.
    """

    type: Literal["owned"] = "owned"
    call_id: str
    owner: Literal["bot", "waiting_for_agent", "agent", "closed"]


#: One piece of a turn's streamed reply, told apart by ``type``.
TurnChunk = Annotated[DeltaChunk | ToolChunk | DoneChunk | OwnedChunk, Field(discriminator="type")]

_CHUNK = TypeAdapter(TurnChunk)


def parse_chunk(data: bytes | str) -> DeltaChunk | ToolChunk | DoneChunk | OwnedChunk:
    """One chunk from the wire; raises ``pydantic.ValidationError`` when it is not one."""
    return _CHUNK.validate_json(data)


class TurnCancel(Contract):
    """Stop the turn; ``delivered_text`` is what the customer actually received of the reply.

    Sent after the reply ended too (voice: generated faster than spoken, then cut by barge-in):
    the conversation service then cuts the stored answer to ``delivered_text``.
    """

    delivered_text: str = Field(default="", max_length=MAX_TURN_TEXT * 4)
