"""Card numbers and SSNs are redacted where customer text enters, so no store ever holds them.

Covers issue 13 points 3 and 4:

- **formats** (point 4): card numbers of 13-19 digits passing Luhn with any separator style
  (spaces, dashes, dots, slashes, mixed, run into other digits), SSNs with any separator, and a
  bare 9-digit SSN when the customer says it is one; the control cases (phone numbers, ZIP+4,
  order numbers, prices, dates, a 16-digit number failing Luhn) are left alone;
- **every store** (point 3): an unverified web-chat visitor and an SMS sender put such numbers in
  a request the offline engine keeps pending until they verify (its slots live in Redis for the
  session's TTL), then a verified chat customer repeats them and leaves unhappy so every post-call
  effect runs. Every key of the deployment's Redis namespace (read while the request is pending),
  every table of its PostgreSQL schema, every event of the calls on JetStream, every service log,
  every email the SMTP stand-in received and the tickets are searched for the raw digits.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from twilio.request_validator import RequestValidator

from callcenter.common.pii import (
    CARD_MASK,
    SSN_MASK,
    redact,
    redact_customer_text,
)
from tests.security.conftest import PUBLIC_BASE_URL, SecureSystem
from tests.support.chat_client import ChatVisitor

CAUGHT = {
    "4111 1111 1111 1111": CARD_MASK,
    "4111-1111-1111-1111": CARD_MASK,
    "4111.1111.1111.1111": CARD_MASK,
    "4111/1111/1111/1111": CARD_MASK,
    "4111 - 1111 - 1111 - 1111": CARD_MASK,
    "4111111111111111": CARD_MASK,
    "3782 822463 10005": CARD_MASK,  # Amex, 15 digits in 4-6-5
    "6011.0009.9013.9424": CARD_MASK,
    "4222222222222": CARD_MASK,  # 13 digits
    "card4111111111111111.": CARD_MASK,
    "078-05-1120": SSN_MASK,
    "078.05.1120": SSN_MASK,
    "078 05 1120": SSN_MASK,
    "my SSN is 078051120": SSN_MASK,
    "social security number: 078051120": SSN_MASK,
    "my social is 078051120": SSN_MASK,
}
LEFT_ALONE = [
    "+1 (555) 123-4567",
    "ZIP 62701-1234",
    "order ORD-1006",
    "it cost 1249.99 on 2026.12.01",
    "4111 1111 1111 1112",  # fails Luhn
    "call me at 078051120",  # nine digits, no SSN context
    "my verification code is 482913",  # one-time codes must reach verify_identity
]


@pytest.mark.parametrize("text", list(CAUGHT))
def test_common_formats_are_redacted(text: str) -> None:
    redacted = redact_customer_text(f"here: {text} thanks")
    assert CAUGHT[text] in redacted, redacted
    assert not re.search(r"\d{4}", redacted.replace("here:", "")), redacted
    assert CAUGHT[text] in redact(text)


@pytest.mark.parametrize("text", LEFT_ALONE)
def test_other_numbers_are_left_alone(text: str) -> None:
    assert redact_customer_text(text) == text


def test_a_card_run_into_other_digits_is_still_found() -> None:
    redacted = redact_customer_text("cards 4111 1111 1111 1111 5 and 5500-0000-0000-0004 77")
    assert redacted == f"cards {CARD_MASK} 5 and {CARD_MASK} 77"


# --- every store ---------------------------------------------------------------------------------

CARD_DOTS = "4111.1111.1111.1111"
CARD_SPACES = "5500 0000 0000 0004"
SSN_BARE = "078051120"
SSN_DASHED = "219-09-9999"
RAW = [CARD_DOTS, CARD_DOTS.replace(".", ""), CARD_SPACES, CARD_SPACES.replace(" ", ""), SSN_BARE]
RAW += [SSN_DASHED, SSN_DASHED.replace("-", "")]
PENDING_MESSAGE = (
    f"Where is my order? I paid with card {CARD_DOTS}, or maybe {CARD_SPACES}, "
    f"my SSN is {SSN_BARE} if you need it"
)
UNHAPPY_MESSAGE = (
    f"The card {CARD_DOTS} was charged twice and my social security number {SSN_DASHED} is on "
    "the invoice. This is still not resolved and I am very unhappy."
)


def _leaks(text: str) -> list[str]:
    return [raw for raw in RAW if raw in text]


async def _redis_dump(system: SecureSystem) -> str:
    """Every key of the namespace and its value, whatever its type."""
    client = aioredis.from_url(system.config.redis.url, decode_responses=True)
    out: list[str] = []
    try:
        async for key in client.scan_iter(match=system.config.redis.key_prefix + "*", count=500):
            kind = await client.type(key)
            if kind == "string":
                value: Any = await client.get(key)
            elif kind == "hash":
                value = await client.hgetall(key)
            elif kind == "list":
                value = await client.lrange(key, 0, -1)
            elif kind == "set":
                value = sorted(await client.smembers(key))
            elif kind == "zset":
                value = await client.zrange(key, 0, -1, withscores=True)
            elif kind == "stream":
                value = await client.xrange(key)
            else:
                value = kind
            out.append(f"{key} {json.dumps(value, default=str)}")
    finally:
        await client.aclose()
    return "\n".join(out)


async def _database_dump(system: SecureSystem) -> str:
    tables = await system.db.fetch(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
        system.config.database.schema_name,
    )
    out = []
    for row in tables:
        schema = system.config.database.schema_name
        rows = await system.db.fetch(f'SELECT * FROM "{schema}"."{row["table_name"]}"')
        out.append(row["table_name"] + json.dumps([dict(r) for r in rows], default=str))
    return "\n".join(out)


async def _sms(system: SecureSystem, number: str, body: str) -> str:
    form = {
        "AccountSid": "AC" + "0" * 32,
        "MessageSid": "SM" + uuid.uuid4().hex,
        "From": number,
        "To": "+15550001111",
        "Body": body,
        "NumMedia": "0",
    }
    signature = RequestValidator(system.auth_token).compute_signature(
        PUBLIC_BASE_URL + "/twilio/sms", form
    )
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=30) as client:
        response = await client.post(
            "/twilio/sms", data=form, headers={"X-Twilio-Signature": signature}
        )
    assert response.status_code == 200, response.text
    return response.text


async def test_no_store_event_log_email_or_ticket_holds_a_raw_number(
    secure_system: SecureSystem,
) -> None:
    customer = await secure_system.db.fetchrow(
        "SELECT c.email, c.zip FROM customers c JOIN orders o USING (customer_id) "
        "WHERE o.order_id = 'ORD-1001'"
    )
    texter = "+1555" + str(uuid.uuid4().int)[:7]
    emails_before = len(secure_system.smtp.messages_to(customer["email"]))
    async with ChatVisitor(secure_system.gateway.url) as pending_chat:
        asked = await pending_chat.say(PENDING_MESSAGE)
        assert asked.kind == "done"
        await _sms(secure_system, texter, PENDING_MESSAGE)
        # Both requests now wait for verification, their slots in Redis.
        redis_text = await _redis_dump(secure_system)
        assert secure_system.config.redis.key_prefix in redis_text  # the control: keys exist
        assert not _leaks(redis_text), _leaks(redis_text)
        await pending_chat.end()
        pending_id = pending_chat.call_id

    async with ChatVisitor(secure_system.gateway.url) as chat:
        await chat.say("Show my recent orders")
        verified = await chat.say(f"ORD-1001 and ZIP {customer['zip']}")
        assert "verify_identity" in verified.tools, verified.text
        reply = await chat.say(UNHAPPY_MESSAGE)
        assert reply.kind == "done" and not _leaks(reply.text), reply.text
        await chat.end()
        call_id = chat.call_id

    mails = await asyncio.to_thread(
        secure_system.smtp.wait_for, customer["email"], count=emails_before + 1, timeout_s=60
    )
    assert len(mails) > emails_before, "the unhappy verified customer got no follow-up email"
    for mail in secure_system.smtp.messages:
        assert not _leaks(str(mail.message)), str(mail.message)

    for _ in range(300):
        if await secure_system.db.fetchval(
            "SELECT count(*) FROM turns WHERE call_id = $1", call_id
        ) >= 3 and await secure_system.db.fetchval(
            "SELECT count(*) FROM tickets WHERE call_id = $1", call_id
        ):
            break
        await asyncio.sleep(0.1)
    stored = await _database_dump(secure_system)
    assert CARD_MASK in stored and SSN_MASK in stored  # the control: the words were stored
    assert not _leaks(stored), [
        (raw, stored[stored.index(raw) - 200 :][:400]) for raw in _leaks(stored)
    ]

    sms_call = await secure_system.db.fetchval(
        "SELECT call_id FROM calls WHERE channel = 'sms' AND from_number = $1", texter
    )
    events = await secure_system.events_of({pending_id, call_id, sms_call})
    assert len(events) >= 6
    for data in events:
        assert not _leaks(data.decode(errors="replace")), data

    assert not _leaks(await _redis_dump(secure_system))
    await asyncio.sleep(0.5)  # let the last log lines reach the files
    assert not _leaks(secure_system.all_logs())
