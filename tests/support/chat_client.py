"""A web-chat visitor for tests and benchmarks: speaks the gateway's /chat/ws protocol.

Every frame the gateway sends is checked against the contract (:mod:`callcenter.common.contracts.chat`);
tests still see each frame as the JSON object that was sent.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import websockets

from callcenter.common.contracts.chat import (
    ChatEnd,
    ChatFrame,
    ChatMessage,
    DoneFrame,
    EndedFrame,
    ErrorFrame,
    ToolFrame,
    parse_chat_frame,
)


@dataclass
class Reply:
    """What the assistant answered to one message."""

    text: str
    kind: str  # "done", "error" or "ended"
    tools: list[str] = field(default_factory=list)  # tools that finished during the turn
    frames: list[dict[str, Any]] = field(default_factory=list)


class ChatVisitor:
    """One chat conversation: ``async with ChatVisitor(url) as chat: await chat.say("…")``."""

    def __init__(self, gateway_url: str, *, timeout_s: float = 30.0) -> None:
        self.url = gateway_url.replace("http://", "ws://").rstrip("/") + "/chat/ws"
        self.timeout_s = timeout_s
        self.ws: websockets.ClientConnection | None = None
        self.hello: dict[str, Any] = {}

    @property
    def call_id(self) -> str:
        """The conversation's call id."""
        return str(self.hello["call_id"])

    async def __aenter__(self) -> ChatVisitor:
        self.ws = await websockets.connect(self.url, open_timeout=self.timeout_s)
        self.hello = await self.receive()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def receive(self) -> dict[str, Any]:
        """The next server message (checked against the contract), as sent."""
        return (await self._next())[1]

    async def _next(self) -> tuple[ChatFrame, dict[str, Any]]:
        assert self.ws is not None
        raw = await asyncio.wait_for(self.ws.recv(), timeout=self.timeout_s)
        return parse_chat_frame(raw), json.loads(raw)

    async def say(self, text: str) -> Reply:
        """Send one message; return the turn's outcome."""
        assert self.ws is not None
        await self.ws.send(ChatMessage(text=text).to_text())
        frames: list[dict[str, Any]] = []
        tools: list[str] = []
        while True:
            frame, sent = await self._next()
            frames.append(sent)
            if isinstance(frame, ToolFrame) and frame.status == "finished":
                tools.append(frame.name)
            elif isinstance(frame, DoneFrame):
                return Reply(text=frame.text, kind="done", tools=tools, frames=frames)
            elif isinstance(frame, ErrorFrame):
                return Reply(text=frame.message, kind="error", frames=frames)
            elif isinstance(frame, EndedFrame):
                return Reply(text=frame.reason, kind="ended", frames=frames)

    async def end(self) -> dict[str, Any]:
        """Close the conversation; return the server's ``ended`` message."""
        assert self.ws is not None
        await self.ws.send(ChatEnd().to_text())
        while True:
            frame, sent = await self._next()
            if isinstance(frame, EndedFrame):
                return sent
