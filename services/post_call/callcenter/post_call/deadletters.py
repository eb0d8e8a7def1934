"""The PostgreSQL dead-letter sink: a ``dead_letters`` row (shown by the API) per give-up."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from callcenter.common.bus.consumer import DeadLetter, DeadLetterSink
from callcenter.common.logging import get_logger
from callcenter.post_call.steps.base import Outcome, record_status
from callcenter.post_call.telemetry import PostCallMetrics

log = get_logger(__name__)


def postgres_dead_letter_sink(
    pool: asyncpg.Pool, *, step_of: dict[str, str], metrics: PostCallMetrics | None = None
) -> DeadLetterSink:
    """Insert the record (once per consumer and stream sequence) and mark the call's step.

    ``step_of`` maps a durable consumer name to its step, for the step-status row.
    """

    async def sink(record: DeadLetter) -> None:
        async with pool.acquire() as conn, conn.transaction():
            new = await conn.fetchval(
                """
                INSERT INTO dead_letters (consumer, subject, stream_sequence, event_id, call_id,
                                          attempts, reason, payload)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (consumer, stream_sequence) DO NOTHING RETURNING id
                """,
                record.consumer,
                record.subject,
                record.stream_sequence,
                record.event_id,
                record.call_id,
                record.attempts,
                record.reason,
                record.to_json()["payload"],
            )
            step = step_of.get(record.consumer)
            # A delivery whose effect committed before the process died keeps its "done" status.
            done = step is not None and await conn.fetchval(
                "SELECT 1 FROM processed_events WHERE step = $1 AND event_id = $2",
                step,
                record.event_id,
            )
            if new is not None and record.call_id and step and not done:
                await record_status(
                    conn,
                    call_id=record.call_id,
                    step=step,
                    outcome=Outcome(status="dead_letter", detail=record.reason[:500]),
                )
        if new is not None and metrics is not None:
            metrics.dead_letters.add(1, {"consumer": record.consumer})

    return sink


def fan_out(sinks: Sequence[DeadLetterSink]) -> DeadLetterSink:
    """One sink that writes to each of ``sinks`` in turn (a failure propagates)."""

    async def sink(record: DeadLetter) -> None:
        for each in sinks:
            await each(record)

    return sink
