"""Web chat: the WebSocket /chat/ws and the page at /.

Client -> server (JSON text frames): ``{"type": "message", "text": "…"}``, ``{"type": "end"}``,
``{"type": "ping"}``. Server -> client: ``session`` (call_id, resume_token, greeting), ``typing``,
``delta`` (text), ``tool`` (name, status), ``done`` (turn_index, text, end_call), ``error``
(message), ``ended`` (reason), ``pong``. Reconnect with ``?call_id=…&resume_token=…`` to continue the
same conversation after a dropped socket.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from opentelemetry import context as otel_context
from opentelemetry import trace

from callcenter.common.bus import StreamError
from callcenter.common.clients import ConversationClient
from callcenter.common.contracts import DeltaChunk, OwnedChunk, ToolChunk, TurnRequest
from callcenter.common.contracts.chat import ChatFrame, DeltaFrame, DoneFrame, ToolFrame
from callcenter.common.logging import bind_call, get_logger
from callcenter.common.pii import redact_customer_text
from callcenter.gateway import sessions
from callcenter.gateway.calls import end_call, record_turn, start_call
from callcenter.gateway.deps import GatewayDeps, get_deps
from callcenter.gateway.inbox.delivery import CustomerFeed
from callcenter.gateway.inbox.routing import on_transfer, person_holds, route_customer_text
from callcenter.gateway.limits import admit_chat, message_problem

log = get_logger(__name__)
tracer = trace.get_tracer("callcenter.gateway")
router = APIRouter()

TROUBLE = "Sorry, I'm having trouble answering right now. Please try again in a moment."


@router.get("/", include_in_schema=False)
async def chat_page() -> FileResponse:
    """The demo page with the chat."""
    from callcenter.gateway.app import STATIC_DIR

    return FileResponse(STATIC_DIR / "chat.html")


class ChatSession:
    """One visitor's socket, bound to one conversation (call_id)."""

    def __init__(self, *, ws: WebSocket, deps: GatewayDeps, call_id: str) -> None:
        self.ws = ws
        self.deps = deps
        self.call_id = call_id
        self.idle_timeout = deps.config.gateway.chat_idle_timeout_s

    async def send(self, payload: dict[str, Any]) -> None:
        """Send one JSON message to the visitor."""
        await self.ws.send_text(json.dumps(payload))

    async def send_frame(self, frame: ChatFrame) -> None:
        """Send one frame of the chat contract to the visitor."""
        await self.ws.send_text(frame.to_text())

    async def next_message(self) -> dict[str, Any] | None:
        """The next well-formed client message, or None when the visitor went idle."""
        while True:
            try:
                frame = await asyncio.wait_for(self.ws.receive(), timeout=self.idle_timeout)
            except TimeoutError:
                return None
            if frame["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(frame.get("code", 1000))
            text = frame.get("text")
            if text is None:
                await self.send({"type": "error", "message": "Send JSON text frames, not binary."})
                continue
            problem = await message_problem(self.ws, call_id=self.call_id, text=text)
            if problem:
                await self.send({"type": "error", "message": problem})
                continue
            try:
                msg = json.loads(text)
            except ValueError:
                await self.send({"type": "error", "message": "That was not valid JSON."})
                continue
            if not isinstance(msg, dict) or msg.get("type") not in {"message", "end", "ping"}:
                await self.send({"type": "error", "message": "Unknown message type."})
                continue
            if msg["type"] == "ping":
                await self.send({"type": "pong"})
                continue
            if msg["type"] == "message":
                body = msg.get("text")
                limit = self.deps.config.gateway.chat_max_message_chars
                if not isinstance(body, str) or not body.strip():
                    await self.send({"type": "error", "message": "Type a message first."})
                    continue
                if len(body) > limit:
                    await self.send(
                        {"type": "error", "message": f"Messages are limited to {limit} characters."}
                    )
                    continue
            return msg

    async def turn(self, text: str) -> bool:
        """Run one turn, streaming the reply; return True when the assistant ended the conversation.

        Each turn is its own trace (gateway -> conversation -> tools), linked to the socket's span:
        a chat can last many minutes, and one trace per socket would only be exported at its end.
        """
        socket_span = trace.get_current_span().get_span_context()
        with tracer.start_as_current_span(
            "chat.turn",
            context=otel_context.Context(),
            kind=trace.SpanKind.SERVER,
            links=[trace.Link(socket_span)] if socket_span.is_valid else None,
            attributes={"call.id": self.call_id, "channel": "chat"},
        ):
            return await self._turn(text)

    async def _turn(self, text: str) -> bool:
        await self.send({"type": "typing"})
        delivered: list[str] = []
        stream = None
        client = ConversationClient(
            bus=self.deps.bus, first_timeout_s=self.deps.config.gateway.turn_timeout_s
        )
        try:
            stream = await client.stream_turn(
                TurnRequest(call_id=self.call_id, channel="chat", text=text)
            )
            async for chunk in stream:
                if isinstance(chunk, DeltaChunk):
                    await self.send_frame(DeltaFrame(text=chunk.text))
                    delivered.append(chunk.text)
                elif isinstance(chunk, ToolChunk):
                    await self.send_frame(ToolFrame(name=chunk.name, status=chunk.status))
                elif isinstance(
                    chunk, OwnedChunk
                ):  # a person took over meanwhile: the agent gets it
                    await route_customer_text(
                        self.deps, call_id=self.call_id, channel="chat", text=text
                    )
                    await self.send({"type": "held"})
                    return False
                else:
                    await record_turn(self.deps, call_id=self.call_id, turn_index=chunk.turn_index)
                    transfer = chunk.transfer.model_dump() if chunk.transfer else None
                    await self.send_frame(
                        DoneFrame(
                            turn_index=chunk.turn_index,
                            text=chunk.text,
                            end_call=chunk.end_call,
                            transfer=transfer,
                        )
                    )
                    await on_transfer(
                        self.deps, call_id=self.call_id, channel="chat", transfer=transfer
                    )
                    return chunk.end_call
        except StreamError as exc:
            log.warning("turn failed", error=exc.code, detail=exc.message)
            await self.send({"type": "error", "message": TROUBLE})
        except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError):
            if stream is not None and not stream.finished:
                await stream.cancel(delivered_text="".join(delivered))
            raise
        return False


