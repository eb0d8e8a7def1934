"""Run the gateway: connections, the HTTP app, graceful shutdown."""

from __future__ import annotations

import asyncio

from callcenter.common.config import load_config
from callcenter.common.logging import get_logger
from callcenter.common.runtime import ServiceRuntime
from callcenter.gateway.app import create_app
from callcenter.gateway.deps import GatewayDeps
from callcenter.gateway.inbox.runner import start_inbox
from callcenter.gateway.limits import WS_MAX_FRAME_BYTES
from callcenter.gateway.live import LiveHub
from callcenter.gateway.sessions import SessionReaper
from callcenter.gateway.twilio.rest import close_rest_client, rest_client

log = get_logger(__name__)

BACKGROUND_GRACE_S = 20.0  # replies in flight; well inside the pod's grace period (60 s)


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
        ws_max_size=WS_MAX_FRAME_BYTES,
    )
    async with runtime:
        assert runtime.redis is not None and runtime.db is not None
        deps = GatewayDeps(
            config=config,
            bus=runtime.bus,
            redis=runtime.redis,
            db=runtime.db,
            readiness=runtime.readiness,
            twilio=rest_client(config.twilio),
        )
        runtime.on_stop(lambda: close_rest_client(deps.twilio))  # runs after background work
        app.state.deps = deps
        app.state.shutting_down = asyncio.Event()
        reaper = SessionReaper(deps=deps)
        reaper.start()
        runtime.on_stop(reaper.stop)
        app.state.live = LiveHub(bus=runtime.bus)
        await app.state.live.start()
        runtime.on_stop(app.state.live.stop)
        await start_inbox(app, deps, runtime)
        await runtime.start_http()
        await runtime.wait_for_shutdown()
        app.state.shutting_down.set()
        if deps.background:
            log.info("finishing replies in flight", tasks=len(deps.background))
            _, pending = await asyncio.wait(set(deps.background), timeout=BACKGROUND_GRACE_S)
            if pending:
                log.error("replies still in flight at shutdown", tasks=len(pending))
