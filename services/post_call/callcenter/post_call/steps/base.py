"""What every post-call step shares: parsing, the exactly-once transaction, status, a failpoint.

A step's effect and its ``processed_events (step, event_id)`` row are written in one PostgreSQL
transaction (:meth:`Step.effect_once`): a redelivered event finds the row and is only acked. An
effect outside PostgreSQL (SMTP, HubSpot) runs inside that transaction, before the commit, so a
failure rolls the claim back and the event is retried.

A step whose effect is only rows (transcript, metrics) may also take a whole fetch of events in one
transaction (:meth:`Step.handle_batch`): the same claim, for every event at once
(:func:`claim_events`), so the exactly-once rule is the same; if the batch fails, the consumer
hands each event to :meth:`Step.handle` alone.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, TypeVar

import asyncpg
from pydantic import ValidationError

from callcenter.common.bus import Bus
from callcenter.common.bus.consumer import Delivery, PartlyDone, PermanentFailure
from callcenter.common.config import CallCenterConfig
from callcenter.common.events import Event, parse_event
from callcenter.common.failpoints import POST_CALL_AFTER_EFFECT, fail_point
from callcenter.common.logging import get_logger
from callcenter.post_call.telemetry import PostCallMetrics

log = get_logger(__name__)

E = TypeVar("E", bound=Event)


@dataclass(slots=True, kw_only=True)
class StepContext:
    """The connections and settings every step gets."""

    config: CallCenterConfig
    db: asyncpg.Pool
    bus: Bus
    metrics: PostCallMetrics


@dataclass(slots=True, frozen=True)
class Outcome:
    """What a step did for a call, shown by the API (``done``, ``skipped``)."""

    status: str = "done"
    detail: str | None = None


DONE = Outcome()


def constant(outcome: Outcome) -> Callable[[asyncpg.Connection], Awaitable[Outcome]]:
    """An effect that only records ``outcome`` (for :meth:`Step.effect_once`)."""

    async def effect(conn: asyncpg.Connection) -> Outcome:
        return outcome

    return effect


def skipped(reason: str) -> Outcome:
    """The step ran and decided there was nothing to do."""
    return Outcome(status="skipped", detail=reason)


async def record_status(
    conn: asyncpg.Connection, *, call_id: str, step: str, outcome: Outcome
) -> None:
    """Upsert the step's row for the call (``events`` counts how many events it handled)."""
    await conn.execute(
        """
        INSERT INTO post_call_steps (call_id, step, status, detail)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (call_id, step) DO UPDATE
        SET status = EXCLUDED.status, detail = EXCLUDED.detail,
            events = post_call_steps.events + 1, updated_at = now()
        """,
        call_id,
        step,
        outcome.status,
        outcome.detail,
    )


async def record_statuses(
    conn: asyncpg.Connection, *, step: str, events: list[E], outcome: Callable[[str], Outcome]
) -> None:
    """:func:`record_status` for the calls of ``events`` at once, ``outcome(call_id)`` for each."""
    handled = Counter(event.call_id for event in events)
    outcomes = {call_id: outcome(call_id) for call_id in handled}
    await conn.executemany(
        """
        INSERT INTO post_call_steps (call_id, step, status, detail, events)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (call_id, step) DO UPDATE
        SET status = EXCLUDED.status, detail = EXCLUDED.detail,
            events = post_call_steps.events + EXCLUDED.events, updated_at = now()
        """,
        [
            (call_id, step, outcomes[call_id].status, outcomes[call_id].detail, n)
            for call_id, n in handled.items()
        ],
    )


async def claim_events(conn: asyncpg.Connection, *, step: str, events: list[E]) -> list[E]:
    """Insert the ``processed_events`` rows of ``events``; the events not processed before."""
    claimed = {
        row["event_id"]
        for row in await conn.fetch(
            """
            INSERT INTO processed_events (step, event_id, call_id)
            SELECT $1, e.event_id, e.call_id FROM unnest($2::text[], $3::text[]) AS e(event_id, call_id)
            ON CONFLICT DO NOTHING RETURNING event_id
            """,
            step,
            [event.event_id for event in events],
            [event.call_id for event in events],
        )
    }
    first: list[E] = []
    for event in events:  # an event delivered twice in one batch is claimed once
        if event.event_id in claimed:
            claimed.discard(event.event_id)
            first.append(event)
    return first


def with_new_effect(deliveries: list[Delivery], events: list[E], new: list[E]) -> list[Delivery]:
    """The deliveries whose event is in ``new`` (``events`` parsed from ``deliveries``, in order)."""
    made = {event.event_id for event in new}
    return [d for d, event in zip(deliveries, events, strict=True) if event.event_id in made]


def fail_point_keys(step: str, delivery: Delivery) -> tuple[str, str]:
    """What a failpoint in a step may target: the step (``"email"``) or one call (``"email:<id>"``)."""
    return step, f"{step}:{delivery.call_id}"


