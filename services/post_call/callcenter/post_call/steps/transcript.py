"""transcript: turn.completed -> one ``turns`` row per (call_id, turn_index), PII redacted."""

from __future__ import annotations

from typing import ClassVar

import asyncpg

from callcenter.common.bus.consumer import Delivery
from callcenter.common.events import SUBJECT_TURN_COMPLETED, TurnCompleted
from callcenter.common.pii import redact, redact_value
from callcenter.post_call.steps.base import Outcome, Step, StepContext
from callcenter.post_call.steps.turns_stored import channel_for, notify_turn_stored


class TranscriptStep(Step):
    """Stores each turn of the conversation."""

    name: ClassVar[str] = "transcript"
    subjects: ClassVar[tuple[str, ...]] = (SUBJECT_TURN_COMPLETED,)

    def __init__(self, *, ctx: StepContext) -> None:
        super().__init__(ctx=ctx)
        self.channel = channel_for(ctx.config.database.schema_name)

    async def handle(self, delivery: Delivery) -> bool:
        """Store the turn (a turn stored before under another event id is kept as it was)."""
        turn = self.parse(delivery, TurnCompleted)

        async def store(conn: asyncpg.Connection) -> Outcome:
            await conn.execute(
                """
                INSERT INTO turns (call_id, turn_index, channel, user_text, assistant_text,
                                   tool_calls, latency, interrupted, engine, customer_id,
                                   event_id, occurred_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                ON CONFLICT (call_id, turn_index) DO NOTHING
                """,
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
            stored = await conn.fetchval(
                "SELECT count(*) FROM turns WHERE call_id = $1", turn.call_id
            )
            await notify_turn_stored(conn, channel=self.channel, call_id=turn.call_id)
            return Outcome(detail=f"{stored} turns stored")

        return await self.effect_once(turn, store)
