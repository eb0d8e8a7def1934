"""Knowledge base, tickets, callbacks and transfers."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


async def test_search_knowledge_base_finds_policies(call) -> None:
    result = await call(
        "search_knowledge_base", {"query": "how many days do I have to return a sweater?"}
    )
    assert result["success"] is True
    articles = result["data"]["articles"]
    assert articles and articles[0]["title"] == "Return policy"
    assert "30 days" in articles[0]["body"]
    cancel = await call("search_knowledge_base", {"query": "cancel my order", "limit": 1})
    assert [a["article_id"] for a in cancel["data"]["articles"]] == ["KB-003"]


async def test_search_knowledge_base_with_no_match_or_stop_words(call) -> None:
    nothing = await call("search_knowledge_base", {"query": "quantum zebra"})
    assert nothing == {"success": True, "data": {"query": "quantum zebra", "articles": []}}
    stop_words = await call("search_knowledge_base", {"query": "the and of"})
    assert stop_words["data"]["articles"] == []
    assert (await call("search_knowledge_base", {"query": ""}))["error"] == "invalid_arguments"


async def test_create_ticket_is_idempotent_and_redacts_card_numbers(call, db_pool) -> None:
    ids = {"call_id": "call-ticket-1", "tool_call_id": "call_t1"}
    args = {
        "subject": "Charged twice",
        "description": "Customer says card 4242 4242 4242 4242 was charged twice.",
        "priority": "high",
    }
    first = await call("create_ticket", args, verified="CUS-0001", **ids)
    second = await call("create_ticket", args, verified="CUS-0001", **ids)
    assert first["success"] is True
    assert second == first
    rows = await db_pool.fetch("SELECT * FROM tickets WHERE call_id = 'call-ticket-1'")
    assert len(rows) == 1
    row = rows[0]
    assert row["ticket_id"] == first["data"]["ticket_id"]
    assert row["idempotency_key"] == "call-ticket-1:call_t1"
    assert row["customer_id"] == "CUS-0001"
    assert row["source"] == "tools"
    assert row["priority"] == "high"
    assert "4242 4242 4242 4242" not in row["body"]


async def test_create_ticket_without_verification_has_no_customer(call, db_pool) -> None:
    result = await call(
        "create_ticket",
        {"subject": "Website is slow", "description": "Pages take ages."},
        call_id="call-ticket-2",
    )
    assert result["success"] is True
    assert (
        await db_pool.fetchval("SELECT customer_id FROM tickets WHERE call_id = 'call-ticket-2'")
        is None
    )
    assert (await call("create_ticket", {"subject": "x"}))["error"] == "invalid_arguments"


def open_slot() -> datetime:
    """The next weekday, two or more days ahead, at 10:00 Pacific (inside support hours)."""
    pacific = ZoneInfo("America/Los_Angeles")
    day = datetime.now(pacific).date() + timedelta(days=2)
    while day.isoweekday() > 5:
        day += timedelta(days=1)
    return datetime.combine(day, time(10, 0), pacific)


async def test_schedule_callback(call, make_shop, db_pool) -> None:
    shop = await make_shop()
    when = open_slot()
    ids = {"call_id": f"call-cb-{shop.customer_id}", "tool_call_id": "call_c1"}
    args = {"preferred_time": when.isoformat(), "reason": "Question about a refund"}
    first = await call("schedule_callback", args, verified=shop.customer_id, **ids)
    assert first["success"] is True, first
    assert first["data"]["phone"] == shop.phone
    assert datetime.fromisoformat(first["data"]["scheduled_for"]) == when
    assert await call("schedule_callback", args, verified=shop.customer_id, **ids) == first
    count = await db_pool.fetchval(
        "SELECT count(*) FROM callbacks WHERE call_id = $1", ids["call_id"]
    )
    assert count == 1


async def test_schedule_callback_unverified_uses_the_caller_number(call) -> None:
    when = open_slot()
    result = await call(
        "schedule_callback",
        {"preferred_time": when.isoformat(), "reason": "billing"},
        channel="voice",
        caller="415-555-0199",
    )
    assert result["data"]["phone"] == "+14155550199"
    no_number = await call(
        "schedule_callback", {"preferred_time": when.isoformat(), "reason": "billing"}
    )
    assert no_number["error"] == "phone_required"


async def test_schedule_callback_rejects_bad_times(call) -> None:
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    far = (datetime.now(UTC) + timedelta(days=90)).isoformat()
    for when in (past, far):
        result = await call(
            "schedule_callback", {"preferred_time": when, "reason": "x" * 5}, caller="+14155550199"
        )
        assert result["error"] == "invalid_time"
    garbage = await call(
        "schedule_callback",
        {"preferred_time": "tomorrow-ish", "reason": "later"},
        caller="+14155550199",
    )
    assert garbage["error"] == "invalid_arguments"


async def test_transfer_to_agent(call) -> None:
    result = await call(
        "transfer_to_agent", {"reason": "Customer asked for a person", "queue": "billing"}
    )
    assert result == {
        "success": True,
        "data": {"transfer": True, "reason": "Customer asked for a person", "queue": "billing"},
    }
    default = await call("transfer_to_agent", {"reason": "upset customer"})
    assert default["data"]["queue"] == "general"
    assert (await call("transfer_to_agent", {"reason": "wants the boss", "queue": "ceo"}))[
        "error"
    ] == "invalid_arguments"


async def test_no_transfer_is_promised_on_a_browser_call(call) -> None:
    # no agent can join a browser call: the tool says so, so the assistant offers what works
    refused = await call("transfer_to_agent", {"reason": "wants a person"}, channel="web_voice")
    assert refused["success"] is False and refused["error"] == "transfer_unavailable"
    assert "chat window" in refused["message"] and "call back" in refused["message"]
