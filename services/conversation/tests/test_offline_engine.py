"""The offline engine, as the demo runs it: ``python -m callcenter.conversation`` with no LLM
configured, the real tools service, and the seeded database.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from callcenter.common.config import CallCenterConfig

from .conftest import Conversation, turn_events


@pytest.fixture(scope="module")
def conversation_process(tools_service: Any, service_factory: Callable[..., Any]) -> Iterator[Any]:
    """The service as a process; stopped after the test so in-process servers don't share it."""
    proc = service_factory("conversation")
    yield proc
    assert proc.stop() == 0, proc.log_tail()


async def test_offline_engine_handles_every_skill_in_one_chat(
    config: CallCenterConfig, bus, db_pool, redis_client, conversation_process
) -> None:
    chat = Conversation(bus)

    status = await chat.say("Where is my order ORD-1001?")
    assert status.done["engine"] == "offline"
    assert status.text.startswith("Order ORD-1001 is shipped.")
    assert "UPS" in status.text and "1Z999AA10123456784" in status.text

    policy = await chat.say("What is your return policy?")
    assert "30 days" in policy.text

    # a return needs verification: asked for, given, and the return goes through
    ask = await chat.say("I'd like to return ITM-1003-2 from order ORD-1003, it's damaged")
    assert "verify" in ask.text.lower() and "ZIP" in ask.text
    done = await chat.say("Sure, my zip code is 94105")
    assert done.text.startswith("Thanks, Maya, you're verified.")
    assert "I've started return" in done.text and "ORD-1003" in done.text
    session = json.loads(await redis_client.get(f"{config.redis.key_prefix}session:{chat.call_id}"))
    assert session["verified_customer_id"] == "CUS-0001"
    returned = await db_pool.fetchrow(
        "SELECT r.reason FROM returns r WHERE r.order_id = 'ORD-1003'"
    )
    assert returned is not None and returned["reason"] == "damaged or defective"

    # an exchange of the other item, for a size that is in stock
    size = await db_pool.fetchval(
        """
        SELECT v.options->>'size' FROM product_variants v
        WHERE v.product_id = 'PRD-002' AND v.available AND v.options->>'color' = 'navy'
          AND v.options->>'size' <> 'M'
        ORDER BY v.variant_id LIMIT 1
        """
    )
    exchange = await chat.say(f"Can I exchange ITM-1003-1 from ORD-1003 for size {size}?")
    assert exchange.text.startswith("I've set up exchange"), exchange.text
    assert await db_pool.fetchval("SELECT count(*) FROM exchanges WHERE order_id = 'ORD-1003'") == 1

    moved = await chat.say(
        "Please change the address of ORD-1002 to 500 Market St, San Francisco, CA 94105"
    )
    assert moved.text == (
        "Order ORD-1002 will now ship to 500 Market St, San Francisco, CA, 94105. "
        "A confirmation is being emailed to m***@example.com."
    )
    address = await db_pool.fetchval(
        "SELECT shipping_address FROM orders WHERE order_id = 'ORD-1002'"
    )
    assert address["line1"] == "500 Market St"

    refused = await chat.say("Cancel order ORD-1005 please")
    assert refused.tools("finished")[0]["success"] is False
    assert "cancel" in refused.text.lower()
    assert "cancel_order" not in refused.text and "not_" not in refused.text
    cancelled = await chat.say("Then cancel ORD-1002, I ordered it by mistake")
    assert cancelled.text.startswith("Done: order ORD-1002 is cancelled.")
    row = await db_pool.fetchrow(
        "SELECT status, cancel_reason FROM orders WHERE order_id = 'ORD-1002'"
    )
    assert row["status"] == "cancelled" and row["cancel_reason"] == "ordered by mistake"

    ticket = await chat.say("I want to file a complaint, my package was late")
    assert ticket.text.startswith("I'm sorry about that") and "I've opened ticket" in ticket.text
    assert (
        await db_pool.fetchval("SELECT count(*) FROM tickets WHERE call_id = $1", chat.call_id) == 1
    )

    callback = await chat.say("Please call me back on Wednesday at 3pm")  # a weekday: in hours
    assert callback.text.startswith("I've scheduled a callback for")
    assert await db_pool.fetchval(
        "SELECT phone FROM callbacks WHERE call_id = $1", chat.call_id
    ) == ("+15555550101")

    transfer = await chat.say("I want to talk to a human")
    assert transfer.done["transfer"]["reason"] == "I want to talk to a human"
    assert transfer.done["end_call"] is False

    bye = await chat.say("That's all, goodbye")
    assert bye.done["end_call"] is True
    assert "goodbye" in bye.text.lower()

    events = await turn_events(bus, chat.call_id, expect=12)
    assert [e["turn_index"] for e in events] == list(range(12))
    assert all(e["engine"] == "offline" for e in events)


