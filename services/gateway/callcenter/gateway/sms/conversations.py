"""One conversation per (customer number, business number), continued across messages.

``sms:conversation:{customer}:{business}`` holds the current call_id. The conversation is open
while its member ``sms:{call_id}`` in the shared ``sessions:active`` set (see
:mod:`callcenter.gateway.sessions`) has a deadline in the future; once the reaper ended it (idle),
or the customer said goodbye, the next message starts a new conversation. Looking up and
extending (or replacing) the conversation is one Redis script, so two replicas receiving two
messages at once agree on one call_id. (The conversation service runs the turns of one call_id
one at a time, whichever replica received the message.)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from callcenter.common.events import new_id
from callcenter.gateway.deps import GatewayDeps
from callcenter.gateway.sessions import ACTIVE_KEY, is_active

MESSAGE_CLAIM_TTL_S = 7 * 24 * 3600

# KEYS: conversation key, active-sessions set. ARGV: new call_id, now, deadline, key ttl.
_RESOLVE = """
local current = redis.call('GET', KEYS[1])
if current then
  local score = redis.call('ZSCORE', KEYS[2], 'sms:' .. current)
  if score and tonumber(score) > tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[2], ARGV[3], 'sms:' .. current)
    redis.call('EXPIRE', KEYS[1], ARGV[4])
    return {current, 0}
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], 'sms:' .. ARGV[1])
return {ARGV[1], 1}
"""


def _key(deps: GatewayDeps, customer: str, business: str) -> str:
    return deps.key(f"sms:conversation:{customer}:{business}")


@dataclass(frozen=True, slots=True)
class Conversation:
    """The conversation an inbound message belongs to."""

    call_id: str
    is_new: bool


async def resolve(deps: GatewayDeps, *, customer: str, business: str) -> Conversation:
    """The open conversation of this pair, extended by the idle timeout, or a new one."""
    idle = deps.config.gateway.sms_idle_timeout_s
    now = time.time()
    call_id, created = await deps.redis.eval(
        _RESOLVE,
        2,
        _key(deps, customer, business),
        deps.key(ACTIVE_KEY),
        new_id(),
        repr(now),
        repr(now + idle),
        max(math.ceil(idle) * 2, 60),
    )
    return Conversation(call_id=str(call_id), is_new=bool(int(created)))


async def claim_message(deps: GatewayDeps, message_sid: str) -> bool:
    """Claim an inbound message for answering; False when it was already claimed (redelivery)."""
    return bool(
        await deps.redis.set(
            deps.key(f"sms:message:{message_sid}"), "1", nx=True, ex=MESSAGE_CLAIM_TTL_S
        )
    )


async def release_message(deps: GatewayDeps, message_sid: str) -> None:
    """Give the claim back (handling failed before any answer), so a redelivery is answered."""
    await deps.redis.delete(deps.key(f"sms:message:{message_sid}"))


async def current(deps: GatewayDeps, *, customer: str, business: str) -> str | None:
    """The call_id of this pair's open conversation, if one is open (nothing is extended)."""
    call_id = await deps.redis.get(_key(deps, customer, business))
    if call_id and await is_active(deps, channel="sms", call_id=call_id):
        return str(call_id)
    return None
