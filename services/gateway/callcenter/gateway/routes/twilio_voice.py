"""Twilio voice webhooks: ``POST /twilio/voice`` (a call comes in) and ``POST /twilio/status``.

``/twilio/voice`` checks ``X-Twilio-Signature``, records the call and publishes call.started, and
answers TwiML ``<Connect><Stream>`` pointing at the voice pipeline's media socket with the call id
and a short-lived signed token as ``<Parameter>``s (see ``callcenter.common.stream_token``); the
caller's number is not passed (the voice pipeline reads it from the ``calls`` row). A replayed
webhook for a call that has ended is answered ``<Hangup/>`` and starts nothing.
The ``<Connect>`` names ``/twilio/stream-ended`` as its ``action``: Twilio requests it when the
media stream ends and the call is still up. A call that no voice replica ever admitted (every
replica was full between the webhook and the media socket, so the socket was refused) then hears
the overflow message. A call that ran and whose stream ended without the pipeline ending it (its
voice replica died: SIGKILL, OOM, node loss) is resumed: a fresh ``<Connect><Stream>`` with a
token for that resume, which another replica takes, saying the resume line instead of the
greeting (``callcenter.common.call_resume``); at most ``voice_pipeline.max_resumes`` times, and
only while some replica has room (else the overflow message). A call
the pipeline ended on purpose (goodbye, transfer, silence: the ``closing`` mark, set before the
socket closed), or that has ended, is just hung up (no second greeting, nothing replayed).
``/twilio/status`` is the call's status callback: a final status ends the call (call.ended once
per call, shared with the voice pipeline through the Redis claim).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from twilio.twiml.voice_response import Connect, Stream, VoiceResponse

from callcenter.common.call_resume import closing_key, grant_resume
from callcenter.common.events import new_id
from callcenter.common.logging import get_logger
from callcenter.common.stream_token import sign_stream_token, stream_token_secret
from callcenter.common.voice_load import voice_has_room
from callcenter.gateway.calls import ENDED_CLAIM_TTL_S, end_call, start_call
from callcenter.gateway.deps import GatewayDeps, request_deps
from callcenter.gateway.twilio.replay import call_has_ended
from callcenter.gateway.twilio.signature import verified_form

log = get_logger(__name__)

router = APIRouter()
Deps = Annotated[GatewayDeps, Depends(request_deps)]

FINAL_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}
#: the ``<Connect action>``: Twilio requests it when the media stream ends
STREAM_ENDED_PATH = "/twilio/stream-ended"


def _call_key(deps: GatewayDeps, call_sid: str) -> str:
    return deps.key(f"twilio:call:{call_sid}")


@router.post("/twilio/voice", include_in_schema=True)
async def incoming_call(request: Request, deps: Deps) -> Response:
    """Answer an incoming call with a media stream to the voice pipeline."""
    form = await verified_form(request, deps)
    call_sid = form.get("CallSid")
    if not call_sid:
        raise HTTPException(status_code=400, detail="CallSid missing")
    if (busy := await voice_overflow(deps)) is not None:
        return busy
    secret = stream_token_secret(deps.config)
    if secret is None:  # verified_form already needs twilio.auth_token; kept for clarity
        raise HTTPException(status_code=503, detail="no stream token secret configured")
    # Twilio retries a webhook that timed out: the same CallSid keeps the same call id.
    candidate = new_id()
    key = _call_key(deps, call_sid)
    await deps.redis.set(key, candidate, nx=True, ex=ENDED_CLAIM_TTL_S)
    call_id = await deps.redis.get(key) or candidate
    if await call_has_ended(deps, call_id=call_id, call_sid=call_sid):
        log.warning("voice webhook for an ended call refused", call_sid=call_sid)
        hang_up = VoiceResponse()
        hang_up.hangup()
        return Response(content=str(hang_up), media_type="application/xml")
    await start_call(
        deps,
        channel="voice",
        call_id=call_id,
        from_number=form.get("From"),
        to_number=form.get("To"),
        provider_ids={"twilio_call_sid": call_sid},
    )
    return _connect_stream(deps, secret=secret, call_id=call_id, call_sid=call_sid)


def _connect_stream(
    deps: GatewayDeps, *, secret: bytes, call_id: str, call_sid: str, resume: int = 0
) -> Response:
    """TwiML ``<Connect action><Stream>`` to the voice pipeline with a token for this stream."""
    token = sign_stream_token(
        secret,
        call_id=call_id,
        call_sid=call_sid,
        ttl_s=deps.config.voice_pipeline.stream_token_ttl_s,
        resume=resume,
    )
    stream = Stream(url=deps.config.voice_pipeline.public_ws_url)
    stream.parameter(name="call_id", value=call_id)
    stream.parameter(name="token", value=token)
    connect = Connect(action=deps.config.gateway.public_base_url.rstrip("/") + STREAM_ENDED_PATH)
    connect.append(stream)
    twiml = VoiceResponse()
    twiml.append(connect)
    return Response(content=str(twiml), media_type="application/xml")


@router.post(STREAM_ENDED_PATH, include_in_schema=True)
async def stream_ended(request: Request, deps: Deps) -> Response:
    """What a call hears once its media stream ended.

    The overflow message if it never ran (or lost its stream while every replica is full); a
    resumed stream if its replica died mid-call; else
    nothing (hang up).
    """
    form = await verified_form(request, deps)
    call_sid = form.get("CallSid")
    if not call_sid:
        raise HTTPException(status_code=400, detail="CallSid missing")
    twiml = VoiceResponse()
    call_id = await _recorded_call_id(deps, call_sid)
    if call_id is not None and not await voice_admitted(deps, call_id=call_id):
        log.warning(
            "media stream refused by the voice replicas: overflow message",
            call_id=call_id,
            call_sid=call_sid,
        )
        twiml.say(deps.config.voice_pipeline.overflow_text)
    elif call_id is not None and await _resumable(deps, call_id, call_sid):
        if (busy := await voice_overflow(deps)) is not None:
            return busy  # no replica could take the stream: the overflow message, not silence
        prefix = deps.config.redis.key_prefix
        resume = await grant_resume(deps.redis, key_prefix=prefix, call_id=call_id)
        if resume <= deps.config.voice_pipeline.max_resumes:
            secret = stream_token_secret(deps.config)
            assert secret is not None  # verified_form needs twilio.auth_token
            log.warning("media stream lost mid-call: resumed", call_id=call_id, resume=resume)
            return _connect_stream(
                deps, secret=secret, call_id=call_id, call_sid=call_sid, resume=resume
            )
        log.warning("media stream lost again: resume limit reached", call_id=call_id)
    twiml.hangup()
    return Response(content=str(twiml), media_type="application/xml")


async def _resumable(deps: GatewayDeps, call_id: str, call_sid: str) -> bool:
    """Whether a call that lost its stream may get another (limits aside: the caller counts).

    Only a call that is still live: not ended (the shared claim, the row), not being ended on
    purpose by its pipeline (the ``closing`` mark), and resuming is on (``max_resumes`` > 0).
    """
    if deps.config.voice_pipeline.max_resumes == 0:
        return False
    if await deps.redis.exists(closing_key(deps.config.redis.key_prefix, call_id)):
        return False
    return not await call_has_ended(deps, call_id=call_id, call_sid=call_sid)


async def _recorded_call_id(deps: GatewayDeps, call_sid: str) -> str | None:
    """The call id the voice webhook gave ``call_sid`` (None: not a call of ours)."""
    call_id = await deps.redis.get(_call_key(deps, call_sid))
    if call_id:
        return call_id
    return await deps.db.fetchval(
        "SELECT call_id FROM calls WHERE provider_ids->>'twilio_call_sid' = $1 LIMIT 1", call_sid
    )


async def voice_admitted(deps: GatewayDeps, *, call_id: str) -> bool:
    """Whether a voice replica took the call's media stream.

    The replica claims ``call:{id}:stream`` once it has admitted the socket (room, signature,
    token: ``callcenter.voice_pipeline.trusted_call.claim_live_stream``); a socket refused for
    capacity never gets that far.
    """
    return bool(await deps.redis.exists(deps.key(f"call:{call_id}:stream")))


@router.post("/twilio/status", status_code=204)
async def call_status(request: Request, deps: Deps) -> Response:
    """Record a call's final status (call.ended, once per call)."""
    form = await verified_form(request, deps)
    status = form.get("CallStatus", "")
    call_sid = form.get("CallSid", "")
    if status in FINAL_STATUSES and call_sid:
        call_id = await deps.redis.get(_call_key(deps, call_sid))
        if call_id:
            await end_call(deps, call_id=call_id, channel="voice", reason=status.replace("-", "_"))
        else:
            log.warning("status for an unknown call", call_sid=call_sid, status=status)
    return Response(status_code=204)


async def voice_overflow(deps: GatewayDeps) -> Response | None:
    """A polite "all lines busy" answer when every voice replica is at capacity; else None."""
    if await voice_has_room(deps.redis, key_prefix=deps.config.redis.key_prefix):
        return None
    log.warning("voice at capacity: call turned away with the overflow message")
    twiml = VoiceResponse()
    twiml.say(deps.config.voice_pipeline.overflow_text)
    twiml.hangup()
    return Response(content=str(twiml), media_type="application/xml")
