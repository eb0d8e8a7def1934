"""Summaries: the offline summariser, the LLM directly and through litellm (a local stand-in), waiting."""

from __future__ import annotations

import asyncio
import json

import pytest

from callcenter.common.bus.consumer import RetryLater
from callcenter.common.config.sections import LLMModelSettings, LLMSettings
from callcenter.common.events import CallEnded
from callcenter.post_call.steps.summary import SummaryStep
from callcenter.post_call.steps.transcript import TranscriptStep
from callcenter.post_call.summary import LLMSummarizer, OfflineSummarizer, TranscriptTurn
from services.post_call.tests.support import (
    PostCall,
    delivery_of,
    new_call_id,
    unhappy_turns,
    wait_for,
)
from tests.fakes.openai_server import OpenAIStandIn, Reply


def turn(i: int, user: str, assistant: str, *tools: dict) -> TranscriptTurn:
    return TranscriptTurn(
        turn_index=i, user_text=user, assistant_text=assistant, tool_calls=list(tools)
    )


HAPPY = [
    turn(0, "Hi, I'd like to exchange my boots for a different size.", "Sure, which order?"),
    turn(
        1,
        "Order W2002, size 9 please.",
        "Done: the exchange is set up and a label is on its way.",
        {
            "name": "exchange_items",
            "success": True,
            "result": {"success": True, "data": {"exchange_id": "X-77", "order_id": "W2002"}},
        },
    ),
    turn(2, "Perfect, thanks so much, that was really helpful!", "Happy to help. Goodbye!"),
]


async def test_offline_summary_of_a_happy_resolved_call() -> None:
    summary, engine = await OfflineSummarizer().summarize(
        channel="chat", reason="customer_ended", turns=HAPPY
    )
    assert engine == "offline"
    assert summary.sentiment == "positive" and summary.satisfaction >= 4
    assert summary.resolved is True
    assert "exchange" in summary.topics
    assert summary.follow_up_needed is True  # an exchange was agreed: confirm it in writing
    assert summary.follow_up is not None and "X-77" in summary.follow_up
    assert "exchange" in summary.summary and "Resolved." in summary.summary


async def test_offline_summary_of_an_unhappy_unresolved_call() -> None:
    turns = [
        TranscriptTurn(
            turn_index=t.turn_index,
            user_text=t.user_text,
            assistant_text=t.assistant_text,
            tool_calls=[c.model_dump() for c in t.tool_calls],
        )
        for t in unhappy_turns("c", None)
    ]
    summary, _ = await OfflineSummarizer().summarize(channel="voice", reason="hangup", turns=turns)
    assert summary.sentiment == "negative"
    assert summary.satisfaction <= 2
    assert summary.resolved is False
    assert summary.follow_up_needed is True
    # the failed action is named in plain words, with why
    assert "Not done: update the shipping address (already shipped)" in summary.summary


async def test_offline_summary_of_a_silent_call() -> None:
    summary, _ = await OfflineSummarizer().summarize(channel="voice", reason="hangup", turns=[])
    assert summary.sentiment == "neutral" and summary.resolved is False
    assert "before the customer said anything" in summary.summary


@pytest.fixture(scope="module")
def llm_server():
    server = OpenAIStandIn().start()
    yield server
    server.stop()


@pytest.fixture(params=["openai", "litellm"])
def client(request: pytest.FixtureRequest) -> str:
    """Each LLM test runs on both paths: the lean OpenAI-compatible client and litellm."""
    return request.param


def llm_settings(server: OpenAIStandIn, *models: str, client: str) -> LLMSettings:
    return LLMSettings(
        models=[
            LLMModelSettings(
                model=f"openai/{m}-{client}",
                api_key="sk-test",
                api_base=server.base_url,
                client=client,
            )
            for m in models
        ],
        retries=0,
        timeout_s=5.0,
    )


