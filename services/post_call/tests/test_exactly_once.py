"""Each step's process is SIGKILLed after its effect and before its ack: the effect happens once.

The failpoint ``post_call.after_effect=<step>:<call_id>`` (``FAILPOINTS``) makes the process
exit (status 137, as after SIGKILL) right after the effect's transaction commits and before the
message is acked. JetStream redelivers after ``ack_wait``; the restarted process finds the
``processed_events`` row and only acks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from callcenter.common.events import CallEnded, Event, TurnCompleted
from callcenter.common.failpoints import EXIT_CODE as CRASH_EXIT_CODE
from services.post_call.tests.support import (
    ALL_STEPS,
    PostCall,
    count_on_subject,
    new_call_id,
    summarized,
    wait_for,
)

Check = Callable[[], Awaitable[int]]


async def test_each_step_killed_after_its_effect_and_before_its_ack_acts_exactly_once(
    post_call: PostCall,
) -> None:
    db = post_call.db
    calls = {step: new_call_id() for step in ALL_STEPS}
    events: dict[str, Event] = {}
    checks: dict[str, Check] = {}

    def rows(sql: str, call_id: str) -> Check:
        async def count() -> int:
            return int(await db.fetchval(sql, call_id))

        return count

    c = calls["transcript"]
    events["transcript"] = TurnCompleted(
        event_id=f"turn-{c}-0",
        call_id=c,
        channel="voice",
        turn_index=0,
        user_text="Hi, my code is 123456.",
        assistant_text="Thanks.",
    )
    checks["transcript"] = rows("SELECT count(*) FROM turns WHERE call_id = $1", c)

    c = calls["summary"]
    events["summary"] = CallEnded(
        event_id=f"ended-{c}",
        call_id=c,
        channel="voice",
        reason="hangup",
        duration_s=3.0,
        turn_count=0,
    )
    summaries = rows("SELECT count(*) FROM summaries WHERE call_id = $1", c)

    async def summary_once(call_id: str = c) -> int:
        published = await count_on_subject(post_call.bus, "call.summarized", call_id)
        return await summaries() if published == 1 else -published

    checks["summary"] = summary_once

    for step, table in (("crm", "crm_activities"), ("ticket", "tickets")):
        c = calls[step]
        events[step] = summarized(c, None)
        checks[step] = rows(f"SELECT count(*) FROM {table} WHERE call_id = $1", c)

    c = calls["email"]
    address = f"once-{c}@example.com"
    await post_call.add_contact(f"cust-{c}", address)
    events["email"] = summarized(c, f"cust-{c}")

    async def mails() -> int:
        return len(post_call.smtp.messages_to(address))

    checks["email"] = mails

    c = calls["metrics"]
    events["metrics"] = CallEnded(
        event_id=f"ended-{c}",
        call_id=c,
        channel="sms",
        reason="idle",
        duration_s=60.0,
        turn_count=0,
    )
    checks["metrics"] = rows(
        "SELECT count(*) FROM processed_events WHERE step = 'metrics' AND event_id = $1",
        events["metrics"].event_id,
    )

    crashing = {
        step: post_call.start(
            [step], wait=False, FAILPOINTS=f"post_call.after_effect={step}:{calls[step]}"
        )
        for step in ALL_STEPS
    }
    for proc in crashing.values():
        await asyncio.to_thread(proc.wait_ready)
    await post_call.publish(*events.values())

    for step, proc in crashing.items():
        assert proc.proc is not None
        code = await asyncio.to_thread(proc.proc.wait, 30)
        assert code == CRASH_EXIT_CODE, (step, proc.log_tail())
        assert "failpoint fired" in proc.log_text()  # the injected crash, no other
        assert await checks[step]() == 1, f"{step}: effect not there after the crash"
    post_call.running.clear()

    # One process with every step takes over (the steps run alone or together alike).
    await asyncio.to_thread(post_call.start, ALL_STEPS)
    prefix = post_call.config.post_call.durable_prefix
    for step in ALL_STEPS:
        durables = [f"{prefix}metrics_call_ended"] if step == "metrics" else [f"{prefix}{step}"]
        for durable in durables:
            await post_call.wait_settled(durable)
    for step in ALL_STEPS:
        assert await checks[step]() == 1, f"{step}: effect not exactly once"
        if step != "metrics":  # metrics also counts the call.summarized of its call
            status = await post_call.step_status(calls[step], step)
            assert status is not None and status["events"] == 1, (step, status)
        done = await db.fetchval(
            "SELECT count(*) FROM processed_events WHERE step = $1 AND event_id = $2",
            step,
            events[step].event_id,
        )
        assert done == 1


async def test_email_killed_between_the_smtp_send_and_its_record_is_never_sent_twice(
    post_call: PostCall,
) -> None:
    """The one window a crash can duplicate an email in: the mail server accepted it, the record
    was not written. The redelivery does not send again; it is dead-lettered for a person."""
    call_id = new_call_id()
    customer = f"cust-{call_id}"
    address = f"{call_id}@example.com"
    await post_call.add_contact(customer, address)
    crashing = post_call.start(
        ["email"],
        track=False,
        FAILPOINTS=f"post_call.email.before_record=email:{call_id}",
    )
    await post_call.publish(summarized(call_id, customer))

    async def died() -> bool:
        return crashing.proc is not None and crashing.proc.poll() is not None

    await wait_for(died, what="the email step to die after sending")
    assert crashing.proc is not None and crashing.proc.returncode == CRASH_EXIT_CODE
    assert len(post_call.smtp.messages_to(address)) == 1

    post_call.start(["email"])

    async def dead_letter():  # type: ignore[no-untyped-def]
        return await post_call.db.fetchrow(
            "SELECT * FROM dead_letters WHERE consumer LIKE '%email' AND call_id = $1", call_id
        )

    row = await wait_for(dead_letter, what="the uncertain delivery to be dead-lettered")
    assert "may already have been delivered" in row["reason"]
    # The redelivery is dead-lettered instead of sent: a second email from it would have been
    # accepted by the SMTP server before that row was written, so no wait is needed here.
    assert len(post_call.smtp.messages_to(address)) == 1  # never a second email
    status = await post_call.db.fetchval("SELECT status FROM emails WHERE call_id = $1", call_id)
    assert status == "sending"
