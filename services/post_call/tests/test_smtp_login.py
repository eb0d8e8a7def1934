"""Follow-up email through a submission server that wants STARTTLS and a login, as providers do."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from callcenter.common.bus.consumer import RetryLater
from callcenter.common.config.sections import SmtpSettings
from callcenter.post_call.email.sender import SmtpSender
from callcenter.post_call.email.templates import FollowUp
from tests.fakes.smtp_server import SmtpCatcher

MAIL = FollowUp(subject="Your call with Acme", text="Thanks for calling.", html="<p>Thanks</p>")


@pytest.fixture(scope="module")
def server() -> Iterator[SmtpCatcher]:
    catcher = SmtpCatcher(login=("mailer", "right-password"), starttls=True).start()
    yield catcher
    catcher.stop()


async def send(server: SmtpCatcher, to: str, **overrides: Any) -> None:
    settings = SmtpSettings.model_validate({**server.settings, "timeout_s": 10.0, **overrides})
    sender = SmtpSender(settings=settings)
    await sender.send(sender.build(to=to, mail=MAIL, message_id=f"<{to}>"))


async def test_mail_goes_over_tls_after_login(server: SmtpCatcher) -> None:
    await send(server, "ada@example.com")
    [mail] = server.messages_to("ada@example.com")
    assert mail.tls and mail.login == "mailer"
    assert mail.message["Subject"] == "Your call with Acme"


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"starttls": False}, "STARTTLS"),
        ({"password": "wrong"}, "535"),
        ({"username": None, "password": None}, "uthentication required"),
        ({"tls_ca_file": None}, "CERTIFICATE_VERIFY_FAILED"),
    ],
    ids=["no-starttls", "wrong-password", "no-login", "untrusted-certificate"],
)
async def test_refused_sessions_send_nothing_and_retry_later(
    server: SmtpCatcher, overrides: dict[str, Any], words: str
) -> None:
    to = f"refused-{len(server.messages)}-{sorted(overrides)[0]}@example.com"
    with pytest.raises(RetryLater, match=words):
        await send(server, to, **overrides)
    await send(server, "control@example.com")  # the server is up and took the next good one
    assert server.messages_to(to) == []


async def test_a_sender_name_subject_and_text_beyond_ascii_arrive_intact(
    server: SmtpCatcher,
) -> None:
    to = "zoe@example.com"
    mail = FollowUp(
        subject="Suivi de votre appel — Café Zoë",
        text="Bonjour Zoë, votre échange est prêt ✓",
        html="<p>Bonjour Zoë, votre échange est prêt ✓</p>",
    )
    settings = SmtpSettings.model_validate(
        {**server.settings, "from_address": "Café Zoë Support <support@example.com>"}
    )
    sender = SmtpSender(settings=settings)
    await sender.send(sender.build(to=to, mail=mail, message_id="<zoe-1@example.com>"))
    await sender.close()
    [got] = server.messages_to(to)
    assert got.message["From"].addresses[0].display_name == "Café Zoë Support"
    assert got.message["From"].addresses[0].addr_spec == "support@example.com"
    assert got.message["Subject"] == mail.subject
    assert got.text.strip() == mail.text and got.html.strip() == mail.html
    assert got.message["Message-ID"] == "<zoe-1@example.com>"
