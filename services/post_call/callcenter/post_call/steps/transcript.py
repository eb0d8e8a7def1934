"""transcript: turn.completed -> one ``turns`` row per (call_id, turn_index), PII redacted.

Turns arrive several per call and many per second, so the step takes a whole fetch in one
transaction: every claim, every row, one status row and one notification per call.
"""

from __future__ import annotations

from typing import Any, ClassVar

from callcenter.common.bus.consumer import Delivery
from callcenter.common.events import SUBJECT_TURN_COMPLETED, TurnCompleted
from callcenter.common.pii import redact, redact_value
from callcenter.post_call.steps.base import (
    Outcome,
    Step,
    StepContext,
    claim_events,
    record_statuses,
    with_new_effect,
)
from callcenter.post_call.steps.turns_stored import channel_for, notify_turns_stored

INSERT_TURN = """
    INSERT INTO turns (call_id, turn_index, channel, user_text, assistant_text,
                       tool_calls, latency, interrupted, engine, customer_id,
                       event_id, occurred_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    ON CONFLICT (call_id, turn_index) DO NOTHING
"""


def turn_row(turn: TurnCompleted) -> tuple[Any, ...]:
    """The ``turns`` row of an event, its texts and tool results redacted."""
    return (
        turn.call_id,
        turn.turn_index,
        turn.channel,
        redact(turn.user_text),
        redact(turn.assistant_text),
        redact_value([call.model_dump(mode="json") for call in turn.tool_calls]),
        turn.latency.model_dump(mode="json"),
        turn.interrupted,
        turn.engine,
        turn.customer_id,
        turn.event_id,
        turn.occurred_at,
    )


class TranscriptStep(Step):
    """Stores each turn of the conversation."""

    name: ClassVar[str] = "transcript"
    subjects: ClassVar[tuple[str, ...]] = (SUBJECT_TURN_COMPLETED,)
    batches = True

    def __init__(self, *, ctx: StepContext) -> None:
        super().__init__(ctx=ctx)
        self.channel = channel_for(ctx.config.database.schema_name)

    async def handle(self, delivery: Delivery) -> bool:
        """Store one turn (a turn stored before under another event id is kept as it was)."""
        return bool(await self.handle_batch([delivery]))

    async def handle_batch(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Store the turns not stored before, in one transaction; wake the calls' summaries."""
        turns = [self.parse(delivery, TurnCompleted) for delivery in deliveries]
        async with self.db.acquire() as conn, conn.transaction():
            new = await claim_events(conn, step=self.name, events=turns)
            if not new:
                return []
            await conn.executemany(INSERT_TURN, [turn_row(turn) for turn in new])
            calls = list(dict.fromkeys(turn.call_id for turn in new))
            stored = {
                row["call_id"]: row["n"]
                for row in await conn.fetch(
                    """
                    SELECT call_id, count(*) AS n FROM turns
                    WHERE call_id = ANY($1::text[]) GROUP BY call_id
                    """,
                    calls,
                )
            }
            await record_statuses(
                conn,
                step=self.name,
                events=new,
                outcome=lambda call_id: Outcome(detail=f"{stored.get(call_id, 0)} turns stored"),
            )
            await notify_turns_stored(conn, channel=self.channel, call_ids=calls)
        self.record_since_event(list(new))
        return with_new_effect(deliveries, turns, new)
