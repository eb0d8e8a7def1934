"""The real ways a customer reaches the system: the web chat socket and signed SMS webhooks."""

from __future__ import annotations

import asyncio
import json
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import websockets
from twilio.request_validator import RequestValidator

BUSINESS_NUMBER = "+15550100200"


@dataclass(slots=True)
class Reply:
    """What the assistant answered to one message."""

    text: str
    tools: list[str] = field(default_factory=list)
    transfer: bool = False
    ended: bool = False
    error: str | None = None


class Channel(Protocol):
    """One conversation with the running system."""

    call_id: str | None

    async def open(self) -> None:
        """Start the conversation."""

    async def say(self, text: str) -> Reply:
        """Send one customer message and return the assistant's answer."""

    async def close(self) -> None:
        """End the conversation."""


class ChatChannel:
    """A web-chat visitor on the gateway's ``/chat/ws`` socket."""

    def __init__(self, *, gateway_url: str, timeout_s: float) -> None:
        self.url = gateway_url.replace("http://", "ws://").replace("https://", "wss://")
        self.url = self.url.rstrip("/") + "/chat/ws"
        self.timeout_s = timeout_s
        self.call_id: str | None = None
        self._ws: websockets.ClientConnection | None = None

    async def _receive(self) -> dict[str, Any]:
        assert self._ws is not None
        return json.loads(await asyncio.wait_for(self._ws.recv(), timeout=self.timeout_s))

    async def open(self) -> None:
        """Connect and read the greeting frame (which names the conversation)."""
        self._ws = await websockets.connect(self.url, open_timeout=self.timeout_s)
        hello = await self._receive()
        self.call_id = str(hello.get("call_id") or "") or None

    async def say(self, text: str) -> Reply:
        """Send one message and collect the turn's frames until it is done."""
        assert self._ws is not None
        await self._ws.send(json.dumps({"type": "message", "text": text}))
        tools: list[str] = []
        while True:
            frame = await self._receive()
            kind = frame.get("type")
            if kind == "tool" and frame.get("status") == "finished":
                tools.append(str(frame.get("name")))
            elif kind == "done":
                return Reply(
                    text=str(frame.get("text") or ""),
                    tools=tools,
                    transfer=bool(frame.get("transfer")),
                    ended=bool(frame.get("end_call")),
                )
            elif kind in ("error", "ended"):
                message = str(frame.get("message") or frame.get("reason") or kind)
                return Reply(text=message, tools=tools, ended=kind == "ended", error=message)

    async def close(self) -> None:
        """Say goodbye to the socket (the gateway ends the conversation)."""
        if self._ws is not None:
            try:
                await self._ws.send(json.dumps({"type": "end"}))
                while (await self._receive()).get("type") != "ended":
                    pass
            except (websockets.ConnectionClosed, TimeoutError):
                pass
            await self._ws.close()


class SmsChannel:
    """A phone texting the business number: webhooks signed exactly as Twilio signs them."""

    def __init__(
        self,
        *,
        gateway_url: str,
        public_base_url: str,
        auth_token: str,
        customer: str,
        timeout_s: float,
        find_call: Any,
    ) -> None:
        self.url = gateway_url.rstrip("/") + "/twilio/sms"
        self.signed_url = public_base_url.rstrip("/") + "/twilio/sms"
        self.validator = RequestValidator(auth_token)
        self.customer = customer
        self.timeout_s = timeout_s
        self.find_call = find_call
        self.call_id: str | None = None
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def open(self) -> None:
        """Nothing to open: the first text starts the conversation."""

    async def say(self, text: str) -> Reply:
        """Post one inbound SMS and read the reply from the webhook's TwiML."""
        params = {
            "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": "AC" + uuid.uuid4().hex,
            "From": self.customer,
            "To": BUSINESS_NUMBER,
            "Body": text,
            "NumMedia": "0",
        }
        signature = self.validator.compute_signature(self.signed_url, params)
        response = await self._client.post(
            self.url, data=params, headers={"X-Twilio-Signature": signature}
        )
        if self.call_id is None:
            self.call_id = await self.find_call(self.customer)
        if response.status_code != 200:
            error = f"HTTP {response.status_code}: {response.text[:200]}"
            return Reply(text="", error=error)
        bodies = [m.text or "" for m in ET.fromstring(response.text).iter("Message")]
        return Reply(text=" ".join(bodies).strip())

    async def close(self) -> None:
        """Release the HTTP client (an SMS conversation ends on its own when idle)."""
        await self._client.aclose()
