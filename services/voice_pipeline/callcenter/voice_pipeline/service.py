"""Run the voice pipeline: the Twilio media socket, one Pipecat pipeline per call.

Readiness is false while draining; SIGTERM stops taking calls and ends the ones in progress
(each publishes call.ended), then drains NATS.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, WebSocket

from callcenter.common.config import load_config
from callcenter.common.config.voice_gaps import voice_gaps
from callcenter.common.logging import get_logger
from callcenter.common.runtime import ServiceRuntime
from callcenter.voice_pipeline.apology import ApologyCache
from callcenter.voice_pipeline.call import POLICY_VIOLATION, CallSession, VoiceDeps, serve_call

log = get_logger(__name__)


def create_app(state: dict) -> FastAPI:
    """The media socket app; ``state['deps']`` is set before serving."""
    app = FastAPI(title="Callcenter voice pipeline", version="0.1.0")
    active: set[CallSession] = set()
    state["active"] = active

    @app.websocket("/twilio/media")
    async def media(websocket: WebSocket) -> None:
        deps: VoiceDeps | None = state.get("deps")
        if deps is None or state.get("draining"):
            await websocket.close(code=POLICY_VIOLATION)
            return
        await serve_call(deps, websocket, active)

    return app


async def serve() -> None:
    """Serve until SIGTERM."""
    config = load_config()
    state: dict = {}
    app = create_app(state)
    runtime = ServiceRuntime(
        name="voice_pipeline",
        config=config,
        host=config.voice_pipeline.host,
        port=config.voice_pipeline.port,
        needs_redis=True,
        needs_db=True,
        app=app,
    )
    async with runtime:
        assert runtime.redis is not None and runtime.db is not None
        apology = ApologyCache(config=config)
        state["deps"] = VoiceDeps(
            config=config, bus=runtime.bus, redis=runtime.redis, db=runtime.db, apology=apology
        )
        warm = asyncio.create_task(apology.load())
        gaps = voice_gaps(config)  # issue 15: not ready, saying why, without speech providers

        async def speech_providers() -> bool:
            return not gaps

        runtime.readiness.add("speech_providers", speech_providers)
        runtime.readiness.notes["speech_providers"] = "; ".join(gaps)

        async def end_calls() -> None:
            state["draining"] = True
            calls = [session.finished.wait() for session in state["active"]]
            for session in list(state["active"]):
                await session.stop()
            if calls:
                await asyncio.wait([asyncio.ensure_future(c) for c in calls], timeout=15)
            warm.cancel()

        runtime.on_stop(end_calls)
        await runtime.start_http()
        await runtime.wait_for_shutdown()
