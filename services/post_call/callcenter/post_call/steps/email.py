"""email: call.summarized -> a follow-up email when one is needed, at most once per call.

Skipped (and recorded as such) when no follow-up is needed, the customer has no email address,
the address unsubscribed, or SMTP is disabled. The ``emails`` row and the ``processed_events``
row are written in the transaction that is open while the message is sent.
"""

from __future__ import annotations

from typing import ClassVar

import asyncpg

from callcenter.common.bus.consumer import Delivery
from callcenter.common.events import SUBJECT_CALL_SUMMARIZED, CallSummarized
from callcenter.post_call.contacts import find_contact
from callcenter.post_call.email import SmtpSender, render_follow_up
from callcenter.post_call.steps.base import Outcome, Step, StepContext, skipped


def message_id(call_id: str, from_address: str) -> str:
    """A Message-ID fixed per call, so a receiving system can spot a duplicate."""
    domain = from_address.rsplit("@", 1)[-1].strip("> ") or "callcenter.local"
    return f"<follow-up-{call_id}@{domain}>"


class EmailStep(Step):
    """Sends the follow-up email."""

    name: ClassVar[str] = "email"
    subjects: ClassVar[tuple[str, ...]] = (SUBJECT_CALL_SUMMARIZED,)

    def __init__(self, *, ctx: StepContext) -> None:
        super().__init__(ctx=ctx)
        self.sender = SmtpSender(settings=ctx.config.smtp)

    async def handle(self, delivery: Delivery) -> bool:
        """Send (or decide not to), once per event."""
        event = self.parse(delivery, CallSummarized)
        smtp = self.config.smtp

        async def send(conn: asyncpg.Connection) -> Outcome:
            if not event.follow_up_needed:
                return skipped("no follow-up needed")
            contact = await find_contact(conn, event.customer_id)
            if contact is None or not contact.email:
                return skipped("no email address for the customer")
            address = contact.email.strip().lower()
            if await conn.fetchval("SELECT 1 FROM email_unsubscribes WHERE email = $1", address):
                return skipped("customer unsubscribed")
            if not smtp.enabled:
                return skipped("smtp disabled")
            mail = render_follow_up(
                company=smtp.company_name,
                name=contact.name,
                channel=event.channel,
                call_id=event.call_id,
                summary=event.summary,
                agreed=event.follow_up,
            )
            msg_id = message_id(event.call_id, smtp.from_address)
            inserted = await conn.fetchval(
                """
                INSERT INTO emails (call_id, customer_id, to_address, subject, body_text, message_id)
                VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (call_id) DO NOTHING RETURNING 1
                """,
                event.call_id,
                event.customer_id,
                address,
                mail.subject,
                mail.text,
                msg_id,
            )
            if inserted is None:
                return skipped("already sent for this call")
            await self.sender.send(
                self.sender.build(to=contact.email, mail=mail, message_id=msg_id)
            )
            return Outcome(detail="sent")

        return await self.effect_once(event, send)
