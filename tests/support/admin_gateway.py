"""The gateway's app in-process, with an HTTP client logged in as the admin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
from pydantic import SecretStr

from callcenter.common.bus import Bus
from callcenter.common.config import CallCenterConfig
from callcenter.common.health import Readiness

ADMIN_TOKEN = "t0ken"


@asynccontextmanager
async def admin_gateway(
    config: CallCenterConfig, db: asyncpg.Pool, bus: Bus, redis: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the gateway app (``.deps`` holds its deps), as the admin."""
    from callcenter.gateway.app import create_app
    from callcenter.gateway.deps import GatewayDeps

    admin = config.model_copy(
        update={
            "gateway": config.gateway.model_copy(update={"admin_token": SecretStr(ADMIN_TOKEN)})
        }
    )
    deps = GatewayDeps(config=admin, bus=bus, redis=redis, db=db, readiness=Readiness())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(deps)),
        base_url="http://gateway",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as client:
        client.deps = deps  # type: ignore[attr-defined]
        yield client
