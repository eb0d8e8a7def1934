"""Who answers a conversation: the bot, or a person (the agent inbox, issue 14).

The gateway owns the ``handoffs`` table (the source of truth) and mirrors each conversation's
owner into Redis at ``{key_prefix}handoff:{call_id}:owner`` on every change, so the conversation
service can check it on every turn without reading the gateway's table. No key means ``bot``.
While the owner is anything but ``bot`` the conversation service does not answer: it replies with
one :class:`OwnedByAgent` chunk instead of running the turn.
"""

from __future__ import annotations

from typing import Literal

import redis.asyncio as aioredis

from callcenter.common.contracts.turn import OwnedChunk

Owner = Literal["bot", "waiting_for_agent", "agent", "closed"]
OWNERS: tuple[Owner, ...] = ("bot", "waiting_for_agent", "agent", "closed")
OWNER_TTL_S = 7 * 24 * 3600


def owner_key(key_prefix: str, call_id: str) -> str:
    """The Redis key mirroring the owner of ``call_id``."""
    return f"{key_prefix}handoff:{call_id}:owner"


def parse_owner(value: str | bytes | None) -> Owner:
    """The owner stored at :func:`owner_key` (``bot`` when there is no key)."""
    if isinstance(value, bytes):
        value = value.decode()
    return value if value in OWNERS else "bot"  # type: ignore[return-value]


def is_person(owner: Owner) -> bool:
    """Whether ``owner`` is a person (the conversation waits for an agent, or has one)."""
    return owner in ("waiting_for_agent", "agent")


async def current_owner(redis: aioredis.Redis, *, key_prefix: str, call_id: str) -> Owner:
    """The owner of ``call_id`` (``bot`` when nobody took it over)."""
    return parse_owner(await redis.get(owner_key(key_prefix, call_id)))


async def holds(redis: aioredis.Redis, *, key_prefix: str, call_id: str) -> bool:
    """Whether a person holds ``call_id`` (it waits for an agent, or has one)."""
    return is_person(await current_owner(redis, key_prefix=key_prefix, call_id=call_id))


#: The conversation service's answer to a turn while a person owns the conversation.
OwnedByAgent = OwnedChunk
