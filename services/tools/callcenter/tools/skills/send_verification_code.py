"""send_verification_code: a one-time code to the email or phone ON FILE for an account.

The caller names the account (its email, phone or customer id); the code never goes to an
address the caller types, only to the contact stored for that account. The answer is the same
whether or not an account matched, so it reveals nothing about who is a customer. Codes expire
(``notifications.code_ttl_s``), work once (``verify_identity`` uses them up), and at most
``notifications.codes_per_hour`` go to one account per hour across every call and channel; a call
may ask at most :data:`REQUESTS_PER_CALL` times.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field

from callcenter.common.logging import get_logger
from callcenter.common.sealing import code_context, seal, sealing_key
from callcenter.tools.domain import find_customers, new_id
from callcenter.tools.notifications import promise_notification, settings
from callcenter.tools.registry import SkillContext, ToolArguments, ToolError, skill
from callcenter.tools.verification import issue_code

log = get_logger(__name__)

REQUESTS_PER_CALL = 3


class SendVerificationCodeArgs(ToolArguments):
    """Which account, and whether by email or text message."""

    via: Literal["email", "sms"] = Field(
        default="email", description="Send the code by email or by text message (SMS)."
    )
    email: str | None = Field(default=None, max_length=254, description="The account's email.")
    phone: str | None = Field(default=None, max_length=32, description="The account's phone.")
    customer_id: str | None = Field(
        default=None, max_length=32, description="The account id, if the customer knows it."
    )


def _sms_possible() -> bool:
    config = settings()
    return config.twilio.enabled and bool(config.notifications.sms_from)


@skill(
    name="send_verification_code",
    description=(
        "Send a one-time verification code to the email address or phone number already on file "
        "for the customer's account (never to an address the caller gives now). Identify the "
        "account by its email, phone or customer id. Then ask for the code and call "
        "verify_identity with method one_time_code. Tell the customer only what the result says."
    ),
    arguments=SendVerificationCodeArgs,
    side_effects=True,
)
async def send_verification_code(
    args: SendVerificationCodeArgs, ctx: SkillContext
) -> dict[str, Any]:
    """Issue and queue a code for the matching account, if any; answer the same either way."""
    if not (args.email or args.phone or args.customer_id):
        raise ToolError(
            "invalid_arguments",
            "Which email address or phone number is on your account? I'll send the code there.",
        )
    if args.via == "sms" and not _sms_possible():
        raise ToolError(
            "sms_unavailable",
            "I can't send text messages here. I can email the code to the address on your account.",
        )
    config = settings()
    notifications = config.notifications
    key = sealing_key(config)
    if key is None:
        log.error(
            "one-time codes are off: set notifications.code_key (shared by tools and post_call)"
        )
        raise ToolError(
            "codes_unavailable",
            "I can't send verification codes right now. I can check who you are with an order "
            "number and the ZIP code on the account instead.",
        )
    call_id = ctx.call.call_id or "-"
    async with ctx.connection() as conn:
        recent = await conn.fetchval(
            "SELECT count(*) FROM code_requests WHERE call_id = $1 "
            "AND requested_at > now() - interval '1 hour'",
            call_id,
        )
        if recent >= REQUESTS_PER_CALL:
            raise ToolError(
                "too_many_codes",
                "I've already sent several codes on this call. Please use the latest one, or I can "
                "connect you to an agent.",
            )
        await conn.execute("INSERT INTO code_requests (call_id) VALUES ($1)", call_id)
        if args.customer_id:
            found = await conn.fetch(
                "SELECT customer_id FROM customers WHERE customer_id = $1",
                args.customer_id.upper(),
            )
        else:
            found = await find_customers(conn, phone=args.phone, email=args.email)
        if len(found) == 1:
            customer_id = found[0]["customer_id"]
            sent_this_hour = await conn.fetchval(
                "SELECT count(*) FROM verification_codes WHERE customer_id = $1 "
                "AND sent_via IS NOT NULL AND created_at > now() - interval '1 hour'",
                customer_id,
            )
            if sent_this_hour < notifications.codes_per_hour:
                code = await issue_code(
                    conn, customer_id, ttl=timedelta(seconds=notifications.code_ttl_s)
                )
                await conn.execute(
                    """
                    UPDATE verification_codes SET sent_via = $2, call_id = $3
                    WHERE id = (SELECT max(id) FROM verification_codes WHERE customer_id = $1)
                    """,
                    customer_id,
                    args.via,
                    call_id,
                )
                notification_id = f"verification_code-{new_id('VC')}"
                await promise_notification(
                    conn,
                    notification_id=notification_id,
                    call_id=call_id,
                    customer_id=customer_id,
                    kind="verification_code",
                    via=args.via,
                    details={
                        # sealed: the event rests in JetStream; only post_call can open it
                        "code_sealed": seal(
                            key, code, context=code_context(notification_id, customer_id)
                        ),
                        "expires_in_minutes": notifications.code_ttl_s // 60,
                    },
                )
    where = "phone number" if args.via == "sms" else "email address"
    minutes = notifications.code_ttl_s // 60
    return {
        "requested": True,
        "via": args.via,
        "message": (
            f"If those details match an account, a six-digit code is being sent to the {where} "
            f"on file for it (at most {notifications.codes_per_hour} codes an hour). It expires "
            f"in {minutes} minutes and works once."
        ),
    }


TOOL_SCHEMA = send_verification_code.schema
