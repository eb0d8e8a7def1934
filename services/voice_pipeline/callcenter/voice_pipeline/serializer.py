"""Twilio Media Streams, strictly: a malformed message ends that call (and only that call).

pipecat's ``TwilioFrameSerializer`` turns ``media`` into audio and ``dtmf`` into keypad frames and
the bot's audio into ``media`` (μ-law 8 kHz) and interruptions into ``clear``. This subclass
refuses what Twilio never sends (not JSON, no ``event``, a ``media`` payload that is not base64),
so the transport's receive loop stops and the call ends cleanly; it notes ``stop`` and ``mark``,
tells the pipeline when audio actually leaves for Twilio (for latency), and can be told not to
hang up (after the call was redirected to an agent).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable

from pipecat.frames.frames import Frame
from pipecat.serializers.twilio import TwilioFrameSerializer


class MalformedMediaMessage(ValueError):
    """A message on the media socket that is not Twilio Media Streams."""


#: Twilio sends 20 ms (160 bytes, 216 base64 characters) per media message; allow a lot more.
MAX_PAYLOAD_CHARS = 16 * 1024

KNOWN_EVENTS = {"connected", "start", "media", "mark", "dtmf", "stop"}


class CallSerializer(TwilioFrameSerializer):
    """Twilio Media Streams for one call."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.malformed: str | None = None
        self.stopped = False
        self.marks: list[str] = []
        self.on_audio_sent: Callable[[float], None] | None = None
        self.media_out = 0

    def suppress_hang_up(self) -> None:
        """Do not end the Twilio call when the pipeline ends (it now belongs to an agent)."""
        self._hangup_attempted = True

    async def serialize(self, frame: Frame) -> str | bytes | None:
        """Serialise, noting when audio goes out."""
        data = await super().serialize(frame)
        if isinstance(data, str) and data.startswith('{"event": "media"'):
            self.media_out += 1
            if self.on_audio_sent is not None:
                self.on_audio_sent(time.monotonic())
        return data

    async def deserialize(self, data: str | bytes) -> Frame | None:
        """Parse one message; raise :class:`MalformedMediaMessage` for anything not Twilio's."""
        try:
            message = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            self.malformed = "not JSON"
            raise MalformedMediaMessage("media socket message is not JSON") from exc
        if not isinstance(message, dict) or message.get("event") not in KNOWN_EVENTS:
            self.malformed = "unknown event"
            raise MalformedMediaMessage("media socket message has no known event")
        event = message["event"]
        if event == "media":
            payload = (message.get("media") or {}).get("payload")
            if not isinstance(payload, str):
                self.malformed = "media without payload"
                raise MalformedMediaMessage("media message without a payload")
            if len(payload) > MAX_PAYLOAD_CHARS:
                self.malformed = "payload too large"
                raise MalformedMediaMessage("media payload larger than Twilio ever sends")
            try:
                base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError) as exc:
                self.malformed = "payload not base64"
                raise MalformedMediaMessage("media payload is not base64") from exc
        elif event == "stop":
            self.stopped = True
            return None
        elif event == "mark":
            self.marks.append(str((message.get("mark") or {}).get("name", "")))
            return None
        return await super().deserialize(data)
