"""Abuse limits at the edge: request body size, chat frame size, chat message rate, open chats.

- :class:`BodySizeLimit` (ASGI middleware): an HTTP body over ``gateway.max_body_bytes`` gets 413
  before a handler parses it, whether announced by ``Content-Length`` or streamed chunked.
- :func:`admit_chat` (wraps the chat socket handler): at most ``gateway.chat_sessions_per_ip`` open
  chat sockets per client address across every replica (a Redis sorted set of socket ids scored by
  when they lapse, so a crashed replica's sockets age out); one more is refused with 429 before the
  socket is accepted.
- :func:`message_problem`: a chat frame over ``gateway.chat_max_frame_bytes`` is refused, and
  ``message`` frames are limited per minute per conversation
  (``gateway.chat_messages_per_minute``) and per client address
  (``gateway.chat_messages_per_minute_per_ip``), counted in Redis in fixed one-minute windows so
  replicas share the count. The visitor gets a plain error and the chat goes on.
- :func:`too_many_calls`: browser voice calls started per client address per minute are limited
  like open chats (``gateway.chat_sessions_per_ip``).

A limit of 0 is off. If Redis cannot be asked, the limits let the request through (the chat itself
needs Redis and reports that on its own); they never turn an outage into refusals.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Awaitable, Callable

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from callcenter.common.logging import get_logger
from callcenter.gateway.deps import GatewayDeps, get_deps

log = get_logger(__name__)

DEFAULT_MAX_BODY_BYTES = 64 * 1024
TOO_MANY_SESSIONS = "Too many open chats from your address. Close one and try again."
TOO_FAST = "You're sending messages too quickly. Please wait a moment and try again."
TOO_LARGE = "That message is too large."
TOO_NESTED = "That message is nested too deeply."
SOCKET_GRACE_S = 60.0
#: the server closes a socket (1009) whose single frame exceeds this; chat_max_frame_bytes is the
#: friendly limit below it
WS_MAX_FRAME_BYTES = 1024 * 1024


class BodySizeLimit:
    """413 for any HTTP request body larger than ``gateway.max_body_bytes``."""

    def __init__(self, app: ASGIApp, *, default_max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.default_max_bytes = default_max_bytes

    def _limit(self, scope: Scope) -> int:
        app = scope.get("app")
        deps = getattr(getattr(app, "state", None), "deps", None)
        if deps is not None:
            return int(deps.config.gateway.max_body_bytes)
        return self.default_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, refusing it once its body exceeds the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        if not limit:
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await PlainTextResponse("Invalid Content-Length.", 400)(scope, receive, send)
                return
            if int(length) > limit:
                await self._refuse(scope, receive, send, limit)
                return
        seen = 0
        started = False
        too_large = False

        async def counted_receive() -> Message:
            # Past the limit the app sees the client go away (however it handles that), and
            # whatever it answers is replaced by the 413.
            nonlocal seen, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                started = True
                await self._refuse(scope, receive, send, limit)
            if too_large:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted_receive, watched_send)
        if too_large and not started:
            await self._refuse(scope, receive, send, limit)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        log.warning("request body too large", path=scope.get("path"), limit=limit)
        response = PlainTextResponse(f"Request body too large (limit {limit} bytes).", 413)
        await response(scope, receive, send)


def client_address(ws: WebSocket) -> str:
    """The visitor's address as the server sees it (uvicorn applies trusted proxy headers)."""
    return ws.client.host if ws.client else "unknown"


def _sockets_key(deps: GatewayDeps, address: str) -> str:
    return deps.key(f"limits:chat:sockets:{address}")


async def _open_socket(deps: GatewayDeps, address: str, socket_id: str) -> bool:
    limit = deps.config.gateway.chat_sessions_per_ip
    if not limit:
        return True
    key = _sockets_key(deps, address)
    now = time.time()
    lapses = now + deps.config.gateway.chat_idle_timeout_s + SOCKET_GRACE_S
    try:
        async with deps.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zadd(key, {socket_id: lapses})
            pipe.zcard(key)
            pipe.expire(key, int(lapses - now) + 1)
            _, _, count, _ = await pipe.execute()
        if int(count) > limit:
            await deps.redis.zrem(key, socket_id)
            return False
    except Exception as exc:
        log.warning("chat session limit not checked", error=str(exc) or type(exc).__name__)
    return True


async def _close_socket(deps: GatewayDeps, address: str, socket_id: str) -> None:
    if not deps.config.gateway.chat_sessions_per_ip:
        return
    try:
        await deps.redis.zrem(_sockets_key(deps, address), socket_id)
    except Exception as exc:
        log.warning("chat session slot not released", error=str(exc) or type(exc).__name__)


def admit_chat(
    handler: Callable[[WebSocket], Awaitable[None]],
) -> Callable[[WebSocket], Awaitable[None]]:
    """Wrap the chat socket handler with the open-chats-per-address limit."""

    @functools.wraps(handler)
    async def admitted(ws: WebSocket) -> None:
        deps = get_deps(ws)
        address = client_address(ws)
        socket_id = uuid.uuid4().hex
        if not await _open_socket(deps, address, socket_id):
            log.warning("chat refused: too many open chats", client=address)
            await ws.send_denial_response(PlainTextResponse(TOO_MANY_SESSIONS, 429))
            return
        try:
            await handler(ws)
        finally:
            await _close_socket(deps, address, socket_id)

    return admitted


async def _over(deps: GatewayDeps, name: str, limit: int) -> bool:
    window = int(time.time() // 60)
    key = deps.key(f"limits:chat:{name}:{window}")
    async with deps.redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, 120)
        count, _ = await pipe.execute()
    return int(count) > limit


async def too_many_calls(deps: GatewayDeps, address: str) -> bool:
    """Whether this address started more browser calls this minute than it may open chats."""
    limit = deps.config.gateway.chat_sessions_per_ip
    if not limit:
        return False
    try:
        return await _over(deps, f"web_voice:ip:{address}", limit)
    except Exception as exc:
        log.warning("browser call limit not checked", error=str(exc) or type(exc).__name__)
        return False


async def message_problem(ws: WebSocket, *, call_id: str, text: str) -> str | None:
    """Why this chat frame is refused (a message for the visitor), or None when it may go on."""
    deps = get_deps(ws)
    settings = deps.config.gateway
    if settings.chat_max_frame_bytes and len(text.encode()) > settings.chat_max_frame_bytes:
        return TOO_LARGE
    try:
        parsed = json.loads(text)
    except RecursionError:
        return TOO_NESTED
    except ValueError:
        return None  # the handler explains malformed frames
    if not isinstance(parsed, dict) or parsed.get("type") != "message":
        return None  # only messages cost a turn; the rest are cheap
    try:
        if settings.chat_messages_per_minute and await _over(
            deps, f"session:{call_id}", settings.chat_messages_per_minute
        ):
            return TOO_FAST
        per_ip = settings.chat_messages_per_minute_per_ip
        if per_ip and await _over(deps, f"ip:{client_address(ws)}", per_ip):
            return TOO_FAST
    except Exception as exc:
        log.warning("chat rate limit not checked", error=str(exc) or type(exc).__name__)
    return None
