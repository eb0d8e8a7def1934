"""Which phone number a tool may act toward (call back, text) for this call.

A stranger must not be able to make us call or text a customer: before verification only the
number the call itself comes from (the gateway's record of a voice call or SMS thread, passed by
the conversation service, never the model's arguments) may be used; a verified customer may use
the number on their account, their own line, or another number that is not some other customer's.
"""

from __future__ import annotations

import asyncpg

from callcenter.tools.domain import normalize_phone
from callcenter.tools.registry import SkillContext, ToolError

NEED_VERIFICATION = (
    "I can arrange that to the number you're contacting us from, or to the number on your "
    "account once I've verified you. Would you like to verify now?"
)
NOT_YOUR_NUMBER = (
    "I can only arrange that to the number on your account or the one you're contacting us from."
)


async def authorized_phone(
    conn: asyncpg.Connection, ctx: SkillContext, requested: str | None
) -> str | None:
    """The E.164 number to act toward, or None when there is none to use.

    Raises:
        ToolError: ``verification_required`` when an unverified caller names a number other than
            their own; ``not_your_number`` when it belongs to another customer.

    """
    own_line = normalize_phone(ctx.call.caller_number) if ctx.call.caller_number else None
    account_phone = None
    if ctx.customer_id:
        account_phone = await conn.fetchval(
            "SELECT phone FROM customers WHERE customer_id = $1", ctx.customer_id
        )
    raw = requested or account_phone or own_line
    if not raw:
        return None
    phone = normalize_phone(raw)
    if phone in (own_line, account_phone):
        return phone
    if not ctx.customer_id:
        raise ToolError("verification_required", NEED_VERIFICATION)
    owner = await conn.fetchval(
        "SELECT customer_id FROM customers WHERE phone = $1 AND customer_id <> $2 LIMIT 1",
        phone,
        ctx.customer_id,
    )
    if owner is not None:
        raise ToolError("not_your_number", NOT_YOUR_NUMBER)
    return phone
