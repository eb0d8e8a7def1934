"""Steps that take a whole fetch in one transaction (transcript, metrics) still act per event."""

from __future__ import annotations

from callcenter.common.events import CallEnded
from services.post_call.tests.support import PostCall, new_call_id, unhappy_turns, wait_for


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
