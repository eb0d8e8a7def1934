"""summary: call.ended -> wait for the transcript, summarise, store, publish call.summarized.

The summary row is the effect (stored exactly once with its ``processed_events`` row); the
call.summarized event is published from the stored row with the fixed id
``"summarized-" + call_id``, also on a redelivery, so a crash between commit and publish loses
nothing and a second publish is deduplicated (by JetStream, and by each consumer's
``processed_events``).
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

import asyncpg

from callcenter.common.bus.consumer import Delivery, RetryLater
from callcenter.common.events import SUBJECT_CALL_ENDED, CallEnded, CallSummarized
from callcenter.common.logging import get_logger
from callcenter.common.pii import redact
from callcenter.post_call.steps.base import Outcome, Step, StepContext
from callcenter.post_call.steps.turns_stored import TurnsStoredListener, channel_for
from callcenter.post_call.summary import (
    LLMSummarizer,
    OfflineSummarizer,
    Summarizer,
    TranscriptTurn,
)
from callcenter.post_call.summary.handoff import handoff_turns

log = get_logger(__name__)


def summarized_event_id(call_id: str) -> str:
    """The fixed event id of a call's call.summarized."""
    return f"summarized-{call_id}"


def summarized_from_row(row: asyncpg.Record) -> CallSummarized:
    """The call.summarized event for a stored ``summaries`` row."""
    return CallSummarized(
        event_id=summarized_event_id(row["call_id"]),
        call_id=row["call_id"],
        channel=row["channel"],
        customer_id=row["customer_id"],
        summary=row["summary"],
        sentiment=row["sentiment"],
        satisfaction=row["satisfaction"],
        resolved=row["resolved"],
        topics=list(row["topics"]),
        follow_up_needed=row["follow_up_needed"],
        follow_up=row["follow_up"],
    )


def make_summarizer(ctx: StepContext) -> Summarizer:
    """The LLM summariser when models are configured (offline as its fallback), else offline."""
    offline = OfflineSummarizer()
    llm = ctx.config.llm
    if not llm.models:
        return offline
    return LLMSummarizer(
        settings=llm,
        company=ctx.config.smtp.company_name,
        fallback=offline if llm.offline_fallback else None,
    )


