"""Step rules run in-process against real PostgreSQL, SMTP and HubSpot stand-ins."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from callcenter.common.bus.consumer import PermanentFailure, RetryLater
from callcenter.post_call.crm import HubSpotCrm
from callcenter.post_call.steps.crm import CrmStep
from callcenter.post_call.steps.email import EmailStep
from callcenter.post_call.steps.ticket import TicketStep
from services.post_call.tests.support import PostCall, delivery_of, new_call_id, summarized
from tests.fakes.hubspot_server import HubSpotStandIn


@pytest.fixture(scope="module")
def hubspot():
    server = HubSpotStandIn(token="pat-test").start()
    yield server
    server.stop()


def hubspot_step(post_call: PostCall, server: HubSpotStandIn, token: str = "pat-test") -> CrmStep:
    ctx = post_call.context()
    settings = ctx.config.crm.model_copy(
        update={
            "adapter": "hubspot",
            "hubspot_base_url": server.base_url,
            "hubspot_token": SecretStr(token),
        }
    )
    return CrmStep(ctx=ctx, adapter=HubSpotCrm(settings=settings))


async def test_hubspot_note_on_the_contact_once(
    post_call: PostCall, hubspot: HubSpotStandIn
) -> None:
    call_id = new_call_id()
    customer = f"cust-{call_id}"
    await post_call.add_contact(customer, f"{call_id}@example.com")
    contact_id = hubspot.add_contact(f"{call_id}@example.com")
    step = hubspot_step(post_call, hubspot)
    event = summarized(call_id, customer)
    try:
        assert await step.handle(delivery_of(event)) is True
        assert await step.handle(delivery_of(event, attempt=2)) is False  # redelivery
    finally:
        await step.close()
    [note] = hubspot.notes_for_contact(contact_id)
    assert "damaged jacket" in note["properties"]["hs_note_body"]
    assert f"/api/calls/{call_id}" in note["properties"]["hs_note_body"]
    row = await post_call.db.fetchrow(
        "SELECT * FROM crm_activities WHERE call_id = $1 AND adapter = 'hubspot'", call_id
    )
    assert row["external_id"] == note["id"]


async def test_hubspot_outage_is_retried_and_bad_credentials_are_permanent(
    post_call: PostCall, hubspot: HubSpotStandIn
) -> None:
    call_id = new_call_id()
    event = summarized(call_id, None)
    step = hubspot_step(post_call, hubspot)
    hubspot.fail_next(1, status=503)
    try:
        with pytest.raises(RetryLater, match="HubSpot 503"):
            await step.handle(delivery_of(event))
        # Nothing was recorded, so the retry creates the note.
        assert (
            await post_call.db.fetchval(
                "SELECT count(*) FROM processed_events WHERE step = 'crm' AND call_id = $1", call_id
            )
            == 0
        )
        assert await step.handle(delivery_of(event, attempt=2)) is True
    finally:
        await step.close()
    bad = hubspot_step(post_call, hubspot, token="wrong")
    try:
        with pytest.raises(PermanentFailure, match="HubSpot 401"):
            await bad.handle(delivery_of(summarized(new_call_id(), None)))
    finally:
        await bad.close()


async def test_follow_up_email_rules_and_content(post_call: PostCall) -> None:
    smtp, db = post_call.smtp, post_call.db
    step = EmailStep(ctx=post_call.context())

    # Sent: plain text and HTML, escaped, PII redacted, what was agreed stated.
    call_id = new_call_id()
    address = f"{call_id}@example.com"
    await post_call.add_contact(f"cust-{call_id}", address, name="Ada <b>Lovelace</b>")
    event = summarized(
        call_id,
        f"cust-{call_id}",
        summary="INTERNAL: customer was rude",
        follow_up="We refunded order W1001 (return id R-42) to card 4111 1111 1111 1111 "
        "<script>alert(1)</script>",
    )
    assert await step.handle(delivery_of(event)) is True
    [mail] = smtp.messages_to(address)
    assert mail.message["Subject"].startswith("Acme Outfitters")
    assert "R-42" in mail.text and "R-42" in mail.html
    assert "4111" not in mail.text and "4111" not in mail.html
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html
    assert "&lt;b&gt;Lovelace" in mail.html
    assert "INTERNAL" not in mail.text  # the internal summary is never sent to the customer
    assert mail.message["List-Unsubscribe"] == "<mailto:support@acme.example?subject=unsubscribe>"
    assert await step.handle(delivery_of(event, attempt=2)) is False
    assert len(smtp.messages_to(address)) == 1

    # Skipped, with the reason recorded: unsubscribed, no address, nothing to follow up.
    unsubscribed = new_call_id()
    await post_call.add_contact(f"cust-{unsubscribed}", f"{unsubscribed}@Example.com")
    await db.execute(
        "INSERT INTO email_unsubscribes (email, source) VALUES ($1, 'test')",
        f"{unsubscribed}@example.com",
    )
    no_address, no_need = new_call_id(), new_call_id()
    await post_call.add_contact(f"cust-{no_need}", f"{no_need}@example.com")
    cases = {
        unsubscribed: (summarized(unsubscribed, f"cust-{unsubscribed}"), "customer unsubscribed"),
        no_address: (summarized(no_address, "cust-unknown"), "no email address for the customer"),
        no_need: (
            summarized(no_need, f"cust-{no_need}", follow_up_needed=False, follow_up=None),
            "no follow-up needed",
        ),
    }
    for cid, (case, reason) in cases.items():
        assert await step.handle(delivery_of(case)) is True
        status = await post_call.step_status(cid, "email")
        assert (status["status"], status["detail"]) == ("skipped", reason)
        assert smtp.messages_to(f"{cid}@example.com") == []


@pytest.mark.parametrize(
    ("satisfaction", "resolved", "priority"),
    [(1, True, "urgent"), (2, True, "high"), (4, False, "normal"), (4, True, None)],
)
async def test_ticket_when_unhappy_or_unresolved(
    post_call: PostCall, satisfaction: int, resolved: bool, priority: str | None
) -> None:
    step = TicketStep(ctx=post_call.context())
    call_id = new_call_id()
    event = summarized(call_id, "cust-1", satisfaction=satisfaction, resolved=resolved)
    assert await step.handle(delivery_of(event)) is True
    assert await step.handle(delivery_of(event, attempt=2)) is False
    rows = await post_call.db.fetch("SELECT * FROM tickets WHERE call_id = $1", call_id)
    if priority is None:
        assert rows == []
        assert (await post_call.step_status(call_id, "ticket"))["status"] == "skipped"
        return
    [ticket] = rows
    assert ticket["priority"] == priority
    assert ticket["idempotency_key"] == f"post_call:{call_id}"
    assert f"/api/calls/{call_id}" in ticket["body"]


async def test_a_call_with_an_open_ticket_gets_it_escalated_not_a_second_one(
    post_call: PostCall,
) -> None:
    call_id = new_call_id()
    await post_call.db.execute(
        """
        INSERT INTO tickets (ticket_id, call_id, customer_id, source, priority, subject, body)
        VALUES ($1, $2, 'cust-1', 'tools', 'normal', 'Torn sweater', 'Arrived torn.')
        """,
        f"TCK-{call_id}",
        call_id,
    )
    step = TicketStep(ctx=post_call.context())
    event = summarized(call_id, "cust-1", satisfaction=1, resolved=False)

    assert await step.handle(delivery_of(event)) is True
    assert await step.handle(delivery_of(event, attempt=2)) is False

    [ticket] = await post_call.db.fetch("SELECT * FROM tickets WHERE call_id = $1", call_id)
    assert ticket["ticket_id"] == f"TCK-{call_id}" and ticket["priority"] == "urgent"
    assert ticket["body"].startswith("Arrived torn.")  # the assistant's note stays first
    assert ticket["body"].count("After the conversation") == 1  # once, despite the redelivery
    assert f"/api/calls/{call_id}" in ticket["body"]
    status = await post_call.step_status(call_id, "ticket")
    assert status["detail"] == f"ticket TCK-{call_id} escalated"


async def test_email_reaches_a_customer_known_only_to_the_tools_service(
    post_call: PostCall,
) -> None:
    customer = await post_call.db.fetchrow(
        "SELECT customer_id, first_name, email FROM customers ORDER BY customer_id LIMIT 1"
    )
    call_id = new_call_id()
    step = EmailStep(ctx=post_call.context())
    assert await step.handle(delivery_of(summarized(call_id, customer["customer_id"]))) is True
    mails = [m for m in post_call.smtp.messages_to(customer["email"]) if call_id in m.text]
    assert len(mails) == 1
    assert f"Hello {customer['first_name']}" in mails[0].text
