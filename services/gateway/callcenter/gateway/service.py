"""Run the gateway: connections, the HTTP app, graceful shutdown."""

from __future__ import annotations

import asyncio

from callcenter.common.config import load_config
from callcenter.common.runtime import ServiceRuntime
from callcenter.gateway.app import create_app
from callcenter.gateway.deps import GatewayDeps
from callcenter.gateway.sessions import SessionReaper


async def serve() -> None:
    """Serve until SIGTERM; open chats are told the service is restarting and ended cleanly."""
    config = load_config()
    app = create_app()
    runtime = ServiceRuntime(
        name="gateway",
        config=config,
        host=config.gateway.host,
        port=config.gateway.port,
        needs_redis=True,
        needs_db=True,
        app=app,
    )
    async with runtime:
        assert runtime.redis is not None and runtime.db is not None
        deps = GatewayDeps(
            config=config,
            bus=runtime.bus,
            redis=runtime.redis,
            db=runtime.db,
            readiness=runtime.readiness,
        )
        app.state.deps = deps
        app.state.shutting_down = asyncio.Event()
        reaper = SessionReaper(deps=deps)
        reaper.start()
        runtime.on_stop(reaper.stop)
        await runtime.start_http()
        await runtime.wait_for_shutdown()
        app.state.shutting_down.set()
        if deps.background:
            await asyncio.wait(set(deps.background), timeout=30)
