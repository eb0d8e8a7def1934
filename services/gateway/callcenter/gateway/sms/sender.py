"""Outbound SMS through Twilio's Messages REST API (replies that missed the webhook's budget)."""

from __future__ import annotations

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)
from twilio.base.exceptions import TwilioRestException

from callcenter.common.logging import get_logger
from callcenter.gateway.deps import GatewayDeps
from callcenter.gateway.sms.opt_outs import is_opted_out

log = get_logger(__name__)

SEND_ATTEMPTS = 3


async def send_messages(
    deps: GatewayDeps, *, customer: str, business: str, bodies: list[str]
) -> int:
    """Send ``bodies`` in order from ``business`` to ``customer``; return how many were accepted.

    Stops when the customer has opted out meanwhile (a STOP that arrived while the reply was being
    written), when Twilio is not configured, or when Twilio refuses a message. Only connection
    failures are retried: the request did not reach Twilio, so a retry cannot send twice.
    """
    client = deps.twilio
    if client is None:
        log.error("sms reply not sent: twilio.account_sid and twilio.auth_token are not configured")
        return 0
    sent = 0
    for body in bodies:
        if await is_opted_out(deps.db, customer=customer, business=business):
            log.info("sms reply not sent: the customer opted out", remaining=len(bodies) - sent)
            return sent
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(SEND_ATTEMPTS),
                wait=wait_exponential(multiplier=0.5, max=4),
                retry=retry_if_exception_type(httpx.ConnectError),
                reraise=True,
            ):
                with attempt:
                    message = await client.messages.create_async(
                        to=customer, from_=business, body=body
                    )
        except TwilioRestException as exc:
            log.error("twilio refused the sms", status=exc.status, code=exc.code, error=exc.msg)
            return sent
        except httpx.HTTPError as exc:
            log.error("twilio unreachable; sms not sent", error=str(exc))
            return sent
        sent += 1
        log.info("sms sent", message_sid=message.sid, chars=len(body))
    return sent
