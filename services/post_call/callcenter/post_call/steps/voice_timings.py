"""voice_timings: turn.heard (voice_pipeline) joined with turn.completed (conversation).

The conversation service publishes ``turn.completed`` as soon as the answer is generated; the
voice pipeline publishes ``turn.heard`` once the answer's first audio reached the caller (or the
turn was cut). This step writes both halves into one ``voice_turn_timings`` row per
``(call_id, turn_index)``, whichever comes first, so the whole chain (caller stops -> final
transcript -> first token -> first audio made -> first audio sent) is one row. Voice turns only:
``turn.completed`` of other channels is acked untouched.
"""

from __future__ import annotations

from typing import ClassVar

import asyncpg

from callcenter.common.bus.consumer import Delivery
from callcenter.common.events import (
    SUBJECT_TURN_COMPLETED,
    SUBJECT_TURN_HEARD,
    Event,
    TurnCompleted,
    TurnHeard,
)
from callcenter.common.pii import redact
from callcenter.post_call.steps.base import Outcome, Step, skipped

_HEARD = """
INSERT INTO voice_turn_timings (call_id, turn_index, source, stt_final_ms, first_text_ms,
    first_audio_ms, first_audio_sent_ms, transcript_to_first_audio_sent_ms, interrupted,
    heard_text, heard_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (call_id, turn_index) DO UPDATE SET
    source = EXCLUDED.source, stt_final_ms = EXCLUDED.stt_final_ms,
    first_text_ms = EXCLUDED.first_text_ms, first_audio_ms = EXCLUDED.first_audio_ms,
    first_audio_sent_ms = EXCLUDED.first_audio_sent_ms,
    transcript_to_first_audio_sent_ms = EXCLUDED.transcript_to_first_audio_sent_ms,
    interrupted = EXCLUDED.interrupted, heard_text = EXCLUDED.heard_text,
    heard_at = EXCLUDED.heard_at
"""

_UNJOINED = """
INSERT INTO voice_turns_unjoined (event_id, call_id, source, stt_final_ms, first_audio_sent_ms,
    interrupted, heard_text, error, heard_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (event_id) DO NOTHING
"""

_COMPLETED = """
INSERT INTO voice_turn_timings (call_id, turn_index, first_token_ms, tool_ms, total_ms,
    completed_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (call_id, turn_index) DO UPDATE SET
    first_token_ms = EXCLUDED.first_token_ms, tool_ms = EXCLUDED.tool_ms,
    total_ms = EXCLUDED.total_ms, completed_at = EXCLUDED.completed_at
"""


class VoiceTimingsStep(Step):
    """Joins a voice turn's two halves into one row."""

    name: ClassVar[str] = "voice_timings"
    subjects: ClassVar[tuple[str, ...]] = (SUBJECT_TURN_COMPLETED, SUBJECT_TURN_HEARD)

    async def handle(self, delivery: Delivery) -> bool:
        """Store this half of the turn's timings (once per event)."""
        event: Event = self.parse(delivery, Event)
        if isinstance(event, TurnCompleted):
            if event.channel not in ("voice", "web_voice"):
                return False
            return await self.effect_once(event, lambda conn: self._completed(conn, event))
        assert isinstance(event, TurnHeard)
        return await self.effect_once(event, lambda conn: self._heard(conn, event))

    @staticmethod
    async def _completed(conn: asyncpg.Connection, event: TurnCompleted) -> Outcome:
        latency = event.latency
        await conn.execute(
            _COMPLETED,
            event.call_id,
            event.turn_index,
            latency.first_token_ms,
            latency.tool_ms,
            latency.total_ms,
            event.occurred_at,
        )
        return Outcome(detail=f"turn {event.turn_index} completed")

    @staticmethod
    async def _heard(conn: asyncpg.Connection, event: TurnHeard) -> Outcome:
        heard_text = redact(event.heard_text) if event.heard_text else None
        if event.turn_index is None:
            await conn.execute(
                _UNJOINED,
                event.event_id,
                event.call_id,
                event.source,
                event.stt_final_ms,
                event.first_audio_sent_ms,
                event.interrupted,
                heard_text,
                event.error,
                event.occurred_at,
            )
            return skipped("a turn cut before the conversation's answer was done")
        await conn.execute(
            _HEARD,
            event.call_id,
            event.turn_index,
            event.source,
            event.stt_final_ms,
            event.first_text_ms,
            event.first_audio_ms,
            event.first_audio_sent_ms,
            event.transcript_to_first_audio_sent_ms,
            event.interrupted,
            heard_text,
            event.occurred_at,
        )
        return Outcome(detail=f"turn {event.turn_index} heard")