class Step(ABC):
    """One post-call step: a durable consumer per subject it reads."""

    name: ClassVar[str]
    subjects: ClassVar[tuple[str, ...]]
    #: Whether :meth:`handle_batch` takes a whole fetch in one transaction.
    batches: bool = False

    def __init__(self, *, ctx: StepContext) -> None:
        self.ctx = ctx
        self.config = ctx.config
        self.db = ctx.db
        self.metrics = ctx.metrics

    def durable(self, subject: str) -> str:
        """The durable consumer name for ``subject`` (one per subject: NATS 2.9 filters one)."""
        base = f"{self.config.post_call.durable_prefix}{self.name}"
        if len(self.subjects) == 1:
            return base
        return f"{base}_{subject.replace('.', '_')}"

    def transcript_link(self, call_id: str) -> str:
        """Where the call's transcript is shown (the gateway's API)."""
        return f"{self.config.gateway.public_base_url.rstrip('/')}/api/calls/{call_id}"

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open what the step needs (HTTP clients)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what :meth:`start` opened."""

    @abstractmethod
    async def handle(self, delivery: Delivery) -> bool:
        """Process one delivery; return whether an effect was made now (not on a redelivery).

        Raises:
            RetryLater: a transient condition; the runner naks with a delay.
            PermanentFailure: the message can never succeed; it is dead-lettered.

        """

    async def deliver(self, delivery: Delivery) -> None:
        """The consumer's handler: :meth:`handle`, then the ``post_call.after_effect`` failpoint."""
        started = time.monotonic()
        made = await self.handle(delivery)
        if made:
            self.metrics.step_latency.record(
                (time.monotonic() - started) * 1000.0, {"step": self.name, "part": "handler"}
            )
            fail_point(POST_CALL_AFTER_EFFECT, *fail_point_keys(self.name, delivery))

    async def handle_batch(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Process a fetch in one transaction (all or nothing); return the ones with a new effect.

        Raises:
            PartlyDone: some deliveries failed or are left to :meth:`handle`; the others are done
                (``made``: the ones with a new effect).
            Exception: anything else; the consumer then hands each delivery to :meth:`handle`.

        """
        raise NotImplementedError(f"{self.name} handles one event at a time")

    async def deliver_batch(self, deliveries: list[Delivery]) -> None:
        """The consumer's batch handler: :meth:`handle_batch`, then the failpoint per delivery."""
        started = time.monotonic()
        partial: PartlyDone | None = None
        try:
            made = await self.handle_batch(deliveries)
        except PartlyDone as exc:
            partial, made = exc, exc.made
        if made:
            self.metrics.step_latency.record(
                (time.monotonic() - started) * 1000.0, {"step": self.name, "part": "handler"}
            )
        log.info("step effects committed", step=self.name, new=len(made), events=len(deliveries))
        for delivery in made:
            fail_point(POST_CALL_AFTER_EFFECT, *fail_point_keys(self.name, delivery))
        if partial is not None:
            raise partial

    def record_since_event(self, events: list[Event]) -> None:
        """How long after each event its effect was committed."""
        now = datetime.now(UTC)
        for event in events:
            age_ms = (now - event.occurred_at).total_seconds() * 1000.0
            self.metrics.step_latency.record(
                max(age_ms, 0.0), {"step": self.name, "part": "since_event"}
            )

    @staticmethod
    def parse(delivery: Delivery, model: type[E]) -> E:
        """The event in ``delivery``; a malformed one can never succeed.

        Raises:
            PermanentFailure: the payload is not a valid ``model``.

        """
        try:
            event = parse_event(delivery.subject, delivery.data)
        except (ValidationError, ValueError) as exc:
            raise PermanentFailure(f"malformed {delivery.subject} event: {exc}") from exc
        if not isinstance(event, model):
            raise PermanentFailure(f"expected {model.__name__} on {delivery.subject}")
        return event

    async def processed(self, conn: asyncpg.Connection, event: Event) -> bool:
        """Whether this step already recorded ``event`` (its effect is done)."""
        return bool(
            await conn.fetchval(
                "SELECT 1 FROM processed_events WHERE step = $1 AND event_id = $2",
                self.name,
                event.event_id,
            )
        )

    async def effects_once(
        self,
        deliveries: list[Delivery],
        events: list[E],
        effect: Callable[[asyncpg.Connection, E], Awaitable[Outcome]],
    ) -> list[Delivery]:
        """:meth:`effect_once` for a fetch: one transaction, ``effect`` for each new event.

        Returns:
            the deliveries whose effect was made now (``events`` parsed from ``deliveries``).

        """

        async def each(conn: asyncpg.Connection, new: list[E]) -> dict[str, Outcome]:
            return {event.call_id: await effect(conn, event) for event in new}

        return await self.all_effects_once(deliveries, events, each)

    async def all_effects_once(
        self,
        deliveries: list[Delivery],
        events: list[E],
        effects: Callable[[asyncpg.Connection, list[E]], Awaitable[dict[str, Outcome]]],
    ) -> list[Delivery]:
        """:meth:`effects_once` with one ``effects`` call for all the new events (by call id).

        Returns:
            the deliveries whose effect was made now (``events`` parsed from ``deliveries``).

        """
        async with self.db.acquire() as conn, conn.transaction():
            new = await claim_events(conn, step=self.name, events=events)
            if new:
                outcomes = await effects(conn, new)
                await record_statuses(
                    conn, step=self.name, events=new, outcome=outcomes.__getitem__
                )
        self.record_since_event(list(new))
        return with_new_effect(deliveries, events, new)

    async def effect_once(
        self,
        event: Event,
        effect: Callable[[asyncpg.Connection], Awaitable[Outcome]],
    ) -> bool:
        """Run ``effect`` and record ``(step, event_id)`` in one transaction; False if done before."""
        async with self.db.acquire() as conn, conn.transaction():
            claimed = await conn.fetchval(
                """
                INSERT INTO processed_events (step, event_id, call_id) VALUES ($1, $2, $3)
                ON CONFLICT DO NOTHING RETURNING 1
                """,
                self.name,
                event.event_id,
                event.call_id,
            )
            if claimed is None:
                log.info("already processed; acking", step=self.name, event_id=event.event_id)
                return False
            outcome = await effect(conn)
            await record_status(conn, call_id=event.call_id, step=self.name, outcome=outcome)
        self.record_since_event([event])
        log.info(
            "step effect committed", step=self.name, status=outcome.status, detail=outcome.detail
        )
        return True
