"""A process that dies on a message's last delivery: the MAX_DELIVERIES advisory is dead-lettered."""

from __future__ import annotations

import asyncio

from callcenter.common.failpoints import EXIT_CODE as CRASH_EXIT_CODE
from services.post_call.tests.support import PostCall, new_call_id, summarized, wait_for


async def test_a_delivery_never_answered_on_the_last_attempt_is_dead_lettered(
    post_call: PostCall,
) -> None:
    call_id = new_call_id()
    # Two replicas of the ticket step on consumers allowing one delivery; whichever gets the
    # message dies before acking it, the other records the advisory JetStream then sends.
    env = {
        "CALLCENTER_POST_CALL__DURABLE_PREFIX": "maxdeliver_",
        "CALLCENTER_POST_CALL__MAX_DELIVER": "1",
        "FAILPOINTS": f"post_call.after_effect=ticket:{call_id}",
    }
    replicas = [post_call.start(["ticket"], wait=False, **env) for _ in range(2)]
    for proc in replicas:
        await asyncio.to_thread(proc.wait_ready)
    await post_call.publish(summarized(call_id, None))

    async def crashed() -> list:
        return [p for p in replicas if p.proc is not None and p.proc.poll() is not None]

    [dead_replica] = await wait_for(crashed, what="a replica to die")
    assert dead_replica.proc is not None and dead_replica.proc.returncode == CRASH_EXIT_CODE

    async def recorded():  # type: ignore[no-untyped-def]
        return await post_call.db.fetchrow(
            "SELECT * FROM dead_letters WHERE consumer = 'maxdeliver_ticket' AND call_id = $1",
            call_id,
        )

    row = await wait_for(recorded, what="the advisory's dead letter")
    assert row["reason"].startswith("max deliveries reached without an answer")
    assert row["event_id"] == f"summarized-{call_id}"
    # The effect itself had committed before the crash: one ticket, never a second.
    assert (
        await post_call.db.fetchval("SELECT count(*) FROM tickets WHERE call_id = $1", call_id) == 1
    )
    status = await post_call.step_status(call_id, "ticket")
    assert status["status"] == "done"  # the dead letter is listed; the step's work was done
