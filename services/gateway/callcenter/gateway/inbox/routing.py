"""The calls the chat socket and the SMS webhook make: where a customer message goes, and transfers."""

from __future__ import annotations

from typing import Any

from callcenter.common.events import Channel
from callcenter.common.handoff import holds
from callcenter.gateway.deps import GatewayDeps
from callcenter.gateway.inbox import hours, state


async def person_holds(deps: GatewayDeps, *, call_id: str) -> bool:
    """Whether the conversation waits for, or is with, a person (so a quiet customer is not idle)."""
    return await holds(deps.redis, key_prefix=deps.config.redis.key_prefix, call_id=call_id)


async def route_customer_text(
    deps: GatewayDeps, *, call_id: str, channel: Channel, text: str, held: bool | None = None
) -> bool:
    """Keep ``text`` for the agent when a person owns the conversation; return True if so.

    When it returns False the bot answers as usual. ``held``: whether a person holds it, when
    the caller has just read that (else it is read here).
    """
    if held is None:
        held = await person_holds(deps, call_id=call_id)
    if not held:
        return False
    await state.customer_message(deps, call_id=call_id, channel=channel, text=text)
    return True


async def on_transfer(
    deps: GatewayDeps,
    *,
    call_id: str,
    channel: Channel,
    transfer: dict[str, Any] | None,
    customer_number: str | None = None,
    business_number: str | None = None,
) -> None:
    """A turn asked for a person (``transfer_to_agent``): queue the conversation for the inbox."""
    if not transfer:
        return
    handoff = await state.request_handoff(
        deps,
        call_id=call_id,
        channel=channel,
        reason=str(transfer.get("reason") or "customer request"),
        summary=str(transfer.get("summary") or ""),
        trigger="tool",
        customer_number=customer_number,
        business_number=business_number,
    )
    if handoff is not None and not hours.is_open(deps.config.inbox.business_hours):
        from callcenter.gateway.inbox.sweeper import no_agent

        await no_agent(deps, handoff, outside_hours=True)
