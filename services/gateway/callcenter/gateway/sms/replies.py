"""What to answer an inbound SMS: carrier keywords, opt-outs, media, and the conversation's reply.

:func:`answer` returns the message bodies to send back (none for an opted-out customer). It runs
the conversation turn over ``conversation.turn`` with ``channel: "sms"`` and the caller
``{"number": From, "verified_by_caller_id": twilio.sms_caller_id_verifies}``; a done chunk with
``end_call: true`` (the customer said goodbye) ends the conversation after the reply.
"""

from __future__ import annotations

from callcenter.common.bus import StreamError
from callcenter.common.clients import ConversationClient
from callcenter.common.contracts import TurnCaller, TurnRequest
from callcenter.common.logging import bind_call, get_logger
from callcenter.gateway import sessions
from callcenter.gateway.calls import end_call, record_turn, start_call
from callcenter.gateway.deps import GatewayDeps
from callcenter.gateway.inbox.routing import on_transfer, route_customer_text
from callcenter.gateway.sms import conversations, opt_outs
from callcenter.gateway.sms.inbound import InboundSms
from callcenter.gateway.sms.keywords import Keyword, classify
from callcenter.gateway.sms.splitter import split_message

log = get_logger(__name__)

TROUBLE = "Sorry, I'm having trouble answering right now. Please text again in a moment."


async def answer(deps: GatewayDeps, sms: InboundSms) -> list[str]:
    """The bodies to send back to ``sms``, in order."""
    settings = deps.config.twilio
    opted_out = await opt_outs.is_opted_out(deps.db, customer=sms.customer, business=sms.business)
    keyword = classify(sms.body, opted_out=opted_out, opt_out_type=sms.opt_out_type)
    if keyword is not None:
        return await _keyword(deps, sms, *keyword)
    if opted_out:
        log.info("sms from an opted-out customer: no reply", message_sid=sms.message_sid)
        return []
    bodies: list[str] = []
    if sms.num_media > 0:
        bodies.append(settings.sms_media_text)
    text = sms.body.strip()
    if text:
        reply = await _converse(deps, sms, text)
        if await opt_outs.is_opted_out(deps.db, customer=sms.customer, business=sms.business):
            log.info("sms reply dropped: the customer opted out meanwhile")
            return []
        bodies.extend(split_message(reply, limit=settings.sms_max_chars))
    return bodies


async def _keyword(deps: GatewayDeps, sms: InboundSms, keyword: Keyword, word: str) -> list[str]:
    settings = deps.config.twilio
    if keyword is Keyword.OPT_OUT:
        if not await opt_outs.opt_out(
            deps.db, customer=sms.customer, business=sms.business, keyword=word
        ):
            return []  # already opted out: the one confirmation was sent then
        log.info("sms opt-out recorded", keyword=word)
        call_id = await conversations.current(deps, customer=sms.customer, business=sms.business)
        if call_id is not None:
            with bind_call(call_id, channel="sms"):
                await _finish(deps, call_id, reason="opted_out")
        return [settings.sms_opt_out_text]
    if keyword is Keyword.OPT_IN:
        await opt_outs.opt_in(deps.db, customer=sms.customer, business=sms.business)
        log.info("sms opt-in recorded", keyword=word)
        return [settings.sms_opt_in_text]
    return [settings.sms_help_text]


async def _finish(deps: GatewayDeps, call_id: str, *, reason: str) -> None:
    await end_call(deps, call_id=call_id, channel="sms", reason=reason)
    await sessions.forget(deps, channel="sms", call_id=call_id)


async def _converse(deps: GatewayDeps, sms: InboundSms, text: str) -> str:
    conversation = await conversations.resolve(deps, customer=sms.customer, business=sms.business)
    call_id = conversation.call_id
    with bind_call(call_id, channel="sms"):
        if conversation.is_new:
            await start_call(
                deps,
                channel="sms",
                call_id=call_id,
                from_number=sms.customer,
                to_number=sms.business,
                provider_ids={"message_sid": sms.message_sid},
            )
        if await route_customer_text(deps, call_id=call_id, channel="sms", text=text):
            return ""  # a person owns the conversation: kept for the agent, the bot stays silent
        reply, goodbye = await _turn(deps, call_id, sms, text)
        if goodbye:
            await _finish(deps, call_id, reason="completed")
        return reply


async def _turn(deps: GatewayDeps, call_id: str, sms: InboundSms, text: str) -> tuple[str, bool]:
    """One conversation turn: the reply text and whether the conversation is over."""
    client = ConversationClient(bus=deps.bus, first_timeout_s=deps.config.gateway.turn_timeout_s)
    request = TurnRequest(
        call_id=call_id,
        channel="sms",
        text=text,
        caller=TurnCaller(
            number=sms.customer, verified_by_caller_id=deps.config.twilio.sms_caller_id_verifies
        ),
        metadata={"message_sid": sms.message_sid, "business_number": sms.business},
    )
    stream = None
    try:
        stream = await client.stream_turn(request)
        done = await stream.reply()
    except StreamError as exc:
        if exc.code == "owned":  # a person took over meanwhile: the agent gets it
            await route_customer_text(deps, call_id=call_id, channel="sms", text=text)
            return "", False
        log.warning("sms turn failed", error=exc.code, detail=exc.message)
        partial = stream.text if stream is not None and exc.code == "incomplete" else ""
        return partial or TROUBLE, False
    await record_turn(deps, call_id=call_id, turn_index=done.turn_index)
    await on_transfer(
        deps,
        call_id=call_id,
        channel="sms",
        transfer=done.transfer.model_dump() if done.transfer else None,
        customer_number=sms.customer,
        business_number=sms.business,
    )
    return done.text or stream.text, done.end_call