async def test_llm_summary_uses_structured_output(llm_server: OpenAIStandIn, client: str) -> None:
    answer = {
        "summary": "The customer exchanged boots for size 9.",
        "sentiment": "positive",
        "satisfaction": 5,
        "resolved": True,
        "topics": ["exchange"],
        "follow_up_needed": True,
        "follow_up": "We will send a prepaid label for exchange X-77.",
    }
    llm_server.script(f"summariser-{client}", Reply(text=json.dumps(answer)))
    summarizer = LLMSummarizer(
        settings=llm_settings(llm_server, "summariser", client=client),
        company="Acme",
        fallback=None,
    )
    summary, engine = await summarizer.summarize(channel="chat", reason="done", turns=HAPPY)
    assert engine == f"openai/summariser-{client}"
    assert summary.model_dump() == answer
    [request] = llm_server.requests_for(f"summariser-{client}")
    assert request["response_format"]["type"] == "json_schema"
    assert "satisfaction" in json.dumps(request["response_format"])
    assert "size 9" in request["messages"][-1]["content"]


async def test_llm_failures_fall_back_to_the_next_model_then_offline(
    llm_server: OpenAIStandIn, client: str
) -> None:
    llm_server.script(f"broken-{client}", Reply(status=500))
    llm_server.script(f"chatty-{client}", Reply(text="Sure! Here is a summary: it went fine."))
    settings = llm_settings(llm_server, "broken", "chatty", client=client)
    with_fallback = LLMSummarizer(settings=settings, company="Acme", fallback=OfflineSummarizer())
    summary, engine = await with_fallback.summarize(channel="chat", reason="done", turns=HAPPY)
    assert engine == "offline" and summary.resolved is True

    llm_server.script(f"broken-{client}", Reply(status=500))
    llm_server.script(f"chatty-{client}", Reply(text="no json"))
    without = LLMSummarizer(settings=settings, company="Acme", fallback=None)
    with pytest.raises(RetryLater, match="every LLM failed"):
        await without.summarize(channel="chat", reason="done", turns=HAPPY)


async def test_summary_waits_for_the_transcript_then_settles_for_what_is_stored(
    post_call: PostCall,
) -> None:
    ctx = post_call.context()
    transcript, summary = TranscriptStep(ctx=ctx), SummaryStep(ctx=ctx)
    call_id = new_call_id()
    first, *_ = unhappy_turns(call_id, None)
    await transcript.handle(delivery_of(first))
    ended = CallEnded(
        event_id=f"ended-{call_id}",
        call_id=call_id,
        channel="chat",
        reason="customer_ended",
        duration_s=30.0,
        turn_count=3,
    )
    with pytest.raises(RetryLater, match="1 of 3 turns stored") as waiting:
        await summary.handle(delivery_of(ended, attempt=1))
    assert waiting.value.delay_s == pytest.approx(ctx.config.post_call.summary_wait_delay_s)

    last_wait = ctx.config.post_call.summary_wait_attempts
    assert await summary.handle(delivery_of(ended, attempt=last_wait)) is True
    row = await post_call.db.fetchrow("SELECT * FROM summaries WHERE call_id = $1", call_id)
    assert row["turns_stored"] == 1 and row["turns_expected"] == 3
    status = await post_call.step_status(call_id, "summary")
    assert "1 of 3 turns" in status["detail"]
    # A redelivery stores nothing new (and republishes the same event id, deduplicated).
    assert await summary.handle(delivery_of(ended, attempt=last_wait + 1)) is False


async def test_a_summary_that_arrives_before_its_turns_waits_for_them_without_a_retry(
    post_call: PostCall,
) -> None:
    """call.ended handled before the turns are stored: the last stored turn wakes the summary."""
    ctx = post_call.context()
    # A wait budget far beyond the test's patience: only the commit's notification ends it.
    settings = ctx.config.post_call.model_copy(
        update={"summary_wait_delay_s": 600.0, "ack_wait_s": 1800.0}
    )
    ctx.config = ctx.config.model_copy(update={"post_call": settings})
    transcript, summary = TranscriptStep(ctx=ctx), SummaryStep(ctx=ctx)
    await summary.start()
    try:
        call_id = new_call_id()
        first, *rest = unhappy_turns(call_id, None)
        await transcript.handle(delivery_of(first))
        ended = CallEnded(
            event_id=f"ended-{call_id}",
            call_id=call_id,
            channel="chat",
            reason="customer_ended",
            duration_s=30.0,
            turn_count=1 + len(rest),
        )
        handling = asyncio.create_task(summary.handle(delivery_of(ended, attempt=1)))

        # The summary has counted one stored turn and is now waiting for the rest.
        async def summary_waiting() -> bool:
            return summary.turns_stored.waiting == 1

        await wait_for(summary_waiting, what="the summary to wait for its turns")
        assert not handling.done()
        for turn_event in rest:
            await transcript.handle(delivery_of(turn_event))
        assert await asyncio.wait_for(handling, 30.0) is True
        row = await post_call.db.fetchrow("SELECT * FROM summaries WHERE call_id = $1", call_id)
        assert row["turns_stored"] == row["turns_expected"] == 1 + len(rest)
    finally:
        await summary.close()
    assert not summary.turns_stored.listening


