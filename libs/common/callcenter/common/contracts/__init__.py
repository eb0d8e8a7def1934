"""Request/reply contracts: one typed, versioned model per message of each subject.

Beside the events (:mod:`callcenter.common.events`), these are the messages services exchange
directly: ``conversation.turn`` (and its ``.cancel``), ``tools.list`` and ``tools.call``. The
clients in :mod:`callcenter.common.clients` speak them; servers validate with them.
"""

from callcenter.common.contracts.base import Contract
from callcenter.common.contracts.subjects import (
    CANCEL_SUFFIX,
    CONVERSATION_TURN,
    CONVERSATION_TURN_CANCEL,
    TOOLS_CALL,
    TOOLS_LIST,
    cancel_subject,
)
from callcenter.common.contracts.tools import (
    ToolCallContext,
    ToolCallRequest,
    ToolOutcome,
    ToolsList,
)
from callcenter.common.contracts.turn import (
    DeltaChunk,
    DoneChunk,
    OwnedChunk,
    ToolChunk,
    TurnCaller,
    TurnCancel,
    TurnChunk,
    TurnRequest,
    TurnTransfer,
    parse_chunk,
)

__all__ = [
    "CANCEL_SUFFIX",
    "CONVERSATION_TURN",
    "CONVERSATION_TURN_CANCEL",
    "TOOLS_CALL",
    "TOOLS_LIST",
    "Contract",
    "DeltaChunk",
    "DoneChunk",
    "OwnedChunk",
    "ToolCallContext",
    "ToolCallRequest",
    "ToolChunk",
    "ToolOutcome",
    "ToolsList",
    "TurnCaller",
    "TurnCancel",
    "TurnChunk",
    "TurnRequest",
    "TurnTransfer",
    "cancel_subject",
    "parse_chunk",
]
