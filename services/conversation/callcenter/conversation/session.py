"""The per-call session in Redis: channel, verified customer, turn index, history.

One JSON document at ``{key_prefix}session:{call_id}`` with the session TTL, refreshed on every
save. Turns of one call are serialised by a short Redis lock (``…:lock``), so a turn that follows
a cancelled one (barge-in) sees the history the cancelled turn left, whichever replica ran it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from callcenter.common.logging import get_logger

log = get_logger(__name__)

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclass(slots=True)
class Session:
    """What the service remembers about one conversation between turns."""

    call_id: str
    channel: str = "chat"
    verified_customer_id: str | None = None
    caller_number: str | None = None
    turn_index: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    #: small state the offline engine keeps between turns (what it is waiting for)
    offline: dict[str, Any] = field(default_factory=dict)
    ended: bool = False
    #: the edge vouched for the caller's number and the caller-ID check has been run
    caller_id_checked: bool = False
    #: how many messages at the end of ``history`` the last turn added (for a late cut)
    last_turn_messages: int = 0

    def to_json(self) -> str:
        """Serialise for Redis."""
        # not asdict(): it deep-copies the whole history first, milliseconds per turn
        return json.dumps({name: getattr(self, name) for name in self.__dataclass_fields__})

    @classmethod
    def from_json(cls, call_id: str, raw: str | None) -> Session:
        """Parse what Redis holds (a fresh session when there is nothing)."""
        if not raw:
            return cls(call_id=call_id)
        data = json.loads(raw)
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        known["call_id"] = call_id
        return cls(**known)


class SessionStore:
    """Load, save and lock sessions under the configured key prefix."""

    def __init__(
        self, *, redis: aioredis.Redis, key_prefix: str, ttl_s: int, lock_timeout_s: float
    ) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._ttl = ttl_s
        self._lock_timeout = lock_timeout_s
        self._release = redis.register_script(_RELEASE)

    def key(self, call_id: str) -> str:
        """The Redis key of a call's session."""
        return f"{self._prefix}session:{call_id}"

    async def load(self, call_id: str) -> Session:
        """The session of ``call_id`` (new if none is stored)."""
        return Session.from_json(call_id, await self._redis.get(self.key(call_id)))

    async def save(self, session: Session) -> None:
        """Store the session and restart its TTL."""
        await self._redis.set(self.key(session.call_id), session.to_json(), ex=self._ttl)

    async def acquire(self, call_id: str) -> str | None:
        """Take the call's turn lock; return its token (None if it could not be had in time).

        The lock expires by itself (a replica that died holding it blocks the call briefly only).
        A turn that cannot get it in time goes ahead rather than leave the caller in silence.
        """
        token = uuid.uuid4().hex
        key = self.key(call_id) + ":lock"
        expiry_ms = int(max(self._lock_timeout, 1.0) * 3000)
        deadline = time.monotonic() + self._lock_timeout
        delay = 0.005
        while True:
            if await self._redis.set(key, token, nx=True, px=expiry_ms):
                return token
            if time.monotonic() >= deadline:
                log.warning("turn lock busy, going ahead", call_id=call_id)
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def release(self, call_id: str, token: str | None) -> None:
        """Give the lock back (only if it is still ours)."""
        if token is not None:
            await self._release(keys=[self.key(call_id) + ":lock"], args=[token])
