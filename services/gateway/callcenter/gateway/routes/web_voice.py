"""Browser calls: ``POST /web-voice/calls`` opens a voice call for the chat widget's Call button.

The browser never names its own call. The gateway records it (channel ``web_voice``, no caller
number, the client address for verification limits) with a fresh stream id, publishes
call.started, and answers with the voice pipeline's browser socket URL and a short-lived token
signed for that call and stream (the phone path's scheme, :mod:`callcenter.common.stream_token`).
The voice pipeline opens the stream only for that token, once, while the call is live
(``callcenter.voice_pipeline.web_call``). Caller-ID verification never applies: there is no
number.

Identity: the widget sends the chat it is part of (``{"chat": {"call_id", "resume_token"}}``, the
chat's own session token). When that token is the one this gateway issued for that chat and the
chat is still open, the call's row names the chat (``provider_ids.chat_call_id``), and a visitor
verified in the chat is verified on the call (the voice pipeline reads the row; the conversation
service carries the chat's verified customer over). Any other chat reference (forged, for another
chat, of an ended chat) starts the same call, unverified: nothing the browser sends is believed.

Like chat, call starts are limited per client address (``gateway.chat_sessions_per_ip`` per
minute); when every voice replica is full the answer is 503 with the overflow message. A call whose
browser never connects is ended by the session reaper once its token has expired.

The endpoint answers any origin (``Access-Control-Allow-Origin: *``, no credentials, a preflight
for the JSON body): the widget is embedded on other sites, what it hands out opens only the call
it just created, and the chat it names is proven by the chat's token, not by a cookie.
"""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from callcenter.common.config import CallCenterConfig
from callcenter.common.logging import get_logger
from callcenter.common.stream_token import sign_stream_token, stream_token_secret
from callcenter.common.voice_load import voice_has_room
from callcenter.gateway import sessions
from callcenter.gateway.calls import start_call
from callcenter.gateway.deps import GatewayDeps, request_deps
from callcenter.gateway.limits import too_many_calls

log = get_logger(__name__)

router = APIRouter()
Deps = Annotated[GatewayDeps, Depends(request_deps)]

#: how long after its token expired a call nobody connected to is ended
CONNECT_GRACE_S = 15.0
TOO_MANY_CALLS = "Too many calls from your address. Please wait a minute and try again."
NO_SECRET = "Calling from the browser is not available right now."
#: any site may embed the widget; nothing here rides on cookies
OPEN_TO_ANY_ORIGIN = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}
#: the ``provider_ids`` entry naming the chat a call was started from (read by the voice pipeline)
CHAT_KEY = "chat_call_id"


class ChatReference(BaseModel):
    """The chat the widget is part of, as the chat socket's ``session`` message gave it."""

    call_id: str = Field(min_length=1, max_length=200)
    #: the chat's HMAC-SHA256 (hex), as the chat socket issued it
    resume_token: str = Field(pattern=r"^[0-9a-f]{64}$")


class BrowserCallRequest(BaseModel):
    """What the Call button may send (an empty body is a call from no chat)."""

    #: a visitor verified in this chat stays verified on the call, if the token checks out
    chat: ChatReference | None = None


class BrowserCallGrant(BaseModel):
    """What the browser needs to open its call's voice socket."""

    call_id: str
    #: the voice pipeline's browser socket (``voice_pipeline.web_ws_url``)
    url: str
    #: send as ``{"type": "start", "token": …}``: opens this call's stream once, before it expires
    token: str
    #: seconds the token stays valid
    expires_in: float


class BrowserCallRefused(BaseModel):
    """Why no call was started (a sentence for the visitor)."""

    error: str


def browser_media_url(config: CallCenterConfig) -> str:
    """The voice pipeline's browser socket as browsers reach it."""
    vp = config.voice_pipeline
    if vp.web_ws_url:
        return vp.web_ws_url
    public = urlsplit(vp.public_ws_url)
    return urlunsplit((public.scheme, public.netloc, "/web/media", "", ""))


async def proven_chat(deps: GatewayDeps, chat: ChatReference | None) -> str | None:
    """The chat's call id when ``chat`` carries this gateway's token for an open chat, else None."""
    if chat is None:
        return None
    if not sessions.valid_resume_token(deps, chat.call_id, chat.resume_token):
        log.warning("browser call: chat token does not match; the call starts unverified")
        return None
    if not await sessions.is_active(deps, channel="chat", call_id=chat.call_id):
        log.info("browser call: the chat is not open; the call starts unverified")
        return None
    return chat.call_id


def _refusal(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        BrowserCallRefused(error=message).model_dump(),
        status_code=status,
        headers=OPEN_TO_ANY_ORIGIN,
    )


@router.post(
    "/web-voice/calls",
    response_model=BrowserCallGrant,
    responses={
        429: {"model": BrowserCallRefused, "description": "too many calls from this address"},
        503: {"model": BrowserCallRefused, "description": "voice at capacity or not configured"},
    },
)
async def start_browser_call(
    request: Request, deps: Deps, body: BrowserCallRequest | None = None
) -> JSONResponse:
    """Start a browser voice call: the socket URL and the token that opens its stream."""
    address = request.client.host if request.client else "unknown"
    if await too_many_calls(deps, address):
        log.warning("browser call refused: too many from this address", client=address)
        return _refusal(429, TOO_MANY_CALLS)
    if not await voice_has_room(deps.redis, key_prefix=deps.config.redis.key_prefix):
        log.warning("browser call refused: voice at capacity")
        return _refusal(503, deps.config.voice_pipeline.overflow_text)
    secret = stream_token_secret(deps.config)
    if secret is None:
        log.error("browser call refused: no stream token secret configured")
        return _refusal(503, NO_SECRET)
    stream_id = "WV" + uuid.uuid4().hex
    provider_ids = {"web_stream_id": stream_id, "client_ip": address}
    chat_call_id = await proven_chat(deps, body.chat if body is not None else None)
    if chat_call_id is not None:
        provider_ids[CHAT_KEY] = chat_call_id
    started = await start_call(deps, channel="web_voice", provider_ids=provider_ids)
    log.info("browser call started", call_id=started.call_id, chat_call_id=chat_call_id)
    ttl = deps.config.voice_pipeline.stream_token_ttl_s
    # ended by the reaper if no browser claims the stream before the token expires
    await sessions.touch(
        deps, channel="web_voice", call_id=started.call_id, idle_timeout_s=ttl + CONNECT_GRACE_S
    )
    token = sign_stream_token(secret, call_id=started.call_id, call_sid=stream_id, ttl_s=ttl)
    grant = BrowserCallGrant(
        call_id=started.call_id, url=browser_media_url(deps.config), token=token, expires_in=ttl
    )
    return JSONResponse(grant.model_dump(), headers=OPEN_TO_ANY_ORIGIN)


@router.options("/web-voice/calls", include_in_schema=False)
async def browser_call_preflight() -> Response:
    """Let any page's widget POST its JSON body (no credentials)."""
    return Response(
        status_code=204,
        headers={
            **OPEN_TO_ANY_ORIGIN,
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "600",
        },
    )
