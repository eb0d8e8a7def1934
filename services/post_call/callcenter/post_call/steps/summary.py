"""summary: call.ended -> wait for the transcript, summarise, store, publish call.summarized.

The summary row is the effect (stored exactly once with its ``processed_events`` row); the
call.summarized event is published from the stored row with the fixed id
``"summarized-" + call_id``, also on a redelivery, so a crash between commit and publish loses
nothing and a second publish is deduplicated (by JetStream, and by each consumer's
``processed_events``).

A fetch is handled at once (:meth:`SummaryStep.handle_batch`): one query for the summaries stored
before, one for the transcripts, the LLM calls side by side, one transaction that stores every
summary with its ``processed_events`` row, then the publishes. A call whose transcript stays
incomplete is retried later, and one on its last attempt summarised from what there is, as
:meth:`SummaryStep.handle` does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import asyncpg

from callcenter.common.bus.consumer import Delivery, PartlyDone, RetryLater
from callcenter.common.events import SUBJECT_CALL_ENDED, CallEnded, CallSummarized
from callcenter.common.logging import get_logger
from callcenter.common.pii import redact
from callcenter.common.queries.gateway import handoff_messages_of
from callcenter.post_call.steps.base import (
    Outcome,
    Step,
    StepContext,
    claim_events,
    record_statuses,
    with_new_effect,
)
from callcenter.post_call.steps.turns_stored import TurnsStoredListener, channel_for
from callcenter.post_call.summary import (
    CallSummary,
    LLMSummarizer,
    OfflineSummarizer,
    Summarizer,
    TranscriptTurn,
)
from callcenter.post_call.summary.handoff import handoff_turns, turns_of

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


TURN_COLUMNS = "turn_index, user_text, assistant_text, tool_calls, interrupted, customer_id"

INSERT_SUMMARY = """
    INSERT INTO summaries (call_id, channel, customer_id, summary, sentiment,
        satisfaction, resolved, topics, follow_up_needed, follow_up, engine,
        turns_expected, turns_stored, event_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
    ON CONFLICT (call_id) DO NOTHING
"""


@dataclass(slots=True, kw_only=True)
class Written:
    """A summary written for an ended call, not stored yet."""

    ended: CallEnded
    customer_id: str | None
    result: CallSummary
    engine: str
    turns_stored: int

    def row(self) -> tuple[Any, ...]:
        """The ``summaries`` row (:data:`INSERT_SUMMARY`), its texts redacted."""
        result = self.result
        return (
            self.ended.call_id,
            self.ended.channel,
            self.customer_id,
            redact(result.summary),
            result.sentiment,
            result.satisfaction,
            result.resolved,
            [redact(t) for t in result.topics],
            result.follow_up_needed,
            redact(result.follow_up) if result.follow_up else None,
            self.engine,
            self.ended.turn_count,
            self.turns_stored,
            summarized_event_id(self.ended.call_id),
        )

    def outcome(self) -> Outcome:
        """What the step's status shows."""
        detail = f"{self.engine}; {self.result.sentiment}, satisfaction {self.result.satisfaction}"
        if self.turns_stored < self.ended.turn_count:
            detail += f"; {self.turns_stored} of {self.ended.turn_count} turns"
        return Outcome(detail=detail)


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
    batches = True

    def __init__(self, *, ctx: StepContext, summarizer: Summarizer | None = None) -> None:
        super().__init__(ctx=ctx)
        self.summarizer = summarizer or make_summarizer(ctx)
        #: Summaries written at a time in a fetch (as many as the per-event path runs at once).
        self._writing = asyncio.Semaphore(ctx.config.post_call.concurrency)
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
                    f"SELECT {TURN_COLUMNS} FROM turns WHERE call_id = $1 ORDER BY turn_index",
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

    def _waits(self, delivery: Delivery) -> tuple[bool, float, float]:
        """Whether an incomplete transcript may be retried, how long to wait now, the retry delay."""
        settings = self.config.post_call
        delay = settings.summary_wait_delay_s * 2 ** (delivery.attempt - 1)
        may_retry = delivery.attempt < settings.summary_wait_attempts and not (
            delivery.is_last_attempt
        )
        # In a burst the transcript consumer can be seconds behind this one: wait (woken by each
        # stored turn) up to a third of the ack wait before falling back to a delayed retry.
        wait_s = settings.ack_wait_s / 3 if may_retry else 0.0
        return may_retry, wait_s, delay

    async def _write(
        self,
        ended: CallEnded,
        rows: list[asyncpg.Record],
        handoff: list[asyncpg.Record] | None = None,
    ) -> Written:
        """Summarise the stored turns ``rows`` and any agent's messages of an ended call.

        ``handoff``: the call's ``handoff_messages`` rows, when read already (else read here).
        """
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
        if handoff is None:
            turns += await handoff_turns(self.db, ended.call_id, first_index=len(rows))
        else:
            turns += turns_of(handoff, first_index=len(rows))
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
        return Written(
            ended=ended,
            customer_id=customer_id,
            result=result,
            engine=engine,
            turns_stored=len(rows),
        )

    async def _summarise(
        self, ended: CallEnded, delivery: Delivery
    ) -> tuple[bool, asyncpg.Record | None]:
        """Summarise and store; whether stored now, and the row stored now (None if not)."""
        may_retry, wait_s, delay = self._waits(delivery)
        rows = await self._stored_turns(ended, wait_s=wait_s)
        if len(rows) < ended.turn_count and may_retry:
            raise RetryLater(
                f"transcript incomplete: {len(rows)} of {ended.turn_count} turns stored",
                delay_s=delay,
            )
        written = await self._write(ended, rows)
        stored: list[asyncpg.Record] = []

        async def store(conn: asyncpg.Connection) -> Outcome:
            row = await conn.fetchrow(INSERT_SUMMARY + " RETURNING *", *written.row())
            if row is not None:
                stored.append(row)
            return written.outcome()

        made = await self.effect_once(ended, store)
        return made, (stored[0] if made and stored else None)

    async def _transcripts(
        self, ended: dict[str, CallEnded], *, wait_s: float
    ) -> dict[str, list[asyncpg.Record]]:
        """:meth:`_stored_turns` for many calls: one query per wake-up for those still incomplete.

        Returns:
            each call's stored turns, complete or as they were at the deadline.

        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        found: dict[str, list[asyncpg.Record]] = {}
        pending = list(ended)
        with self.turns_stored.watch_any(pending) as committed:
            while True:
                committed.clear()
                rows: dict[str, list[asyncpg.Record]] = {call_id: [] for call_id in pending}
                for row in await self.db.fetch(
                    f"SELECT call_id, {TURN_COLUMNS} FROM turns "
                    "WHERE call_id = ANY($1::text[]) ORDER BY call_id, turn_index",
                    pending,
                ):
                    rows[row["call_id"]].append(row)
                found.update(rows)
                pending = [c for c in pending if len(rows[c]) < ended[c].turn_count]
                remaining = deadline - loop.time()
                if not pending or remaining <= 0 or not self.turns_stored.listening:
                    return found
                await self.turns_stored.wait(committed, timeout_s=remaining)

    async def _store_and_publish(
        self, ready: dict[str, tuple[CallEnded, list[asyncpg.Record]]]
    ) -> tuple[list[CallEnded], dict[str, Exception]]:
        """Summarise the ``ready`` calls side by side, store them in one transaction, publish.

        Returns:
            the events whose summary was stored now, and the calls whose summary failed (why).

        """
        if not ready:
            return [], {}
        handoffs = await handoff_messages_of(self.db, list(ready))

        async def write(ended: CallEnded, rows: list[asyncpg.Record]) -> Written | Exception:
            try:
                async with self._writing:
                    return await self._write(ended, rows, handoffs.get(ended.call_id, []))
            except Exception as exc:  # settled for this delivery alone, as handle() would
                return exc

        done = await asyncio.gather(*(write(ended, rows) for ended, rows in ready.values()))
        written = {w.ended.call_id: w for w in done if isinstance(w, Written)}
        failed = {
            call_id: exc
            for call_id, exc in zip(ready, done, strict=True)
            if isinstance(exc, Exception)
        }
        if not written:
            return [], failed
        async with self.db.acquire() as conn, conn.transaction():
            new = await claim_events(
                conn, step=self.name, events=[w.ended for w in written.values()]
            )
            await conn.executemany(INSERT_SUMMARY, [written[e.call_id].row() for e in new])
            await record_statuses(
                conn,
                step=self.name,
                events=new,
                outcome=lambda call_id: written[call_id].outcome(),
            )
            rows = await conn.fetch(
                "SELECT * FROM summaries WHERE call_id = ANY($1::text[])", list(written)
            )
        self.record_since_event(list(new))
        await asyncio.gather(*(self.ctx.bus.publish(summarized_from_row(row)) for row in rows))
        return new, failed

    async def handle_batch(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Summarise the fetch's calls side by side, store them in one transaction, publish.

        The calls whose transcript is complete go first; then the fetch waits (as :meth:`handle`
        does) for the others and does the same for those whose transcript completed meanwhile.
        Each call's summary is stored once with its ``processed_events`` row, and publishing is
        idempotent, so the calls done here stay done whatever happens to another of the fetch.

        Raises:
            PartlyDone: a call's transcript stayed incomplete (retried later, as :meth:`handle`
                does) or its summary failed (settled by that error); a call on its last wait,
                or a second end of a call in the fetch, goes to :meth:`handle`.

        """
        events = [self.parse(delivery, CallEnded) for delivery in deliveries]
        first: dict[str, tuple[CallEnded, Delivery]] = {}
        deliveries_of: dict[str, list[Delivery]] = {}
        alone: list[Delivery] = []
        for delivery, ended in zip(deliveries, events, strict=True):
            if ended.call_id not in first:
                first[ended.call_id] = (ended, delivery)
            if first[ended.call_id][0].event_id == ended.event_id:
                deliveries_of.setdefault(ended.call_id, []).append(delivery)
            else:
                alone.append(delivery)
        async with self.db.acquire() as conn:
            stored = await conn.fetch(
                "SELECT * FROM summaries WHERE call_id = ANY($1::text[])", list(first)
            )
            turns: dict[str, list[asyncpg.Record]] = {c: [] for c in first}
            for row in stored:
                del turns[row["call_id"]]
            for row in await conn.fetch(
                f"SELECT call_id, {TURN_COLUMNS} FROM turns WHERE call_id = ANY($1::text[]) "
                "ORDER BY call_id, turn_index",
                list(turns),
            ):
                turns[row["call_id"]].append(row)
        # summarised before (a redelivery): published again from the stored row, like handle()
        await asyncio.gather(*(self.ctx.bus.publish(summarized_from_row(row)) for row in stored))
        complete = {
            call_id: (first[call_id][0], rows)
            for call_id, rows in turns.items()
            if len(rows) >= first[call_id][0].turn_count
        }
        new, failed = await self._store_and_publish(complete)
        waiting = {}
        for call_id in turns:
            if call_id in complete:
                continue
            may_retry, wait_s, _ = self._waits(first[call_id][1])
            if may_retry:
                waiting[call_id] = wait_s
            else:  # the last wait: handle() summarises what there is
                alone += deliveries_of[call_id]
        if waiting:
            waited = await self._transcripts(
                {call_id: first[call_id][0] for call_id in waiting},
                wait_s=max(waiting.values()),
            )
            later = {}
            for call_id, rows in waited.items():
                ended, delivery = first[call_id]
                if len(rows) >= ended.turn_count:
                    later[call_id] = (ended, rows)
                else:
                    failed[call_id] = RetryLater(
                        f"transcript incomplete: {len(rows)} of {ended.turn_count} turns stored",
                        delay_s=self._waits(delivery)[2],
                    )
            more, failed_later = await self._store_and_publish(later)
            new += more
            failed.update(failed_later)
        made = with_new_effect(deliveries, events, new)
        if failed or alone:
            raise PartlyDone(
                failed=[
                    (d, exc) for call_id, exc in failed.items() for d in deliveries_of[call_id]
                ],
                alone=alone,
                made=made,
            )
        return made
