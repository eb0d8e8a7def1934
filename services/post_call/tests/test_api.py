"""The gateway's REST API over what the post-call steps stored (in-process app, real PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from callcenter.common.events import CallEnded
from callcenter.gateway.calls import end_call, start_call
from callcenter.post_call.steps.email import EmailStep
from callcenter.post_call.steps.summary import SummaryStep
from callcenter.post_call.steps.ticket import TicketStep
from services.post_call.tests.support import PostCall, delivery_of, new_call_id, summarized


async def test_calls_list_filters_and_pages(
    post_call: PostCall, gateway: httpx.AsyncClient
) -> None:
    deps = gateway.deps  # type: ignore[attr-defined]
    tag = uuid.uuid4().hex[:6]
    ids = {}
    for n, channel in enumerate(("chat", "sms", "voice")):
        call_id = new_call_id()
        ids[channel] = call_id
        await start_call(deps, channel=channel, call_id=call_id, from_number=f"+1555{tag}{n}")
    summary = SummaryStep(ctx=post_call.context())
    for channel in ("chat", "sms"):
        await end_call(deps, call_id=ids[channel], channel=channel, reason="done", turn_count=0)
        ended = CallEnded(
            event_id=f"ended-{ids[channel]}",
            call_id=ids[channel],
            channel=channel,
            reason="done",
            duration_s=1.0,
            turn_count=0,
        )
        await summary.handle(delivery_of(ended))

    async def listed(**params: object) -> dict:
        reply = await gateway.get("/api/calls", params={"q": tag, **params})
        assert reply.status_code == 200, reply.text
        return reply.json()

    everything = await listed()
    assert everything["total"] == 3
    assert [c["call_id"] for c in everything["items"]] == [ids["voice"], ids["sms"], ids["chat"]]
    assert [c["call_id"] for c in (await listed(channel="sms"))["items"]] == [ids["sms"]]
    assert [c["call_id"] for c in (await listed(status="active"))["items"]] == [ids["voice"]]
    silent = await listed(sentiment="neutral", resolved="false")
    assert {c["call_id"] for c in silent["items"]} == {ids["chat"], ids["sms"]}
    assert silent["items"][0]["satisfaction"] is not None
    today = datetime.now(UTC).date()
    assert (await listed(since=str(today), until=str(today)))["total"] == 3
    assert (await listed(since=str(today + timedelta(days=1))))["total"] == 0

    first = await listed(limit=2, offset=0)
    second = await listed(limit=2, offset=2)
    assert (first["total"], len(first["items"]), len(second["items"])) == (3, 2, 1)
    assert {c["call_id"] for c in first["items"] + second["items"]} == set(ids.values())

    assert (await gateway.get("/api/calls", params={"limit": 0})).status_code == 422
    assert (await gateway.get("/api/calls", params={"channel": "fax"})).status_code == 422


async def test_call_detail_tickets_and_errors(
    post_call: PostCall, gateway: httpx.AsyncClient
) -> None:
    deps = gateway.deps  # type: ignore[attr-defined]
    call_id = new_call_id()
    await start_call(deps, channel="voice", call_id=call_id)
    ticket_step = TicketStep(ctx=post_call.context())
    await ticket_step.handle(delivery_of(summarized(call_id, "cust-9", satisfaction=1)))

    body = (await gateway.get(f"/api/calls/{call_id}")).json()
    assert body["call"]["status"] == "active" and body["transcript"] == []
    assert body["summary"] is None and body["email"] is None
    steps = {s["step"]: s["status"] for s in body["steps"]}
    assert steps == {
        "transcript": "pending",
        "summary": "pending",
        "crm": "pending",
        "email": "pending",
        "ticket": "done",
        "metrics": "pending",
    }
    [ticket] = body["tickets"]
    assert ticket["priority"] == "urgent" and ticket["source"] == "post_call"

    tickets = (await gateway.get("/api/tickets", params={"call_id": call_id})).json()
    assert tickets["total"] == 1 and tickets["items"][0]["ticket_id"] == ticket["ticket_id"]
    urgent = (await gateway.get("/api/tickets", params={"priority": "urgent", "limit": 200})).json()
    assert ticket["ticket_id"] in {t["ticket_id"] for t in urgent["items"]}

    missing = await gateway.get("/api/calls/no-such-call")
    assert missing.status_code == 404
    anonymous = await gateway.get("/api/calls", headers={"Authorization": ""})
    assert anonymous.status_code == 401


async def test_openapi_describes_the_responses(gateway: httpx.AsyncClient) -> None:
    spec = (await gateway.get("/openapi.json")).json()
    ok = spec["paths"]["/api/calls/{call_id}"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/CallDetail")
    detail = spec["components"]["schemas"]["CallDetail"]["properties"]
    assert {"call", "transcript", "summary", "steps", "tickets", "dead_letters"} <= set(detail)
    status = spec["components"]["schemas"]["StepStatus"]["properties"]["status"]
    assert set(status["enum"]) == {"pending", "done", "skipped", "dead_letter"}
    for path in ("/api/calls", "/api/tickets", "/api/dead-letters"):
        params = {p["name"] for p in spec["paths"][path]["get"]["parameters"]}
        assert {"limit", "offset"} <= params


async def test_an_unsubscribe_recorded_through_the_api_stops_follow_up_email(
    post_call: PostCall, gateway: httpx.AsyncClient
) -> None:
    call_id = new_call_id()
    address = f"{call_id}@example.com"
    await post_call.add_contact(f"cust-{call_id}", address)
    reply = await gateway.post(
        "/api/email-unsubscribes", json={"email": address.upper(), "source": "reply"}
    )
    assert reply.status_code == 201 and reply.json()["email"] == address
    again = await gateway.post("/api/email-unsubscribes", json={"email": address})
    assert again.status_code == 201 and again.json()["source"] == "reply"
    bad = await gateway.post("/api/email-unsubscribes", json={"email": "not an address"})
    assert bad.status_code == 422

    step = EmailStep(ctx=post_call.context())
    assert await step.handle(delivery_of(summarized(call_id, f"cust-{call_id}"))) is True
    assert (await post_call.step_status(call_id, "email"))["detail"] == "customer unsubscribed"
    assert post_call.smtp.messages_to(address) == []
