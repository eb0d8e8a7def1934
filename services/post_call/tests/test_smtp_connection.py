"""The SMTP sender keeps one connection for many emails and replaces one the server dropped."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from callcenter.common.config.sections import SmtpSettings
from callcenter.post_call.email import SmtpSender
from tests.support.environment import free_port


class PeerRecorder:
    """An aiosmtpd handler that notes which client connection (peer address) sent each message."""

    def __init__(self) -> None:
        self.peers: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            self.peers.append(tuple(session.peer))  # type: ignore[arg-type]
        return "250 accepted"


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def server(port: int) -> Iterator[tuple[Controller, PeerRecorder]]:
    recorder = PeerRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, recorder
    controller.stop()


def sender_for(port: int) -> SmtpSender:
    return SmtpSender(
        settings=SmtpSettings(host="127.0.0.1", port=port, from_address="shop@example.com")
    )


def mail(i: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "shop@example.com"
    message["To"] = f"customer{i}@example.com"
    message["Subject"] = f"Follow-up {i}"
    message.set_content("Thanks for calling.")
    return message


async def test_many_emails_go_over_one_connection(
    port: int, server: tuple[Controller, PeerRecorder]
) -> None:
    _, recorder = server
    sender = sender_for(port)
    try:
        for i in range(5):
            await sender.send(mail(i))
    finally:
        await sender.close()
    assert len(recorder.peers) == 5
    assert len(set(recorder.peers)) == 1


async def test_a_connection_the_server_dropped_is_replaced(port: int) -> None:
    first = PeerRecorder()
    controller = Controller(first, hostname="127.0.0.1", port=port)
    controller.start()
    sender = sender_for(port)
    try:
        await sender.send(mail(0))
        controller.stop()  # the kept connection dies with the server
        second = PeerRecorder()
        controller = Controller(second, hostname="127.0.0.1", port=port)
        controller.start()
        await sender.send(mail(1))
        await sender.send(mail(2))
    finally:
        await sender.close()
        controller.stop()
    assert len(first.peers) == 1
    assert len(second.peers) == 2 and len(set(second.peers)) == 1


async def test_concurrent_emails_share_a_bounded_set_of_connections(
    port: int, server: tuple[Controller, PeerRecorder]
) -> None:
    _, recorder = server
    sender = SmtpSender(
        settings=SmtpSettings(host="127.0.0.1", port=port, from_address="shop@example.com"),
        max_connections=2,
    )
    try:
        for round_ in range(3):
            await asyncio.gather(*(sender.send(mail(10 * round_ + i)) for i in range(8)))
    finally:
        await sender.close()
    assert len(recorder.peers) == 24
    assert 1 <= len(set(recorder.peers)) <= 2
