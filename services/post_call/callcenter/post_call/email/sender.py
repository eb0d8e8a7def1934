"""Sending mail through SMTP with aiosmtplib, over one connection kept open and reused."""

from __future__ import annotations

import asyncio
import contextlib
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import aiosmtplib

from callcenter.common.bus.consumer import RetryLater
from callcenter.common.config.sections import SmtpSettings
from callcenter.post_call.email.templates import FollowUp


class SmtpSender:
    """One message per call to :meth:`send`; the SMTP settings come from ``smtp``.

    Messages go out one at a time over a single connection, opened on the first send and kept
    for the next ones (a handshake, STARTTLS and login per email cost more than the email).
    A connection the server has dropped is replaced once; any other failure closes it.
    """

    def __init__(self, *, settings: SmtpSettings) -> None:
        self._settings = settings
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()
        #: Connections opened so far (for tests and the bench).
        self.connections_opened = 0

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
        """Send it over the open connection (opened now if there is none).

        Raises:
            RetryLater: the server could not be reached or refused the message for now.

        """
        async with self._lock:
            try:
                reused = self._client is not None and self._client.is_connected
                client = await self._connected()
                try:
                    await client.send_message(message)
                except aiosmtplib.SMTPServerDisconnected:
                    if not reused:
                        raise
                    # The kept connection had gone stale (server idle timeout): one new one.
                    await self._drop()
                    client = await self._connected()
                    await client.send_message(message)
            except (aiosmtplib.SMTPException, OSError) as exc:
                await self._drop()
                raise RetryLater(f"SMTP: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        """Say QUIT and close the kept connection."""
        async with self._lock:
            client, self._client = self._client, None
            if client is not None and client.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                    await client.quit()

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            start_tls=settings.starttls,
            timeout=settings.timeout_s,
        )
        await client.connect()
        self.connections_opened += 1
        self._client = client
        return client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
