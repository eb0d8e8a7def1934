"""Poison events and exhausted retries end in dead letters (JetStream and PostgreSQL, in the API)."""

from __future__ import annotations

import json

import httpx
import pytest

from callcenter.gateway.calls import start_call
from services.post_call.tests.support import PostCall, new_call_id, summarized, wait_for


@pytest.fixture(scope="module", autouse=True)
def steps_process(session_post_call: PostCall):
    """One process with the steps these tests exercise, shared by them."""
    proc = session_post_call.start(["ticket", "crm", "email"], track=False)
    yield proc
    proc.stop()


async def test_a_poison_event_is_dead_lettered_and_shown_by_the_api(
    post_call: PostCall, gateway: httpx.AsyncClient
) -> None:
    bus, db = post_call.bus, post_call.db
    call_id = new_call_id()
    await start_call(gateway.deps, channel="sms", call_id=call_id)  # type: ignore[attr-defined]
    await bus.js.publish(
        bus.subject("call.summarized"),
        b'{"call_id": "' + call_id.encode() + b'", "summary": 42, "sentiment": "???"',
        headers={"Nats-Msg-Id": f"poison-{call_id}", "Cc-Call-Id": call_id},
    )

    async def dead() -> list:
        return await db.fetch(
            "SELECT * FROM dead_letters WHERE call_id = $1 ORDER BY consumer", call_id
        )

    # Each step reading call.summarized gives up on it on its own.
    rows = await wait_for(lambda: _at_least(dead, 3), what="three dead letters")
    prefix = post_call.config.post_call.durable_prefix
    consumers = {f"{prefix}crm", f"{prefix}email", f"{prefix}ticket"}
    assert [r["consumer"] for r in rows] == sorted(consumers)
    assert all(r["reason"].startswith("permanent failure: malformed") for r in rows)
    assert all(r["attempts"] == 1 and r["event_id"] == f"poison-{call_id}" for r in rows)

    # The JetStream dead-letter stream holds the record too.
    msg = await bus.js.get_last_msg(
        post_call.config.nats.dead_letter_stream, bus.subject(f"deadletter.{prefix}ticket")
    )
    record = json.loads(msg.data)
    assert record["call_id"] == call_id and record["consumer"] == f"{prefix}ticket"

    # The API lists it and shows the steps as dead-lettered.
    listed = (await gateway.get("/api/dead-letters", params={"call_id": call_id})).json()
    assert listed["total"] == 3
    assert {i["consumer"] for i in listed["items"]} == consumers
    detail = (await gateway.get(f"/api/calls/{call_id}")).json()
    steps = {s["step"]: s for s in detail["steps"]}
    assert steps["ticket"]["status"] == "dead_letter" and steps["crm"]["status"] == "dead_letter"
    assert steps["summary"]["status"] == "pending"
    assert len(detail["dead_letters"]) == 3
    assert await db.fetchval("SELECT count(*) FROM tickets WHERE call_id = $1", call_id) == 0


async def _at_least(probe, n: int):  # type: ignore[no-untyped-def]
    rows = await probe()
    return rows if len(rows) >= n else None


async def test_transient_smtp_failures_are_retried_and_exhausted_retries_dead_letter(
    post_call: PostCall,
) -> None:
    smtp, db = post_call.smtp, post_call.db
    retried, doomed = new_call_id(), new_call_id()
    for call_id in (retried, doomed):
        await post_call.add_contact(f"cust-{call_id}", f"{call_id}@example.com")

    # Two refusals, then the server accepts: one email, after retries.
    smtp.fail_next(2)
    await post_call.publish(summarized(retried, f"cust-{retried}"))
    status = await post_call.wait_step(retried, "email")
    assert status["status"] == "done"
    assert len(smtp.messages_to(f"{retried}@example.com")) == 1

    # The server refuses every attempt: dead letter after max_deliver, no email row left behind.
    max_deliver = post_call.config.post_call.max_deliver
    smtp.fail_next(max_deliver)
    await post_call.publish(summarized(doomed, f"cust-{doomed}"))
    status = await post_call.wait_step(doomed, "email")
    assert status["status"] == "dead_letter"
    assert f"gave up after {max_deliver} attempts" in status["detail"]
    assert "SMTP" in status["detail"]
    row = await db.fetchrow("SELECT * FROM dead_letters WHERE call_id = $1", doomed)
    assert row["attempts"] == max_deliver
    assert await db.fetchval("SELECT count(*) FROM emails WHERE call_id = $1", doomed) == 0
    assert smtp.messages_to(f"{doomed}@example.com") == []


async def test_a_replayed_dead_letter_sends_the_email_once_and_doubles_nothing(
    post_call: PostCall, gateway: httpx.AsyncClient
) -> None:
    smtp, db = post_call.smtp, post_call.db
    call_id = new_call_id()
    address = f"{call_id}@example.com"
    await post_call.add_contact(f"cust-{call_id}", address)
    smtp.fail_next(post_call.config.post_call.max_deliver)  # SMTP "down" for every attempt
    await post_call.publish(summarized(call_id, f"cust-{call_id}"))
    assert (await post_call.wait_step(call_id, "email"))["status"] == "dead_letter"
    await post_call.wait_step(call_id, "crm")
    [dead] = (await gateway.get("/api/dead-letters", params={"call_id": call_id})).json()["items"]

    replayed = await gateway.post(f"/api/dead-letters/{dead['id']}/replay")
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["replay_count"] == 1

    async def sent() -> bool:
        status = await post_call.step_status(call_id, "email")
        return status is not None and status["status"] == "done"

    await wait_for(sent, what="the replayed email step to finish")
    assert len(smtp.messages_to(address)) == 1

    # A second replay reaches every step again; each has handled the event, so nothing repeats.
    again = await gateway.post(f"/api/dead-letters/{dead['id']}/replay")
    assert again.json()["replay_count"] == 2
    prefix = post_call.config.post_call.durable_prefix
    for step in ("email", "crm", "ticket"):
        await post_call.wait_settled(f"{prefix}{step}")
    assert len(smtp.messages_to(address)) == 1
    assert await db.fetchval("SELECT count(*) FROM crm_activities WHERE call_id = $1", call_id) == 1
    assert await db.fetchval("SELECT count(*) FROM tickets WHERE call_id = $1", call_id) == 1
    assert (await gateway.post("/api/dead-letters/999999999/replay")).status_code == 404