def call(name: str, success: bool, order_id: str = "ORD-1", **data: object) -> dict:
    result = {"success": True, "data": data} if success else None
    return {
        "name": name,
        "arguments": {"order_id": order_id},
        "success": success,
        "result": result,
        "error": None if success else "tool_failed",
    }


async def test_offline_summary_a_later_success_overrides_an_earlier_failure() -> None:
    turns = [
        turn(0, "Please cancel order ORD-1.", "Sorry, that failed.", call("cancel_order", False)),
        turn(1, "Try again please.", "Done: it is cancelled.", call("cancel_order", True)),
        turn(2, "Thanks, great.", "You're welcome."),
    ]
    summary, _ = await OfflineSummarizer().summarize(channel="chat", reason="x", turns=turns)
    assert "Not done" not in summary.summary and "cancel the order" in summary.summary
    assert summary.resolved is True
    assert summary.follow_up is not None and "we cancelled your order" in summary.follow_up


async def test_offline_summary_is_not_resolved_when_nothing_was_found() -> None:
    turns = [
        turn(
            0,
            "Do you sell gift wrapping?",
            "I couldn't find anything on that.",
            {
                "name": "search_knowledge_base",
                "success": True,
                "result": {"data": {"articles": []}},
            },
        ),
        turn(1, "OK thanks.", "I couldn't find anything on that, sorry."),
    ]
    summary, _ = await OfflineSummarizer().summarize(channel="chat", reason="x", turns=turns)
    assert summary.resolved is False and "Not resolved." in summary.summary
    assert "Remains:" in summary.summary


async def test_offline_summary_of_an_angry_customer_with_a_torn_item() -> None:
    turns = [
        turn(
            0,
            "This is unacceptable! The sweater I got yesterday is torn down the sleeve.",
            "I'm sorry. Let me help with that.",
        ),
        turn(
            1,
            "I want a refund, now.",
            "I've started return RET-9 for the sweater.",
            call("start_return", False),
            call("start_return", True, return_id="RET-9"),
        ),
    ]
    summary, _ = await OfflineSummarizer().summarize(channel="chat", reason="x", turns=turns)
    assert summary.summary.startswith("Problem (chat): an item arrived torn.")
    assert "torn down the sleeve" in summary.summary
    assert "start a return (return id RET-9)" in summary.summary
    assert "Not done" not in summary.summary
    assert summary.sentiment == "negative" and summary.satisfaction == 1
    assert summary.follow_up is not None
    assert "we started your return (return id RET-9)" in summary.follow_up


async def test_an_llm_follow_up_that_is_an_internal_note_is_never_sent_as_is(
    llm_server: OpenAIStandIn, client: str
) -> None:
    answer = {
        "summary": "The customer exchanged boots for size 9.",
        "sentiment": "positive",
        "satisfaction": 5,
        "resolved": True,
        "topics": ["exchange"],
        "follow_up_needed": True,
        "follow_up": "The customer contacted us about boots. Failed actions: none.",
    }
    llm_server.script(f"internal-{client}", Reply(text=json.dumps(answer)))
    summarizer = LLMSummarizer(
        settings=llm_settings(llm_server, "internal", client=client), company="Acme", fallback=None
    )
    summary, _ = await summarizer.summarize(channel="chat", reason="done", turns=HAPPY)
    assert summary.summary == answer["summary"]  # the colleague's summary stays the model's
    assert summary.follow_up is not None
    assert "The customer" not in summary.follow_up and "Failed" not in summary.follow_up
    assert "we set up your exchange (order id W2002, exchange id X-77)" in summary.follow_up
    [request] = llm_server.requests_for(f"internal-{client}")
    prompt = request["messages"][0]["content"]
    assert "FINAL outcome" in prompt and "ONLY if the customer's request was actually met" in prompt
