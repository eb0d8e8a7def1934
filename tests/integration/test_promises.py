"""What the assistant says it sent is sent, once, to the contact on file (issue 15).

Real tools and post_call processes on real NATS and PostgreSQL; the tools are called over the bus
exactly as the conversation service calls them; mail lands in the SMTP stand-in and text messages
in the Twilio REST stand-in, both driven by real clients.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import nats.errors
import pytest
from nats.js.api import DeliverPolicy

from callcenter.common.bus import Bus
from callcenter.common.events import SUBJECT_NOTIFICATION_REQUESTED
from callcenter.tools.seed import SeedBatch, find_variant, shipment_for
from services.post_call.tests.support import wait_for
from tests.fakes.smtp_server import SmtpCatcher
from tests.fakes.twilio_rest import TwilioStandIn
from tests.support.chat_client import ChatVisitor
from tests.support.processes import ServiceProcess

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "promises-token"
BUSINESS_NUMBER = "+15550009999"
ADMIN_TOKEN = "promises-admin"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpCatcher]:
    catcher = SmtpCatcher().start()
    yield catcher
    catcher.stop()


@pytest.fixture(scope="module")
def twilio() -> Iterator[TwilioStandIn]:
    stand_in = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def system(
    db_pool: asyncpg.Pool,
    service_factory: Callable[..., ServiceProcess],
    smtp: SmtpCatcher,
    twilio: TwilioStandIn,
) -> dict[str, ServiceProcess]:
    env = {
        **smtp.env,
        "CALLCENTER_TWILIO__ENABLED": "true",
        "CALLCENTER_TWILIO__ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "CALLCENTER_TWILIO__API_BASE_URL": twilio.base_url,
        "CALLCENTER_NOTIFICATIONS__SMS_FROM": BUSINESS_NUMBER,
        "CALLCENTER_NOTIFICATIONS__CODES_PER_HOUR": "3",
        "CALLCENTER_POST_CALL__RETRY_DELAYS_S": "[0.2, 0.4]",
        "ADMIN_TOKEN": ADMIN_TOKEN,
    }
    procs = {
        name: service_factory(name, wait=False, extra_env=env)
        for name in ("tools", "post_call", "conversation", "gateway")
    }
    for proc in procs.values():  # started together: their imports overlap on the machine's cores
        proc.wait_ready()
    return procs


class Customer:
    """A fresh customer with one delivered and one pending order."""

    def __init__(self, n: int) -> None:
        self.customer_id = f"CUS-P{n}"
        self.email = f"promise{n}@example.com"
        self.phone = f"+1333{n:07d}"
        self.zip = f"{n % 100000:05d}"
        self.delivered = f"ORD-{n}01"
        self.pending = f"ORD-{n}02"


@pytest.fixture
async def customer(db_pool: asyncpg.Pool) -> Customer:
    n = uuid.uuid4().int % 1_000_000  # order ids stay within what people type (8 digits)
    c = Customer(n)
    address = {
        "line1": "1 Promise Way",
        "line2": None,
        "city": "San Francisco",
        "state": "CA",
        "zip": c.zip,
        "country": "US",
    }
    batch = SeedBatch()
    batch.add_customer(
        customer_id=c.customer_id,
        first_name="Pat",
        last_name=f"Promise{n}",
        email=c.email,
        phone=c.phone,
        address=address,
    )
    items = [(find_variant("PRD-002", size="M", color="navy"), 1)]
    now = datetime.now(UTC)
    for order_id, status in ((c.delivered, "delivered"), (c.pending, "pending")):
        batch.add_order(
            order_id=order_id,
            customer_id=c.customer_id,
            address=address,
            status=status,
            placed_at=now - timedelta(days=9),
            items=items,
            payment=("card", "Visa", "1111"),
            shipment=_delivered_shipment(now) if status == "delivered" else None,
        )
    async with db_pool.acquire() as conn:
        await batch.write(conn)
    return c


def _delivered_shipment(now: datetime) -> dict[str, Any]:
    placed = (now - timedelta(days=9)).date()
    shipment = shipment_for(random.Random(7), status="delivered", placed=placed, today=now.date())
    assert shipment is not None
    shipment["delivered_at"] = now - timedelta(days=5)
    return shipment


async def tools_call(
    bus: Bus,
    name: str,
    arguments: dict[str, Any],
    *,
    call_id: str,
    verified: str | None = None,
    tool_call_id: str | None = None,
    channel: str = "chat",
) -> dict[str, Any]:
    """One ``tools.call`` request, shaped as the conversation service sends it."""
    body = {
        "name": name,
        "arguments": arguments,
        "context": {
            "call_id": call_id,
            "channel": channel,
            "tool_call_id": tool_call_id or f"tc-{uuid.uuid4().hex[:8]}",
            "verified_customer_id": verified,
            "caller_number": None,
        },
    }
    reply = await bus.nc.request(bus.subject("tools.call"), json.dumps(body).encode(), timeout=15)
    return json.loads(reply.data)


def new_call() -> str:
    return "call-" + uuid.uuid4().hex[:12]


async def test_return_confirmation_with_label_is_emailed_once_to_the_address_on_file(
    system: dict[str, ServiceProcess], bus: Bus, db_pool: asyncpg.Pool, smtp: SmtpCatcher, customer
) -> None:
    item = await db_pool.fetchval(
        "SELECT item_id FROM order_items WHERE order_id = $1", customer.delivered
    )
    call_id = new_call()
    args = {"order_id": customer.delivered, "item_ids": [item], "reason": "damaged or defective"}
    first = await tools_call(
        bus, "start_return", args, call_id=call_id, verified=customer.customer_id, tool_call_id="t1"
    )
    assert first["success"], first
    data = first["data"]
    # The result says what is being sent, and where (masked), so the assistant says only that.
    assert data["confirmation"]["via"] == "email"
    assert data["confirmation"]["to"] == f"p***@{customer.email.split('@')[1]}"
    assert data["confirmation"]["to"] in data["next_steps"]

    mails = smtp.wait_for(customer.email)
    assert len(mails) == 1, [m.message["Subject"] for m in mails]
    text = mails[0].text
    assert data["return_id"] in text and customer.delivered in text
    assert data["label_url"] in text and data["return_id"] in data["label_url"]

    # The same tool call retried (a client retry): the first result, and no second message.
    again = await tools_call(
        bus, "start_return", args, call_id=call_id, verified=customer.customer_id, tool_call_id="t1"
    )
    assert again == first
    # A later promise to the same customer arrives; only then count the return confirmations.
    cancelled = await tools_call(
        bus,
        "cancel_order",
        {"order_id": customer.pending},
        call_id=call_id,
        verified=customer.customer_id,
    )
    assert cancelled["success"], cancelled
    mails = smtp.wait_for(customer.email, count=2)
    subjects = [m.message["Subject"] for m in mails]
    assert len(mails) == 2, subjects
    assert f"Order {customer.pending} is cancelled" in subjects
    assert sum(data["return_id"] in s for s in subjects) == 1

    async def both_confirmed() -> list[asyncpg.Record] | None:
        rows = await db_pool.fetch(
            "SELECT kind, status, to_address FROM notifications WHERE customer_id = $1 "
            "ORDER BY kind",
            customer.customer_id,
        )
        return rows if all(r["status"] == "sent" for r in rows) else None

    rows = await wait_for(both_confirmed, what="both notifications recorded as sent")
    assert [(r["kind"], r["status"], r["to_address"]) for r in rows] == [
        ("cancellation_confirmation", "sent", customer.email),
        ("return_confirmation", "sent", customer.email),
    ]


async def notifications_on_the_bus(bus: Bus, customer_id: str) -> list[str]:
    """Every stored ``call.notification_requested`` for ``customer_id``, as JetStream holds it."""
    subject = bus.subject(SUBJECT_NOTIFICATION_REQUESTED)
    sub = await bus.js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    found: list[str] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except nats.errors.TimeoutError:
                return found
            raw = msg.data.decode()
            if json.loads(raw)["customer_id"] == customer_id:
                found.append(raw)
            if msg.metadata.num_pending == 0:
                return found
    finally:
        await sub.unsubscribe()


async def test_verification_code_goes_to_the_phone_on_file_expires_and_works_once(
    system: dict[str, ServiceProcess],
    bus: Bus,
    db_pool: asyncpg.Pool,
    twilio: TwilioStandIn,
    customer,
) -> None:
    call_id = new_call()
    asked = await tools_call(
        bus, "send_verification_code", {"via": "sms", "phone": customer.phone}, call_id=call_id
    )
    assert asked["success"], asked
    sms = await twilio.wait_for_messages(1, to=customer.phone)
    assert sms[0]["from"] == BUSINESS_NUMBER
    code = next(word.strip(".") for word in sms[0]["body"].split() if word.strip(".").isdigit())
    assert len(code) == 6

    # The code is not kept in plain text once it left the outbox.
    leftovers = await db_pool.fetchval(
        "SELECT count(*) FROM event_outbox WHERE body::text LIKE '%' || $1 || '%'", code
    )
    assert leftovers == 0
    # Nor on the bus, where JetStream keeps it on disk: it travels sealed for post_call alone.
    on_the_bus = await notifications_on_the_bus(bus, customer.customer_id)
    assert on_the_bus and all(code not in raw for raw in on_the_bus)
    assert all("code_sealed" in json.loads(raw)["details"] for raw in on_the_bus)

    # An unknown account gets the same answer, and nothing is sent anywhere.
    unknown = await tools_call(
        bus,
        "send_verification_code",
        {"via": "email", "email": "stranger@example.net"},
        call_id=new_call(),
    )
    assert unknown["success"] and set(unknown["data"]) == set(asked["data"])
    assert unknown["data"]["message"] == asked["data"]["message"].replace(
        "phone number", "email address"
    )

    verify = {"method": "one_time_code", "code": code, "phone": customer.phone}
    ok = await tools_call(bus, "verify_identity", verify, call_id=call_id)
    assert ok["success"] and ok["data"]["verified_customer_id"] == customer.customer_id
    reused = await tools_call(bus, "verify_identity", verify, call_id=new_call())
    assert reused["error"] == "verification_failed"

    # An expired code does not work.
    second_call = new_call()
    await tools_call(
        bus, "send_verification_code", {"via": "sms", "phone": customer.phone}, call_id=second_call
    )
    sms = await twilio.wait_for_messages(2, to=customer.phone)
    code2 = next(w.strip(".") for w in sms[-1]["body"].split() if w.strip(".").isdigit())
    await db_pool.execute(
        "UPDATE verification_codes SET expires_at = now() - interval '1 second' "
        "WHERE customer_id = $1 AND used_at IS NULL",
        customer.customer_id,
    )
    expired = await tools_call(
        bus, "verify_identity", {**verify, "code": code2}, call_id=second_call
    )
    assert expired["error"] == "verification_failed"

    # At most three codes an hour per account, whichever calls ask.
    for _ in range(3):
        await tools_call(
            bus,
            "send_verification_code",
            {"via": "sms", "phone": customer.phone},
            call_id=new_call(),
        )
    issued = await db_pool.fetchval(
        "SELECT count(*) FROM verification_codes WHERE customer_id = $1", customer.customer_id
    )
    assert issued == 3
    await twilio.wait_for_messages(3, to=customer.phone)
    # The outbox holds exactly the three code requests, all published (so no more are coming).
    pending = await db_pool.fetch(
        "SELECT published_at FROM event_outbox WHERE body->>'customer_id' = $1 "
        "AND body->>'kind' = 'verification_code'",
        customer.customer_id,
    )
    assert len(pending) == 3

    async def all_sent() -> bool:
        return (
            await db_pool.fetchval(
                "SELECT count(*) FROM notifications WHERE customer_id = $1 AND status = 'sent'",
                customer.customer_id,
            )
            == 3
        )

    await wait_for(all_sent, what="three codes recorded as sent")
    assert len(twilio.messages_to(customer.phone)) == 3


async def test_a_code_is_never_sent_to_an_address_the_caller_supplies(
    system: dict[str, ServiceProcess], bus: Bus, db_pool: asyncpg.Pool, smtp: SmtpCatcher, customer
) -> None:
    # The caller names the account by its phone but asks for email: it goes to the email on file.
    result = await tools_call(
        bus, "send_verification_code", {"via": "email", "phone": customer.phone}, call_id=new_call()
    )
    assert result["success"]
    mails = smtp.wait_for(customer.email)
    assert len(mails) == 1 and mails[0].rcpt_tos == [customer.email]
    stored = await db_pool.fetchval(
        "SELECT body_text FROM notifications WHERE customer_id = $1", customer.customer_id
    )
    assert "verification code is ••••••" in stored
    # Arguments naming any other address are refused by the schema.
    refused = await tools_call(
        bus,
        "send_verification_code",
        {"via": "email", "phone": customer.phone, "to": "attacker@example.net"},
        call_id=new_call(),
    )
    assert refused["success"] is False and refused["error"] == "invalid_arguments"


async def test_the_verified_customer_is_recorded_on_the_call_and_found_by_the_api(
    system: dict[str, ServiceProcess], bus: Bus, db_pool: asyncpg.Pool, customer
) -> None:
    call_id = new_call()
    await db_pool.execute(
        "INSERT INTO calls (call_id, channel, status) VALUES ($1, 'sms', 'active')", call_id
    )
    other = new_call()
    await db_pool.execute(
        "INSERT INTO calls (call_id, channel, status) VALUES ($1, 'chat', 'active')", other
    )
    verified = await tools_call(
        bus,
        "verify_identity",
        {"method": "order_number_zip", "order_id": customer.delivered, "zip": customer.zip},
        call_id=call_id,
        channel="sms",
    )
    assert verified["success"], verified

    async def recorded() -> str | None:
        return await db_pool.fetchval("SELECT customer_id FROM calls WHERE call_id = $1", call_id)

    assert await wait_for(recorded, what="calls.customer_id") == customer.customer_id
    assert await db_pool.fetchval("SELECT customer_id FROM calls WHERE call_id = $1", other) is None
    async with httpx.AsyncClient(
        base_url=system["gateway"].url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as client:
        page = (await client.get("/api/calls", params={"customer_id": customer.customer_id})).json()
    items = page["items"] if isinstance(page, dict) else page
    assert [c["call_id"] for c in items] == [call_id]
    assert items[0]["customer_id"] == customer.customer_id


async def test_an_angry_customer_with_a_torn_item_gets_a_true_summary_ticket_and_email(
    system: dict[str, ServiceProcess], db_pool: asyncpg.Pool, smtp: SmtpCatcher, customer
) -> None:
    order_id = customer.delivered
    item = await db_pool.fetchval("SELECT item_id FROM order_items WHERE order_id = $1", order_id)
    async with ChatVisitor(system["gateway"].url) as chat:
        call_id = chat.call_id
        asked = await chat.say(
            f"This is unacceptable! The sweater from {order_id} arrived torn down the sleeve. "
            f"I want to return {item}, it's damaged."
        )
        assert "ZIP" in asked.text, asked.text
        done = await chat.say(f"My zip code is {customer.zip}")
        assert "I've started return" in done.text, done.text
        # It says the confirmation is being emailed only because the tool result says so.
        assert f"being emailed to p***@{customer.email.split('@')[1]}" in done.text
        await chat.end()

    return_id = await db_pool.fetchval(
        "SELECT return_id FROM returns WHERE order_id = $1", order_id
    )
    # The confirmation with the label link, and then the follow-up, both to the address on file.
    mails = smtp.wait_for(customer.email, count=2, timeout_s=60)
    by_subject = {m.message["Subject"]: m for m in mails}
    confirmation = by_subject[f"Your return {return_id} for order {order_id}"]
    assert f"/returns/{return_id}/label.pdf" in confirmation.text
    follow_up = next(m for s, m in by_subject.items() if "following up" in s)
    assert "we started your return" in follow_up.text and f"return id {return_id}" in follow_up.text
    for internal in ("Problem (", "The customer", "Failed actions", "Not done", "Remains:"):
        assert internal not in follow_up.text, follow_up.text

    summary = await db_pool.fetchrow("SELECT * FROM summaries WHERE call_id = $1", call_id)
    assert summary["summary"].startswith("Problem (chat): an item arrived torn.")
    assert "torn down the sleeve" in summary["summary"]
    # what was done, each with its final outcome (the complaint's ticket, then the return)
    done_part = summary["summary"].split("Done: ", 1)[1].split(" Last reply", 1)[0]
    assert f"start a return (order id {order_id}, return id {return_id})" in done_part
    assert "open a support ticket (ticket id TCK-" in done_part
    assert summary["sentiment"] == "negative" and summary["satisfaction"] == 1
    assert summary["customer_id"] == customer.customer_id

    async def escalated() -> list[asyncpg.Record] | None:
        rows = await db_pool.fetch("SELECT * FROM tickets WHERE call_id = $1", call_id)
        return rows if any(r["priority"] == "urgent" for r in rows) else None

    # One ticket for the one problem: the complaint's, escalated by post-call with the summary.
    [ticket] = await wait_for(escalated, what="the complaint's ticket escalated after the call")
    assert ticket["ticket_id"].startswith("TCK-") and ticket["ticket_id"] in done_part
    assert "an item arrived torn" in ticket["body"] and return_id in ticket["body"]

    # The call carries the verified customer, so the dashboard and the API find it.
    async def recorded() -> str | None:
        return await db_pool.fetchval("SELECT customer_id FROM calls WHERE call_id = $1", call_id)

    assert await wait_for(recorded, what="calls.customer_id") == customer.customer_id
