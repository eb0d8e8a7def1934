"""A local SMTP server (aiosmtpd) that captures every message, for follow-up email tests.

    smtp = SmtpCatcher().start()          # config: smtp.host=127.0.0.1, smtp.port=smtp.port
    ...
    [mail] = smtp.messages_to("ada@example.com")
    mail.text, mail.html, mail.message["Subject"]

The real client (aiosmtplib) talks real SMTP to it. ``fail_next(n, code=451)`` makes the next
``n`` DATA commands fail with a transient error, to exercise retries.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.environment import free_port


@dataclass
class CapturedMail:
    """One accepted message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        """The text/plain part."""
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str:
        """The text/html part."""
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""


class _Handler:
    def __init__(self, owner: SmtpCatcher) -> None:
        self._owner = owner

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self._owner._accept(envelope)


class SmtpCatcher:
    """The server; ``start()`` it and read ``messages``."""

    def __init__(self, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port()
        self.messages: list[CapturedMail] = []
        self._lock = threading.Lock()
        self._failures: list[int] = []
        self._controller: Controller | None = None

    def start(self) -> SmtpCatcher:
        """Listen (in a thread of its own)."""
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def env(self) -> dict[str, str]:
        """Variables that point a service at this server."""
        return {"CALLCENTER_SMTP__HOST": self.host, "CALLCENTER_SMTP__PORT": str(self.port)}

    def fail_next(self, count: int, *, code: int = 451) -> None:
        """Reject the next ``count`` messages with ``code``."""
        with self._lock:
            self._failures.extend([code] * count)

    def _accept(self, envelope: Envelope) -> str:
        with self._lock:
            if self._failures:
                code = self._failures.pop(0)
                return f"{code} try again later"
            raw: Any = envelope.content
            data = raw if isinstance(raw, bytes) else str(raw).encode()
            message = message_from_bytes(data, policy=policy.default)
            self.messages.append(
                CapturedMail(
                    mail_from=str(envelope.mail_from),
                    rcpt_tos=[str(r) for r in envelope.rcpt_tos],
                    message=message,  # type: ignore[arg-type]
                )
            )
        return "250 Message accepted for delivery"

    def messages_to(self, address: str) -> list[CapturedMail]:
        """Messages with ``address`` among the recipients."""
        with self._lock:
            return [m for m in self.messages if address.lower() in (r.lower() for r in m.rcpt_tos)]

    def wait_for(
        self, address: str, *, count: int = 1, timeout_s: float = 20.0
    ) -> list[CapturedMail]:
        """Block until ``count`` messages reached ``address`` (or the time is up); return them."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.messages_to(address)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        return self.messages_to(address)
