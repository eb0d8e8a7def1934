"""A local SMTP server (aiosmtpd) that captures every message, for follow-up email tests.

    smtp = SmtpCatcher().start()          # config: smtp.host=127.0.0.1, smtp.port=smtp.port
    ...
    [mail] = smtp.messages_to("ada@example.com")
    mail.text, mail.html, mail.message["Subject"]

The real client (aiosmtplib) talks real SMTP to it. ``fail_next(n, code=451)`` makes the next
``n`` DATA commands fail with a transient error, to exercise retries.

``SmtpCatcher(login=("user", "secret"), starttls=True)`` is a submission server as mail
providers run one (RFC 3207 STARTTLS, RFC 4954 AUTH, https://aiosmtpd.aio-libs.org/en/latest/
smtp.html): it offers STARTTLS with a self-signed certificate (trusted through :attr:`ca_file`),
answers ``530 Must issue a STARTTLS command first`` to anything else before it, advertises AUTH
only over TLS, and refuses mail from a session that has not logged in (``530 5.7.0
Authentication required``) or a wrong password (``535 5.7.8``). Each captured mail says whether
it came over TLS and as whom.

What the server checks of each message at DATA (and refuses with ``554 5.6.0`` otherwise): the
header section parses and carries the fields RFC 5322 section 3.6 requires (``From``, ``Date``), a
``Message-ID`` (what tells a duplicate apart), and a ``To`` naming every envelope recipient. That
takes a header-only parse; the whole MIME tree (:attr:`CapturedMail.message`, ``text``, ``html``)
is parsed when a test first reads it, so a load of thousands of mails does not pay for a parse
nobody reads.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.environment import free_port

#: Header fields every accepted message must carry (RFC 5322 section 3.6, and the Message-ID).
REQUIRED_HEADERS = ("From", "Date", "Message-ID", "To")

_HEADERS = HeaderParser(policy=policy.compat32)


def _headers(data: bytes) -> Message:
    """The header section of a raw message (UTF-8 header values, RFC 6532, read as text)."""
    return _HEADERS.parsestr(data.decode("utf-8", "surrogateescape"), headersonly=True)


@dataclass
class CapturedMail:
    """One accepted message (``raw`` as received; ``message`` parsed from it on first use)."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message_id: str
    tls: bool = False
    login: str | None = None

    @functools.cached_property
    def message(self) -> EmailMessage:
        """The whole message (``policy.default``: structured headers, MIME parts)."""
        return message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]

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
        login = session.auth_data
        return self._owner._accept(
            envelope,
            tls=session.ssl is not None,
            login=login.decode() if isinstance(login, bytes) else login,
        )


def self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    """A certificate (and key) for ``host``, valid for a day; return their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp stand-in")])
    now = datetime.datetime.now(datetime.UTC)
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def header_problem(headers: Message, rcpt_tos: list[str]) -> str | None:
    """Why a message's header section is not acceptable, or None.

    Checks the fields of :data:`REQUIRED_HEADERS` are present once each and that ``To`` names
    every envelope recipient (the follow-ups are sent to one visible recipient each).
    """
    if headers.defects:
        return f"malformed header section: {headers.defects[0]!r}"
    for name in REQUIRED_HEADERS:
        found = headers.get_all(name) or []
        if len(found) != 1:
            return f"{name} header {'missing' if not found else 'repeated'}"
    to = {addr.lower() for _, addr in getaddresses([str(v) for v in headers.get_all("To") or []])}
    missing = [r for r in rcpt_tos if r.lower() not in to]
    if missing:
        return f"recipient {missing[0]} not in the To header"
    return None


class SmtpCatcher:
    """The server; ``start()`` it and read ``messages``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        login: tuple[str, str] | None = None,
        starttls: bool = False,
    ) -> None:
        self.host = host
        self.port = port or free_port()
        self.login = login
        self.starttls = starttls
        self.ca_file: Path | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.messages: list[CapturedMail] = []
        self._lock = threading.Lock()
        self._failures: list[int] = []
        self._controller: Controller | None = None

    def start(self) -> SmtpCatcher:
        """Listen (in a thread of its own)."""
        options: dict[str, Any] = {}
        if self.starttls:
            self._tmp = tempfile.TemporaryDirectory(prefix="smtp-stand-in-")
            cert, key = self_signed(Path(self._tmp.name), self.host)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            self.ca_file = cert
            options.update(tls_context=context, require_starttls=True)
        if self.login is not None:
            options.update(
                authenticator=self._authenticate,
                auth_required=True,
                auth_require_tls=self.starttls,
            )
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, **options)
        self._controller.start()
        return self

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if (
            self.login is not None
            and isinstance(data, LoginPassword)
            and (data.login.decode(), data.password.decode()) == self.login
        ):
            return AuthResult(success=True, auth_data=data.login)
        return AuthResult(success=False, handled=False)

    def stop(self) -> None:
        """Stop listening."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @property
    def env(self) -> dict[str, str]:
        """Variables that point a service at this server (and log in to it)."""
        env = {"CALLCENTER_SMTP__HOST": self.host, "CALLCENTER_SMTP__PORT": str(self.port)}
        if self.login is not None:
            env["CALLCENTER_SMTP__USERNAME"], env["CALLCENTER_SMTP__PASSWORD"] = self.login
        env["CALLCENTER_SMTP__STARTTLS"] = str(self.starttls).lower()
        if self.ca_file is not None:
            env["CALLCENTER_SMTP__TLS_CA_FILE"] = str(self.ca_file)
        return env

    @property
    def settings(self) -> dict[str, Any]:
        """The ``smtp`` config fields that point a service at this server."""
        return {
            "host": self.host,
            "port": self.port,
            "username": self.login[0] if self.login else None,
            "password": self.login[1] if self.login else None,
            "starttls": self.starttls,
            "tls_ca_file": str(self.ca_file) if self.ca_file else None,
        }

    def fail_next(self, count: int, *, code: int = 451) -> None:
        """Reject the next ``count`` messages with ``code``."""
        with self._lock:
            self._failures.extend([code] * count)

    def _accept(self, envelope: Envelope, *, tls: bool, login: str | None) -> str:
        with self._lock:
            if self._failures:
                code = self._failures.pop(0)
                return f"{code} try again later"
            raw: Any = envelope.content
            data = raw if isinstance(raw, bytes) else str(raw).encode()
            rcpt_tos = [str(r) for r in envelope.rcpt_tos]
            headers = _headers(data)
            problem = header_problem(headers, rcpt_tos)
            if problem is not None:
                return f"554 5.6.0 {problem}"
            self.messages.append(
                CapturedMail(
                    mail_from=str(envelope.mail_from),
                    rcpt_tos=rcpt_tos,
                    raw=data,
                    message_id=str(headers["Message-ID"]).strip(),
                    tls=tls,
                    login=login,
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
