"""`make run`'s mail catcher and the dashboard's Mail page (issue 15).

The catcher is started the way ``callcenter up`` starts it, mail is sent to it by aiosmtplib (the
client the post-call service uses), and it is read back through the gateway's API and page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import asyncpg
import httpx
import pytest

from callcenter.common.bus import Bus
from callcenter.common.cli.up import start_mail_catcher
from callcenter.common.config import CallCenterConfig
from tests.fakes.smtp_server import SmtpCatcher
from tests.support.admin_gateway import admin_gateway
from tests.support.environment import free_port


@pytest.fixture
async def gateway(
    config: CallCenterConfig, db_pool: asyncpg.Pool, bus: Bus, redis_client: Any
) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_gateway(config, db_pool, bus, redis_client) as client:
        yield client


def _with_smtp_port(config: CallCenterConfig, port: int) -> CallCenterConfig:
    smtp = config.smtp.model_copy(update={"host": "127.0.0.1", "port": port})
    return config.model_copy(update={"smtp": smtp})


async def test_up_catches_mail_when_nothing_listens_and_the_dashboard_shows_it(
    config: CallCenterConfig, db_pool: asyncpg.Pool, gateway: httpx.AsyncClient
) -> None:
    local = _with_smtp_port(config, free_port())
    catcher, line = await start_mail_catcher(local)
    assert catcher is not None, line
    assert "local mail catcher" in line and "/dashboard/mail" in line
    try:
        message = EmailMessage()
        message["From"] = "support@acme.example"
        message["To"] = "newcomer@example.com"
        message["Subject"] = "Your return RET-1"
        message.set_content("Prepaid return label: http://localhost/label.pdf")
        await aiosmtplib.send(message, hostname="127.0.0.1", port=local.smtp.port, timeout=10)
    finally:
        await catcher.stop()

    page = (await gateway.get("/api/mail", params={"to": "NEWCOMER@example.com"})).json()
    assert page["total"] == 1
    [mail] = page["items"]
    assert mail["subject"] == "Your return RET-1" and mail["rcpt_to"] == ["newcomer@example.com"]
    assert "Prepaid return label: http://localhost/label.pdf" in mail["body_text"]
    assert (await gateway.get("/api/mail", params={"to": "other@example.com"})).json()["total"] == 0

    html = await gateway.get("/dashboard/mail")
    assert (
        html.status_code == 200 and "mail.js" in html.text and 'href="/dashboard/mail"' in html.text
    )
    dead = await gateway.get("/dashboard/dead-letters")
    assert dead.status_code == 200 and "dead_letters.js" in dead.text
    anonymous = await gateway.get("/api/mail", headers={"Authorization": ""})
    assert anonymous.status_code == 401


async def test_up_uses_an_smtp_server_that_already_listens(config: CallCenterConfig) -> None:
    server = SmtpCatcher().start()
    try:
        catcher, line = await start_mail_catcher(_with_smtp_port(config, server.port))
    finally:
        server.stop()
    assert catcher is None and line == f"SMTP server at 127.0.0.1:{server.port}"


async def test_the_live_dashboard_feed_never_carries_a_verification_code(bus: Bus) -> None:
    from callcenter.common.events import CallStarted, NotificationRequested
    from callcenter.gateway.live import LiveHub

    hub = LiveHub(bus=bus)
    await hub.start()
    try:
        with hub.subscribe() as client:
            call_id = "call-live-" + str(free_port())
            await bus.publish(
                NotificationRequested(
                    call_id=call_id,
                    customer_id="CUS-0001",
                    kind="verification_code",
                    details={"code": "314159"},
                )
            )
            await bus.publish(CallStarted(call_id=call_id, channel="chat"))
            seen = []
            while True:  # the call.started published after it is the positive signal
                message = await client.next(timeout_s=10)
                assert message is not None and message.kind != "keepalive"
                if message.data.get("call_id") == call_id:
                    seen.append(message.kind)
                if message.kind == "call.started" and message.data.get("call_id") == call_id:
                    break
            assert seen == ["call.started"]
    finally:
        await hub.stop()
