"""A caller verified in one conversation stays verified in the one it led to.

A browser call started from the chat widget's Call button carries, in its turn requests,
``caller.linked_call_id``: the chat the gateway proved the visitor holds (by the chat's session
token, checked when the call was started, and recorded on the call's own row; the voice pipeline
reads it from there, never from the browser). When that chat's session has a verified customer,
the call's session takes it, as if the caller had verified on the call. Nothing else is taken from
the chat: not its history, not its failed attempts.
"""

from __future__ import annotations

from callcenter.common.events import CustomerVerified
from callcenter.conversation.session import Session, SessionStore

#: ``CustomerVerified.method`` for a verification carried over from the linked conversation
METHOD = "linked_conversation"


async def carry_verification(
    store: SessionStore, session: Session, *, linked_call_id: str, channel: str
) -> CustomerVerified | None:
    """Give ``session`` the linked conversation's verified customer, if it has one.

    Args:
        store: the sessions (the linked one is read, not locked: only its customer is used).
        session: the session of this turn's call, not verified yet.
        linked_call_id: the conversation the edge proved this caller holds.
        channel: this call's channel (for the event).

    Returns:
        the event that records the verification on this call (for the calls table), or None
        when the linked conversation has no verified customer.

    """
    if linked_call_id == session.call_id:
        return None
    linked = await store.load(linked_call_id)
    customer_id = linked.verified_customer_id
    if not customer_id:
        return None
    session.verified_customer_id = customer_id
    return CustomerVerified(
        event_id=f"verified-{session.call_id}-{customer_id}",
        call_id=session.call_id,
        channel=channel,
        customer_id=customer_id,
        method=METHOD,
    )
