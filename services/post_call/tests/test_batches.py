"""Steps that take a whole fetch at once (transcript, metrics, summary, email...) still act per event."""

from __future__ import annotations

import asyncpg

from callcenter.common.events import CallEnded, CallSummarized
from callcenter.post_call.steps.crm import CrmStep
from callcenter.post_call.steps.ticket import TicketStep
from services.post_call.tests.support import (
    PostCall,
    count_on_subject,
    delivery_of,
    new_call_id,
    summarized,
    unhappy_turns,
    wait_for,
)


async def test_a_poison_turn_in_a_fetch_is_dead_lettered_alone_and_the_others_stored_once(
    post_call: PostCall,
) -> None:
    bus, db = post_call.bus, post_call.db
    call_id = new_call_id()
    turns = unhappy_turns(call_id, None)
    ended = CallEnded(
        event_id=f"ended-{call_id}",
        call_id=call_id,
        channel="chat",
        reason="customer_ended",
        duration_s=30.0,
        turn_count=len(turns),
    )
    # Everything is on the stream before the process starts, so its first fetch holds it all.
    await post_call.publish(*turns[:2])
    await bus.js.publish(
        bus.subject("turn.completed"),
        b'{"call_id": "' + call_id.encode() + b'", "turn_index": "first"}',
        headers={"Nats-Msg-Id": f"poison-turn-{call_id}", "Cc-Call-Id": call_id},
    )
    await post_call.publish(*turns[2:], ended)
    post_call.start(["transcript", "metrics"])

    prefix = post_call.config.post_call.durable_prefix

    async def dead() -> list:
        return await db.fetch(
            "SELECT * FROM dead_letters WHERE call_id = $1 AND consumer = $2",
            call_id,
            f"{prefix}transcript",
        )

    [letter] = await wait_for(dead, what="the poison turn's dead letter")
    assert letter["event_id"] == f"poison-turn-{call_id}"
    assert letter["attempts"] == 1  # its neighbours' batch did not cost it a retry
    assert letter["reason"].startswith("permanent failure: malformed")

    for durable in (f"{prefix}transcript", f"{prefix}metrics_turn_completed"):
        await post_call.wait_settled(durable)
    stored = await db.fetch(
        "SELECT turn_index FROM turns WHERE call_id = $1 ORDER BY turn_index", call_id
    )
    assert [r["turn_index"] for r in stored] == [t.turn_index for t in turns]
    claimed = await db.fetchval(
        "SELECT count(*) FROM processed_events WHERE step = 'transcript' AND call_id = $1", call_id
    )
    assert claimed == len(turns)

    # metrics counted every turn and the end once (the poison turn is its own dead letter there)
    await post_call.wait_settled(f"{prefix}metrics_call_ended")
    counted = await db.fetchval(
        "SELECT count(*) FROM processed_events WHERE step = 'metrics' AND call_id = $1", call_id
    )
    assert counted == len(turns) + 1


async def test_a_fetch_of_follow_ups_goes_out_once_each_and_one_refused_is_retried_alone(
    post_call: PostCall,
) -> None:
    calls = [new_call_id() for _ in range(4)]
    for call_id in calls:
        await post_call.add_contact(f"cust-{call_id}", f"{call_id}@example.com")
    # On the stream before the process starts: its first fetch holds them all.
    await post_call.publish(*(summarized(call_id, f"cust-{call_id}") for call_id in calls))
    post_call.smtp.fail_next(1)  # the server refuses one of them for now (451)
    proc = post_call.start(["email"])
    await post_call.wait_settled(f"{post_call.config.post_call.durable_prefix}email")

    for call_id in calls:
        assert len(post_call.smtp.messages_to(f"{call_id}@example.com")) == 1, call_id
        email = await post_call.db.fetchrow("SELECT * FROM emails WHERE call_id = $1", call_id)
        assert email["status"] == "sent"
        status = await post_call.step_status(call_id, "email")
        assert status is not None and status["events"] == 1 and status["detail"] == "sent"
    # one fetch: the refused email was retried later on its own (one retry, no more); the fetch
    # was not handed message by message to the single-event path (which would send again at once)
    records = proc.log_records()
    retried = [r for r in records if r.get("event") == "step failed, will retry"]
    assert [r["attempt"] for r in retried] == [1] and retried[0]["call_id"] in calls
    assert not [r for r in records if str(r.get("event", "")).startswith("batch failed")]


