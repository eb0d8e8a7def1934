"""ticket: call.summarized -> a ticket when satisfaction is low or the issue is unresolved.

One ticket per customer problem: when the conversation already has an open ticket (the
assistant opened one for a complaint, or the inbox for an agent who never came), that ticket is
escalated to this step's priority and gets the summary, instead of a second ticket beside it.
"""

from __future__ import annotations

from typing import ClassVar

import asyncpg

from callcenter.common.bus.consumer import Delivery
from callcenter.common.events import SUBJECT_CALL_SUMMARIZED, CallSummarized
from callcenter.common.pii import redact
from callcenter.post_call.steps.base import Outcome, Step, StepContext, skipped
from callcenter.post_call.tickets import BuiltinTickets, NewTicket, TicketAdapter


def idempotency_key(call_id: str) -> str:
    """One post-call ticket per call."""
    return f"post_call:{call_id}"


class TicketStep(Step):
    """Opens a follow-up ticket for unhappy or unresolved customers."""

    name: ClassVar[str] = "ticket"
    subjects: ClassVar[tuple[str, ...]] = (SUBJECT_CALL_SUMMARIZED,)

    def __init__(self, *, ctx: StepContext, adapter: TicketAdapter | None = None) -> None:
        super().__init__(ctx=ctx)
        self.adapter = adapter or BuiltinTickets()
        # the built-in tickets are rows: a whole fetch goes in one transaction
        self.batches = isinstance(self.adapter, BuiltinTickets)

    def priority(self, event: CallSummarized) -> str:
        """Urgent at the lowest scores, high when unhappy, normal when only unresolved."""
        settings = self.config.post_call
        if event.satisfaction <= settings.ticket_priority_urgent_at:
            return "urgent"
        if event.satisfaction <= settings.ticket_satisfaction_threshold:
            return "high"
        return "normal"

    async def handle(self, delivery: Delivery) -> bool:
        """Open the ticket (or record why none was needed), once per event."""
        return bool(await self.handle_batch([delivery]))

    async def handle_batch(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Every event's ticket (or why none) in one transaction."""
        events = [self.parse(delivery, CallSummarized) for delivery in deliveries]
        return await self.all_effects_once(deliveries, events, self.open_tickets)

    async def open_tickets(
        self, conn: asyncpg.Connection, events: list[CallSummarized]
    ) -> dict[str, Outcome]:
        """Open the tickets the summarised calls need (the adapter takes them at once)."""
        outcomes: dict[str, Outcome] = {}
        needed: list[NewTicket] = []
        for event in events:
            ticket = self.ticket_for(event)
            if isinstance(ticket, Outcome):
                outcomes[event.call_id] = ticket
            else:
                needed.append(ticket)
        for ticket, opened in zip(needed, await self.adapter.open_many(conn, needed), strict=True):
            outcomes[ticket.call_id] = Outcome(detail=f"ticket {opened.ticket_id} {opened.result}")
        return outcomes

    def ticket_for(self, event: CallSummarized) -> NewTicket | Outcome:
        """The ticket one summarised call needs, or why it needs none."""
        threshold = self.config.post_call.ticket_satisfaction_threshold
        unhappy = event.satisfaction <= threshold
        if not unhappy and event.resolved:
            return skipped(f"resolved, satisfaction {event.satisfaction} > {threshold}")
        reasons = []
        if unhappy:
            reasons.append(f"satisfaction {event.satisfaction}/5")
        if not event.resolved:
            reasons.append("unresolved")
        link = self.transcript_link(event.call_id)
        body = "\n".join(
            [
                redact(event.summary),
                "",
                f"Why: {', '.join(reasons)}; sentiment {event.sentiment}.",
                *([f"Agreed follow-up: {redact(event.follow_up)}"] if event.follow_up else []),
                f"Transcript: {link}",
            ]
        )
        return NewTicket(
            call_id=event.call_id,
            customer_id=event.customer_id,
            priority=self.priority(event),
            subject=f"Follow up {event.channel or 'call'} {event.call_id}: " + ", ".join(reasons),
            body=body,
            link=link,
            idempotency_key=idempotency_key(event.call_id),
        )
