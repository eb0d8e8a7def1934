"""What request handlers need: config and connections, held on ``app.state.deps``."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
import redis.asyncio as aioredis
from fastapi import Request
from starlette.requests import HTTPConnection
from twilio.rest import Client as TwilioClient

from callcenter.common.bus import Bus
from callcenter.common.config import CallCenterConfig
from callcenter.common.health import Readiness


@dataclass(slots=True, kw_only=True)
class GatewayDeps:
    """Connections shared by every request of the gateway process."""

    config: CallCenterConfig
    bus: Bus
    redis: aioredis.Redis
    db: asyncpg.Pool
    readiness: Readiness
    background: set = field(default_factory=set)
    twilio: TwilioClient | None = None  # REST client (async methods); None without an account

    def key(self, name: str) -> str:
        """A Redis key in this deployment's namespace."""
        return self.config.redis.key_prefix + name


def get_deps(conn: HTTPConnection) -> GatewayDeps:
    """FastAPI dependency (works for HTTP requests and WebSockets)."""
    return conn.app.state.deps


def request_deps(request: Request) -> GatewayDeps:
    """FastAPI dependency for plain HTTP routes."""
    return request.app.state.deps
