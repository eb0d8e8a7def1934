"""verify_identity: prove who the caller is (caller ID, order number + ZIP, or a one-time code).

Deterministic checks only, limited per call and, across calls and channels, per target (the
order and customer an attempt is against) and per source (chat IP, caller phone number): a
locked target or source fails even with the right answer, and the reply says how to get help. On success the reply carries ``verified_customer_id``, which the
conversation service stores in the session; every later tool authorises from that, not from
anything the model writes.
"""

from __future__ import annotations

from typing import Any, Literal

import asyncpg
from pydantic import Field

from callcenter.tools.domain import (
    OrderId,
    find_customers,
    normalize_phone,
    normalize_zip,
)
from callcenter.tools.registry import SkillContext, ToolArguments, ToolError, skill
from callcenter.tools.verification import (
    LOCKED_MESSAGE,
    MAX_FAILED_ATTEMPTS,
    attempt_source,
    code_sent_since_lock,
    failed_attempts,
    lock_reason,
    record_attempt,
    record_lockouts,
    redeem_code,
)
from callcenter.tools.verified_customer import record_verified

FAILED_MESSAGE = (
    "I'm sorry, those details don't match our records, so I couldn't verify you. "
    "Could you check them and try again?"
)


class VerifyIdentityArgs(ToolArguments):
    """Which check to run, and its details."""

    method: Literal["caller_id", "order_number_zip", "one_time_code"] = Field(
        description=(
            "caller_id: the number the customer calls or texts from matches the account "
            "(voice and SMS only, needs no details); order_number_zip: an order number plus the "
            "account's ZIP code; one_time_code: the code we sent the customer, plus their "
            "customer_id, email or phone."
        )
    )
    order_id: OrderId | None = None
    zip: str | None = Field(default=None, max_length=10, description="ZIP code, with order_id.")
    code: str | None = Field(
        default=None, max_length=12, description="The one-time code the customer received."
    )
    customer_id: str | None = Field(
        default=None, max_length=32, description="The account id from lookup_customer, with code."
    )
    email: str | None = Field(default=None, max_length=254, description="Account email, with code.")
    phone: str | None = Field(default=None, max_length=32, description="Account phone, with code.")


async def _by_caller_id(conn: asyncpg.Connection, ctx: SkillContext) -> str | None:
    if ctx.call.channel not in ("voice", "sms") or not ctx.call.caller_id_trusted:
        raise ToolError(
            "method_unavailable",
            "I can't verify you by phone number here. I can use an order number and your ZIP code instead.",
        )
    if not ctx.call.caller_number:
        return None
    found = await find_customers(conn, phone=normalize_phone(ctx.call.caller_number))
    return found[0]["customer_id"] if len(found) == 1 else None


async def _by_order_and_zip(conn: asyncpg.Connection, args: VerifyIdentityArgs) -> str | None:
    if not args.order_id or not args.zip:
        raise ToolError(
            "invalid_arguments", "I need both the order number and the ZIP code on the account."
        )
    row = await conn.fetchrow(
        """
        SELECT c.customer_id FROM orders o JOIN customers c USING (customer_id)
        WHERE o.order_id = $1 AND (c.zip = $2 OR left(o.shipping_address->>'zip', 5) = $2)
        """,
        args.order_id,
        normalize_zip(args.zip),
    )
    return row["customer_id"] if row else None


async def _code_owner(conn: asyncpg.Connection, args: VerifyIdentityArgs) -> str | None:
    """The account a one-time code attempt names (by customer_id, email or phone)."""
    if args.customer_id:
        return await conn.fetchval(
            "SELECT customer_id FROM customers WHERE customer_id = $1", args.customer_id.upper()
        )
    found = await find_customers(conn, phone=args.phone, email=args.email)
    return found[0]["customer_id"] if len(found) == 1 else None


