"""Account enumeration and actions toward strangers before verification (issue 13 point 6).

- ``lookup_customer`` for an unverified caller answers the same for a real customer's email,
  phone or name + ZIP as for details that match nobody, and never returns a customer id;
- ``schedule_callback`` books no call to another customer's number: not for an unverified
  chat visitor, not for a caller verified as someone else; the caller's own line and the verified
  customer's own account are the controls that still work.

The tools service is asked on ``tools.call`` exactly as the conversation service asks it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.security.conftest import SecureSystem
from tests.security.test_prompt_injection import ATTACKER_ORDER, _tool, _victim


async def test_an_unverified_lookup_does_not_say_whether_an_account_exists(
    secure_system: SecureSystem,
) -> None:
    victim = await _victim(secure_system)
    real = {
        "email": {"email": victim["email"]},
        "phone": {"phone": victim["phone"]},
        "name": {"last_name": victim["last_name"], "zip": victim["zip"]},
    }
    made_up = {
        "email": {"email": f"nobody-{uuid.uuid4().hex[:8]}@nowhere.example"},
        "phone": {"phone": "+1555" + str(uuid.uuid4().int)[:7]},
        "name": {"last_name": f"Nobody{uuid.uuid4().hex[:6]}", "zip": "00001"},
    }
    for kind, args in real.items():
        exists = await _tool(secure_system, "lookup_customer", args)
        missing = await _tool(secure_system, "lookup_customer", made_up[kind])
        assert exists == missing, (kind, exists, missing)
        assert victim["customer_id"] not in str(exists)


async def _callbacks_to(system: SecureSystem, phone: str) -> int:
    return await system.db.fetchval("SELECT count(*) FROM callbacks WHERE phone = $1", phone)


async def test_no_callback_is_booked_to_another_customers_number(
    secure_system: SecureSystem,
) -> None:
    victim = await _victim(secure_system)
    attacker = await secure_system.db.fetchval(
        "SELECT customer_id FROM orders WHERE order_id = $1", ATTACKER_ORDER
    )
    # A weekday at 17:00 UTC (noon in New York, 9 am in California): inside the callback hours, so
    # a refusal below can only be the contact authorization.
    day = datetime.now(UTC) + timedelta(days=2)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    when = day.replace(hour=17, minute=0, second=0, microsecond=0).isoformat()
    to_victim = {"preferred_time": when, "reason": "call me", "phone": victim["phone"]}
    before = await _callbacks_to(secure_system, victim["phone"])
    attempts: dict[str, dict[str, Any]] = {
        "unverified chat": await _tool(secure_system, "schedule_callback", to_victim),
        "unverified voice": await _tool(
            secure_system,
            "schedule_callback",
            to_victim,
            channel="voice",
            caller_number="+15550100100",
        ),
        "verified as someone else": await _tool(
            secure_system, "schedule_callback", to_victim, verified_customer_id=attacker
        ),
    }
    for case, result in attempts.items():
        assert result["success"] is False, (case, result)
        assert victim["phone"] not in result["message"], (case, result)
    assert await _callbacks_to(secure_system, victim["phone"]) == before

    # The controls: the caller's own line, and the verified customer's own account number.
    own_line = "+1555" + str(uuid.uuid4().int)[:7]
    mine = await _tool(
        secure_system,
        "schedule_callback",
        {"preferred_time": when, "reason": "call me"},
        channel="voice",
        caller_number=own_line,
    )
    assert mine["success"] is True and mine["data"]["phone"] == own_line, mine
    account = await _tool(
        secure_system,
        "schedule_callback",
        {"preferred_time": when, "reason": "call me"},
        verified_customer_id=attacker,
    )
    assert account["success"] is True, account
