"""Inbox changes fanned out to the agent pages of every replica.

Any replica that changes a conversation (a customer message, a take, a reply) publishes a small
notice on the core subject ``inbox.updates``; every replica's :class:`InboxHub` relays it to its
agent pages as Server-Sent Events (``event: inbox.updates``), which then fetch what changed.
"""

from __future__ import annotations

import json

from callcenter.common.logging import get_logger
from callcenter.gateway.deps import GatewayDeps
from callcenter.gateway.live import LiveHub

log = get_logger(__name__)

UPDATES = "inbox.updates"


async def announce(deps: GatewayDeps, *, call_id: str, state: str) -> None:
    """Tell every agent page that ``call_id`` changed."""
    try:
        await deps.bus.nc.publish(
            deps.bus.subject(UPDATES), json.dumps({"call_id": call_id, "state": state}).encode()
        )
    except Exception:  # pages also refresh on their own; a lost notice only delays them
        log.warning("inbox update not announced", call_id=call_id, exc_info=True)


class InboxHub(LiveHub):
    """A :class:`LiveHub` on ``inbox.updates`` instead of the call events."""

    async def start(self) -> None:
        """Subscribe to the inbox notices."""
        self._subscriptions.append(
            await self._bus.nc.subscribe(self._bus.subject(UPDATES), cb=self._on_message)
        )
