"""Twilio Media Streams, strictly: a malformed message ends that call (and only that call).

pipecat's ``TwilioFrameSerializer`` turns ``media`` into audio and ``dtmf`` into keypad frames and
the bot's audio into ``media`` (μ-law 8 kHz) and interruptions into ``clear``. This subclass
refuses what Twilio never sends (not JSON, no ``event``, a ``media`` payload that is not base64),
so the transport's receive loop stops and the call ends cleanly; it notes ``stop`` and ``mark``,
tells the pipeline when audio actually leaves for Twilio (for latency), and can be told not to
hang up (after the call was redirected to an agent).

Every 20 ms of the caller and every 40 ms of the bot is one message, so the media path is short:
a message is parsed and its payload decoded once (pipecat's own ``deserialize`` would parse and
decode it again after our checks), and while the pipeline runs at Twilio's 8 kHz the μ-law
conversion is the one ``audioop`` call with no resampler, the outgoing message one string
(``fast_media``; off: pipecat's path for every message).

On that path the caller's audio can also be joined as it arrives (``join_ms``, e.g. 60): the
transport then hands the pipeline one frame per ``join_ms`` instead of one per 20 ms message, so
its input queue, the VAD and every processor after it handle a third of the frames (the VAD
buffers its own 32 ms windows; Deepgram takes 20–250 ms chunks; Smart Turn buffers what it gets).
The audio is held at most ``join_ms - 20`` ms, well inside the VAD's stop window that decides
when a turn ends. A ``dtmf`` message does not wait for the audio held (a keypress is not audio).
"""

from __future__ import annotations

import audioop
import base64
import binascii
import json
import time
from collections.abc import Callable
from typing import Any

from pipecat.frames.frames import AudioRawFrame, Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.serializers.twilio import TwilioFrameSerializer


class MalformedMediaMessage(ValueError):
    """A message on the media socket that is not Twilio Media Streams."""


#: Twilio sends 20 ms (160 bytes, 216 base64 characters) per media message; allow a lot more.
MAX_PAYLOAD_CHARS = 16 * 1024

KNOWN_EVENTS = {"connected", "start", "media", "mark", "dtmf", "stop"}

#: Twilio Media Streams' audio: μ-law at 8 kHz.
TWILIO_RATE = 8000


class CallSerializer(TwilioFrameSerializer):
    """Twilio Media Streams for one call."""

    def __init__(self, *, fast_media: bool = True, join_ms: int = 20, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.malformed: str | None = None
        self.stopped = False
        self.marks: list[str] = []
        self.on_audio_sent: Callable[[float], None] | None = None
        self.media_out = 0
        params = kwargs.get("params")
        self._rate_override = getattr(params, "sample_rate", None)
        self._fast_media = fast_media
        self._pipeline_rate: int | None = None
        #: the caller's audio is joined into frames of this many ms (20: one per message)
        self.join_ms = max(20, join_ms) if fast_media else 20
        self._join_bytes = self.join_ms * TWILIO_RATE * 2 // 1000
        self._held: list[bytes] = []
        self._held_bytes = 0
        # '{"event": "media", "streamSid": "MZ…", "media": {"payload": "' — as json.dumps writes it
        self._media_head = (
            '{"event": "media", "streamSid": '
            + json.dumps(kwargs.get("stream_sid", ""))
            + ', "media": {"payload": "'
        )

    async def setup(self, setup: FrameProcessorSetup) -> None:
        """Note the pipeline's audio rate (the direct μ-law path needs Twilio's 8 kHz)."""
        await super().setup(setup)
        self._pipeline_rate = self._rate_override or setup.audio_in_sample_rate

    def _direct(self) -> bool:
        return self._fast_media and self._pipeline_rate == TWILIO_RATE

    def suppress_hang_up(self) -> None:
        """Do not end the Twilio call when the pipeline ends (it now belongs to an agent)."""
        self._hangup_attempted = True

    async def serialize(self, frame: Frame) -> str | bytes | None:
        """Serialise, noting when audio goes out."""
        if (
            isinstance(frame, AudioRawFrame)
            and frame.sample_rate == TWILIO_RATE
            and self._fast_media
        ):
            if not frame.audio:
                return None
            payload = base64.b64encode(audioop.lin2ulaw(frame.audio, 2)).decode("ascii")
            data: str | bytes | None = self._media_head + payload + '"}}'
        else:
            data = await super().serialize(frame)
            if not (isinstance(data, str) and data.startswith('{"event": "media"')):
                return data
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
                ulaw = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError) as exc:
                self.malformed = "payload not base64"
                raise MalformedMediaMessage("media payload is not base64") from exc
            if self._direct():
                return self._caller_audio(audioop.ulaw2lin(ulaw, 2)) if ulaw else None
        elif event == "stop":
            self.stopped = True
            return None
        elif event == "mark":
            self.marks.append(str((message.get("mark") or {}).get("name", "")))
            return None
        return await super().deserialize(data)

    def _caller_audio(self, pcm: bytes) -> InputAudioRawFrame | None:
        """A frame of the caller's audio once ``join_ms`` of it is here; None while holding."""
        if self._join_bytes > len(pcm) or self._held:
            self._held.append(pcm)
            self._held_bytes += len(pcm)
            if self._held_bytes < self._join_bytes:
                return None
            pcm = b"".join(self._held)
            self._held = []
            self._held_bytes = 0
        return InputAudioRawFrame(audio=pcm, sample_rate=TWILIO_RATE, num_channels=1)
