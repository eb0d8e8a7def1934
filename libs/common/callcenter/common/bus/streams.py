"""Idempotent JetStream stream and consumer set-up, done by every service at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError

from callcenter.common.config.sections import NatsSettings
from callcenter.common.events import STREAM_SUBJECTS
from callcenter.common.logging import get_logger

log = get_logger(__name__)

DEAD_LETTER_SUBJECTS = ["deadletter.>"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerSpec:
    """A durable pull consumer on the events stream."""

    durable: str
    filter_subject: str | None = None
    max_deliver: int = 6
    ack_wait_s: float = 30.0
    max_ack_pending: int = 1000


def events_stream_config(settings: NatsSettings) -> StreamConfig:
    """Limits retention (so several consumers can each read everything), file storage, dedup window."""
    return StreamConfig(
        name=settings.stream,
        subjects=[settings.subject_prefix + s for s in STREAM_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=float(settings.stream_max_age_s),
        duplicate_window=float(settings.duplicate_window_s),
    )


def dead_letter_stream_config(settings: NatsSettings) -> StreamConfig:
    """Where consumers put what they gave up on; kept four times as long as events."""
    return StreamConfig(
        name=settings.dead_letter_stream,
        subjects=[settings.subject_prefix + s for s in DEAD_LETTER_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=float(settings.stream_max_age_s * 4),
        duplicate_window=float(settings.duplicate_window_s),
    )


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or bring an existing one to ``config``."""
    try:
        await js.stream_info(config.name)
    except NotFoundError:
        try:
            await js.add_stream(config)
            log.info("stream created", stream=config.name, subjects=config.subjects)
            return
        except BadRequestError:
            pass  # created concurrently by another replica: update below
    await js.update_stream(config)


async def ensure_streams(js: JetStreamContext, settings: NatsSettings) -> None:
    """The events stream and the dead-letter stream."""
    await ensure_stream(js, events_stream_config(settings))
    await ensure_stream(js, dead_letter_stream_config(settings))


async def ensure_consumer(js: JetStreamContext, stream: str, spec: ConsumerSpec) -> None:
    """Create the durable consumer, or update it when its settings changed."""
    config = ConsumerConfig(
        durable_name=spec.durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        max_deliver=spec.max_deliver,
        ack_wait=spec.ack_wait_s,
        max_ack_pending=spec.max_ack_pending,
        filter_subject=spec.filter_subject,
    )
    try:
        await js.add_consumer(stream, config=config)
    except BadRequestError as exc:
        # An existing durable with a different, non-updatable config: keep its position.
        log.warning("consumer exists with other settings", durable=spec.durable, error=str(exc))