async def test_a_fetch_of_call_ends_waits_for_a_late_transcript_and_summarises_each_once(
    post_call: PostCall,
) -> None:
    calls = [new_call_id() for _ in range(3)]
    late = calls[-1]
    turns = {call_id: unhappy_turns(call_id, None) for call_id in calls}
    ends = [
        CallEnded(
            event_id=f"ended-{call_id}",
            call_id=call_id,
            channel="chat",
            reason="customer_ended",
            duration_s=30.0,
            turn_count=len(turns[call_id]),
        )
        for call_id in calls
    ]
    # Every turn but the late call's last, and every end, before the process starts.
    await post_call.publish(*(t for c in calls for t in turns[c] if t is not turns[late][-1]))
    await post_call.publish(*ends)
    # a long ack wait: the summaries wait up to a third of it for a transcript
    post_call.start(["transcript", "summary"], CALLCENTER_POST_CALL__ACK_WAIT_S="30")

    async def summary(call_id: str) -> asyncpg.Record | None:
        return await post_call.db.fetchrow("SELECT * FROM summaries WHERE call_id = $1", call_id)

    for call_id in calls[:-1]:
        await wait_for(lambda c=call_id: summary(c), what=f"the summary of {call_id}")
    assert await summary(late) is None
    await post_call.publish(turns[late][-1])
    row = await wait_for(lambda: summary(late), what="the late call's summary")
    assert row["turns_stored"] == row["turns_expected"] == len(turns[late])
    for call_id in calls:
        assert await count_on_subject(post_call.bus, "call.summarized", call_id) == 1
        status = await post_call.step_status(call_id, "summary")
        assert status is not None and status["events"] == 1


async def test_a_fetch_of_summaries_opens_escalates_and_skips_tickets_and_logs_each_once(
    post_call: PostCall,
) -> None:
    escalated, opened, resolved = (new_call_id() for _ in range(3))
    await post_call.db.execute(
        """
        INSERT INTO tickets (ticket_id, call_id, customer_id, source, priority, subject, body)
        VALUES ($1, $2, 'cust-1', 'tools', 'normal', 'Torn sweater', 'Arrived torn.')
        """,
        f"TCK-{escalated}",
        escalated,
    )
    events = [
        summarized(escalated, "cust-1", satisfaction=1, resolved=False),
        summarized(opened, None),
        summarized(resolved, None, satisfaction=5, resolved=True),
    ]
    tickets, crm = TicketStep(ctx=post_call.context()), CrmStep(ctx=post_call.context())
    for step in (tickets, crm):
        assert len(await step.handle_batch([delivery_of(e) for e in events])) == 3
        # the fetch redelivered: nothing new
        assert await step.handle_batch([delivery_of(e, attempt=2) for e in events]) == []

    async def rows(table: str, call_id: str) -> list[asyncpg.Record]:
        return await post_call.db.fetch(f"SELECT * FROM {table} WHERE call_id = $1", call_id)

    [ticket] = await rows("tickets", escalated)
    assert ticket["ticket_id"] == f"TCK-{escalated}" and ticket["priority"] == "urgent"
    assert ticket["body"].startswith("Arrived torn.")
    assert ticket["body"].count("After the conversation") == 1
    [ticket] = await rows("tickets", opened)
    assert ticket["priority"] == "high" and ticket["idempotency_key"] == f"post_call:{opened}"
    assert await rows("tickets", resolved) == []
    details = {
        c: (await post_call.step_status(c, "ticket"))["detail"] for c in events_calls(events)
    }
    assert details[escalated] == f"ticket TCK-{escalated} escalated"
    assert details[opened] == f"ticket {ticket['ticket_id']} opened"
    assert details[resolved].startswith("resolved")
    for call_id in events_calls(events):
        assert len(await rows("crm_activities", call_id)) == 1
        status = await post_call.step_status(call_id, "crm")
        assert status is not None and status["events"] == 1


def events_calls(events: list[CallSummarized]) -> list[str]:
    return [event.call_id for event in events]
