"""SMS through the gateway, end to end: Twilio's webhooks signed as Twilio signs them, the real
conversation and tools services, an OpenAI-compatible stand-in as the LLM, and a Twilio REST
stand-in receiving what the gateway sends through the real twilio client.

The main gateway may wait up to REPLY_BUDGET_S for a reply, so its replies come back in the
webhook's TwiML. The slow path is real slowness: the LLM stand-in holds its answer longer than the
replicas' REPLICA_BUDGET_S, so they answer the webhook at once and the reply reaches the customer
through the Messages REST API (the Twilio stand-in).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import nats.errors
import pytest

from callcenter.common.bus import Bus
from callcenter.common.config import CallCenterConfig
from tests.fakes.openai_server import OpenAIStandIn, Reply, ToolCall
from tests.fakes.twilio_rest import TwilioStandIn, new_sid, sign_webhook
from tests.support.environment import TestEnvironment, free_port
from tests.support.processes import ServiceProcess

ACCOUNT_SID = "AC" + uuid.uuid4().hex
AUTH_TOKEN = uuid.uuid4().hex
BUSINESS = "+15550100200"
MODEL = "sms-model"
REPLY_BUDGET_S = 14.0  # main gateway: replies inline
REPLICA_BUDGET_S = 0.5  # replicas: a reply that takes longer goes through the REST API
IDLE_S = 4.0  # replicas: an SMS conversation ends after this long without a message
PUBLIC_BASE = "https://sms.callcenter.test"

pytestmark = pytest.mark.timeout(120)


def new_customer() -> str:
    return "+1555" + "".join(random.choices("0123456789", k=7))


def gateway_env(twilio: TwilioStandIn, **overrides: str) -> dict[str, str]:
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "CALLCENTER_TWILIO__ENABLED": "true",
        "CALLCENTER_TWILIO__API_BASE_URL": twilio.base_url,
        "CALLCENTER_TWILIO__SMS_CALLER_ID_VERIFIES": "true",
        "CALLCENTER_GATEWAY__PUBLIC_BASE_URL": PUBLIC_BASE,
        "CALLCENTER_GATEWAY__SMS_REPLY_BUDGET_S": str(REPLY_BUDGET_S),
        **overrides,
    }


@dataclass
class Texter:
    """A phone texting the business number: what Twilio posts to the gateway's webhook."""

    url: str
    customer: str
    business: str = BUSINESS

    async def send(
        self,
        body: str,
        *,
        sid: str | None = None,
        media: list[str] | None = None,
        token: str = AUTH_TOKEN,
        signature: str | None = None,
    ) -> httpx.Response:
        params = {
            "ToCountry": "US",
            "SmsMessageSid": sid or new_sid("SM"),
            "NumMedia": str(len(media or [])),
            "From": self.customer,
            "To": self.business,
            "Body": body,
            "AccountSid": ACCOUNT_SID,
            "NumSegments": "1",
            "ApiVersion": "2010-04-01",
        }
        params["MessageSid"] = params["SmsMessageSid"]
        for index, url in enumerate(media or []):
            params[f"MediaUrl{index}"] = url
            params[f"MediaContentType{index}"] = "image/jpeg"
        headers = {
            "X-Twilio-Signature": signature
            if signature is not None
            else sign_webhook(token, PUBLIC_BASE + "/twilio/sms", params)
        }
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.post(self.url + "/twilio/sms", data=params, headers=headers)

    async def text(self, body: str, **kwargs: Any) -> list[str]:
        """Send and return the replies in the webhook's TwiML."""
        response = await self.send(body, **kwargs)
        assert response.status_code == 200, response.text
        return twiml_messages(response)


def twiml_messages(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.text)
    assert root.tag == "Response"
    return [message.text or "" for message in root.iter("Message")]


async def read_events(bus: Bus, subject: str) -> list[dict[str, Any]]:
    """Every event stored on ``subject`` so far."""
    sub = await bus.js.subscribe(bus.subject(subject), ordered_consumer=True)
    events = []
    try:
        while True:
            msg = await sub.next_msg(timeout=0.3)
            events.append(json.loads(msg.data))
    except nats.errors.TimeoutError:
        pass
    finally:
        await sub.unsubscribe()
    return events


