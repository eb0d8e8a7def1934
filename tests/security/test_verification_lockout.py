"""Brute-forcing identity verification across conversations and channels (issue 13 point 5).

The per-call limit alone let an attacker start a new chat and guess again. Here:

- **per target**: failed order-number + ZIP guesses against one customer's order, each from a
  new conversation on another channel (chat, SMS, voice), lock that order and customer; the
  lock is recorded, the reply says how to get help (a person, or a one-time code to the contact on
  file), and a further attempt fails even with the right ZIP; a code sent to the contact on file
  after the lock does verify the owner (the help path is real), a wrong one does not;
- **per source**: chats from one client address guessing at many different orders (never the
  same one twice, so no target lock) lock that address; a new chat from it is refused even with a
  correct answer for an untouched account, while a chat from another address verifies (control).

The tools service is asked on ``tools.call`` exactly as the conversation service asks it; the
chats are real gateway sessions, so the source address comes from the gateway's own record.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import websockets

from callcenter.tools.verification import issue_code
from tests.security.conftest import SecureSystem


async def _customers(system: SecureSystem, count: int) -> list[dict[str, Any]]:
    """Orders of ``count`` distinct customers no other security test verifies as or attacks."""
    rows = await system.db.fetch(
        """
        SELECT DISTINCT ON (c.customer_id) o.order_id, c.customer_id, c.zip
        FROM orders o JOIN customers c USING (customer_id)
        WHERE c.customer_id NOT IN (
            SELECT customer_id FROM orders WHERE order_id IN ('ORD-1001', 'ORD-1006')
        )
        ORDER BY c.customer_id DESC, o.order_id
        """
    )
    assert len(rows) >= count, "the demo seed has too few customers"
    return [dict(r) for r in rows[:count]]


async def _verify(
    system: SecureSystem, *, call_id: str, channel: str, order_id: str, zip_code: str
) -> dict[str, Any]:
    return await system.bus.request_json(
        "tools.call",
        {
            "name": "verify_identity",
            "arguments": {"method": "order_number_zip", "order_id": order_id, "zip": zip_code},
            "context": {
                "call_id": call_id,
                "channel": channel,
                "tool_call_id": "call_" + uuid.uuid4().hex[:8],
            },
        },
        timeout_s=15,
    )


async def _by_code(system: SecureSystem, *, email: str, code: str) -> dict[str, Any]:
    return await system.bus.request_json(
        "tools.call",
        {
            "name": "verify_identity",
            "arguments": {"method": "one_time_code", "email": email, "code": code},
            "context": {
                "call_id": f"help-{uuid.uuid4().hex[:10]}",
                "channel": "chat",
                "tool_call_id": "call_" + uuid.uuid4().hex[:8],
            },
        },
        timeout_s=15,
    )


def _error(result: dict[str, Any]) -> str | None:
    return None if result.get("success") else result.get("error")


def _says_how_to_get_help(result: dict[str, Any]) -> None:
    message = json.dumps(result).lower()
    assert "team" in message and "one-time code" in message and "on file" in message, result


async def test_failures_across_calls_and_channels_lock_the_target(
    secure_system: SecureSystem,
) -> None:
    (target,) = await _customers(secure_system, 1)
    limit = secure_system.config.security.verification_max_failures_per_target
    channels = ["chat", "sms", "voice"]
    errors = []
    for attempt in range(limit):  # each guess from a brand-new conversation
        result = await _verify(
            secure_system,
            call_id=f"brute-{uuid.uuid4().hex[:10]}",
            channel=channels[attempt % 3],
            order_id=target["order_id"],
            zip_code=f"{attempt:05d}" if f"{attempt:05d}" != target["zip"] else "99999",
        )
        errors.append(_error(result))
        last = result
    assert errors == ["verification_failed"] * (limit - 1) + ["verification_locked"], errors
    _says_how_to_get_help(last)

    right = await _verify(
        secure_system,
        call_id=f"brute-{uuid.uuid4().hex[:10]}",
        channel="chat",
        order_id=target["order_id"],
        zip_code=target["zip"],
    )
    assert _error(right) == "verification_locked", right
    _says_how_to_get_help(right)
    assert "verified_customer_id" not in json.dumps(right)

    # The help path the reply offers: a code sent to the contact on file verifies the owner.
    async with secure_system.db.acquire() as conn:
        code = await issue_code(conn, target["customer_id"])
    email = await secure_system.db.fetchval(
        "SELECT email FROM customers WHERE customer_id = $1", target["customer_id"]
    )
    wrong = await _by_code(secure_system, email=email, code="000000" if code != "000000" else "1")
    assert _error(wrong) == "verification_failed", wrong
    owner = await _by_code(secure_system, email=email, code=code)
    assert owner.get("success") is True, owner
    assert owner["data"]["verified_customer_id"] == target["customer_id"]

    recorded = await secure_system.db.fetch(
        "SELECT kind, subject FROM verification_lockouts WHERE subject = ANY($1::text[])",
        [f"customer:{target['customer_id']}", f"order:{target['order_id']}"],
    )
    assert {r["subject"] for r in recorded} == {
        f"customer:{target['customer_id']}",
        f"order:{target['order_id']}",
    }


async def _chat_from(system: SecureSystem, address: str) -> str:
    """Open a real web chat from ``address``; return its call id (the gateway records the IP)."""
    url = system.gateway.url.replace("http://", "ws://") + "/chat/ws"
    async with websockets.connect(url, local_addr=(address, 0)) as ws:
        hello = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "end"}))
    return str(hello["call_id"])


async def test_failures_from_one_address_lock_that_address(secure_system: SecureSystem) -> None:
    innocent, other = (await _customers(secure_system, 3))[1:]  # untouched by the target test
    limit = secure_system.config.security.verification_max_failures_per_source
    per_call = 4  # under the per-call limit: each chat is a new conversation
    errors = []
    guess = 0
    while guess < limit:
        call_id = await _chat_from(secure_system, "127.0.3.1")
        for _ in range(min(per_call, limit - guess)):
            result = await _verify(
                secure_system,
                call_id=call_id,
                channel="chat",
                order_id=f"ORD-9{uuid.uuid4().int % 10**6:06d}",  # a new target every time
                zip_code="00000",
            )
            errors.append(_error(result))
            guess += 1
    # No target was locked (each guess was at another order); the last guess locked the address.
    assert errors == ["verification_failed"] * (limit - 1) + ["verification_locked"], errors

    refused = await _verify(
        secure_system,
        call_id=await _chat_from(secure_system, "127.0.3.1"),
        channel="chat",
        order_id=innocent["order_id"],
        zip_code=innocent["zip"],
    )
    assert _error(refused) == "verification_locked", refused
    _says_how_to_get_help(refused)

    elsewhere = await _verify(
        secure_system,
        call_id=await _chat_from(secure_system, "127.0.3.2"),
        channel="chat",
        order_id=other["order_id"],
        zip_code=other["zip"],
    )
    assert elsewhere.get("success") is True, elsewhere
    assert await secure_system.db.fetchval(
        "SELECT count(*) FROM verification_lockouts WHERE kind = 'source' AND subject = $1",
        "ip:127.0.3.1",
    )
