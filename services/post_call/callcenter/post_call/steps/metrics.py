"""metrics: call.ended, turn.completed, call.summarized -> OpenTelemetry instruments.

One durable consumer per subject (NATS 2.9 filters one), each taking a whole fetch in one
transaction. An event is counted once: its ``processed_events`` row is committed first and the
instruments are recorded after, so a redelivery is not counted twice.
"""

from __future__ import annotations

from typing import ClassVar

from callcenter.common.bus.consumer import Delivery
from callcenter.common.events import (
    SUBJECT_AGENT_JOINED,
    SUBJECT_CALL_ENDED,
    SUBJECT_CALL_SUMMARIZED,
    SUBJECT_HANDOFF_REQUESTED,
    SUBJECT_TURN_COMPLETED,
    AgentJoined,
    CallEnded,
    CallSummarized,
    Event,
    HandoffRequested,
    TurnCompleted,
)
from callcenter.post_call.steps.base import (
    Outcome,
    Step,
    claim_events,
    record_statuses,
    with_new_effect,
)

STAGES = ("first_token_ms", "tool_ms", "total_ms", "stt_final_ms", "first_audio_ms")


class MetricsStep(Step):
    """Records call, turn and summary metrics."""

    name: ClassVar[str] = "metrics"
    subjects: ClassVar[tuple[str, ...]] = (
        SUBJECT_CALL_ENDED,
        SUBJECT_TURN_COMPLETED,
        SUBJECT_CALL_SUMMARIZED,
        SUBJECT_HANDOFF_REQUESTED,
        SUBJECT_AGENT_JOINED,
    )

    batches = True

    async def handle(self, delivery: Delivery) -> bool:
        """Count the event once."""
        return bool(await self.handle_batch([delivery]))

    async def handle_batch(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Claim the events in one transaction, then count the ones not counted before."""
        events: list[Event] = [self.parse(delivery, Event) for delivery in deliveries]
        async with self.db.acquire() as conn, conn.transaction():
            new = await claim_events(conn, step=self.name, events=events)
            if not new:
                return []
            last = {event.call_id: event.subject for event in new}
            await record_statuses(
                conn,
                step=self.name,
                events=new,
                outcome=lambda call_id: Outcome(detail=f"last: {last[call_id]}"),
            )
        self.record_since_event(new)
        for event in new:
            self.record(event)
        return with_new_effect(deliveries, events, new)

    def record(self, event: Event) -> None:
        """The instruments of one event."""
        if isinstance(event, CallEnded):
            self.record_ended(event)
        elif isinstance(event, TurnCompleted):
            self.record_turn(event)
        elif isinstance(event, CallSummarized):
            self.record_summary(event)
        elif isinstance(event, HandoffRequested):
            self.metrics.handoffs.add(1, {"channel": event.channel, "trigger": event.trigger})
        elif isinstance(event, AgentJoined):
            self.metrics.queue_wait.record(event.wait_s, {"channel": event.channel})

    def record_ended(self, event: CallEnded) -> None:
        """Calls by channel and end reason, duration, turns."""
        attrs = {"channel": event.channel}
        self.metrics.calls_ended.add(1, {**attrs, "reason": event.reason})
        self.metrics.duration.record(event.duration_s, attrs)
        self.metrics.turns.record(event.turn_count, attrs)

    def record_turn(self, event: TurnCompleted) -> None:
        """Per-stage latencies and tool calls and errors."""
        latency = event.latency.model_dump()
        for stage in STAGES:
            value = latency.get(stage)
            if value is not None and not (stage == "tool_ms" and not event.tool_calls):
                self.metrics.stage_latency.record(
                    float(value), {"stage": stage.removesuffix("_ms"), "channel": event.channel}
                )
        for call in event.tool_calls:
            self.metrics.tool_calls.add(
                1, {"tool": call.name, "success": str(call.success).lower()}
            )
            if not call.success:
                self.metrics.tool_errors.add(
                    1, {"tool": call.name, "error": call.error or "unknown"}
                )

    def record_summary(self, event: CallSummarized) -> None:
        """Calls by channel and outcome, satisfaction."""
        channel = event.channel or "unknown"
        outcome = "resolved" if event.resolved else "unresolved"
        self.metrics.calls.add(1, {"channel": channel, "outcome": outcome})
        self.metrics.satisfaction.record(event.satisfaction, {"channel": channel})