async def wait_events(
    bus: Bus, subject: str, match: Callable[[dict[str, Any]], bool], *, timeout_s: float = 15.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = [event for event in await read_events(bus, subject) if match(event)]
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


async def conversation_of(bus: Bus, customer: str) -> list[str]:
    """The call_ids of ``customer``'s SMS conversations, oldest first."""
    started = await wait_events(
        bus, "call.started", lambda e: e["channel"] == "sms" and e["from_number"] == customer
    )
    return [event["call_id"] for event in started]


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def twilio() -> Iterator[TwilioStandIn]:
    stand_in = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def llm() -> Iterator[OpenAIStandIn]:
    server = OpenAIStandIn().start()
    yield server
    server.stop()


@dataclass
class Stack:
    gateway: ServiceProcess  # waits up to REPLY_BUDGET_S: replies come back in the TwiML
    replicas: list[ServiceProcess]  # two more gateways: short idle time and reply budget


@pytest.fixture(scope="module")
def stack(
    db_pool: Any,
    service_factory: Callable[..., ServiceProcess],
    test_env: TestEnvironment,
    twilio: TwilioStandIn,
    llm: OpenAIStandIn,
) -> Iterator[Stack]:
    """Gateways, conversation and tools in this session's namespace (tables migrated, seeded).

    The conversation service's LLM is the OpenAI-compatible stand-in; the replicas share the
    main gateway's namespace and public URL, as replicas behind one load balancer do.
    """
    models = [{"model": f"openai/{MODEL}", "api_base": llm.base_url, "api_key": "sk-test"}]
    main = [
        # the deployment trusts an SMS From number as verification: every service reads that
        service_factory(
            "tools", wait=False, extra_env={"CALLCENTER_TWILIO__SMS_CALLER_ID_VERIFIES": "true"}
        ),
        service_factory(
            "conversation",
            wait=False,
            extra_env={
                "CALLCENTER_LLM__MODELS": json.dumps(models),
                # let long replies through whole: splitting them is the gateway's part
                "CALLCENTER_CONVERSATION__SMS_MAX_CHARS": "5000",
            },
        ),
        service_factory("gateway", wait=False, extra_env=gateway_env(twilio)),
    ]
    replica_env = {
        **test_env.env,
        **gateway_env(
            twilio,
            CALLCENTER_GATEWAY__SMS_REPLY_BUDGET_S=str(REPLICA_BUDGET_S),
            CALLCENTER_GATEWAY__SMS_IDLE_TIMEOUT_S=str(IDLE_S),
            CALLCENTER_GATEWAY__REAPER_INTERVAL_S="0.1",
            PYTHONUNBUFFERED="1",
        ),
    }
    replicas = []
    for index in range(2):
        port = free_port()
        replicas.append(
            ServiceProcess(
                "gateway",
                env={**replica_env, "CALLCENTER_GATEWAY__PORT": str(port)},
                port=port,
                tag=f"{test_env.tag}/replica-{index}",
            ).start(wait=False)
        )
    try:
        for proc in [*main, *replicas]:
            proc.wait_ready()
        yield Stack(gateway=main[-1], replicas=replicas)
    finally:
        for proc in replicas:
            proc.stop()


@pytest.fixture(scope="module")
def gateway(stack: Stack) -> ServiceProcess:
    return stack.gateway


@pytest.fixture
def llm_script(llm: OpenAIStandIn) -> Iterator[Callable[..., None]]:
    llm.reset()

    def script(*replies: Reply) -> None:
        llm.script(MODEL, *replies)

    yield script
    llm.reset()


# -- signature ---------------------------------------------------------------------------


async def test_forged_or_missing_signature_is_refused(
    gateway: ServiceProcess, twilio: TwilioStandIn, bus: Bus
) -> None:
    customer = new_customer()
    texter = Texter(url=gateway.url, customer=customer)

    forged = await texter.send("Where is my order?", token="not-the-auth-token")
    missing = await texter.send("Where is my order?", signature="")

    assert forged.status_code == 403
    assert missing.status_code == 403
    assert not [e for e in await read_events(bus, "call.started") if e["from_number"] == customer]
    assert twilio.messages_to(customer) == []
    assert await texter.text("HELP") != []  # while a properly signed webhook is answered


# -- carrier keywords and media (no conversation needed) ----------------------------------


async def test_help_answers_the_configured_help_text(
    gateway: ServiceProcess, config: CallCenterConfig, bus: Bus
) -> None:
    customer = new_customer()
    texter = Texter(url=gateway.url, customer=customer)

    assert await texter.text("help") == [config.twilio.sms_help_text]
    assert await texter.text(" Info. ") == [config.twilio.sms_help_text]
    assert not [e for e in await read_events(bus, "call.started") if e["from_number"] == customer]


async def test_picture_without_text_gets_a_polite_note(
    gateway: ServiceProcess, config: CallCenterConfig
) -> None:
    texter = Texter(url=gateway.url, customer=new_customer())

    replies = await texter.text("", media=["https://api.twilio.com/2010-04-01/Media/ME1"])

    assert replies == [config.twilio.sms_media_text]


# -- conversations (gateway + conversation + tools) ---------------------------------------

MAYA = "+15555550101"  # seeded demo customer CUS-0001; ORD-1001 is hers (shipped with UPS)


def tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool results the model was shown in one LLM request."""
    return [json.loads(m["content"]) for m in request["messages"] if m.get("role") == "tool"]


def user_texts(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m.get("role") == "user"]


async def test_conversation_continues_across_messages_with_tools(
    gateway: ServiceProcess, llm: OpenAIStandIn, llm_script: Callable[..., None], bus: Bus
) -> None:
    texter = Texter(url=gateway.url, customer=MAYA)
    llm_script(
        Reply(tool_calls=[ToolCall("verify_identity", {"method": "caller_id"})]),
        Reply(tool_calls=[ToolCall("check_order_status", {"order_id": "ORD-1001"})]),
        Reply(text="Your order ORD-1001 shipped with UPS and arrives in two days."),
        Reply(text="You're welcome! Anything else?"),
        Reply(text="Goodbye, Maya!", tool_calls=[ToolCall("end_call", {})]),
    )

    first = await texter.text("Hi, where is my order ORD-1001?")
    second = await texter.text("Great, thanks")
    third = await texter.text("No, that's all. Bye!")

    assert first == ["Your order ORD-1001 shipped with UPS and arrives in two days."]
    assert second == ["You're welcome! Anything else?"]
    assert third == ["Goodbye, Maya!"]
    requests = llm.requests_for(MODEL)
    # the texting number verified the customer, so the order tool gave the owner's full details
    verification, order = tool_results(requests[2])
    assert verification["success"] is True, verification
    assert order["success"] is True and order["data"]["verified"] is True, order
    # one conversation: the model saw the earlier messages when answering the later ones
    assert user_texts(requests[4])[:2] == ["Hi, where is my order ORD-1001?", "Great, thanks"]
    (call_id,) = await conversation_of(bus, MAYA)
    ended = await wait_events(bus, "call.ended", lambda e: e["call_id"] == call_id)
    assert [(e["reason"], e["channel"], e["turn_count"]) for e in ended] == [
        ("completed", "sms", 3)
    ]

    # after goodbye, the next message starts a new conversation
    await texter.text("One more thing")
    assert len(await conversation_of(bus, MAYA)) == 2


async def test_stop_ends_replies_until_start(
    gateway: ServiceProcess,
    llm: OpenAIStandIn,
    llm_script: Callable[..., None],
    config: CallCenterConfig,
    twilio: TwilioStandIn,
    bus: Bus,
) -> None:
    customer = new_customer()
    texter = Texter(url=gateway.url, customer=customer)
    llm_script(Reply(text="Hello! How can I help?"))
    assert await texter.text("hello") == ["Hello! How can I help?"]
    (call_id,) = await conversation_of(bus, customer)

    assert await texter.text("STOP") == [config.twilio.sms_opt_out_text]
    assert await texter.text("Where is my order ORD-1001?") == []
    assert await texter.text("stop") == []  # confirmed once only

    assert len(llm.requests_for(MODEL)) == 1  # the message after STOP never reached the model
    ended = await wait_events(bus, "call.ended", lambda e: e["call_id"] == call_id)
    assert [e["reason"] for e in ended] == ["opted_out"]
    assert twilio.messages_to(customer) == []

    llm_script(Reply(text="Welcome back! What can I do for you?"))
    assert await texter.text("START") == [config.twilio.sms_opt_in_text]
    assert await texter.text("hi again") == ["Welcome back! What can I do for you?"]
    assert len(await conversation_of(bus, customer)) == 2


async def test_redelivered_message_is_answered_once(
    gateway: ServiceProcess, llm: OpenAIStandIn, llm_script: Callable[..., None], bus: Bus
) -> None:
    customer = new_customer()
    texter = Texter(url=gateway.url, customer=customer)
    llm_script(Reply(text="Yes, we ship to Canada."))
    sid = new_sid("SM")

    first = await texter.text("Do you ship to Canada?", sid=sid)
    again = await texter.text("Do you ship to Canada?", sid=sid)

    assert first == ["Yes, we ship to Canada."]
    assert again == []
    assert len(llm.requests_for(MODEL)) == 1
    (call_id,) = await conversation_of(bus, customer)
    turns = await wait_events(bus, "turn.completed", lambda e: e["call_id"] == call_id)
    assert len(turns) == 1


async def test_picture_with_text_gets_the_note_and_the_answer(
    gateway: ServiceProcess, llm_script: Callable[..., None], config: CallCenterConfig
) -> None:
    texter = Texter(url=gateway.url, customer=new_customer())
    llm_script(Reply(text="I'm sorry it arrived damaged. I can start a return for you."))

    replies = await texter.text(
        "The box arrived crushed, see photo", media=["https://api.twilio.com/Media/ME1"]
    )

    assert replies == [
        config.twilio.sms_media_text,
        "I'm sorry it arrived damaged. I can start a return for you.",
    ]


async def test_slow_reply_is_sent_through_the_messages_api(
    stack: Stack, llm_script: Callable[..., None], twilio: TwilioStandIn
) -> None:
    customer = new_customer()
    texter = Texter(url=stack.replicas[0].url, customer=customer)
    # the model takes longer to answer than this gateway may keep Twilio's webhook waiting
    llm_script(Reply(text="Your refund was issued yesterday.", hang_s=REPLICA_BUDGET_S + 1.5))

    assert await texter.text("Did you refund me?") == []

    (message,) = await twilio.wait_for_messages(1, to=customer)
    assert message["body"] == "Your refund was issued yesterday."
    assert message["from"] == BUSINESS
    assert all(request.authorized for request in twilio.requests)


async def test_long_answer_arrives_split_at_sentence_boundaries(
    gateway: ServiceProcess, llm_script: Callable[..., None]
) -> None:
    texter = Texter(url=gateway.url, customer=new_customer())
    text = " ".join(
        f"Step {n}: put item {n} back in its bag with the tags on and note its order number."
        for n in range(1, 50)
    )
    assert len(text) > 3200
    llm_script(Reply(text=text, chunk_chars=64))

    replies = await texter.text("How do I send several items back?")

    assert len(replies) == 3
    assert all(len(reply) <= 1600 and reply.endswith(".") for reply in replies)
    assert " ".join(replies) == text


async def test_no_late_reply_after_stop(
    stack: Stack,
    llm_script: Callable[..., None],
    config: CallCenterConfig,
    twilio: TwilioStandIn,
    bus: Bus,
) -> None:
    customer = new_customer()
    replica = stack.replicas[0]
    texter = Texter(url=replica.url, customer=customer)
    llm_script(Reply(text="Let me check that for you.", hang_s=REPLICA_BUDGET_S + 1.5))
    mark = replica.log_mark()

    assert await texter.text("Can you check my refund?") == []  # the reply is still coming
    assert await texter.text("STOP") == [config.twilio.sms_opt_out_text]

    (call_id,) = await conversation_of(bus, customer)
    assert await wait_events(bus, "turn.completed", lambda e: e["call_id"] == call_id)
    # the gateway has decided about the late reply: dropped it, or (were it broken) sent it
    await replica.wait_for_log(
        "sms reply dropped: the customer opted out meanwhile",
        "sms reply not sent: the customer opted out",
        "sms sent",
        since=mark,
    )
    assert twilio.messages_to(customer) == []


# -- two gateway replicas -------------------------------------------------------------------


async def exchange(texter: Texter, twilio: TwilioStandIn, body: str) -> list[str]:
    """Text ``body``; the reply, whether in the webhook's TwiML or sent later through REST."""
    before = len(twilio.messages_to(texter.customer))
    inline = await texter.text(body)
    if inline:
        return inline
    sent = await twilio.wait_for_messages(before + 1, to=texter.customer)
    return [message["body"] for message in sent[before:]]


async def reaper_passes(proc: ServiceProcess, *, more_than: int, timeout_s: float = 15) -> None:
    """Wait until ``proc``'s session reaper finished ``more_than`` more passes (its /metrics)."""

    async def passes(client: httpx.AsyncClient) -> float:
        exposition = (await client.get(f"{proc.url}/metrics")).text
        line = next(
            (
                row
                for row in exposition.splitlines()
                if row.startswith('gateway_background_passes_total{loop="session-reaper"}')
            ),
            None,
        )
        return float(line.rsplit(" ", 1)[1]) if line else 0.0

    async with httpx.AsyncClient(timeout=5) as client:
        start = await passes(client)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while await passes(client) < start + more_than + 1:
            assert asyncio.get_running_loop().time() < deadline, "the reaper stopped passing"
            await asyncio.sleep(0.05)


async def test_idle_conversation_ends_once_across_replicas(
    stack: Stack, llm_script: Callable[..., None], twilio: TwilioStandIn, bus: Bus
) -> None:
    customer = new_customer()
    first, second = (Texter(url=proc.url, customer=customer) for proc in stack.replicas)
    published: list[dict[str, Any]] = []

    async def record(msg: Any) -> None:
        published.append(json.loads(msg.data))

    # every publish of call.ended, including any that JetStream would drop as a duplicate
    sub = await bus.nc.subscribe(bus.subject("call.ended"), cb=record)
    try:
        llm_script(Reply(text="Hi! What can I do for you?"), Reply(text="Sure, one moment."))
        assert await exchange(first, twilio, "hi") == ["Hi! What can I do for you?"]
        assert await exchange(second, twilio, "I need to change my address") == [
            "Sure, one moment."
        ]
        (call_id,) = await conversation_of(bus, customer)  # one conversation across replicas

        ended = await wait_events(bus, "call.ended", lambda e: e["call_id"] == call_id)
        # every replica's reaper has passed over the ended conversation twice more since
        await asyncio.gather(*(reaper_passes(proc, more_than=2) for proc in stack.replicas))
    finally:
        await sub.unsubscribe()

    assert [(e["reason"], e["turn_count"]) for e in ended] == [("idle_timeout", 2)]
    assert [e["call_id"] for e in published].count(call_id) == 1

    llm_script(Reply(text="Welcome back!"))
    assert await exchange(first, twilio, "hello again") == ["Welcome back!"]
    assert len(await conversation_of(bus, customer)) == 2


async def test_reply_still_being_written_at_shutdown_is_delivered(
    stack: Stack, llm_script: Callable[..., None], twilio: TwilioStandIn
) -> None:
    """Runs last: it stops a replica."""
    replica = stack.replicas[1]
    customer = new_customer()
    texter = Texter(url=replica.url, customer=customer)
    llm_script(Reply(text="Your exchange ships tomorrow.", hang_s=REPLICA_BUDGET_S + 1.5))
    assert await texter.text("When does my exchange ship?") == []

    exit_code = await asyncio.to_thread(replica.stop)  # SIGTERM while the model is still busy

    assert exit_code == 0, replica.log_tail(60)
    (message,) = await twilio.wait_for_messages(1, to=customer, timeout_s=1.0)
    assert message["body"] == "Your exchange ships tomorrow."
