"""Short-lived signed tokens that tie a Twilio media stream to the call the gateway accepted.

The gateway answers ``/twilio/voice`` with TwiML ``<Connect><Stream>`` and passes a token as a
``<Parameter>``; Twilio echoes it in the media socket's ``start`` message (``customParameters``)
and the voice pipeline checks it before it runs a pipeline. The token is
``<call_id>.<call_sid>.<expires unix>.<hex HMAC-SHA256>`` keyed by
``voice_pipeline.stream_token_secret`` (else ``twilio.auth_token``, else
``gateway.session_secret``), so only someone holding that secret can open a stream for a call.
"""

from __future__ import annotations

import hashlib
import hmac
import time

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
    secret: bytes, *, call_id: str, call_sid: str, ttl_s: float, now: float | None = None
) -> str:
    """A token for ``call_id`` / ``call_sid`` valid for ``ttl_s`` seconds."""
    expires = int((now if now is not None else time.time()) + ttl_s)
    body = f"{call_id}.{call_sid}.{expires}"
    return f"{body}.{_mac(secret, body)}"


def verify_stream_token(
    secret: bytes, token: str | None, *, call_sid: str | None, now: float | None = None
) -> str:
    """The call id the token was issued for.

    Raises:
        InvalidStreamToken: when it is absent, malformed, forged, expired, or names another
            CallSid than the stream's.

    """
    if not token or not isinstance(token, str) or len(token) > 512:
        raise InvalidStreamToken("no stream token")
    parts = token.split(".")
    if len(parts) != 4:
        raise InvalidStreamToken("malformed stream token")
    call_id, token_sid, expires_s, mac = parts
    if not hmac.compare_digest(_mac(secret, f"{call_id}.{token_sid}.{expires_s}"), mac):
        raise InvalidStreamToken("bad stream token signature")
    try:
        expires = int(expires_s)
    except ValueError as exc:
        raise InvalidStreamToken("malformed stream token") from exc
    if (now if now is not None else time.time()) > expires:
        raise InvalidStreamToken("stream token expired")
    if call_sid is not None and token_sid != call_sid:
        raise InvalidStreamToken("stream token is for another call")
    return call_id
