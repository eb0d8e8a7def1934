"""Start the inbox's background parts with the gateway (one call from the service)."""

from __future__ import annotations

from fastapi import FastAPI
from nats.aio.msg import Msg

from callcenter.common.events import SUBJECT_TURN_COMPLETED
from callcenter.common.logging import get_logger
from callcenter.common.runtime import ServiceRuntime
from callcenter.gateway.deps import GatewayDeps
from callcenter.gateway.inbox.sweeper import inbox_sweeper, watch_voice_transfers
from callcenter.gateway.inbox.updates import InboxHub

log = get_logger(__name__)


async def start_inbox(app: FastAPI, deps: GatewayDeps, runtime: ServiceRuntime) -> None:
    """The agent pages' hub, the no-agent sweeper and the voice-transfer watcher."""
    hub = InboxHub(bus=deps.bus)
    await hub.start()
    runtime.on_stop(hub.stop)
    app.state.inbox_hub = hub
    sweeper = inbox_sweeper(deps)
    sweeper.start()
    runtime.on_stop(sweeper.stop)

    async def on_turn(msg: Msg) -> None:
        try:
            await watch_voice_transfers(deps, msg.data)
        except Exception:
            log.exception("voice transfer not shown in the inbox")

    subscription = await deps.bus.nc.subscribe(deps.bus.subject(SUBJECT_TURN_COMPLETED), cb=on_turn)
    runtime.on_stop(subscription.unsubscribe)
