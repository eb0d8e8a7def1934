"""Sending mail through SMTP with aiosmtplib."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import aiosmtplib

from callcenter.common.bus.consumer import RetryLater
from callcenter.common.config.sections import SmtpSettings
from callcenter.post_call.email.templates import FollowUp


class SmtpSender:
    """One message per call to :meth:`send`; the SMTP settings come from ``smtp``."""

    def __init__(self, *, settings: SmtpSettings) -> None:
        self._settings = settings

    def build(self, *, to: str, mail: FollowUp, message_id: str) -> EmailMessage:
        """A multipart/alternative message (plain text first, then HTML)."""
        message = EmailMessage()
        message["From"] = self._settings.from_address
        message["To"] = to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = message_id
        sender = parseaddr(self._settings.from_address)[1]
        if sender:
            message["List-Unsubscribe"] = f"<mailto:{sender}?subject=unsubscribe>"
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        return message

    async def send(self, message: EmailMessage) -> None:
        """Send it.

        Raises:
            RetryLater: the server could not be reached or refused the message for now.

        """
        settings = self._settings
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.host,
                port=settings.port,
                username=settings.username,
                password=settings.password.get_secret_value() if settings.password else None,
                start_tls=settings.starttls,
                cert_bundle=settings.tls_ca_file,
                timeout=settings.timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise RetryLater(f"SMTP: {type(exc).__name__}: {exc}") from exc
