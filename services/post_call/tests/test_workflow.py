"""One call through every step with real processes, NATS, PostgreSQL and an SMTP server."""

from __future__ import annotations

import httpx

from callcenter.gateway.calls import end_call, record_turn, start_call
from services.post_call.tests.support import (
    ALL_STEPS,
    OtlpMetricsReceiver,
    PostCall,
    metric_value,
    new_call_id,
    unhappy_turns,
    wait_for,
)


async def test_one_call_end_drives_every_step_and_a_stopped_step_catches_up(
    post_call: PostCall, gateway: httpx.AsyncClient
) -> None:
    deps = gateway.deps  # type: ignore[attr-defined]
    db = post_call.db
    call_id = new_call_id()
    customer = "cust-" + call_id[-8:]
    address = f"{customer}@example.com"
    await post_call.add_contact(customer, address)

    # Every step but email runs; email's consumer is "down". Metrics also go to an OTLP receiver.
    otlp = OtlpMetricsReceiver()
    main = post_call.start(
        [s for s in ALL_STEPS if s != "email"],
        CALLCENTER_TELEMETRY__OTLP_ENDPOINT=otlp.endpoint,
    )

    # The call as the gateway and the conversation service produce it.
    await start_call(deps, channel="chat", call_id=call_id, from_number="+15550100")
    for turn in unhappy_turns(call_id, customer):
        await post_call.publish(turn)
        await record_turn(deps, call_id=call_id, turn_index=turn.turn_index)
    assert await end_call(deps, call_id=call_id, channel="chat", reason="customer_ended")

    for step in ("summary", "crm", "ticket", "metrics"):
        status = await post_call.wait_step(call_id, step)
        assert status["status"] == "done", (step, dict(status))

    # transcript: three turns, the card number never stored.
    turns = await db.fetch(
        "SELECT user_text, assistant_text FROM turns WHERE call_id = $1 ORDER BY turn_index",
        call_id,
    )
    assert len(turns) == 3
    stored = " ".join(t["user_text"] + t["assistant_text"] for t in turns)
    assert "4111" not in stored and "[card redacted]" in stored

    # summary: unhappy, unresolved, the agreed return named.
    summary = await db.fetchrow("SELECT * FROM summaries WHERE call_id = $1", call_id)
    assert summary["sentiment"] == "negative"
    assert summary["satisfaction"] <= 2
    assert summary["resolved"] is False
    assert summary["follow_up_needed"] is True
    assert "R-5531" in summary["follow_up"]
    assert summary["turns_stored"] == 3 and summary["customer_id"] == customer

    # crm: one activity; ticket: one, high priority, linked to the transcript.
    activities = await db.fetch("SELECT * FROM crm_activities WHERE call_id = $1", call_id)
    assert [a["adapter"] for a in activities] == ["builtin"]
    [ticket] = await db.fetch("SELECT * FROM tickets WHERE call_id = $1", call_id)
    assert ticket["priority"] in ("high", "urgent") and ticket["source"] == "post_call"
    assert ticket["link"].endswith(f"/api/calls/{call_id}")

    # metrics: on the service's Prometheus endpoint.
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{main.url}/metrics")).text
    assert (
        metric_value(
            metrics, "callcenter_calls_ended_total", channel="chat", reason="customer_ended"
        )
        >= 1
    )
    assert metric_value(metrics, "callcenter_calls_total", outcome="unresolved") >= 1
    assert metric_value(metrics, "callcenter_call_satisfaction_count") >= 1
    assert metric_value(metrics, "callcenter_call_turns_sum") >= 3
    assert (
        metric_value(
            metrics, "callcenter_turn_stage_latency_milliseconds_count", stage="first_token"
        )
        >= 3
    )
    assert (
        metric_value(metrics, "callcenter_tool_errors_total", tool="update_shipping_address") >= 1
    )
    assert (
        metric_value(
            metrics, "callcenter_post_call_step_latency_milliseconds_count", step="summary"
        )
        >= 1
    )

    # email has not run: nothing sent, step pending.
    assert post_call.smtp.messages_to(address) == []
    assert await post_call.step_status(call_id, "email") is None

    # The email step comes back and catches up.
    post_call.start(["email"])
    [mail] = post_call.smtp.wait_for(address)
    assert "R-5531" in mail.text and "R-5531" in mail.html
    assert "4111" not in mail.text and "4111" not in mail.html
    assert mail.message["Message-ID"] == f"<follow-up-{call_id}@acme.example>"
    status = await post_call.wait_step(call_id, "email")
    assert status["status"] == "done"

    # The API shows the transcript, the summary and every step's status.
    reply = await gateway.get(f"/api/calls/{call_id}")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["call"]["status"] == "ended" and body["call"]["sentiment"] == "negative"
    assert [t["turn_index"] for t in body["transcript"]] == [0, 1, 2]
    assert body["transcript"][1]["tool_calls"][0]["name"] == "start_return"
    assert body["summary"]["resolved"] is False
    assert {s["step"]: s["status"] for s in body["steps"]} == dict.fromkeys(ALL_STEPS, "done")
    assert body["tickets"][0]["ticket_id"] == ticket["ticket_id"]
    assert body["email"]["to_address"] == address
    assert body["dead_letters"] == []

    async def email_settled() -> bool:
        return await post_call.consumer_settled(post_call.config.post_call.durable_prefix + "email")

    await wait_for(email_settled, what="email consumer acked")
    assert len(post_call.smtp.messages_to(address)) == 1

    # On shutdown the metrics are flushed over OTLP as well.
    assert main.stop() == 0
    otlp.stop()
    assert {"callcenter.calls.ended", "callcenter.turn.stage.latency"} <= otlp.names
