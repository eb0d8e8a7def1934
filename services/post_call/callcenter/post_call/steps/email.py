"""email: call.summarized -> a follow-up email when one is needed, at most once per call.

Skipped (and recorded as such) when no follow-up is needed, the customer has no email address,
the address unsubscribed, or SMTP is disabled. Two phases, so a redelivery never sends a second
email: an ``emails`` row is committed as ``sending`` before the SMTP send, and confirmed ``sent``
in the transaction that writes the ``processed_events`` row. A send that fails deletes its row
(and is retried); a row still ``sending`` on redelivery means an attempt stopped after the send and
before its record, so that delivery is dead-lettered for a person to check, never repeated.

A fetch is handled at once (:meth:`EmailStep.handle_batch`): one query for what was done before,
one for the contacts, one for unsubscribes, then per email only its reservation and the SMTP send
(side by side over the kept connections), and one transaction that confirms every sent email and
records every event. An email whose send fails is retried later, as alone; one whose reservation
finds a row already is left to the per-event path (:meth:`EmailStep.handle`), which decides it
as before.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

import asyncpg

from callcenter.common.bus.consumer import Delivery, PartlyDone, PermanentFailure
from callcenter.common.events import SUBJECT_CALL_SUMMARIZED, CallSummarized
from callcenter.common.failpoints import POST_CALL_EMAIL_BEFORE_RECORD, fail_point
from callcenter.common.logging import get_logger
from callcenter.post_call.contacts import find_contacts
from callcenter.post_call.email import FollowUp, SmtpSender, render_follow_up
from callcenter.post_call.steps.base import (
    Outcome,
    Step,
    StepContext,
    claim_events,
    constant,
    fail_point_keys,
    record_statuses,
    skipped,
    with_new_effect,
)

log = get_logger(__name__)

#: What to do for a call: why no email goes out, or (address, mail, Message-ID) to send.
Plan = Outcome | tuple[str, FollowUp, str]


def message_id(call_id: str, from_address: str) -> str:
    """A Message-ID fixed per call, so a receiving system can spot a duplicate."""
    domain = from_address.rsplit("@", 1)[-1].strip("> ") or "callcenter.local"
    return f"<follow-up-{call_id}@{domain}>"


class EmailStep(Step):
    """Sends the follow-up email."""

    name: ClassVar[str] = "email"
    subjects: ClassVar[tuple[str, ...]] = (SUBJECT_CALL_SUMMARIZED,)
    batches = True

    def __init__(self, *, ctx: StepContext) -> None:
        super().__init__(ctx=ctx)
        self.sender = SmtpSender(settings=ctx.config.smtp)

    async def close(self) -> None:
        """Close the kept SMTP connection."""
        await self.sender.close()

    async def handle(self, delivery: Delivery) -> bool:
        """Send (or decide not to), at most once per call.

        Raises:
            PermanentFailure: an earlier attempt stopped between the SMTP send and its record, so
                the email may already have been delivered; it is not sent again.

        """
        event = self.parse(delivery, CallSummarized)
        async with self.db.acquire() as conn:
            if await self.processed(conn, event):
                return False
            plan = (await self._plans(conn, [event]))[event.event_id]
        if isinstance(plan, Outcome):
            return await self.effect_once(event, constant(plan))
        to_address, mail, msg_id = plan
        if not await self._reserve(event, to_address, mail, msg_id):
            status = await self.db.fetchval(
                "SELECT status FROM emails WHERE call_id = $1", event.call_id
            )
            if status == "sent":
                return await self.effect_once(
                    event, constant(skipped("already sent for this call"))
                )
            raise PermanentFailure(
                "the follow-up email may already have been delivered (an earlier attempt stopped "
                "between the SMTP send and its record); not sent again, to never send it twice"
            )
        try:
            await self.sender.send(self.sender.build(to=to_address, mail=mail, message_id=msg_id))
        except BaseException:
            # Nothing was delivered: give the reservation back so a retry sends it.
            await self.db.execute(
                "DELETE FROM emails WHERE call_id = $1 AND status = 'sending'", event.call_id
            )
            raise
        fail_point(POST_CALL_EMAIL_BEFORE_RECORD, *fail_point_keys(self.name, delivery))

        async def confirm(conn: asyncpg.Connection) -> Outcome:
            await conn.execute(
                "UPDATE emails SET status = 'sent', sent_at = now() WHERE call_id = $1",
                event.call_id,
            )
            return Outcome(detail="sent")

        return await self.effect_once(event, confirm)

    async def _plans(
        self, conn: asyncpg.Connection, events: list[CallSummarized]
    ) -> dict[str, Plan]:
        """Each event's :data:`Plan`, by event id (two queries for them all)."""
        smtp = self.config.smtp
        wanted = [event for event in events if event.follow_up_needed]
        contacts = await find_contacts(conn, (event.customer_id for event in wanted))
        addresses = {
            contact.email.strip().lower() for contact in contacts.values() if contact.email
        }
        unsubscribed = (
            {
                row["email"]
                for row in await conn.fetch(
                    "SELECT email FROM email_unsubscribes WHERE email = ANY($1::text[])",
                    list(addresses),
                )
            }
            if addresses
            else set()
        )
        plans: dict[str, Plan] = {}
        for event in events:
            contact = contacts.get(event.customer_id) if event.customer_id else None
            if not event.follow_up_needed:
                plans[event.event_id] = skipped("no follow-up needed")
            elif contact is None or not contact.email:
                plans[event.event_id] = skipped("no email address for the customer")
            elif contact.email.strip().lower() in unsubscribed:
                plans[event.event_id] = skipped("customer unsubscribed")
            elif not smtp.enabled:
                plans[event.event_id] = skipped("smtp disabled")
            else:
                mail = render_follow_up(
                    company=smtp.company_name,
                    name=contact.name,
                    channel=event.channel,
                    call_id=event.call_id,
                    agreed=event.follow_up,
                    resolved=event.resolved,
                )
                plans[event.event_id] = (
                    contact.email,
                    mail,
                    message_id(event.call_id, smtp.from_address),
                )
        return plans

    async def handle_batch(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Send the fetch's emails over the kept connections, then record them in one transaction.

        Each email keeps its own exactly-once guarantee (its reservation is committed before its
        send, its record after), so the emails sent and recorded here stay done when another one
        of the fetch is left to the per-event path.

        Raises:
            PartlyDone: a send failed (that delivery is retried later, as :meth:`handle` would
                have it), or an email's row existed already (that delivery goes to
                :meth:`handle`, which decides it alone); the others are done.

        """
        events = [self.parse(delivery, CallSummarized) for delivery in deliveries]
        deliveries_of: dict[str, list[Delivery]] = {}
        for delivery, event in zip(deliveries, events, strict=True):
            deliveries_of.setdefault(event.event_id, []).append(delivery)
        by_id = {event.event_id: event for event in events}
        async with self.db.acquire() as conn:
            done = {
                row["event_id"]
                for row in await conn.fetch(
                    "SELECT event_id FROM processed_events "
                    "WHERE step = $1 AND event_id = ANY($2::text[])",
                    self.name,
                    list(by_id),
                )
            }
            todo = [event for event in by_id.values() if event.event_id not in done]
            plans = await self._plans(conn, todo)
        outcomes: dict[str, Outcome] = {}
        settled: list[CallSummarized] = []
        failed: list[tuple[Delivery, Exception]] = []
        alone: list[Delivery] = []

        async def send(event: CallSummarized, plan: tuple[str, FollowUp, str]) -> None:
            to_address, mail, msg_id = plan
            if not await self._reserve(event, to_address, mail, msg_id):
                alone.extend(deliveries_of[event.event_id])  # sent before, or uncertain
                return
            try:
                await self.sender.send(
                    self.sender.build(to=to_address, mail=mail, message_id=msg_id)
                )
            except BaseException as exc:
                # Nothing was delivered: give the reservation back so a retry sends it.
                await self.db.execute(
                    "DELETE FROM emails WHERE call_id = $1 AND status = 'sending'", event.call_id
                )
                if not isinstance(exc, Exception):
                    raise
                failed.extend((delivery, exc) for delivery in deliveries_of[event.event_id])
                return
            fail_point(
                POST_CALL_EMAIL_BEFORE_RECORD,
                *fail_point_keys(self.name, deliveries_of[event.event_id][0]),
            )
            outcomes[event.call_id] = Outcome(detail="sent")
            settled.append(event)

        sends = []
        for event in todo:
            plan = plans[event.event_id]
            if isinstance(plan, Outcome):
                outcomes[event.call_id] = plan
                settled.append(event)
            else:
                sends.append(send(event, plan))
        # side by side: the sender bounds them to its kept connections
        await asyncio.gather(*sends)
        new: list[CallSummarized] = []
        if settled:
            async with self.db.acquire() as conn, conn.transaction():
                new = await claim_events(conn, step=self.name, events=settled)
                sent = [e.call_id for e in new if outcomes[e.call_id].detail == "sent"]
                if sent:
                    await conn.execute(
                        "UPDATE emails SET status = 'sent', sent_at = now() "
                        "WHERE call_id = ANY($1::text[])",
                        sent,
                    )
                if new:
                    await record_statuses(
                        conn, step=self.name, events=new, outcome=outcomes.__getitem__
                    )
            self.record_since_event(list(new))
        made = with_new_effect(deliveries, events, new)
        if failed or alone:
            raise PartlyDone(failed=failed, alone=alone, made=made)
        return made

    async def _reserve(
        self, event: CallSummarized, to_address: str, mail: FollowUp, msg_id: str
    ) -> bool:
        """Commit a 'sending' row for the call; False when the call already has one."""
        inserted = await self.db.fetchval(
            """
            INSERT INTO emails
                (call_id, customer_id, to_address, subject, body_text, message_id, status)
            VALUES ($1, $2, $3, $4, $5, $6, 'sending') ON CONFLICT (call_id) DO NOTHING RETURNING 1
            """,
            event.call_id,
            event.customer_id,
            to_address.strip().lower(),
            mail.subject,
            mail.text,
            msg_id,
        )
        return inserted is not None
