"""Publishing events to JetStream, deduplicated by event id and retried through outages."""

from __future__ import annotations

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import PubAck
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from callcenter.common.bus.tracing import inject_trace
from callcenter.common.events import Event
from callcenter.common.logging import get_logger

log = get_logger(__name__)

_TRANSIENT = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
)


def event_headers(event: Event) -> dict[str, str]:
    """Headers every event carries; ``Nats-Msg-Id`` makes a retried publish a no-op."""
    return inject_trace(
        {
            "Nats-Msg-Id": event.event_id,
            "Cc-Event-Type": event.subject,
            "Cc-Schema-Version": str(event.schema_version),
            "Cc-Call-Id": event.call_id,
        }
    )


async def publish_event(
    js: JetStreamContext,
    event: Event,
    *,
    prefix: str = "",
    timeout_s: float = 2.0,
    give_up_after_s: float = 30.0,
) -> PubAck:
    """Publish ``event`` on its subject; retry with the same message id until acknowledged.

    Raises:
        nats.errors.TimeoutError: the stream did not acknowledge within ``give_up_after_s``.

    """
    headers = event_headers(event)
    data = event.to_bytes()
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(_TRANSIENT),
        wait=wait_exponential(multiplier=0.1, max=2.0),
        stop=stop_after_delay(give_up_after_s),
        reraise=True,
    ):
        with attempt:
            if attempt.retry_state.attempt_number > 1:
                log.warning(
                    "retrying event publish",
                    subject=event.subject,
                    event_id=event.event_id,
                    attempt=attempt.retry_state.attempt_number,
                )
            ack = await js.publish(prefix + event.subject, data, timeout=timeout_s, headers=headers)
    log.debug(
        "event published", subject=event.subject, event_id=event.event_id, duplicate=ack.duplicate
    )
    return ack