@router.websocket("/chat/ws")
@admit_chat
async def chat_socket(ws: WebSocket) -> None:
    """One web-chat conversation (or its continuation after a reconnect)."""
    deps = get_deps(ws)
    await ws.accept()
    resume_id = ws.query_params.get("call_id")
    token = ws.query_params.get("resume_token", "")
    resumed = False
    if resume_id:
        if sessions.valid_resume_token(deps, resume_id, token) and await sessions.is_active(
            deps, channel="chat", call_id=resume_id
        ):
            call_id, resumed = resume_id, True
        else:
            await ws.send_text(
                json.dumps(
                    {"type": "error", "message": "That conversation has ended; starting a new one."}
                )
            )
            call_id = None
    else:
        call_id = None
    if call_id is None:
        client = ws.client.host if ws.client else None
        started = await start_call(
            deps, channel="chat", from_number=None, provider_ids={"client_ip": client or ""}
        )
        call_id = started.call_id
    session = ChatSession(ws=ws, deps=deps, call_id=call_id)
    reason = "customer_disconnected"
    ended_here = False
    with bind_call(call_id, channel="chat"):
        feed = await CustomerFeed(
            deps=deps, call_id=call_id, send=session.send, on_ended=ws.close
        ).start()
        await sessions.touch(
            deps, channel="chat", call_id=call_id, idle_timeout_s=session.idle_timeout
        )
        try:
            await session.send(
                {
                    "type": "session",
                    "call_id": call_id,
                    "resume_token": sessions.resume_token(deps, call_id),
                    "resumed": resumed,
                    "greeting": None if resumed else deps.config.conversation.greeting,
                }
            )
            if resumed:  # what an agent wrote while the socket was away
                await feed.replay()
            shutting_down: asyncio.Event | None = getattr(ws.app.state, "shutting_down", None)
            while True:
                msg = await session.next_message()
                if msg is None and await person_holds(deps, call_id=call_id):
                    # the customer waits for (or reads) a person: not idle
                    await sessions.touch(
                        deps, channel="chat", call_id=call_id, idle_timeout_s=session.idle_timeout
                    )
                    continue
                if msg is None:
                    reason = "idle_timeout"
                    await session.send({"type": "ended", "reason": reason})
                    ended_here = True
                    break
                if msg["type"] == "end":
                    reason = "customer_closed"
                    await session.send({"type": "ended", "reason": reason})
                    ended_here = True
                    break
                held = await sessions.touch_and_check_person(
                    deps, channel="chat", call_id=call_id, idle_timeout_s=session.idle_timeout
                )
                # the boundary: nothing raw goes on (cards/SSNs redacted; a lone surrogate, which
                # no UTF-8 peer can carry, becomes "?")
                text = redact_customer_text(msg["text"].encode("utf-8", "replace").decode("utf-8"))
                if await route_customer_text(
                    deps, call_id=call_id, channel="chat", text=text, held=held
                ):
                    await session.send({"type": "held"})  # kept for the agent; the bot stays silent
                    continue
                if await session.turn(text):
                    reason = "completed"
                    await session.send({"type": "ended", "reason": reason})
                    ended_here = True
                    break
                if shutting_down is not None and shutting_down.is_set():
                    # This replica is stopping: the visitor reconnects elsewhere and continues.
                    await session.send({"type": "reconnect"})
                    await ws.close(code=1012)
                    return
        except (WebSocketDisconnect, RuntimeError):
            # A dropped socket may come back (resume); the reaper ends it if it does not.
            log.info("chat socket closed by visitor")
            grace = min(deps.config.gateway.chat_resume_grace_s, session.idle_timeout)
            await sessions.touch(deps, channel="chat", call_id=call_id, idle_timeout_s=grace)
            return
        finally:
            await feed.stop()
            if ended_here:
                try:
                    await end_call(deps, call_id=call_id, channel="chat", reason=reason)
                except Exception:  # marked 'ending': a reaper finishes it
                    log.exception("call end not recorded; the reapers will retry")
                else:
                    await sessions.forget(deps, channel="chat", call_id=call_id)
        try:
            await ws.close()
        except (RuntimeError, WebSocketDisconnect):  # the visitor closed first
            pass
