"""A local mail catcher: an SMTP server that stores every message in ``caught_mail``.

``callcenter up`` (``make run``) starts it on the configured ``smtp.host``/``smtp.port`` when
nothing listens there, so follow-up emails and confirmations are delivered somewhere a newcomer can
read them (the dashboard's Mail page) instead of dead-lettering. Nothing leaves the machine.
aiosmtpd is a development dependency; without it the catcher is not started and ``up`` says so.
"""

from __future__ import annotations

import asyncio
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import asyncpg

from callcenter.common.config import CallCenterConfig
from callcenter.common.db.pool import create_pool


def _text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""


class MailCatcher:
    """``start()`` listens in the running event loop; ``stop()`` closes the server and pool."""

    def __init__(self, *, config: CallCenterConfig) -> None:
        self.config = config
        self.host = config.smtp.host
        self.port = config.smtp.port
        self._server: asyncio.base_events.Server | None = None
        self._pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        """Listen on the configured SMTP host and port.

        Raises:
            ModuleNotFoundError: aiosmtpd is not installed.

        """
        from aiosmtpd.smtp import SMTP

        catcher = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                return await catcher.store(envelope.mail_from, envelope.rcpt_tos, envelope.content)

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(Handler(), hostname="callcenter-mail-catcher"), self.host, self.port
        )

    async def store(self, mail_from: str, rcpt_tos: list[str], content: bytes | str) -> str:
        """Keep one message; a 4xx answer (retry later) while the database is not ready."""
        raw = content if isinstance(content, bytes) else content.encode()
        message = message_from_bytes(raw, policy=policy.default)
        try:
            if self._pool is None:
                self._pool = await create_pool(self.config.database, attempts=1)
            await self._pool.execute(
                "INSERT INTO caught_mail (mail_from, rcpt_to, subject, body_text, raw) "
                "VALUES ($1, $2, $3, $4, $5)",
                str(mail_from),
                [str(r) for r in rcpt_tos],
                str(message.get("Subject", "")),
                _text_of(message),  # type: ignore[arg-type]
                raw.decode("utf-8", "replace"),
            )
        except Exception as exc:  # the sender retries a 451
            return f"451 mail catcher cannot store the message yet ({type(exc).__name__})"
        return "250 Message accepted for delivery"

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
