"""One client per request/reply subject: what a channel (or a service) needs to talk to another.

A new channel needs only these two: :class:`ConversationClient` for the turns and, if it runs
tools itself, :class:`ToolsClient`.
"""

from callcenter.common.clients.conversation import ConversationClient, TurnStream
from callcenter.common.clients.tools import ToolsClient, plain_message

__all__ = ["ConversationClient", "ToolsClient", "TurnStream", "plain_message"]
