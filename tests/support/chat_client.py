"""A web-chat visitor for tests and benchmarks: speaks the gateway's /chat/ws protocol."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import websockets


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
        """The next server message."""
        assert self.ws is not None
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout=self.timeout_s))

    async def say(self, text: str) -> Reply:
        """Send one message; return the turn's outcome."""
        assert self.ws is not None
        await self.ws.send(json.dumps({"type": "message", "text": text}))
        frames: list[dict[str, Any]] = []
        while True:
            frame = await self.receive()
            frames.append(frame)
            if frame["type"] == "done":
                tools = [
                    f["name"] for f in frames if f["type"] == "tool" and f["status"] == "finished"
                ]
                return Reply(text=frame["text"], kind="done", tools=tools, frames=frames)
            if frame["type"] in ("error", "ended"):
                return Reply(
                    text=frame.get("message") or frame.get("reason", ""),
                    kind=frame["type"],
                    frames=frames,
                )

    async def end(self) -> dict[str, Any]:
        """Close the conversation; return the server's ``ended`` message."""
        assert self.ws is not None
        await self.ws.send(json.dumps({"type": "end"}))
        while True:
            frame = await self.receive()
            if frame["type"] == "ended":
                return frame
