"""Before ``simulate-call`` dials: is there a gateway and a voice pipeline that can hold a call?

Fails fast with what is missing (not running, or no speech providers) instead of a traceback or a
wait past ``--timeout``.
"""

from __future__ import annotations

import httpx

from callcenter.common.config import CallCenterConfig


def voice_url(config: CallCenterConfig) -> str:
    """Where the voice pipeline answers /readyz."""
    host = config.voice_pipeline.host
    host = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
    return f"http://{host}:{config.voice_pipeline.port}"


async def preflight(config: CallCenterConfig, *, gateway: str) -> str | None:
    """None when a call can be placed; else a message saying what is missing."""
    voice = voice_url(config)
    async with httpx.AsyncClient(timeout=3.0) as client:
        try:
            await client.get(f"{gateway}/healthz")
        except httpx.HTTPError:
            return f"the gateway is not running at {gateway} (start everything with: make run)"
        try:
            reply = await client.get(f"{voice}/readyz")
        except httpx.HTTPError:
            return f"the voice pipeline is not running at {voice} (start everything with: make run)"
    if reply.status_code == 200:
        return None
    try:
        body = reply.json()
    except ValueError:
        body = {}
    lacks = list((body.get("lacks") or {}).values())
    if lacks:
        return "voice calls cannot work: " + "; ".join(lacks)
    failing = [name for name, ok in (body.get("checks") or {}).items() if not ok]
    return f"the voice pipeline at {voice} is not ready ({', '.join(failing) or 'draining'})"
