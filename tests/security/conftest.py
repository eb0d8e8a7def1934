"""One running system for the security tests, with every secret set to a recognisable value.

Real processes (tools, conversation, post_call, gateway, voice_pipeline) on the shared servers in a
namespace of their own (so their post-call consumers never share durables with another module's),
each on a port of its own; a local SMTP catcher receives the follow-up emails. The secrets are
random but known here, so tests can look for them in logs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import nats.errors
import pytest

from bench._namespace import remove_namespace
from callcenter.common.bus import Bus
from callcenter.common.config import CallCenterConfig
from callcenter.common.db import create_pool
from tests.fakes.smtp_server import SmtpCatcher
from tests.support.environment import TestEnvironment, free_port
from tests.support.private_servers import prepare_database, start_service
from tests.support.processes import ServiceProcess, stop_together

SERVICES = ("tools", "conversation", "post_call", "gateway", "voice_pipeline")
#: What Twilio would call (behind a proxy): signatures are computed over these, not the local port.
PUBLIC_BASE_URL = "https://gateway.callcenter.test"
PUBLIC_WS_URL = "wss://media.callcenter.test/twilio/media"


def _secret(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex}"


@dataclass
class SecureSystem:
    """The running services, their environment and the secrets they were given."""

    services: dict[str, ServiceProcess]
    env: dict[str, str]
    secrets: dict[str, str]
    smtp: SmtpCatcher
    tag: str
    config: CallCenterConfig
    db: asyncpg.Pool
    bus: Bus
    extra: list[ServiceProcess] = field(default_factory=list)

    @property
    def voice(self) -> ServiceProcess:
        return self.services["voice_pipeline"]

    @property
    def media_url(self) -> str:
        """Where the media socket really listens."""
        return self.voice.url.replace("http://", "ws://") + "/twilio/media"

    @property
    def gateway(self) -> ServiceProcess:
        return self.services["gateway"]

    @property
    def auth_token(self) -> str:
        return self.secrets["TWILIO_AUTH_TOKEN"]

    @property
    def admin_token(self) -> str:
        return self.secrets["ADMIN_TOKEN"]

    async def events_of(self, call_ids: set[str]) -> list[bytes]:
        """Every event of these calls on the namespace's JetStream stream."""
        sub = await self.bus.js.pull_subscribe(
            self.bus.subject(">"), durable=None, stream=self.config.nats.stream
        )
        found = []
        try:
            while True:
                try:
                    msgs = await sub.fetch(200, timeout=1.0)
                except (nats.errors.TimeoutError, TimeoutError):
                    break
                found += [m.data for m in msgs if (m.headers or {}).get("Cc-Call-Id") in call_ids]
        finally:
            await sub.unsubscribe()
        return found

    def all_logs(self) -> str:
        """Every line every process of this system logged."""
        return "\n".join(proc.log_text() for proc in [*self.services.values(), *self.extra])


@pytest.fixture(scope="package")
async def secure_system() -> AsyncIterator[SecureSystem]:
    """Every service running with known secrets (stopped at the end of tests/security)."""
    namespace = TestEnvironment()
    secrets = {
        "TWILIO_AUTH_TOKEN": _secret("twilio"),
        "ADMIN_TOKEN": _secret("admin"),
        "SESSION_SECRET": _secret("session"),
        "SMTP_PASSWORD": _secret("smtp"),
        "HUBSPOT_TOKEN": _secret("hubspot"),
        "DEEPGRAM_API_KEY": _secret("deepgram"),
        "ELEVENLABS_API_KEY": _secret("elevenlabs"),
        "CALLCENTER_VOICE_PIPELINE__STREAM_TOKEN_SECRET": _secret("stream"),
    }
    smtp = SmtpCatcher().start()
    tag = f"{namespace.tag}-security"
    env = {
        **namespace.env,
        **smtp.env,
        **secrets,
        "CALLCENTER_LOGGING__LEVEL": "DEBUG",
        "CALLCENTER_GATEWAY__PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "CALLCENTER_VOICE_PIPELINE__PUBLIC_WS_URL": PUBLIC_WS_URL,
    }
    ports = {name: free_port() for name in SERVICES}
    config = namespace.config(**env)
    await prepare_database(config.database.url, config.database.schema_name)
    started: dict[str, ServiceProcess] = {}
    db = await create_pool(config.database, attempts=3)
    bus = await Bus.connect(config.nats, name="security-tests")
    system = SecureSystem(
        services=started,
        env=env,
        secrets=secrets,
        smtp=smtp,
        tag=tag,
        config=config,
        db=db,
        bus=bus,
    )
    try:
        for name in SERVICES:
            started[name] = start_service(name, env=env, tag=tag, port=ports[name], wait=False)
        for proc in started.values():
            proc.wait_ready(timeout_s=120)
        yield system
    finally:
        stop_together([*system.extra, *reversed(started.values())])
        smtp.stop()
        await bus.drain()
        await db.close()
        if os.environ.get("KEEP_TEST_SCHEMA") != "1":
            await remove_namespace(config)
