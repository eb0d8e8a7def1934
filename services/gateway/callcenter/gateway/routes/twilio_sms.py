"""Twilio SMS webhook: POST /twilio/sms.

Every request is checked against X-Twilio-Signature (403 otherwise). A message is answered once:
a redelivery with the same MessageSid gets empty TwiML. The reply is waited for up to
``gateway.sms_reply_budget_s`` (inside Twilio's 15 s webhook timeout) and returned as TwiML
``<Message>`` verbs; when the conversation takes longer, the webhook answers empty TwiML at once
and a background task held by the app sends the reply through the Messages REST API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from twilio.twiml.messaging_response import MessagingResponse

from callcenter.common.logging import get_logger
from callcenter.common.pii import redact_customer_text
from callcenter.gateway.deps import GatewayDeps, request_deps
from callcenter.gateway.sms.conversations import claim_message, release_message
from callcenter.gateway.sms.inbound import InboundSms
from callcenter.gateway.sms.replies import answer
from callcenter.gateway.sms.sender import send_messages
from callcenter.gateway.twilio.signature import verified_form

log = get_logger(__name__)
router = APIRouter()

T = TypeVar("T")


def twiml(bodies: list[str]) -> Response:
    """A TwiML messaging response with one ``<Message>`` per body (none: send nothing)."""
    response = MessagingResponse()
    for body in bodies:
        response.message(body)
    return Response(content=str(response), media_type="application/xml")


def _hold(deps: GatewayDeps, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Run ``work`` as a task the app holds until it finishes (shutdown waits for it)."""
    task = asyncio.create_task(work)
    deps.background.add(task)
    task.add_done_callback(deps.background.discard)
    return task


async def _deliver_later(deps: GatewayDeps, sms: InboundSms, work: asyncio.Task[list[str]]) -> None:
    try:
        bodies = await work
    except Exception:
        log.exception(
            "sms reply failed after the webhook was answered", message_sid=sms.message_sid
        )
        return
    await send_messages(deps, customer=sms.customer, business=sms.business, bodies=bodies)


@router.post("/twilio/sms", response_class=Response)
async def inbound_sms(
    request: Request, deps: Annotated[GatewayDeps, Depends(request_deps)]
) -> Response:
    """An inbound SMS or MMS from Twilio Messaging."""
    form = await verified_form(request, deps)
    sms = InboundSms.from_form({**form, "Body": redact_customer_text(form.get("Body", ""))})
    if sms is None:
        raise HTTPException(status_code=400, detail="MessageSid, From and To are required")
    if not await claim_message(deps, sms.message_sid):
        log.info("redelivered sms ignored", message_sid=sms.message_sid)
        return twiml([])
    work = _hold(deps, answer(deps, sms))
    try:
        await asyncio.wait({work}, timeout=deps.config.gateway.sms_reply_budget_s)
    finally:
        late = not work.done()
        if late:  # also when this request was cancelled: the reply is sent all the same
            _hold(deps, _deliver_later(deps, sms, work))
    if late:
        log.info("sms reply is slow: answering later via the REST API", message_sid=sms.message_sid)
        return twiml([])
    try:
        bodies = work.result()
    except Exception:
        await release_message(deps, sms.message_sid)
        raise
    return twiml(bodies)
