"""An agent message written at the moment the chat visitor resumes is shown once, not twice.

The message is both in the replay of what the widget missed (its row is not yet marked
delivered) and on its way live to the new socket. Here the widget's socket is the gateway's own
:class:`CustomerFeed` on the real NATS and PostgreSQL, recording what it would show; the live
message is sent as the agent's side sends it (:func:`to_customer` with the row's id), before,
after and at the same time as the replay.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callcenter.common.bus import Bus
from callcenter.common.config import CallCenterConfig
from callcenter.common.health import Readiness


@pytest.fixture
async def deps(
    config: CallCenterConfig, db_pool: Any, bus: Bus, redis_client: Any
) -> AsyncIterator[Any]:
    from callcenter.gateway.deps import GatewayDeps

    yield GatewayDeps(config=config, bus=bus, redis=redis_client, db=db_pool, readiness=Readiness())


class Widget:
    """A resumed chat socket: its feed, and every frame it showed."""

    def __init__(self, *, deps: Any, call_id: str) -> None:
        from callcenter.gateway.inbox.delivery import CustomerFeed

        self.shown: list[dict[str, Any]] = []

        async def show(frame: dict[str, Any]) -> None:
            self.shown.append(frame)

        async def ended() -> None:
            pass

        self.feed = CustomerFeed(deps=deps, call_id=call_id, send=show, on_ended=ended)


async def _written_while_away(deps: Any, call_id: str, text: str) -> int:
    """An agent message stored and not yet shown, as ``agent_message`` leaves it before sending."""
    return await deps.db.fetchval(
        "INSERT INTO handoff_messages (call_id, sender, agent_name, text) "
        "VALUES ($1, 'agent', 'Dana', $2) RETURNING id",
        call_id,
        text,
    )


async def _live(deps: Any, call_id: str, message_id: int, text: str) -> bool:
    from callcenter.gateway.inbox import delivery

    return await delivery.to_customer(
        deps,
        call_id=call_id,
        channel="chat",
        frame=delivery.agent_frame(agent_name="Dana", text=text),
        sms_text=text,
        message_id=message_id,
    )


@pytest.mark.parametrize("order", ["replay_first", "live_first", "together"])
async def test_a_message_both_replayed_and_live_is_shown_once(deps: Any, order: str) -> None:
    call_id = "chat-" + uuid.uuid4().hex
    earlier = await _written_while_away(deps, call_id, "Your refund left on Monday.")
    text = "And the label is in your mail."
    racing = await _written_while_away(deps, call_id, text)
    widget = Widget(deps=deps, call_id=call_id)
    await widget.feed.start()
    try:
        if order == "replay_first":  # the live request was sent before the replay took the row
            await widget.feed.replay()
            delivered = await _live(deps, call_id, racing, text)
        elif order == "live_first":
            delivered = await _live(deps, call_id, racing, text)
            await widget.feed.replay()
        else:
            delivered, _ = await asyncio.gather(
                _live(deps, call_id, racing, text), widget.feed.replay()
            )
    finally:
        await widget.feed.stop()
    texts = [frame["text"] for frame in widget.shown]
    assert sorted(texts) == sorted(["Your refund left on Monday.", text]), texts  # each once
    if order == "replay_first":
        assert texts == ["Your refund left on Monday.", text]
    assert delivered  # the agent is told it reached the customer, shown by one path or the other
    undelivered = await deps.db.fetchval(
        "SELECT count(*) FROM handoff_messages WHERE id = ANY($1::bigint[]) "
        "AND delivered_at IS NULL",
        [earlier, racing],
    )
    assert undelivered == 0


async def test_a_message_the_widget_failed_to_show_is_replayed_on_the_next_resume(
    deps: Any,
) -> None:
    from callcenter.gateway.inbox.delivery import CustomerFeed

    call_id = "chat-" + uuid.uuid4().hex
    text = "Your replacement ships today."
    message_id = await _written_while_away(deps, call_id, text)

    async def broken(frame: dict[str, Any]) -> None:
        raise ConnectionError("the socket went away while sending")

    async def ended() -> None:
        pass

    dying = CustomerFeed(deps=deps, call_id=call_id, send=broken, on_ended=ended)
    await dying.start()
    try:
        assert not await _live(deps, call_id, message_id, text)  # no reply: not delivered
        with pytest.raises(ConnectionError):
            await dying.replay()
    finally:
        await dying.stop()

    widget = Widget(deps=deps, call_id=call_id)
    await widget.feed.start()
    try:
        assert await widget.feed.replay() == 1
    finally:
        await widget.feed.stop()
    assert [frame["text"] for frame in widget.shown] == [text]