async def _by_code(conn: asyncpg.Connection, args: VerifyIdentityArgs) -> str | None:
    if not args.code or not (args.customer_id or args.email or args.phone):
        raise ToolError(
            "invalid_arguments",
            "I need the code we sent you, and the email or phone number on your account.",
        )
    customer_id = await _code_owner(conn, args)
    if customer_id and await redeem_code(conn, customer_id, args.code):
        return str(customer_id)
    return None


async def _targets(
    conn: asyncpg.Connection, args: VerifyIdentityArgs, ctx: SkillContext
) -> list[str]:
    """What this attempt is against: the order and customer it would verify as.

    Failures are counted against these across every call and channel (see
    :mod:`callcenter.tools.verification`), so a new chat does not start the count again.
    """
    targets: list[str] = []
    owner: str | None = None
    if args.method == "order_number_zip" and args.order_id:
        targets.append(f"order:{args.order_id}")
        owner = await conn.fetchval(
            "SELECT customer_id FROM orders WHERE order_id = $1", args.order_id
        )
    elif args.method == "one_time_code" and (args.customer_id or args.email or args.phone):
        owner = await _code_owner(conn, args)
    elif args.method == "caller_id" and ctx.call.caller_number:
        found = await find_customers(conn, phone=normalize_phone(ctx.call.caller_number))
        owner = found[0]["customer_id"] if len(found) == 1 else None
    if owner:
        targets.append(f"customer:{owner}")
    return targets


@skill(
    name="verify_identity",
    description=(
        "Verify the customer's identity. Required before you share any account or order details "
        "beyond public tracking, and before any change (cancel, return, exchange, address, "
        "callback to the account's number). Methods: caller_id (phone and SMS only), "
        "order_number_zip (an order number and the account's ZIP code) or one_time_code. When "
        "the customer has already given an order number and ZIP code, call this at once rather "
        "than asking again, then carry on with what they asked for. Never guess or reuse details "
        "the customer did not give; after a failure ask them to check the details. Returns "
        "verified_customer_id on success."
    ),
    arguments=VerifyIdentityArgs,
)
async def verify_identity(args: VerifyIdentityArgs, ctx: SkillContext) -> dict[str, Any]:
    """Run one deterministic identity check, limited per call."""
    call_id = ctx.call.call_id or "-"
    async with ctx.connection() as conn:
        if await failed_attempts(conn, call_id) >= MAX_FAILED_ATTEMPTS:
            raise ToolError(
                "too_many_attempts",
                "I couldn't verify you after several tries, so I can't try again on this call. "
                "I can connect you to an agent who can help.",
            )
        source = await attempt_source(conn, call_id)
        targets = await _targets(conn, args, ctx)
        attempt = {"call_id": call_id, "method": args.method, "targets": targets, "source": source}
        held = targets
        if args.method == "one_time_code" and await code_sent_since_lock(conn, targets):
            held = []  # the code went to the contact on file after the lock: the help path
        locked = await lock_reason(conn, targets=held, source=source)
        if locked is not None:  # fails even with the right answer, and counts as a failure
            await record_attempt(conn, customer_id=None, success=False, **attempt)
            raise ToolError("verification_locked", locked)
        if args.method == "caller_id":
            customer_id = await _by_caller_id(conn, ctx)
        elif args.method == "order_number_zip":
            customer_id = await _by_order_and_zip(conn, args)
        else:
            customer_id = await _by_code(conn, args)
        await record_attempt(
            conn, customer_id=customer_id, success=customer_id is not None, **attempt
        )
        if customer_id is None:
            now_locked = await record_lockouts(
                conn, call_id=call_id, channel=ctx.call.channel, targets=targets, source=source
            )
            raise ToolError(
                "verification_locked" if now_locked else "verification_failed",
                LOCKED_MESSAGE if now_locked else FAILED_MESSAGE,
            )
        await record_verified(conn, ctx, customer_id=customer_id, method=args.method)
        first_name = await conn.fetchval(
            "SELECT first_name FROM customers WHERE customer_id = $1", customer_id
        )
    return {
        "verified": True,
        "verified_customer_id": customer_id,
        "first_name": first_name,
        "method": args.method,
    }


TOOL_SCHEMA = verify_identity.schema
