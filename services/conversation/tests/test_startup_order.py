"""Services start in any order (as pods do): a conversation replica up before the tools service
answers with tools as soon as the tools service is there."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from callcenter.common.bus import Bus
from callcenter.common.clients import ConversationClient
from callcenter.common.contracts import TurnRequest


async def test_first_turn_after_tools_come_up_uses_them(
    db_pool: Any, bus: Bus, service_factory: Callable[..., Any]
) -> None:
    conversation = service_factory("conversation")
    assert "tools.list failed" in conversation.log_text()  # nobody served tools at start-up
    service_factory("tools")
    stream = await ConversationClient(bus=bus).stream_turn(
        TurnRequest(call_id=uuid.uuid4().hex, channel="chat", text="Where is my order ORD-1001?")
    )
    chunks = [chunk.model_dump() async for chunk in stream]
    done = chunks[-1]
    assert done["type"] == "done"
    assert "1Z999AA10123456784" in done["text"], done["text"]
