"""Hand a live call to a person: redirect it through Twilio's REST API to a ``<Dial>``.

The call's TwiML is replaced (``calls(sid).update(twiml=…)``), which ends the media stream and
connects the caller to ``twilio.agent_queue`` (``<Dial><Queue>``) or ``twilio.agent_number``
(``<Dial><Number>``). The summary so far is kept for the agent's screen in Redis
(``{key_prefix}call:{call_id}:handoff``: reason, summary, target) and logged; TwiML has no field
that carries free text to the agent's phone.
"""

from __future__ import annotations

import json

import redis.asyncio as aioredis
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import Dial, VoiceResponse

from callcenter.common.config import CallCenterConfig
from callcenter.common.logging import get_logger

log = get_logger(__name__)

HANDOFF_TTL_S = 24 * 3600


class TransferUnavailable(Exception):
    """No agent number or queue, or no Twilio credentials: the call cannot be transferred."""


def transfer_twiml(config: CallCenterConfig, *, announcement: str | None = None) -> str:
    """The TwiML that connects the caller to an agent."""
    twilio = config.twilio
    response = VoiceResponse()
    if announcement:
        response.say(announcement)
    dial = Dial()
    if twilio.agent_queue:
        dial.queue(twilio.agent_queue)
    elif twilio.agent_number:
        dial.number(twilio.agent_number)
    else:
        raise TransferUnavailable("neither twilio.agent_queue nor twilio.agent_number is set")
    response.append(dial)
    return str(response)


def transfer_possible(config: CallCenterConfig) -> bool:
    """Whether a phone call can be handed to a person (an agent line and Twilio credentials)."""
    twilio = config.twilio
    has_line = bool(twilio.agent_queue or twilio.agent_number)
    return has_line and bool(twilio.account_sid) and twilio.auth_token is not None


def rest_client(config: CallCenterConfig) -> Client:
    """An async-capable Twilio REST client, pointed at ``twilio.api_base_url`` when set."""
    twilio = config.twilio
    if not twilio.account_sid or twilio.auth_token is None:
        raise TransferUnavailable("twilio.account_sid / twilio.auth_token are not set")
    client = Client(
        twilio.account_sid,
        twilio.auth_token.get_secret_value(),
        http_client=AsyncTwilioHttpClient(),
    )
    if twilio.api_base_url:
        client.api.base_url = twilio.api_base_url.rstrip("/")
    return client


async def transfer_call(
    *,
    config: CallCenterConfig,
    redis: aioredis.Redis,
    call_id: str,
    call_sid: str,
    reason: str,
    summary: str,
) -> None:
    """Redirect the live call to an agent and leave the summary for them.

    Raises:
        TransferUnavailable: nothing to transfer to, or no credentials.

    """
    twiml = transfer_twiml(config)
    await redis.set(
        f"{config.redis.key_prefix}call:{call_id}:handoff",
        json.dumps(
            {
                "reason": reason,
                "summary": summary,
                "to": config.twilio.agent_queue or config.twilio.agent_number,
            }
        ),
        ex=HANDOFF_TTL_S,
    )
    client = rest_client(config)
    try:
        await client.calls(call_sid).update_async(twiml=twiml)
    finally:
        http = client.http_client
        if isinstance(http, AsyncTwilioHttpClient):
            await http.close()
    log.info("call transferred", call_id=call_id, reason=reason)
