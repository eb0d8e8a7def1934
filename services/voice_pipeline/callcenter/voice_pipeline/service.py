"""Run the voice pipeline: the Twilio and browser media sockets, one Pipecat pipeline per call.

Readiness is false while draining or at capacity (:mod:`callcenter.voice_pipeline.capacity`:
a stream beyond it is refused with 1013 "try again later"); SIGTERM stops taking calls and hands
the ones in progress to the other replicas, as many as they have room for: their media sockets
close without the calls ending, and Twilio's ``<Connect action>`` resumes each on another replica
(``callcenter.common.call_resume``; off with ``voice_pipeline.max_resumes`` 0 or
``voice_pipeline.hand_off_on_shutdown`` false). It ends the rest (each publishes call.ended),
then drains NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import redis.asyncio as aioredis
from fastapi import FastAPI, WebSocket

from callcenter.common.config import CallCenterConfig, load_config
from callcenter.common.config.voice_gaps import voice_gaps
from callcenter.common.logging import get_logger
from callcenter.common.runtime import ServiceRuntime
from callcenter.common.voice_load import (
    forget_voice_replica,
    report_voice_load,
    room_elsewhere,
)
from callcenter.voice_pipeline.apology import ApologyCache
from callcenter.voice_pipeline.call import (
    POLICY_VIOLATION,
    Accept,
    CallSession,
    VoiceDeps,
    accept_call,
    serve_call,
)
from callcenter.voice_pipeline.capacity import CallAdmission, call_capacity
from callcenter.voice_pipeline.smart_turn import load_shared_model
from callcenter.voice_pipeline.speech import log_speech_providers
from callcenter.voice_pipeline.vad import load_vad_model
from callcenter.voice_pipeline.web_call import accept_web_call

log = get_logger(__name__)

#: WebSocket close code "try again later": this replica is at capacity.
TRY_AGAIN_LATER = 1013


#: How often a replica re-tells its load when nothing changed (well inside voice_load.FRESH_S).
REPORT_EVERY_S = 5.0


async def report_load(
    redis: aioredis.Redis, key_prefix: str, replica: str, admission: CallAdmission
) -> None:
    """Tell the gateway this replica's load: at once on every change, else every few seconds."""
    while True:
        admission.changed.clear()
        try:
            await report_voice_load(
                redis,
                key_prefix=key_prefix,
                replica=replica,
                active=admission.active,
                capacity=admission.capacity,
            )
        except Exception:
            log.warning("voice load not reported (Redis)", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(admission.changed.wait(), timeout=REPORT_EVERY_S)


def create_app(state: dict, admission: CallAdmission) -> FastAPI:
    """The media socket app; ``state['deps']`` is set before serving."""
    app = FastAPI(title="Callcenter voice pipeline", version="0.1.0")
    active: set[CallSession] = set()
    state["active"] = active

    async def admitted(websocket: WebSocket, accept: Accept) -> None:
        deps: VoiceDeps | None = state.get("deps")
        if deps is None or state.get("draining"):
            await websocket.close(code=POLICY_VIOLATION)
            return
        if not admission.try_admit():
            log.warning("media stream refused: at capacity", capacity=admission.capacity)
            await websocket.close(code=TRY_AGAIN_LATER)
            return
        try:
            await serve_call(deps, websocket, active, accept=accept)
        finally:
            admission.release()

    @app.websocket("/twilio/media")
    async def media(websocket: WebSocket) -> None:
        await admitted(websocket, accept_call)

    @app.websocket("/web/media")
    async def web_media(websocket: WebSocket) -> None:
        """A browser call (the chat widget's Call button): see :mod:`.web_call`."""
        await admitted(websocket, accept_web_call)

    return app


async def _hand_off_room(config: CallCenterConfig, redis: aioredis.Redis, replica: str) -> int:
    """How many of this replica's phone calls other replicas can resume (0: end them here)."""
    vp = config.voice_pipeline
    if not vp.hand_off_on_shutdown or vp.max_resumes == 0:
        return 0
    try:
        return await room_elsewhere(redis, key_prefix=config.redis.key_prefix, replica=replica)
    except Exception:
        log.warning("no hand-off: the other replicas' load is unknown (Redis)", exc_info=True)
        return 0


async def serve() -> None:
    """Serve until SIGTERM."""
    config = load_config()
    state: dict = {}
    admission = CallAdmission(capacity=call_capacity(config.voice_pipeline))
    app = create_app(state, admission)
    runtime = ServiceRuntime(
        name="voice_pipeline",
        config=config,
        host=config.voice_pipeline.host,
        port=config.voice_pipeline.port,
        needs_redis=True,
        needs_db=True,
        app=app,
        ws_per_message_deflate=config.voice_pipeline.media_deflate,
    )

    async def room_for_a_call() -> bool:
        return not admission.full

    runtime.readiness.add("capacity", room_for_a_call)
    async with runtime:
        assert runtime.redis is not None and runtime.db is not None
        apology = ApologyCache(config=config)
        state["deps"] = VoiceDeps(
            config=config, bus=runtime.bus, redis=runtime.redis, db=runtime.db, apology=apology
        )
        warm = asyncio.create_task(apology.warm())
        gaps = voice_gaps(config)  # issue 15: not ready, saying why, without speech providers

        async def speech_providers() -> bool:
            return not gaps

        runtime.readiness.add("speech_providers", speech_providers)
        runtime.readiness.notes["speech_providers"] = "; ".join(gaps)
        if config.voice_pipeline.smart_turn:
            await asyncio.to_thread(load_shared_model)
        await asyncio.to_thread(load_vad_model)
        log.info("call capacity", calls=admission.capacity)
        log_speech_providers(config)
        replica = f"{socket.gethostname()}:{config.voice_pipeline.port}"
        reporter = asyncio.create_task(
            report_load(runtime.redis, config.redis.key_prefix, replica, admission)
        )

        async def end_calls() -> None:
            state["draining"] = True
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
            await forget_voice_replica(
                runtime.redis, key_prefix=config.redis.key_prefix, replica=replica
            )
            sessions = list(state["active"])
            room = await _hand_off_room(config, runtime.redis, replica) if sessions else 0
            calls = [session.finished.wait() for session in sessions]
            for i, session in enumerate(sessions):
                if i < room and session.channel == "voice":
                    await session.hand_off()
                else:
                    await session.stop()
            if calls:
                await asyncio.wait([asyncio.ensure_future(c) for c in calls], timeout=15)
            warm.cancel()

        runtime.on_stop(end_calls)
        await runtime.start_http()
        await runtime.wait_for_shutdown()