async def test_offline_voice_caller_is_verified_by_caller_id(
    config: CallCenterConfig, bus, conversation_process
) -> None:
    call = Conversation(bus, channel="voice", caller={"number": "+15555550101"})
    result = await call.say("What are my recent orders?")
    names = [c["name"] for c in result.tools("finished")]
    assert names == ["verify_identity", "list_recent_orders"]  # caller ID first, on the phone
    assert result.text.startswith("Thanks, Maya, you're verified. Your 3 most recent orders are")
    assert "*" not in result.text
    unknown = Conversation(bus, channel="voice", caller={"number": "+15550000000"})
    asked = await unknown.say("What are my recent orders?")
    assert "ZIP" in asked.text


async def test_offline_engine_asks_for_what_it_needs_and_checks_two_orders_at_once(
    bus, conversation_process
) -> None:
    chat = Conversation(bus)
    hello = await chat.say("Hi")
    assert hello.text == "Hi! How can I help you today?"
    asked = await chat.say("Where is my package?")
    assert asked.text == "Which order is it? Please tell me the order number, like ORD-1001."
    answered = await chat.say("It's ORD-1001")
    assert answered.text.startswith("Order ORD-1001 is shipped.")
    both = await chat.say("And what about ORD-1003 and ORD-1007?")
    started = [c["name"] for c in both.tools("started")]
    assert started == ["check_order_status", "check_order_status"]  # one message, run together
    assert (
        "Order ORD-1003 was delivered" in both.text and "Order ORD-1007 was delivered" in both.text
    )
    lookup = await chat.say("Can you look up my account? My email is maya.patel@example.com")
    assert "verify" in lookup.text.lower()
    unknown = await chat.say("Blorp zzz qqq")
    assert "I can check an order's status" in unknown.text


async def test_offline_engine_sends_the_code_it_offers_to_the_contact_on_file(
    bus, db_pool, conversation_process
) -> None:
    """ "Send me a code" on the default engine really issues one, for the account on file (issue 15)."""
    customer = await db_pool.fetchrow(
        "SELECT customer_id, email FROM customers WHERE customer_id = 'CUS-0002'"
    )
    before = await db_pool.fetchval(
        "SELECT count(*) FROM verification_codes WHERE customer_id = $1", customer["customer_id"]
    )
    chat = Conversation(bus)
    ask = await chat.say("Can you send me a one-time code?")
    assert "on file" in ask.text and "email" in ask.text.lower(), ask.text
    sent = await chat.say(f"It's {customer['email']}")
    tools = [c["name"] for c in sent.done.get("tool_calls", [])] if sent.done else []
    assert "tell me the code" in sent.text, (sent.text, tools)
    after = await db_pool.fetchval(
        "SELECT count(*) FROM verification_codes WHERE customer_id = $1", customer["customer_id"]
    )
    assert after == before + 1, sent.text


async def test_one_complaint_told_in_several_sentences_opens_one_ticket(
    bus, db_pool, conversation_process
) -> None:
    chat = Conversation(bus)
    reply = await chat.say(
        "This is unacceptable! The sweater from ORD-1003 arrived torn down the sleeve. "
        "I want to return ITM-1003-2, it's damaged."
    )
    tickets = await db_pool.fetch(
        "SELECT ticket_id FROM tickets WHERE call_id = $1 AND source = 'tools'", chat.call_id
    )
    assert len(tickets) == 1, [t["ticket_id"] for t in tickets]
    assert tickets[0]["ticket_id"] in reply.text  # the ticket the customer was told about
    assert [c["name"] for c in reply.tools("started")].count("create_ticket") == 1
