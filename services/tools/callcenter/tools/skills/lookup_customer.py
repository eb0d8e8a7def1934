"""lookup_customer: find the caller's account by phone, email, or name and ZIP code."""

from __future__ import annotations

from typing import Any

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


@skill(
    name="lookup_customer",
    description=(
        "Find the customer's account by phone number, email, or last name plus ZIP code. "
        "With no arguments, uses the number the customer is calling from. Before verification "
        "it only says whether an account exists and how the customer can verify; account details "
        "are returned only for the verified customer."
    ),
    arguments=LookupCustomerArgs,
)
async def lookup_customer(args: LookupCustomerArgs, ctx: SkillContext) -> dict[str, Any]:
    """Find an account; disclose details only to its verified owner."""
    phone = args.phone
    if not (args.phone or args.email or (args.last_name and args.zip)):
        if not ctx.call.caller_number:
            raise ToolError(
                "invalid_arguments",
                "I need a phone number, an email address, or your last name and ZIP code to find your account.",
            )
        phone = ctx.call.caller_number
    async with ctx.connection() as conn:
        found = await find_customers(
            conn,
            phone=phone,
            email=args.email,
            first_name=args.first_name,
            last_name=args.last_name,
            zip_code=args.zip,
        )
    if not found:
        raise ToolError(
            "customer_not_found",
            "I couldn't find an account with those details. Could you try another phone number or email?",
        )
    if len(found) > 1:
        raise ToolError(
            "multiple_matches",
            "More than one account matches those details. Could you give me your email address instead?",
        )
    customer = found[0]
    verified = ctx.customer_id
    if verified and verified != customer["customer_id"]:
        raise ToolError(
            "not_your_account",
            "That account is not the one you verified, so I can't share anything about it.",
        )
    if verified:
        return {"found": True, "verified": True, **customer_profile(customer)}
    options = ["order_number_zip", "one_time_code"]
    if (
        ctx.call.channel in ("voice", "sms")
        and ctx.call.caller_number
        and normalize_phone(ctx.call.caller_number) == customer["phone"]
    ):
        options.insert(0, "caller_id")
    return {
        "found": True,
        "verified": False,
        "customer_id": customer["customer_id"],
        "verification_methods": options,
    }


TOOL_SCHEMA = lookup_customer.schema
