"""Secrets that cross the bus sealed: only the services holding the key can read them.

A one-time code travels from the tools service (which issues it) to post_call (which sends it)
inside a ``NotificationRequested`` event, and JetStream keeps events on disk for
``nats.stream_max_age_s`` (dead letters longer). The code is therefore sealed with AES-256-GCM
(the ``cryptography`` library's AEAD, not code of ours), keyed from ``notifications.code_key``
(else ``gateway.session_secret``, else ``twilio.auth_token``) through HKDF-SHA256. The
associated data binds the sealed value to its event and customer, so a sealed code copied into
another notification does not open.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from callcenter.common.config import CallCenterConfig, first_secret

_INFO = b"callcenter notification secrets v1"
_NONCE_BYTES = 12


class SealError(Exception):
    """A sealed value that cannot be opened (another key, another event, or tampered with)."""


def sealing_key(config: CallCenterConfig) -> bytes | None:
    """The 32-byte key, or None when no secret is configured anywhere."""
    material = first_secret(
        config.notifications.code_key, config.gateway.session_secret, config.twilio.auth_token
    )
    if material is None:
        return None
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(material)


def code_context(notification_id: str, customer_id: str) -> str:
    """What a notification's one-time code is sealed for: that notification, that customer."""
    return f"verification_code:{notification_id}:{customer_id}"


def seal(key: bytes, value: str, *, context: str) -> str:
    """``value`` encrypted and authenticated for ``context`` (base64url text)."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, value.encode(), context.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(key: bytes, sealed: str, *, context: str) -> str:
    """The value :func:`seal` sealed for the same ``context``.

    Raises:
        SealError: wrong key or context, or the text was altered.

    """
    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
        nonce, body = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        return AESGCM(key).decrypt(nonce, body, context.encode()).decode()
    except (InvalidTag, ValueError) as exc:
        raise SealError("the sealed value does not open with this key for this event") from exc
