"""notify: call.notification_requested -> the promised email or SMS, once, to the contact on file.

The recipient is looked up here from ``customer_id`` (the CRM contact, else the customer record);
nothing in the event can point a message somewhere else. Reserve -> send -> confirm as in the
email step: a ``notifications`` row is committed ``sending`` before the send and confirmed
``sent`` with the ``processed_events`` row; a failed send gives the reservation back (retried);
a row still ``sending`` on redelivery means an attempt stopped after sending, so the delivery is
dead-lettered for a person rather than sent twice.
"""

from __future__ import annotations

import html
from typing import ClassVar

import asyncpg

from callcenter.common.bus.consumer import Delivery, PermanentFailure
from callcenter.common.events import SUBJECT_NOTIFICATION_REQUESTED, NotificationRequested
from callcenter.common.logging import bind_call, get_logger
from callcenter.common.sealing import SealError, sealing_key
from callcenter.post_call.contacts import find_contact
from callcenter.post_call.email import FollowUp, SmtpSender
from callcenter.post_call.notifications import Message, TwilioSmsSender, render_notification
from callcenter.post_call.steps.base import Outcome, Step, StepContext, constant, skipped

log = get_logger(__name__)


class NotifyStep(Step):
    """Sends each requested notification once."""

    name: ClassVar[str] = "notify"
    subjects: ClassVar[tuple[str, ...]] = (SUBJECT_NOTIFICATION_REQUESTED,)

    def __init__(self, *, ctx: StepContext) -> None:
        super().__init__(ctx=ctx)
        self.smtp = SmtpSender(settings=ctx.config.smtp)
        self.code_key = sealing_key(ctx.config)
        self.sms = TwilioSmsSender(
            settings=ctx.config.twilio, from_number=ctx.config.notifications.sms_from
        )

    async def close(self) -> None:
        """Close the kept SMTP connection."""
        await self.smtp.close()

    async def handle(self, delivery: Delivery) -> bool:
        """Send (or record why not), at most once per notification.

        Raises:
            PermanentFailure: an earlier attempt stopped between the send and its record.

        """
        event = self.parse(delivery, NotificationRequested)
        with bind_call(event.call_id, notification=event.event_id, kind=event.kind):
            async with self.db.acquire() as conn:
                if await self.processed(conn, event):
                    return False
                plan = await self._plan(conn, event)
            if isinstance(plan, Outcome):
                return await self.effect_once(event, constant(plan))
            to, message = plan
            if not await self._reserve(event, to, message):
                status = await self.db.fetchval(
                    "SELECT status FROM notifications WHERE notification_id = $1", event.event_id
                )
                if status == "sent":
                    return await self.effect_once(event, constant(skipped("already sent")))
                raise PermanentFailure(
                    f"notification {event.event_id} may already have been delivered (an earlier "
                    "attempt stopped between the send and its record); not sent again"
                )
            try:
                provider_id = await self._send(event, to, message)
            except BaseException:
                await self.db.execute(
                    "DELETE FROM notifications WHERE notification_id = $1 AND status = 'sending'",
                    event.event_id,
                )
                raise

            async def confirm(conn: asyncpg.Connection) -> Outcome:
                await conn.execute(
                    "UPDATE notifications SET status = 'sent', sent_at = now(), provider_id = $2 "
                    "WHERE notification_id = $1",
                    event.event_id,
                    provider_id,
                )
                return Outcome(detail=f"{event.kind} sent by {event.via}")

            return await self.effect_once(event, confirm)

    async def _plan(
        self, conn: asyncpg.Connection, event: NotificationRequested
    ) -> Outcome | tuple[str, Message]:
        contact = await find_contact(conn, event.customer_id)
        to = None
        if contact is not None:
            to = contact.phone if event.via == "sms" else contact.email
        if not to:
            return skipped(f"no {event.via} contact on file for the customer")
        if event.via == "email" and not self.config.smtp.enabled:
            return skipped("smtp disabled")
        if event.via == "sms" and not self.sms.available:
            return skipped("sms not configured")
        try:
            message = render_notification(
                event, company=self.config.smtp.company_name, key=self.code_key
            )
        except SealError as exc:
            log.error("verification code not sent: it does not open here", error=str(exc))
            return skipped("the sealed code does not open with this service's key")
        return to, message

    async def _reserve(self, event: NotificationRequested, to: str, message: Message) -> bool:
        inserted = await self.db.fetchval(
            """
            INSERT INTO notifications (notification_id, call_id, customer_id, kind, via,
                                       to_address, subject, body_text, status)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'sending')
            ON CONFLICT (notification_id) DO NOTHING RETURNING 1
            """,
            event.event_id,
            event.call_id,
            event.customer_id,
            event.kind,
            event.via,
            to.strip().lower() if event.via == "email" else to,
            message.subject,
            message.stored_text,
        )
        return inserted is not None

    async def _send(self, event: NotificationRequested, to: str, message: Message) -> str:
        if event.via == "sms":
            return await self.sms.send(to=to, body=message.text)
        domain = self.config.smtp.from_address.rsplit("@", 1)[-1].strip("> ") or "callcenter.local"
        msg_id = f"<{event.event_id}@{domain}>"
        mail = FollowUp(
            subject=message.subject,
            text=message.text,
            html="<pre style='font-family: sans-serif'>" + html.escape(message.text) + "</pre>",
        )
        await self.smtp.send(self.smtp.build(to=to, mail=mail, message_id=msg_id))
        return msg_id
