"""The request/reply subjects, spelled once (unprefixed: ``Bus.subject`` adds the deployment's prefix).

Events have their own subjects in :mod:`callcenter.common.events`.
"""

from __future__ import annotations

#: Suffix of the subject a streamed request's cancel goes to (every replica listens there).
CANCEL_SUFFIX = ".cancel"

#: One conversation turn: a :class:`~callcenter.common.contracts.turn.TurnRequest` answered by a
#: stream of :data:`~callcenter.common.contracts.turn.TurnChunk`.
CONVERSATION_TURN = "conversation.turn"
#: Cancel of a turn: a :class:`~callcenter.common.contracts.turn.TurnCancel` with the stream id.
CONVERSATION_TURN_CANCEL = CONVERSATION_TURN + CANCEL_SUFFIX

#: The tools schema: ``{}`` answered by a :class:`~callcenter.common.contracts.tools.ToolsList`.
TOOLS_LIST = "tools.list"
#: One tool call: a :class:`~callcenter.common.contracts.tools.ToolCallRequest` answered by a
#: :class:`~callcenter.common.contracts.tools.ToolOutcome`.
TOOLS_CALL = "tools.call"


def cancel_subject(subject: str) -> str:
    """The cancel subject of a streamed request's ``subject``."""
    return subject + CANCEL_SUFFIX
