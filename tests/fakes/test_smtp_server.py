"""The SMTP stand-in refuses mail without the headers a real message carries, and keeps the rest."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator

import pytest

from tests.fakes.smtp_server import SmtpCatcher

GOOD = (
    "From: Acme <support@acme.example>\r\n"
    "To: Zoë <zoe@example.com>\r\n"
    "Date: Tue, 01 Dec 2026 07:00:00 +0000\r\n"
    "Message-ID: <follow-up-1@acme.example>\r\n"
    "Subject: Your call\r\n"
    "\r\n"
    "Thanks for calling.\r\n"
)


@pytest.fixture
def catcher() -> Iterator[SmtpCatcher]:
    server = SmtpCatcher().start()
    yield server
    server.stop()


def send(catcher: SmtpCatcher, data: str, to: str = "zoe@example.com") -> None:
    with smtplib.SMTP(catcher.host, catcher.port) as client:
        client.sendmail("support@acme.example", [to], data.encode())


def test_a_complete_message_is_kept_with_its_message_id_and_parsed_when_read(
    catcher: SmtpCatcher,
) -> None:
    send(catcher, GOOD)
    [mail] = catcher.messages_to("zoe@example.com")
    assert mail.message_id == "<follow-up-1@acme.example>"
    assert mail.message["To"].addresses[0].addr_spec == "zoe@example.com"
    assert mail.text.strip() == "Thanks for calling."


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (
            lambda m: m.replace("Date: Tue, 01 Dec 2026 07:00:00 +0000\r\n", ""),
            "Date header missing",
        ),
        (lambda m: m.replace("Message-ID: <follow-up-1@acme.example>\r\n", ""), "Message-ID"),
        (lambda m: "From: other@acme.example\r\n" + m, "From header repeated"),
        (lambda m: m.replace("zoe@example.com", "ada@example.com"), "not in the To header"),
    ],
    ids=["no-date", "no-message-id", "two-from", "recipient-not-in-to"],
)
def test_a_message_without_a_required_header_is_refused(
    catcher: SmtpCatcher, edit: object, reason: str
) -> None:
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(catcher, edit(GOOD))  # type: ignore[operator]
    assert refused.value.smtp_code == 554 and reason in refused.value.smtp_error.decode()
    assert catcher.messages == []
