"""lookup_customer: find the caller's account by phone, email, or name and ZIP code."""

from __future__ import annotations

from typing import Any

import asyncpg
from pydantic import Field

from callcenter.tools.domain import customer_profile, find_customers, normalize_phone
from callcenter.tools.registry import SkillContext, ToolArguments, ToolError, skill


class LookupCustomerArgs(ToolArguments):
    """How to find the account (one of: phone, email, or last name with ZIP code)."""

    phone: str | None = Field(
        default=None, max_length=32, description="Phone number on the account."
    )
    email: str | None = Field(default=None, max_length=254, description="Email on the account.")
    first_name: str | None = Field(
        default=None, max_length=80, description="First name (optional, with last_name)."
    )
    last_name: str | None = Field(
        default=None, max_length=80, description="Last name, used together with zip."
    )
    zip: str | None = Field(
        default=None, max_length=10, description="ZIP code on the account, used with last_name."
    )


NOT_DISCLOSED = "Before I can say anything about an account, I need to verify that it's yours."


def _methods(own_line_matches: bool) -> list[str]:
    options = ["order_number_zip", "one_time_code"]
    if own_line_matches:
        options.insert(0, "caller_id")
    return options


async def _own_line_has_account(conn: asyncpg.Connection, ctx: SkillContext) -> bool:
    """Whether the caller's own trusted number (not what was asked about) matches one account."""
    if not (ctx.call.caller_id_trusted and ctx.call.caller_number):
        return False
    found = await find_customers(conn, phone=normalize_phone(ctx.call.caller_number))
    return len(found) == 1


@skill(
    name="lookup_customer",
    description=(
        "Find the verified customer's account by phone number, email, or last name plus ZIP code "
        "(with no arguments, the number the customer is calling from). Before verification it "
        "says nothing about whether an account exists, only how the customer can verify; account "
        "details are returned only for the verified customer's own account."
    ),
    arguments=LookupCustomerArgs,
)
async def lookup_customer(args: LookupCustomerArgs, ctx: SkillContext) -> dict[str, Any]:
    """Find an account; disclose details, or even that it exists, only to its verified owner."""
    phone = args.phone
    if not (args.phone or args.email or (args.last_name and args.zip)):
        if not ctx.call.caller_number:
            raise ToolError(
                "invalid_arguments",
                "I need a phone number, an email address, or your last name and ZIP code to find your account.",
            )
        phone = ctx.call.caller_number
    verified = ctx.customer_id
    async with ctx.connection() as conn:
        if not verified:
            # The same answer whether or not the details match an account (no enumeration);
            # caller_id depends only on the caller's own trusted line, not on what was asked.
            return {
                "verified": False,
                "account_disclosed": False,
                "message": NOT_DISCLOSED,
                "verification_methods": _methods(await _own_line_has_account(conn, ctx)),
            }
        found = await find_customers(
            conn,
            phone=phone,
            email=args.email,
            first_name=args.first_name,
            last_name=args.last_name,
            zip_code=args.zip,
        )
    if len(found) != 1 or found[0]["customer_id"] != verified:
        # Not found, several, or someone else's: one answer, so nothing is learnt about others.
        raise ToolError(
            "not_your_account",
            "I can only look at the account you verified, and those details don't match it.",
        )
    return {"found": True, "verified": True, **customer_profile(found[0])}


TOOL_SCHEMA = lookup_customer.schema
