"""Short-lived signed tokens that tie a Twilio media stream to the call the gateway accepted.

The gateway answers ``/twilio/voice`` with TwiML ``<Connect><Stream>`` and passes a token as a
``<Parameter>``; Twilio echoes it in the media socket's ``start`` message (``customParameters``)
and the voice pipeline checks it before it runs a pipeline. The token is
``<call_id>.<call_sid>.<expires unix>.<hex HMAC-SHA256>`` keyed by
``voice_pipeline.stream_token_secret`` (else ``twilio.auth_token``, else
``gateway.session_secret``), so only someone holding that secret can open a stream for a call.
A call whose stream is resumed after its voice replica died gets a token for that resume:
``<call_id>.<call_sid>.<expires unix>.r<resume>.<hex HMAC-SHA256>``, the resume number signed with
the rest (see ``callcenter.common.call_resume``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

from callcenter.common.config import CallCenterConfig, first_secret


class InvalidStreamToken(Exception):
    """The token is absent, malformed, forged, expired or for another call."""


def stream_token_secret(config: CallCenterConfig) -> bytes | None:
    """The HMAC key, or None when no secret is configured anywhere."""
    return first_secret(
        config.voice_pipeline.stream_token_secret,
        config.twilio.auth_token,
        config.gateway.session_secret,
    )


def _mac(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def sign_stream_token(
    secret: bytes,
    *,
    call_id: str,
    call_sid: str,
    ttl_s: float,
    resume: int = 0,
    now: float | None = None,
) -> str:
    """A token for ``call_id`` / ``call_sid`` valid for ``ttl_s`` seconds.

    Args:
        secret: the HMAC key (:func:`stream_token_secret`).
        call_id: the call the stream belongs to.
        call_sid: the stream's CallSid (or a browser call's stream id).
        ttl_s: how long the token may be used to open the stream.
        resume: 0 for the call's first stream, n for its n-th resumed stream.
        now: the clock (tests).

    """
    expires = int((now if now is not None else time.time()) + ttl_s)
    body = f"{call_id}.{call_sid}.{expires}" + (f".r{resume}" if resume else "")
    return f"{body}.{_mac(secret, body)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamGrant:
    """What a valid token allows: a stream of ``call_id``, its first (0) or n-th resumed one."""

    call_id: str
    resume: int


def verify_stream_grant(
    secret: bytes, token: str | None, *, call_sid: str | None, now: float | None = None
) -> StreamGrant:
    """The call and resume number the token was issued for.

    Raises:
        InvalidStreamToken: when it is absent, malformed, forged, expired, or names another
            CallSid than the stream's.

    """
    if not token or not isinstance(token, str) or len(token) > 512:
        raise InvalidStreamToken("no stream token")
    parts = token.split(".")
    if len(parts) not in (4, 5):
        raise InvalidStreamToken("malformed stream token")
    *body, mac = parts
    call_id, token_sid, expires_s = body[:3]
    # as bytes: compare_digest raises TypeError on a str with non-ASCII characters
    if not hmac.compare_digest(_mac(secret, ".".join(body)).encode(), mac.encode()):
        raise InvalidStreamToken("bad stream token signature")
    resume_s = body[3] if len(body) == 4 else "r0"
    try:
        expires = int(expires_s)
        resume = int(resume_s.removeprefix("r")) if resume_s.startswith("r") else -1
    except ValueError as exc:
        raise InvalidStreamToken("malformed stream token") from exc
    if resume < 0:
        raise InvalidStreamToken("malformed stream token")
    if (now if now is not None else time.time()) > expires:
        raise InvalidStreamToken("stream token expired")
    if call_sid is not None and token_sid != call_sid:
        raise InvalidStreamToken("stream token is for another call")
    return StreamGrant(call_id=call_id, resume=resume)


def verify_stream_token(
    secret: bytes, token: str | None, *, call_sid: str | None, now: float | None = None
) -> str:
    """The call id a token for the call's first stream was issued for.

    Raises:
        InvalidStreamToken: see :func:`verify_stream_grant`; also for a resumed stream's token.

    """
    grant = verify_stream_grant(secret, token, call_sid=call_sid, now=now)
    if grant.resume:
        raise InvalidStreamToken("a resumed stream's token where a first stream's was expected")
    return grant.call_id
