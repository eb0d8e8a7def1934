"""The message bus: NATS connection, JetStream events, streamed requests, pull consumers."""

from callcenter.common.bus.bus import Bus
from callcenter.common.bus.consumer import (
    DeadLetter,
    Delivery,
    PermanentFailure,
    PullConsumer,
    RetryLater,
    watch_max_deliveries,
)
from callcenter.common.bus.publish import publish_event
from callcenter.common.bus.streaming import (
    Chunk,
    NoResponders,
    ReplyStream,
    StreamError,
    StreamingRequest,
    StreamingResponder,
    stream_request,
)
from callcenter.common.bus.streams import ConsumerSpec, ensure_consumer, ensure_streams

__all__ = [
    "Bus",
    "Chunk",
    "ConsumerSpec",
    "DeadLetter",
    "Delivery",
    "NoResponders",
    "PermanentFailure",
    "PullConsumer",
    "ReplyStream",
    "RetryLater",
    "StreamError",
    "StreamingRequest",
    "StreamingResponder",
    "ensure_consumer",
    "ensure_streams",
    "publish_event",
    "stream_request",
    "watch_max_deliveries",
]
