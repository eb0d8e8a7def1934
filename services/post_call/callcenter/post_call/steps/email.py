"""email: call.summarized -> a follow-up email when one is needed, at most once per call.

Skipped (and recorded as such) when no follow-up is needed, the customer has no email address,
the address unsubscribed, or SMTP is disabled. Two phases, so a redelivery never sends a second
email: an ``emails`` row is committed as ``sending`` before the SMTP send, and confirmed ``sent``
in the transaction that writes the ``processed_events`` row. A send that fails deletes its row
(and is retried); a row still ``sending`` on redelivery means an attempt stopped after the send and
before its record, so that delivery is dead-lettered for a person to check, never repeated.
"""

from __future__ import annotations

from typing import ClassVar

import asyncpg

from callcenter.common.bus.consumer import Delivery, PermanentFailure
from callcenter.common.events import SUBJECT_CALL_SUMMARIZED, CallSummarized
from callcenter.common.failpoints import POST_CALL_EMAIL_BEFORE_RECORD, fail_point
from callcenter.common.logging import get_logger
from callcenter.post_call.contacts import find_contact
from callcenter.post_call.email import FollowUp, SmtpSender, render_follow_up
from callcenter.post_call.steps.base import (
    Outcome,
    Step,
    StepContext,
    constant,
    fail_point_keys,
    skipped,
)

log = get_logger(__name__)


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
            plan = await self._plan(conn, event)
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

    async def _plan(
        self, conn: asyncpg.Connection, event: CallSummarized
    ) -> Outcome | tuple[str, FollowUp, str]:
        """Either why no email goes out, or (address, mail, Message-ID) to send."""
        smtp = self.config.smtp
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
            agreed=event.follow_up,
            resolved=event.resolved,
        )
        return contact.email, mail, message_id(event.call_id, smtp.from_address)

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
