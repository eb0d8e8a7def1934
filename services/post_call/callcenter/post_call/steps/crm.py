"""crm: call.summarized -> an activity on the customer's CRM record (built-in or HubSpot)."""

from __future__ import annotations

from typing import ClassVar

import asyncpg

from callcenter.common.bus.consumer import Delivery
from callcenter.common.events import SUBJECT_CALL_SUMMARIZED, CallSummarized
from callcenter.post_call.contacts import find_contacts
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
        return await self.all_effects_once(deliveries, events, self.log_activities)

    async def log_activities(
        self, conn: asyncpg.Connection, events: list[CallSummarized]
    ) -> dict[str, Outcome]:
        """The activities of summarised calls: one query for the contacts, one insert for all."""
        contacts = await find_contacts(conn, (event.customer_id for event in events))
        activities = [
            CrmActivity(
                call_id=event.call_id,
                customer_id=event.customer_id,
                contact=contacts.get(event.customer_id) if event.customer_id else None,
                subject=f"{(event.channel or 'call').capitalize()} conversation {event.call_id}",
                body=activity_body(event),
                occurred_at=event.occurred_at,
                link=self.transcript_link(event.call_id),
            )
            for event in events
        ]
        inserted = {
            row["call_id"]: row["id"]
            for row in await conn.fetch(
                """
                INSERT INTO crm_activities (call_id, customer_id, adapter, subject, body)
                SELECT a.call_id, a.customer_id, $1, a.subject, a.body
                FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
                    AS a(call_id, customer_id, subject, body)
                ON CONFLICT (call_id, adapter, kind) DO NOTHING RETURNING call_id, id
                """,
                self.adapter.name,
                [a.call_id for a in activities],
                [a.customer_id for a in activities],
                [a.subject for a in activities],
                [a.body for a in activities],
            )
        }
        outcomes: dict[str, Outcome] = {}
        for activity in activities:
            if activity.call_id in outcomes or activity.call_id not in inserted:
                outcomes[activity.call_id] = Outcome(
                    detail=f"already logged on {self.adapter.name}"
                )
                continue
            external_id = await self.adapter.log_activity(conn, activity)
            if external_id is not None:
                await conn.execute(
                    "UPDATE crm_activities SET external_id = $2 WHERE id = $1",
                    inserted[activity.call_id],
                    external_id,
                )
            who = (
                f"customer {activity.customer_id}" if activity.customer_id else "no known customer"
            )
            suffix = f" (id {external_id})" if external_id else ""
            outcomes[activity.call_id] = Outcome(
                detail=f"{self.adapter.name}: activity for {who}{suffix}"
            )
        return outcomes
