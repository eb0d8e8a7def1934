"""Fixtures for the post-call tests: an SMTP catcher, the helpers, the gateway API in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from callcenter.common.bus import Bus
from callcenter.common.config import CallCenterConfig
from callcenter.common.config.sections import SmtpSettings
from services.post_call.tests.support import PostCall
from tests.fakes.smtp_server import SmtpCatcher
from tests.support.admin_gateway import admin_gateway
from tests.support.environment import TestEnvironment


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpCatcher]:
    catcher = SmtpCatcher(login=("postcall", "smtp-secret"), starttls=True).start()
    yield catcher
    catcher.stop()


@pytest.fixture(scope="session")
def session_post_call(
    config: CallCenterConfig,
    db_pool: asyncpg.Pool,
    bus: Bus,
    smtp: SmtpCatcher,
    test_env: TestEnvironment,
) -> PostCall:
    smtp_config = config.model_copy(
        update={"smtp": SmtpSettings.model_validate({**config.smtp.model_dump(), **smtp.settings})}
    )
    return PostCall(config=smtp_config, db=db_pool, bus=bus, smtp=smtp, test_env=test_env)


@pytest.fixture
def post_call(session_post_call: PostCall) -> Iterator[PostCall]:
    """The helpers; every process a test started is stopped when it ends."""
    yield session_post_call
    session_post_call.stop_all()


@pytest.fixture
async def gateway(
    config: CallCenterConfig, db_pool: asyncpg.Pool, bus: Bus, redis_client: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the gateway's app (in-process), as an admin; ``.deps`` its deps."""
    async with admin_gateway(config, db_pool, bus, redis_client) as client:
        yield client
