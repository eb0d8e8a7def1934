"""Sending mail through SMTP with aiosmtplib, over one connection kept open and reused."""

from __future__ import annotations

import asyncio
import contextlib
from email.charset import QP, Charset
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, parseaddr

import aiosmtplib

from callcenter.common.bus.consumer import RetryLater
from callcenter.common.config.sections import SmtpSettings
from callcenter.post_call.email.templates import FollowUp

#: Bodies as UTF-8 in quoted-printable (readable in the raw message, as EmailMessage writes them)
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


class SmtpSender:
    """One message per call to :meth:`send`; the SMTP settings come from ``smtp``.

    Connections are kept open and reused (a handshake, STARTTLS and login per email cost more
    than the email): a send takes an idle connection or, when all are busy, opens one more, up to
    ``max_connections`` (sequential sends share one). A connection the server has dropped is
    replaced once; any other failure closes it.
    """

    def __init__(self, *, settings: SmtpSettings, max_connections: int = 4) -> None:
        self._settings = settings
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(max_connections)
        #: Connections opened so far.
        self.connections_opened = 0

    def build(self, *, to: str, mail: FollowUp, message_id: str) -> Message:
        """A multipart/alternative message (plain text first, then HTML).

        Built with the ``compat32`` MIME classes (a fifth of ``EmailMessage``'s CPU, which parses
        every header it is given); an address that is not ASCII takes ``EmailMessage``, which
        knows SMTPUTF8.
        """
        name, sender = parseaddr(self._settings.from_address)
        if not (to.isascii() and sender.isascii() and message_id.isascii()):
            return self._build_utf8(to=to, mail=mail, message_id=message_id)
        message = MIMEMultipart("alternative")
        message["From"] = formataddr((name, sender), charset="utf-8")
        message["To"] = to
        message["Subject"] = mail.subject  # compat32 encodes a non-ASCII subject (RFC 2047)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = message_id
        if sender:
            message["List-Unsubscribe"] = f"<mailto:{sender}?subject=unsubscribe>"
        message.attach(MIMEText(mail.text, "plain", _UTF8_QP))
        message.attach(MIMEText(mail.html, "html", _UTF8_QP))
        return message

    def _build_utf8(self, *, to: str, mail: FollowUp, message_id: str) -> EmailMessage:
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

    async def send(self, message: Message) -> None:
        """Send it over a kept connection (opened now if none is idle).

        Raises:
            RetryLater: the server could not be reached or refused the message for now.

        """
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                if client is None or not client.is_connected:
                    client = await self._open()
                    await client.send_message(message)
                else:
                    try:
                        await client.send_message(message)
                    except aiosmtplib.SMTPServerDisconnected:
                        # The kept connection had gone stale (server idle timeout): one new one.
                        client.close()
                        client = await self._open()
                        await client.send_message(message)
            except (aiosmtplib.SMTPException, OSError) as exc:
                if client is not None:
                    client.close()
                raise RetryLater(f"SMTP: {type(exc).__name__}: {exc}") from exc
            self._idle.append(client)

    async def close(self) -> None:
        """Say QUIT on the kept connections and close them."""
        idle, self._idle = self._idle, []
        for client in idle:
            if client.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                    await client.quit()

    async def _open(self) -> aiosmtplib.SMTP:
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            start_tls=settings.starttls,
            cert_bundle=settings.tls_ca_file,
            timeout=settings.timeout_s,
        )
        await client.connect()
        self.connections_opened += 1
        return client