class SummaryStep(Step):
    """Summarises each ended call once."""

    name: ClassVar[str] = "summary"
    subjects: ClassVar[tuple[str, ...]] = (SUBJECT_CALL_ENDED,)

    def __init__(self, *, ctx: StepContext, summarizer: Summarizer | None = None) -> None:
        super().__init__(ctx=ctx)
        self.summarizer = summarizer or make_summarizer(ctx)
        self.turns_stored = TurnsStoredListener(
            db=ctx.db, channel=channel_for(ctx.config.database.schema_name)
        )

    async def start(self) -> None:
        """Load the summariser; listen for committed turns (a summary waits for its transcript)."""
        self.summarizer.warm_up()
        await self.turns_stored.start()

    async def close(self) -> None:
        """Stop listening; close the summariser's connections."""
        await self.turns_stored.close()
        await self.summarizer.close()

    async def handle(self, delivery: Delivery) -> bool:
        """Summarise (once), then publish call.summarized from the stored row."""
        ended = self.parse(delivery, CallEnded)
        made = False
        row = await self.db.fetchrow("SELECT * FROM summaries WHERE call_id = $1", ended.call_id)
        if row is None:
            made, row = await self._summarise(ended, delivery)
        if row is None:
            row = await self.db.fetchrow(
                "SELECT * FROM summaries WHERE call_id = $1", ended.call_id
            )
        if row is None:  # pragma: no cover - the transaction above stored it
            raise RetryLater("summary not stored yet")
        await self.ctx.bus.publish(summarized_from_row(row))
        return made

    async def _stored_turns(self, ended: CallEnded, *, wait_s: float) -> list[asyncpg.Record]:
        """The call's stored turns, waiting up to ``wait_s`` for the transcript to be complete.

        The wait ends as soon as the transcript step commits the last turn (it notifies), so the
        normal path never naks: call.ended is often handled before its turns are stored.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        with self.turns_stored.watch(ended.call_id) as committed:
            while True:
                committed.clear()
                rows = await self.db.fetch(
                    """
                    SELECT turn_index, user_text, assistant_text, tool_calls, interrupted,
                           customer_id
                    FROM turns WHERE call_id = $1 ORDER BY turn_index
                    """,
                    ended.call_id,
                )
                remaining = deadline - loop.time()
                if (
                    len(rows) >= ended.turn_count
                    or remaining <= 0
                    or not self.turns_stored.listening
                ):
                    return rows
                await self.turns_stored.wait(committed, timeout_s=remaining)

    async def _summarise(
        self, ended: CallEnded, delivery: Delivery
    ) -> tuple[bool, asyncpg.Record | None]:
        """Summarise and store; whether stored now, and the row stored now (None if not)."""
        settings = self.config.post_call
        delay = settings.summary_wait_delay_s * 2 ** (delivery.attempt - 1)
        may_retry = delivery.attempt < settings.summary_wait_attempts and not (
            delivery.is_last_attempt
        )
        # In a burst the transcript consumer can be seconds behind this one: wait (woken by each
        # stored turn) up to a third of the ack wait before falling back to a delayed retry.
        wait_s = settings.ack_wait_s / 3 if may_retry else 0.0
        rows = await self._stored_turns(ended, wait_s=wait_s)
        if len(rows) < ended.turn_count and may_retry:
            raise RetryLater(
                f"transcript incomplete: {len(rows)} of {ended.turn_count} turns stored",
                delay_s=delay,
            )
        if len(rows) < ended.turn_count:
            log.warning(
                "summarising an incomplete transcript",
                stored=len(rows),
                expected=ended.turn_count,
            )
        turns = [
            TranscriptTurn(
                turn_index=r["turn_index"],
                user_text=r["user_text"],
                assistant_text=r["assistant_text"],
                tool_calls=list(r["tool_calls"] or []),
                interrupted=r["interrupted"],
            )
            for r in rows
        ]
        turns += await handoff_turns(self.db, ended.call_id, first_index=len(rows))
        customer_id = ended.customer_id or next(
            (r["customer_id"] for r in reversed(rows) if r["customer_id"]), None
        )
        if customer_id is None:
            customer_id = await self.db.fetchval(
                "SELECT customer_id FROM calls WHERE call_id = $1", ended.call_id
            )
        result, engine = await self.summarizer.summarize(
            channel=ended.channel, reason=ended.reason, turns=turns
        )

        stored: list[asyncpg.Record] = []

        async def store(conn: asyncpg.Connection) -> Outcome:
            row = await conn.fetchrow(
                """
                INSERT INTO summaries (call_id, channel, customer_id, summary, sentiment,
                    satisfaction, resolved, topics, follow_up_needed, follow_up, engine,
                    turns_expected, turns_stored, event_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                ON CONFLICT (call_id) DO NOTHING RETURNING *
                """,
                ended.call_id,
                ended.channel,
                customer_id,
                redact(result.summary),
                result.sentiment,
                result.satisfaction,
                result.resolved,
                [redact(t) for t in result.topics],
                result.follow_up_needed,
                redact(result.follow_up) if result.follow_up else None,
                engine,
                ended.turn_count,
                len(rows),
                summarized_event_id(ended.call_id),
            )
            if row is not None:
                stored.append(row)
            detail = f"{engine}; {result.sentiment}, satisfaction {result.satisfaction}"
            if len(rows) < ended.turn_count:
                detail += f"; {len(rows)} of {ended.turn_count} turns"
            return Outcome(detail=detail)

        made = await self.effect_once(ended, store)
        return made, (stored[0] if made and stored else None)
