"""crm: call.summarized -> an activity on the customer's CRM record (built-in or HubSpot)."""

from __future__ import annotations

from typing import ClassVar

import asyncpg

from callcenter.common.bus.consumer import Delivery
from callcenter.common.events import SUBJECT_CALL_SUMMARIZED, CallSummarized
from callcenter.post_call.contacts import Contact, find_contacts
from callcenter.post_call.crm import BuiltinCrm, CrmActivity, CrmAdapter, HubSpotCrm
from callcenter.post_call.steps.base import Outcome, Step, StepContext


def make_crm(ctx: StepContext) -> CrmAdapter:
    """The adapter named by ``crm.adapter``."""
    if ctx.config.crm.adapter == "hubspot":
        return HubSpotCrm(settings=ctx.config.crm)
    return BuiltinCrm()


def activity_body(event: CallSummarized) -> str:
    """The text logged on the record."""
    lines = [
        event.summary,
        "",
        f"Channel: {event.channel or 'unknown'}",
        f"Sentiment: {event.sentiment}; satisfaction {event.satisfaction}/5",
        f"Resolved: {'yes' if event.resolved else 'no'}",
    ]
    if event.topics:
        lines.append("Topics: " + ", ".join(event.topics))
    if event.follow_up:
        lines.append("Follow-up: " + event.follow_up)
    return "\n".join(lines)


class CrmStep(Step):
    """Logs each summarised call once on the CRM."""

    name: ClassVar[str] = "crm"
    subjects: ClassVar[tuple[str, ...]] = (SUBJECT_CALL_SUMMARIZED,)

    def __init__(self, *, ctx: StepContext, adapter: CrmAdapter | None = None) -> None:
        super().__init__(ctx=ctx)
        self.adapter = adapter or make_crm(ctx)
        # built-in activities are rows: a whole fetch goes in one transaction; an external CRM
        # call inside a batch that later failed would be repeated by the per-event retry
        self.batches = isinstance(self.adapter, BuiltinCrm)

    async def start(self) -> None:
        """Open the adapter."""
        await self.adapter.start()

    async def close(self) -> None:
        """Close the adapter."""
        await self.adapter.close()

    async def handle(self, delivery: Delivery) -> bool:
        """Write the activity row and (for an external CRM) create it there, in one transaction."""
        return bool(await self.handle_batch([delivery]))

    async def handle_batch(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Every event's activity in one transaction (one event at a time for an external CRM)."""
        events = [self.parse(delivery, CallSummarized) for delivery in deliveries]
        contacts: dict[str, Contact] | None = None

        async def log(conn: asyncpg.Connection, event: CallSummarized) -> Outcome:
            nonlocal contacts
            if contacts is None:  # the fetch's contacts in one query, once a new event needs one
                contacts = await find_contacts(conn, (e.customer_id for e in events))
            return await self.log_activity(conn, event, contact=contacts.get(event.customer_id))

        return await self.effects_once(deliveries, events, log)

    async def log_activity(
        self, conn: asyncpg.Connection, event: CallSummarized, *, contact: Contact | None
    ) -> Outcome:
        """The activity of one summarised call (``contact``: its customer's, if known)."""
        activity = CrmActivity(
            call_id=event.call_id,
            customer_id=event.customer_id,
            contact=contact,
            subject=f"{(event.channel or 'call').capitalize()} conversation {event.call_id}",
            body=activity_body(event),
            occurred_at=event.occurred_at,
            link=self.transcript_link(event.call_id),
        )
        inserted = await conn.fetchval(
            """
            INSERT INTO crm_activities (call_id, customer_id, adapter, subject, body)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (call_id, adapter, kind) DO NOTHING RETURNING id
            """,
            event.call_id,
            event.customer_id,
            self.adapter.name,
            activity.subject,
            activity.body,
        )
        if inserted is None:
            return Outcome(detail=f"already logged on {self.adapter.name}")
        external_id = await self.adapter.log_activity(conn, activity)
        if external_id is not None:
            await conn.execute(
                "UPDATE crm_activities SET external_id = $2 WHERE id = $1",
                inserted,
                external_id,
            )
        who = f"customer {event.customer_id}" if event.customer_id else "no known customer"
        suffix = f" (id {external_id})" if external_id else ""
        return Outcome(detail=f"{self.adapter.name}: activity for {who}{suffix}")
